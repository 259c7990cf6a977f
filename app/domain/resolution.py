"""How an org's effective value is chosen: the nearest setting wins, else the default."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.domain.catalog import FlagDefinition

Reason = Literal["own", "inherited", "default"]


@dataclass(frozen=True, slots=True)
class Link:
    """One org of an ancestor chain and the value set on it for one flag (None: not set)."""

    org: str
    stored: Any


@dataclass(frozen=True, slots=True)
class Resolution:
    value: Any
    reason: Reason
    source_org: str | None
    depth: int | None  # 0 for the org itself, 1 for its parent, ...; None for the default


def resolve(flag: FlagDefinition, chain: Sequence[Link]) -> Resolution:
    """`chain` is the org itself first, then each ancestor up to the root."""
    for depth, link in enumerate(chain):
        if link.stored is not None:
            return Resolution(flag.from_graph(link.stored), "own" if depth == 0 else "inherited", link.org, depth)
    return Resolution(flag.default, "default", None, None)
