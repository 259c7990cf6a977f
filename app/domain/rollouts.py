"""Rollouts along the tree (docs/api.md, "Rollouts along the tree"; docs/rollouts.md).

A rollout is a value with another shape: "`value` for `percent`% of the units `unit_depth`
levels below the setter". Every org below the setter at that depth or deeper has a unit (its
ancestor, or itself, at depth(setter) + unit_depth), and is in the rollout when the unit's
bucket is below the percent, so a whole branch switches together.

In Python a rollout is its public form, `{"rollout": {"percent", "unit_depth", "value"}}`,
as a dict subclass: every layer that answers, audits or logs values (orjson included)
carries it as one value with no code of its own, and `same_value` tells it from an object
flag's plain dict by its type. In the graph it is kept on the same `SET` relationship as
any value, as a one-element list of that JSON text: no flag type stores a list, so the
shape is unambiguous, and every path that moves `s.value` (exports, regions, snapshots)
moves it unchanged.
"""

from __future__ import annotations

import hashlib
import math
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import orjson

from app.errors import Problem, ProblemType

# bucket() is in [0, 100) with two decimals: 10,000 buckets of 0.01 points each.
BUCKETS = 10_000
FIELDS = frozenset({"percent", "unit_depth", "value"})


class Rollout(dict[str, Any]):
    """`{"rollout": {"percent": float, "unit_depth": int, "value": <the flag's value>}}`."""

    __slots__ = ()

    @classmethod
    def of(cls, percent: float, unit_depth: int, value: Any) -> Rollout:
        return cls(rollout={"percent": float(percent), "unit_depth": unit_depth, "value": value})

    @property
    def percent(self) -> float:
        return float(self["rollout"]["percent"])

    @property
    def unit_depth(self) -> int:
        return int(self["rollout"]["unit_depth"])

    @property
    def value(self) -> Any:
        return self["rollout"]["value"]


def bucket(flag: str, unit: str) -> float:
    """The unit's bucket for the flag, in [0, 100): part of the contract, so that any client
    can reproduce the split. SHA-256 of `flag/unit` (UTF-8), the first 8 bytes as a big-endian
    unsigned integer, modulo 10,000, divided by 100."""
    digest = hashlib.sha256(f"{flag}/{unit}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") % BUCKETS) / 100


def is_stored(stored: Any) -> bool:
    """Whether a value as the graph (or the cache) keeps it is a rollout."""
    return type(stored) is list


def encode(rollout: Rollout) -> list[str]:
    # No ';' in the text (JSON has it only inside strings, where \u003b means the same): it is
    # neo4j-admin's array delimiter, and offline backups import this list as a string[] column.
    return [orjson.dumps(rollout, option=orjson.OPT_SORT_KEYS).decode().replace(";", "\\u003b")]


def decode(stored: list[str]) -> Rollout:
    return _decoded(stored[0])


@lru_cache(maxsize=4096)
def _decoded(text: str) -> Rollout:
    # Lookups resolve from the cached chain on every request: decode each stored rollout once.
    # The Rollout handed out is shared, so nobody may change it (nobody does: values are read-only).
    document = orjson.loads(text)["rollout"]
    return Rollout.of(document["percent"], document["unit_depth"], document["value"])


def parse(document: Any) -> Rollout:
    """The `rollout` member of a PUT body, its value not yet checked against the flag
    (`FlagDefinition.check` does that); `422 invalid-value` for a malformed one."""
    if not isinstance(document, dict):
        raise Problem(ProblemType.invalid_value, 'rollout must be an object {"percent", "value", "unit_depth"}')
    unknown = set(document) - FIELDS
    if unknown:
        raise Problem(ProblemType.invalid_value, f"rollout has unknown field(s) {sorted(unknown)}")
    if "percent" not in document or "value" not in document:
        raise Problem(ProblemType.invalid_value, 'rollout needs "percent" and "value"')
    if document["value"] is None:
        raise Problem(ProblemType.invalid_value, "a rollout's value cannot be null")
    return Rollout.of(_percent(document["percent"]), _unit_depth(document.get("unit_depth", 1)), document["value"])


def from_public(value: Any) -> Any:
    """A value as the audit log, the change feed or a stored schedule show it (JSON decoded):
    a Rollout if it has a rollout's shape (which no object flag's value may have: FlagDefinition
    refuses it), else the value itself."""
    return parse(value["rollout"]) if has_public_shape(value) else value


def has_public_shape(value: Any) -> bool:
    return (
        type(value) is dict
        and set(value) == {"rollout"}
        and isinstance(value["rollout"], dict)
        and set(value["rollout"]) == FIELDS
    )


def _percent(percent: Any) -> float:
    if not isinstance(percent, int | float) or isinstance(percent, bool) or not math.isfinite(percent):
        raise Problem(ProblemType.invalid_value, "rollout percent must be a number from 0 to 100")
    if not 0 <= percent <= 100:
        raise Problem(ProblemType.invalid_value, f"rollout percent {percent} is outside 0-100")
    try:
        # The decimal text of the number as sent: 12.345 has three decimals, 12.3 one.
        exponent = Decimal(repr(percent)).normalize().as_tuple().exponent
    except InvalidOperation:  # pragma: no cover - finite floats always convert
        exponent = -99
    if isinstance(exponent, int) and exponent < -2:
        raise Problem(ProblemType.invalid_value, f"rollout percent {percent} has more than two decimals")
    return float(percent)


def _unit_depth(depth: Any) -> int:
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise Problem(ProblemType.invalid_value, "rollout unit_depth must be an integer of at least 1")
    return depth


def unit_of(chain_orgs_count: int, setter_index: int, unit_depth: int) -> int | None:
    """Where the unit sits in a chain (org first, root last) whose link `setter_index` sets a
    rollout: `setter_index - unit_depth`, or None when the org is above the unit depth.

    The setter is `setter_index` levels above the org; the unit is `unit_depth` levels below
    the setter, so it is `setter_index - unit_depth` levels above the org.
    """
    index = setter_index - unit_depth
    return index if 0 <= index < chain_orgs_count else None
