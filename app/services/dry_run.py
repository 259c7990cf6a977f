"""Dry runs (`?dry_run=true`): how far a change would reach, without making it.

A dry run goes through the very unit of work of the real change, so every check runs
with the same errors in the same order; just before the first write the unit of work
raises `Rehearsed`, which rolls its transaction back (nothing written, no audit event)
and carries what the count needs. The count itself runs afterwards in a read
transaction of its own, so a dry run at the top of a million orgs does not hold the
writers' lock while it counts.

What is counted: the orgs (the target and its descendants) whose effective value
would change. Below the target, an org that sets the flag itself keeps its own value,
and so does its whole subtree: the walk down stops there (cypher/dry_run_region.cypher).
The walk is done by the database; counting stops past `limit` with `exact: false`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.domain import rollouts
from app.domain.catalog import Catalog, FlagDefinition
from app.domain.resolution import Link, Sealed, resolve, same_value, unsealed
from app.store import dry_run as dry_run_store
from app.store.database import Database
from neo4j import AsyncManagedTransaction

SAMPLE = 20


@dataclass(frozen=True, slots=True)
class DryRun:
    """Asked for by the request: count up to `limit` orgs, in at most `timeout` seconds."""

    limit: int
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class Affected:
    orgs: int
    exact: bool
    sample: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {"dry_run": True, "affected": {"orgs": self.orgs, "exact": self.exact, "sample": self.sample}}


NOTHING = Affected(0, True, [])


class Rehearsed(Exception):
    """Raised by a unit of work in a dry run once every check has passed: rolls it back."""

    def __init__(self, **facts: Any) -> None:
        super().__init__("dry run: rolled back before writing")
        self.facts = facts


def _capped(orgs: int, sample: list[str], limit: int) -> Affected:
    if orgs > limit:
        return Affected(limit, False, sample[: min(SAMPLE, limit)])
    return Affected(orgs, True, sample[:SAMPLE])


async def value_change(
    db: Database, dry_run: DryRun, flag: FlagDefinition, chain: Sequence[Link], stored: Any
) -> Affected:
    """The orgs whose effective `flag` changes when chain[0] sets `stored` (None: clears).

    No seal above chain[0] (that write is refused before it gets here).
    """
    was, was_sealed = unsealed(chain[0].stored)
    will, will_seal = unsealed(stored)
    if (
        rollouts.is_stored(was)
        or rollouts.is_stored(will)
        or any(rollouts.is_stored(unsealed(link.stored)[0]) for link in chain[1:])
    ):
        # A rollout changes answers unit by unit, below the org as much as at it.
        return await db.read_within(dry_run.timeout, _org_by_org, flag, chain, stored, dry_run.limit)
    if was_sealed or will_seal:
        return await _seal_change(db, dry_run, flag, chain, stored)
    before = resolve(flag, chain)
    after = resolve(flag, [Link(chain[0].org, stored), *chain[1:]])
    if same_value(before.value, after.value):
        return NOTHING
    if await db.read_within(dry_run.timeout, dry_run_store.rollouts_below, flag.name, chain[0].org):
        # Orgs out of a rollout below take their value from above it: the pruned walk would miss them.
        return await db.read_within(dry_run.timeout, _org_by_org, flag, chain, stored, dry_run.limit)
    return await db.read_within(dry_run.timeout, _region, flag.name, chain[0].org, dry_run.limit)


async def _org_by_org(
    tx: AsyncManagedTransaction, flag: FlagDefinition, chain: Sequence[Link], stored: Any, limit: int
) -> Affected:
    """Exact for any mix of values, seals and rollouts, and slower: every org of the subtree
    of chain[0] is resolved before and after chain[0] sets `stored`, and counted if its
    answer differs. Used where a rollout is involved (correct first; the pruned walks are
    the fast paths of plain values)."""
    root = chain[0].org
    above = list(chain[1:])
    # Each org's chain up to and including the root, built from its parent's (parents come first).
    before: dict[str, list[Link]] = {}
    after: dict[str, list[Link]] = {}
    changed, sample = 0, []
    for org, parent, value, sealed in await dry_run_store.subtree_values(tx, flag.name, root):
        own = Sealed(value) if sealed and value is not None else value
        if parent is None or org == root:
            before[org] = [Link(org, chain[0].stored)]
            after[org] = [Link(org, stored)]
        else:
            before[org] = [Link(org, own), *before[parent]]
            after[org] = [Link(org, own), *after[parent]]
        if not same_value(resolve(flag, before[org] + above).value, resolve(flag, after[org] + above).value):
            changed += 1
            if len(sample) < SAMPLE:
                sample.append(org)
            if changed > limit:
                break
    return _capped(changed, sample, limit)


# Two ways to count one root's region (the same orgs; tests/test_dry_run.py runs both):
# - the pruned walk (dry_run_region): one walk down that stops below orgs setting the flag;
# - subtraction (dry_run_shielded): the whole subtree, minus the subtrees of the topmost
#   setters below the root, found by walking up from every org that sets the flag.
# Per org the plain walks are about twice as fast (10M-org forest, tenant of 1M: see
# bench/RESULTS.md), but subtraction pays a walk up from each setter of the flag anywhere,
# so it is taken only for subtrees past SMALL_SUBTREE orgs and flags set on at most
# FEW_SETTERS orgs; otherwise, and past the count limit, the pruned walk.
SMALL_SUBTREE = 50_000
FEW_SETTERS = 200_000


async def _region(tx: AsyncManagedTransaction, flag: str, root: str, limit: int) -> Affected:
    # The setters first: a degree, read in one step, where sizing the subtree walks up to
    # SMALL_SUBTREE orgs, which a popular flag (the pruned walk whatever the size) never needs.
    if (
        await dry_run_store.flag_setters(tx, flag) <= FEW_SETTERS
        and (await dry_run_store.subtrees(tx, [root], SMALL_SUBTREE + 1, 0))[0] > SMALL_SUBTREE
    ):
        total, shielded = await dry_run_store.shielded(tx, flag, root, limit + 1)
        if total <= limit:
            _, sample = await dry_run_store.regions(tx, flag, [root], 1, SAMPLE)
            return _capped(total - shielded, sample, limit)
    orgs, sample = await dry_run_store.regions(tx, flag, [root], limit + 1, SAMPLE)
    return _capped(orgs, sample, limit)


async def move(
    db: Database, dry_run: DryRun, catalog: Catalog, org: str, old_parent: str | None, new_parent: str | None
) -> Affected:
    """The orgs of `org`'s subtree whose effective value of any flag changes when it moves."""
    from app.store import values as values_store

    async def chains(tx: AsyncManagedTransaction):
        own = await values_store.flags_chain(tx, org)
        old = [] if old_parent is None else await values_store.flags_chain(tx, old_parent)
        new = [] if new_parent is None else await values_store.flags_chain(tx, new_parent)
        return own, old, new

    own, old, new = await db.read_within(dry_run.timeout, chains)
    own_values = own[0][1] if own else {}
    changed, sealed = [], False
    for flag in catalog:
        links_before = [Link(member, values.get(flag.name)) for member, values in old or []]
        links_after = [Link(member, values.get(flag.name)) for member, values in new or []]
        if any(rollouts.is_stored(link.stored) for link in links_before + links_after):
            # A rollout above decides unit by unit, and units change with depth: like a seal,
            # answered with the whole subtree as an upper bound.
            sealed = True
            continue
        above_before = resolve(flag, links_before)
        above_after = resolve(flag, links_after)
        if same_value(above_before.value, above_after.value):
            continue
        if "sealed" in (above_before.reason, above_after.reason):
            sealed = True  # a seal above reaches through every value set below it
        elif flag.name not in own_values:  # else the org sets it itself: its subtree keeps what it had
            changed.append(flag.name)
    if sealed:
        # Which orgs below differ from a seal depends on every value set in the subtree: the
        # whole subtree is an upper bound, and said to be one.
        orgs, sample = await db.read_within(dry_run.timeout, dry_run_store.subtrees, [org], dry_run.limit + 1, SAMPLE)
        return Affected(min(orgs, dry_run.limit), False, sample[: min(SAMPLE, dry_run.limit)])
    if not changed:
        return NOTHING
    orgs, sample = await db.read_within(dry_run.timeout, _move_regions, org, changed, dry_run.limit + 1)
    return _capped(orgs, sample, dry_run.limit)


async def _move_regions(tx: AsyncManagedTransaction, org: str, flags: list[str], cap: int) -> tuple[int, list[str]]:
    return await dry_run_store.move_regions(tx, org, flags, cap, SAMPLE)


async def _seal_change(
    db: Database, dry_run: DryRun, flag: FlagDefinition, chain: Sequence[Link], stored: Any
) -> Affected:
    """A change that seals, unseals or re-seals chain[0]'s value.

    On the sealed side every org of the subtree has the sealed value (`uniform`). On the
    other side values are as usual: chain[0]'s region takes chain[0]'s effective value,
    and each org below that sets the flag starts a region of its own (a sealed one: its
    whole subtree), found level by level. An org changes where the two sides differ.
    """
    org, limit = chain[0].org, dry_run.limit
    was, was_sealed = unsealed(chain[0].stored)
    will, will_seal = unsealed(stored)
    if was_sealed and will_seal:
        if same_value(flag.from_graph(was), flag.from_graph(will)):
            return NOTHING
        orgs, sample = await db.read_within(dry_run.timeout, dry_run_store.subtrees, [org], limit + 1, SAMPLE)
        return _capped(orgs, sample, limit)
    uniform = flag.from_graph(was if was_sealed else will)
    unsealed_side = [Link(org, stored if was_sealed else chain[0].stored), *chain[1:]]
    frontier = [(org, resolve(flag, unsealed_side).value)]
    total, sample = 0, []
    while frontier and total <= limit:
        differing = [root for root, value in frontier if not same_value(value, uniform)]
        if differing:
            orgs, some = await db.read_within(
                dry_run.timeout, dry_run_store.regions, flag.name, differing, limit + 1 - total, SAMPLE
            )
            total, sample = total + orgs, sample + some
        setters = await db.read_within(
            dry_run.timeout, dry_run_store.frontier, flag.name, [root for root, _ in frontier]
        )
        frontier, sealed_roots = [], []
        for setter, value, sealed in setters:
            if not sealed:
                frontier.append((setter, flag.from_graph(value)))
            elif not same_value(flag.from_graph(value), uniform):
                sealed_roots.append(setter)  # a seal below decides for its whole subtree
        if sealed_roots and total <= limit:
            orgs, some = await db.read_within(
                dry_run.timeout, dry_run_store.subtrees, sealed_roots, limit + 1 - total, SAMPLE
            )
            total, sample = total + orgs, sample + some
    return _capped(total, sample, limit)
