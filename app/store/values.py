"""Units of work on flag values: `(:Org)-[:SET {value}]->(:Flag)`."""

from __future__ import annotations

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


async def begin_write(tx: AsyncManagedTransaction, org: str, flag: str) -> list[Link] | None:
    """Take the sequence lock and read the org's chain for `flag` under it, in one round trip.

    The first step of every value write; the chain is as `flag_chain` gives it.
    """
    return _links(await fetch(tx, "value_write_begin", org=org, flag=flag))


async def write(tx: AsyncManagedTransaction, change: Change, stored: Any, actor: str) -> int:
    """Set (`stored` not None) or clear the org's own value, and append the change's audit
    event; the event's seq. After `begin_write`, in the same transaction.

    Two statements, not one: a single statement that both MERGEs the SET relationship and
    updates the AuditSequence node deadlocked under concurrent writers (Neo4j 5.26:
    tests/test_values.py::test_concurrent_writes_are_all_kept got 503s), where these two never do.
    """
    if stored is None:
        await execute(tx, "value_clear", org=change.org, flag=change.flag)
    else:
        await execute(tx, "value_set", org=change.org, flag=change.flag, value=stored, actor=actor)
    return await audit_store.append(tx, actor, [change])
