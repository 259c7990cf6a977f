"""How an org's effective value is chosen: the nearest setting wins, else the default.

A sealed value (docs/api.md, "Safe changes") wins over every value set below it: the seal
nearest the root decides for its whole subtree. A rollout (app/domain/rollouts.py) counts
only for the orgs whose unit is in it; for any other org it is as if nothing were set there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from app.domain import rollouts
from app.domain.catalog import FlagDefinition

Reason = Literal["own", "inherited", "default", "sealed", "split"]


class Sealed(NamedTuple):
    """A value as stored on an org that sealed it: stands in a chain link's `stored`.

    Wrapping the stored value (rather than a flag beside it) makes the seal travel with
    it through every layer that keeps stored values: the cache, regions, the chain reads.
    """

    stored: Any


def unsealed(stored: Any) -> tuple[Any, bool]:
    """(the stored value, whether it is sealed)."""
    if isinstance(stored, Sealed):
        return stored.stored, True
    return stored, False


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
    unit: str | None = None  # reason "split": the org's unit in the rollout, and its bucket
    bucket: float | None = None


def resolve(flag: FlagDefinition, chain: Sequence[Link]) -> Resolution:
    """`chain` is the org itself first, then each ancestor up to the root."""
    nearest = None
    unit = None
    for depth, link in enumerate(chain):
        stored = link.stored
        if stored is not None:
            if type(stored) is Sealed:
                # Keep going: a seal nearer the root would win over this one.
                return _sealed(flag, chain, depth)
            if nearest is None:
                if type(stored) is list:  # a rollout: counts only if this org's unit is in it
                    unit = rollout_unit(flag.name, chain, depth)
                    if unit is None:
                        continue
                nearest = depth
    if nearest is not None:
        link = chain[nearest]
        if unit is not None:
            return Resolution(
                rollouts.decode(link.stored).value, "split", link.org, nearest, unit, rollouts.bucket(flag.name, unit)
            )
        return Resolution(flag.from_graph(link.stored), "own" if nearest == 0 else "inherited", link.org, nearest)
    return Resolution(flag.default, "default", None, None)


def rollout_unit(flag_name: str, chain: Sequence[Link], setter: int) -> str | None:
    """The chain's first org's unit in the rollout set at `chain[setter]` if that unit is in
    the rollout; None if it is not, or the org is above the unit depth."""
    unit = rollout_reach(chain, setter)
    if unit is None or rollouts.bucket(flag_name, unit) >= rollouts.decode(chain[setter].stored).percent:
        return None
    return unit


def rollout_reach(chain: Sequence[Link], setter: int) -> str | None:
    """The chain's first org's unit for the rollout set at `chain[setter]`, in the rollout or
    not; None when the org is above the unit depth (the rollout never applies to it)."""
    index = rollouts.unit_of(len(chain), setter, rollouts.decode(chain[setter].stored).unit_depth)
    return None if index is None else chain[index].org


def _sealed(flag: FlagDefinition, chain: Sequence[Link], first: int) -> Resolution:
    rootmost = first
    for depth in range(first + 1, len(chain)):
        if type(chain[depth].stored) is Sealed:
            rootmost = depth
    link = chain[rootmost]
    return Resolution(flag.from_graph(link.stored.stored), "sealed", link.org, rootmost)


def sealing_org(chain: Sequence[Link]) -> str | None:
    """The org whose seal is in force over the chain's first org from above it (the nearest the root), if any."""
    found = None
    for link in chain[1:]:
        if type(link.stored) is Sealed:
            found = link.org
    return found


def active(chain: Sequence[Link]) -> list[bool]:
    """For each link: whether the value it sets is in force where it is set (no seal above it overrides it)."""
    flags = [False] * len(chain)
    for depth in range(len(chain) - 1, -1, -1):  # from the root down
        stored = chain[depth].stored
        if stored is not None:
            flags[depth] = True
            if type(stored) is Sealed:
                break  # everything below is overridden by this seal
    return flags


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same type: `1` is not `1.0` nor `True` for a flag."""
    return a == b and type(a) is type(b)
