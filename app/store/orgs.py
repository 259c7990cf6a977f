"""Units of work on the org hierarchy: `(:Org {id})-[:PARENT_OF]->(:Org)`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.store.database import execute, fetch
from neo4j import AsyncManagedTransaction


async def chains(tx: AsyncManagedTransaction, ids: Sequence[str]) -> dict[str, list[str]]:
    """For each existing org of `ids`: its own id, then its ancestors' up to the root."""
    records = await fetch(tx, "org_chains", ids=list(ids))
    return {org: chain for org, chain in records[0]["chains"]}


async def chain(tx: AsyncManagedTransaction, org: str) -> list[str] | None:
    return (await chains(tx, [org])).get(org)


async def children_count(tx: AsyncManagedTransaction, org: str) -> int:
    records = await fetch(tx, "org_children_count", org=org)
    return records[0]["children"] if records else 0


async def subtree_reaches(tx: AsyncManagedTransaction, org: str, levels: int) -> bool:
    """Whether `org` has a descendant `levels` (at least 1) below it."""
    return bool(await fetch(tx, "org_subtree_reaches", org=org, levels=levels))


async def parents(tx: AsyncManagedTransaction, ids: Sequence[str]) -> dict[str, str | None]:
    """For each existing org of `ids`, its parent's id (None for a root)."""
    records = await fetch(tx, "orgs_parents", ids=list(ids))
    return {org: parent for org, parent in records[0]["pairs"]}


async def create(tx: AsyncManagedTransaction, rows: Sequence[tuple[str, str | None]], batch: int) -> None:
    """Create orgs `(id, parent)`; parents are existing orgs or among `rows`, in any order."""
    for start in range(0, len(rows), batch):
        await execute(tx, "orgs_create", ids=[org for org, _ in rows[start : start + batch]])
    # Edges only once every node of the request exists: rows may list children first.
    links = [{"id": org, "parent": parent} for org, parent in rows if parent is not None]
    for start in range(0, len(links), batch):
        await execute(tx, "orgs_link", rows=links[start : start + batch])


async def move(tx: AsyncManagedTransaction, org: str, parent: str | None) -> None:
    await execute(tx, "org_detach", org=org)
    if parent is not None:
        await execute(tx, "orgs_link", rows=[{"id": org, "parent": parent}])


async def page(tx: AsyncManagedTransaction, after: str, limit: int) -> list[list[Any]]:
    """Up to `limit` orgs with id above `after`, in id order: [id, parent, values], each value
    [flag, stored value, flag type, updated_at as RFC 3339, updated_by, sealed or None]."""
    rows: list[list[Any]] = (await fetch(tx, "orgs_page", after=after, limit=limit))[0]["rows"]
    return rows


async def children_page(tx: AsyncManagedTransaction, org: str, after: str, limit: int) -> list[tuple[str, int]]:
    """Up to `limit` children of `org` with ids after `after`, in id order, with their child counts."""
    records = await fetch(tx, "org_children_page", org=org, after=after, limit=limit)
    return [(record["id"], record["children"]) for record in records]


async def ids_in_range(
    tx: AsyncManagedTransaction, start: str, stop: str, scan: int, roots: Sequence[str] | None
) -> tuple[list[str], str | None, int]:
    """Scan up to `scan` org ids in [start, stop) in id order; answer those inside `roots`' subtrees
    (all of them for None), the last id scanned, and how many were scanned."""
    records = await fetch(
        tx, "orgs_by_prefix", low=start, high=stop, scan=scan, roots=None if roots is None else list(roots)
    )
    record = records[0]
    return list(record["ids"]), record["last"], record["scanned"]
