"""Units of work on flag values: `(:Org)-[:SET {value}]->(:Flag)`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.domain.audit_events import Change
from app.domain.resolution import Link, Sealed, unsealed
from app.store import audit as audit_store
from app.store.database import execute, fetch
from neo4j import AsyncManagedTransaction, Record


def _links(records: list[Record]) -> list[Link] | None:
    return [
        Link(record["org"], Sealed(record["value"]) if record["sealed"] else record["value"]) for record in records
    ] or None


# A lookup read in a batch: (org, flag), flag None for every flag. Its answer: the org and its
# ancestors, nearest first, each as [id, [[flag, stored value], ...], [sealed flag, ...]] for what
# it sets (that flag only, or all) and which of those it sets sealed, as the driver decoded it:
# converting here cost a tenth of a cold lookup's CPU (app/services/values.py wraps sealed ones).
ChainLookup = tuple[str, str | None]
Chain = list[list[Any]]


async def flags_chain(tx: AsyncManagedTransaction, org: str) -> list[tuple[str, dict[str, Any]]] | None:
    """The org and its ancestors, nearest first, each with every value stored on it."""
    records = await fetch(tx, "flags_chain", org=org)
    return [
        (record["org"], {name: Sealed(value) if sealed else value for name, value, sealed in record["values"]})
        for record in records
    ] or None


async def lookup_chains(tx: AsyncManagedTransaction, lookups: list[ChainLookup]) -> dict[ChainLookup, Chain]:
    """Many lookups' chains in one statement; an org that does not exist has no entry."""
    records = await fetch(tx, "lookup_chains", lookups=lookups)
    return {(record[0], record[1]): record[2] for record in records}


async def begin_writes(tx: AsyncManagedTransaction, targets: Sequence[tuple[str, str]]) -> list[list[Link] | None]:
    """Take the sequence lock and read each (org, flag)'s chain under it, in one round trip.

    The first step of every batch of value writes; each chain is as `flag_chain` gives it
    (None: no such org), in the order of `targets`.
    """
    records = await fetch(tx, "value_write_begin", rows=[{"org": org, "flag": flag} for org, flag in targets])
    chains: list[list[Link] | None] = [None] * len(targets)
    for record in records:
        chains[record["i"]] = [
            Link(org, Sealed(stored) if sealed else stored) for org, stored, sealed in record["chain"]
        ] or None
    return chains


@dataclass(frozen=True, slots=True)
class StoredValue:
    """What a batch leaves on one (org, flag): `stored` None clears it."""

    org: str
    flag: str
    stored: Any
    actor: str


async def write(
    tx: AsyncManagedTransaction, values: Sequence[StoredValue], changes: Sequence[tuple[str, Change]]
) -> int | None:
    """Leave each (org, flag) of `values` as it says, and append the `(actor, change)` audit
    events in order; the first event's seq (the others follow it). After `begin_writes`,
    in the same transaction.

    Values and events in separate statements: a single statement that both MERGEs the SET
    relationship and updates the AuditSequence node deadlocked under concurrent writers
    (Neo4j 5.26: tests/test_values.py::test_concurrent_writes_are_all_kept got 503s), where these never do.
    """
    sets = []
    clears = []
    for v in values:
        if v.stored is None:
            clears.append({"org": v.org, "flag": v.flag})
        else:
            value, sealed = unsealed(v.stored)
            # null, not false, when unsealed: no property at all on the common, unsealed values.
            sets.append({"org": v.org, "flag": v.flag, "value": value, "sealed": sealed or None, "actor": v.actor})
    if sets:
        await execute(tx, "value_set", rows=sets)
    if clears:
        await execute(tx, "value_clear", rows=clears)
    return await audit_store.append_each(tx, changes)


async def bulk_chains(tx: AsyncManagedTransaction, ids: list[str], flag: str) -> dict[str, list[Link]]:
    """For each existing org of `ids`: its chain with each member's stored value of `flag` (as `flag_chain`)."""
    records = await fetch(tx, "values_bulk_chains", ids=ids, flag=flag)
    return {
        org: [Link(member, Sealed(value) if sealed else value) for member, value, sealed in chain]
        for org, chain in records[0]["chains"]
    }


async def bulk_write(
    tx: AsyncManagedTransaction, flag: str, sets: list[dict[str, Any]], clears: list[str], actor: str, batch: int
) -> None:
    """Set (`sets`: [{org, value, sealed}]) and clear (`clears`: org ids) many orgs' own values of `flag`."""
    for start in range(0, len(sets), batch):
        await execute(tx, "values_bulk_set", flag=flag, rows=sets[start : start + batch], actor=actor)
    for start in range(0, len(clears), batch):
        await execute(tx, "values_bulk_clear", flag=flag, orgs=clears[start : start + batch])
