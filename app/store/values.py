"""Units of work on flag values: `(:Org)-[:SET {value}]->(:Flag)`."""

from __future__ import annotations

from typing import Any

from neo4j import AsyncManagedTransaction

from app.domain.resolution import Link, Sealed, unsealed
from app.store import audit as audit_store
from app.store.audit import Change
from app.store.database import execute, fetch


async def flag_chain(tx: AsyncManagedTransaction, org: str, flag: str) -> list[Link] | None:
    """The org and its ancestors, nearest first, each with its stored value of `flag`.

    None when the org does not exist.
    """
    return _links(await fetch(tx, "flag_chain", org=org, flag=flag))


def _links(records: list) -> list[Link] | None:
    return [Link(record["org"], Sealed(record["value"]) if record["sealed"] else record["value"])
            for record in records] or None


async def flags_chain(tx: AsyncManagedTransaction, org: str) -> list[tuple[str, dict[str, Any]]] | None:
    """The org and its ancestors, nearest first, each with every value stored on it."""
    records = await fetch(tx, "flags_chain", org=org)
    return [(record["org"], {name: Sealed(value) if sealed else value for name, value, sealed in record["values"]})
            for record in records] or None


async def begin_write(tx: AsyncManagedTransaction, org: str, flag: str) -> list[Link] | None:
    """Take the sequence lock and read the org's chain for `flag` under it, in one round trip.

    The first step of every value write; the chain is as `flag_chain` gives it.
    """
    return _links(await fetch(tx, "value_write_begin", org=org, flag=flag))


async def write(tx: AsyncManagedTransaction, change: Change, stored: Any, actor: str) -> int:
    """Set (`stored` not None; a `Sealed` one seals it) or clear the org's own value, and append the change's audit
    event; the event's seq. After `begin_write`, in the same transaction.

    Two statements, not one: a single statement that both MERGEs the SET relationship and
    updates the AuditSequence node deadlocked under concurrent writers (Neo4j 5.26:
    tests/test_values.py::test_concurrent_writes_are_all_kept got 503s), where these two never do.
    """
    if stored is None:
        await execute(tx, "value_clear", org=change.org, flag=change.flag)
    else:
        value, sealed = unsealed(stored)
        # null, not false, when unsealed: no property at all on the common, unsealed values.
        await execute(tx, "value_set", org=change.org, flag=change.flag, value=value, sealed=sealed or None,
                      actor=actor)
    return await audit_store.append(tx, actor, [change])


async def bulk_chains(tx: AsyncManagedTransaction, ids: list[str], flag: str) -> dict[str, list[Link]]:
    """For each existing org of `ids`: its chain with each member's stored value of `flag` (as `flag_chain`)."""
    records = await fetch(tx, "values_bulk_chains", ids=ids, flag=flag)
    return {org: [Link(member, Sealed(value) if sealed else value) for member, value, sealed in chain]
            for org, chain in records[0]["chains"]}


async def bulk_write(tx: AsyncManagedTransaction, flag: str, sets: list[dict[str, Any]], clears: list[str],
                     actor: str, batch: int) -> None:
    """Set (`sets`: [{org, value, sealed}]) and clear (`clears`: org ids) many orgs' own values of `flag`."""
    for start in range(0, len(sets), batch):
        await execute(tx, "values_bulk_set", flag=flag, rows=sets[start:start + batch], actor=actor)
    for start in range(0, len(clears), batch):
        await execute(tx, "values_bulk_clear", flag=flag, orgs=clears[start:start + batch])
