"""Units of work of the online export (loaders/export.py): the Flag nodes and the audit log as stored.

The org pages come from `app.store.orgs.page`, which the snapshot reads too.
"""

from __future__ import annotations

from typing import Any

from app.store.database import fetch
from neo4j import AsyncManagedTransaction


async def flags(tx: AsyncManagedTransaction) -> list[list[Any]]:
    """Every Flag node, retired ones too: [name, type, default, set, description, definition, active]."""
    found: list[list[Any]] = (await fetch(tx, "export_flags"))[0]["flags"]
    return found


async def audit_page(tx: AsyncManagedTransaction, after: int, upto: int, limit: int) -> list[list[Any]]:
    """Up to `limit` events with seq in (after, upto], in seq order, with their fields as stored."""
    found: list[list[Any]] = (await fetch(tx, "export_audit", after=after, upto=upto, limit=limit))[0]["events"]
    return found


async def sequence(tx: AsyncManagedTransaction) -> tuple[int, int]:
    """The audit sequence: the newest seq, and the seq below which events were pruned."""
    records = await fetch(tx, "export_audit_sequence")
    return (int(records[0]["last"]), int(records[0]["pruned"])) if records else (0, 0)
