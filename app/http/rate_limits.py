"""Rate limits per token (its `sub`) and per tenant (each org id in its `orgs`), with `limits`.

Counted in memory, per process, in fixed windows: with N uvicorn workers a client whose
requests spread over them can get up to N times a limit, so limits are set per worker.
The environment gives the limits (`GRAPHFLAGS_RATE_LIMIT_TOKEN`, `..._TENANT`); an
optional JSON file (`GRAPHFLAGS_RATE_LIMITS_FILE`) overrides them and is re-read when it
changes, without a restart:

    {"token": "100/second", "tenant": "1000/second;20000/minute", "tenants": {"acme": "5000/second"}}

A key absent from the file keeps the environment's value; "" or null turns that limit off.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from loguru import logger

from app.domain.access import Principal
from app.errors import Problem, ProblemType


def parse_limits(text: str | None) -> tuple[RateLimitItem, ...]:
    """'10/second;500/minute' -> items; '' or None -> no limit. ValueError when unreadable."""
    if text is None or not text.strip():
        return ()
    return tuple(parse_many(text))


@dataclass(frozen=True, slots=True)
class Rules:
    token: tuple[RateLimitItem, ...] = ()
    tenant: tuple[RateLimitItem, ...] = ()
    # Per tenant id: replaces `tenant` for that org id.
    tenants: dict[str, tuple[RateLimitItem, ...]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return bool(self.token or self.tenant or any(self.tenants.values()))

    def with_file(self, document: Any) -> Rules:
        if not isinstance(document, dict):
            raise ValueError("the limits file must hold a JSON object")
        unknown = set(document) - {"token", "tenant", "tenants"}
        if unknown:
            raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
        tenants = document.get("tenants") or {}
        if not isinstance(tenants, dict) or not all(isinstance(v, str | None) for v in tenants.values()):
            raise ValueError('"tenants" must map org ids to limits such as "100/second"')
        return Rules(
            token=_limits_of(document, "token", self.token),
            tenant=_limits_of(document, "tenant", self.tenant),
            tenants={org: parse_limits(text) for org, text in tenants.items()},
        )


def _limits_of(document: dict[str, Any], key: str, default: tuple[RateLimitItem, ...]) -> tuple[RateLimitItem, ...]:
    if key not in document:
        return default
    value = document[key]
    if value is not None and not isinstance(value, str):
        raise ValueError(f'"{key}" must be a string such as "100/second", or null')
    return parse_limits(value)


class RateLimits:
    """`check(principal)` after authentication: returns, or raises `429 rate-limited`."""

    def __init__(
        self, token: str | None, tenant: str | None, file: Path | None = None, reload_interval: float = 1.0
    ) -> None:
        self._base = Rules(token=parse_limits(token), tenant=parse_limits(tenant))
        self.rules = self._base
        # Fixed windows: one counter per key, the cheapest strategy `limits` has in memory
        # (a moving window keeps a timestamp per request, 10,000 of them at 10,000/s).
        self._limiter = FixedWindowRateLimiter(MemoryStorage())
        self._file = file
        self._reload_interval = reload_interval
        self._next_look = 0.0
        self._seen: tuple[int, int, int] | None = None
        if file is not None:
            self._look(time.monotonic())

    def check(self, principal: Principal) -> None:
        if self._file is not None:
            now = time.monotonic()
            if now >= self._next_look:
                self._look(now)
        rules = self.rules
        if not rules.active:
            return
        hit = self._limiter.hit
        for item in rules.token:
            if not hit(item, "token", principal.subject):
                self._refuse(item, ("token", principal.subject), "this token")
        tenants = rules.tenants
        for org in principal.orgs:
            for item in tenants.get(org, rules.tenant):
                if not hit(item, "tenant", org):
                    self._refuse(item, ("tenant", org), f"tenant {org}")

    def _refuse(self, item: RateLimitItem, key: tuple[str, str], whose: str) -> None:
        reset = self._limiter.get_window_stats(item, *key).reset_time
        retry_after = max(1, math.ceil(reset - time.time()))
        raise Problem(
            ProblemType.rate_limited,
            f"{whose} is over its limit of {item}; retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    def _look(self, now: float) -> None:
        """Re-read the file when it changed (checked at most once per reload interval)."""
        self._next_look = now + self._reload_interval
        assert self._file is not None
        try:
            stat = os.stat(self._file)
        except FileNotFoundError:
            if self._seen is not None:
                logger.warning("rate limits file {} is gone: the environment's limits apply", self._file)
            self._seen, self.rules = None, self._base
            return
        seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            rules = self._base.with_file(orjson.loads(self._file.read_bytes()))
        except (ValueError, OSError) as error:  # orjson.JSONDecodeError is a ValueError
            logger.error("rate limits file {} refused, the limits in force stay: {}", self._file, error)
            return
        self.rules = rules
        logger.bind(
            token=[str(i) for i in rules.token], tenant=[str(i) for i in rules.tenant], tenants=len(rules.tenants)
        ).info("rate limits in force from {}", self._file)
