"""Units of work for audit retention: pruning old events and the watermark they leave.

`AuditSequence.pruned` is the highest seq ever deleted: every event above it is still
stored, so a change-feed client positioned at or above it misses nothing.
"""

from __future__ import annotations

from datetime import datetime

from app.store.database import fetch
from neo4j import AsyncManagedTransaction


async def prune_batch(tx: AsyncManagedTransaction, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` events older than `cutoff` (timezone-aware); how many went."""
    records = await fetch(tx, "audit_prune", cutoff=cutoff, batch=batch)
    return records[0]["deleted"] if records else 0


async def pruned_through(tx: AsyncManagedTransaction) -> int:
    records = await fetch(tx, "audit_pruned")
    return records[0]["pruned"] if records else 0
