"""Units of work on flag values: `(:Org)-[:SET {value}]->(:Flag)`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from neo4j import AsyncManagedTransaction

from app.domain.resolution import Link
from app.store import audit as audit_store
from app.store.audit import Change
from app.store.database import execute, fetch


def _links(records: list) -> list[Link] | None:
    return [Link(record["org"], record["value"]) for record in records] or None


# A lookup read in a batch: (org, flag), flag None for every flag. Its answer: the org and its
# ancestors, nearest first, each as [id, [[flag, stored value], ...]] for what it sets (that flag
# only, or all), as the driver decoded it: converting here cost a tenth of a cold lookup's CPU.
ChainLookup = tuple[str, str | None]
Chain = list[list[Any]]


async def lookup_chains(tx: AsyncManagedTransaction, lookups: list[ChainLookup]) -> dict[ChainLookup, Chain]:
    """Many lookups' chains in one statement; an org that does not exist has no entry."""
    records = await fetch(tx, "lookup_chains", lookups=lookups)
    return {(record[0], record[1]): record[2] for record in records}


async def begin_writes(tx: AsyncManagedTransaction, targets: Sequence[tuple[str, str]]
                       ) -> list[list[Link] | None]:
    """Take the sequence lock and read each (org, flag)'s chain under it, in one round trip.

    The first step of every batch of value writes; each chain is as `flag_chain` gives it
    (None: no such org), in the order of `targets`.
    """
    records = await fetch(tx, "value_write_begin", rows=[{"org": org, "flag": flag} for org, flag in targets])
    chains: list[list[Link] | None] = [None] * len(targets)
    for record in records:
        chains[record["i"]] = [Link(org, stored) for org, stored in record["chain"]] or None
    return chains


@dataclass(frozen=True, slots=True)
class StoredValue:
    """What a batch leaves on one (org, flag): `stored` None clears it."""

    org: str
    flag: str
    stored: Any
    actor: str


async def write(tx: AsyncManagedTransaction, values: Sequence[StoredValue], changes: Sequence[tuple[str, Change]]
                ) -> int | None:
    """Leave each (org, flag) of `values` as it says, and append the `(actor, change)` audit
    events in order; the first event's seq (the others follow it). After `begin_writes`,
    in the same transaction.

    Values and events in separate statements: a single statement that both MERGEs the SET
    relationship and updates the AuditSequence node deadlocked under concurrent writers
    (Neo4j 5.26: tests/test_values.py::test_concurrent_writes_are_all_kept got 503s), where these never do.
    """
    sets = [{"org": v.org, "flag": v.flag, "value": v.stored, "actor": v.actor} for v in values if v.stored is not None]
    clears = [{"org": v.org, "flag": v.flag} for v in values if v.stored is None]
    if sets:
        await execute(tx, "value_set", rows=sets)
    if clears:
        await execute(tx, "value_clear", rows=clears)
    return await audit_store.append_each(tx, changes)
