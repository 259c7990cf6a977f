"""Units of work on scheduled changes: `(:Schedule {id, org, flag, value, at, status, ...})`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.store.database import execute, fetch
from neo4j import AsyncManagedTransaction


async def create(tx: AsyncManagedTransaction, **schedule: Any) -> None:
    await execute(tx, "schedule_create", **schedule)


async def pending(
    tx: AsyncManagedTransaction, org: str | None, subtree: bool, flag: str | None, scopes: list[str] | None, limit: int
) -> list[dict[str, Any]]:
    records = await fetch(tx, "schedules_list", org=org, subtree=subtree, flag=flag, scopes=scopes, limit=limit)
    return [dict(schedule) for schedule in records[0]["schedules"]]


async def get(tx: AsyncManagedTransaction, schedule: str) -> dict[str, Any] | None:
    records = await fetch(tx, "schedule_get", id=schedule)
    return _native(records[0]["schedule"]) if records else None


async def finish(
    tx: AsyncManagedTransaction,
    schedule: str,
    status: str,
    actor: str,
    reason: str | None = None,
    seq: int | None = None,
) -> None:
    await execute(tx, "schedule_finish", id=schedule, status=status, reason=reason, seq=seq, actor=actor)


async def due(tx: AsyncManagedTransaction, limit: int) -> list[dict[str, Any]]:
    records = await fetch(tx, "schedules_due", limit=limit)
    return [_native(schedule) for schedule in records[0]["due"]]


async def any_due(tx: AsyncManagedTransaction) -> bool:
    return bool(await fetch(tx, "schedules_any_due"))


async def pending_count(tx: AsyncManagedTransaction) -> int:
    records = await fetch(tx, "schedules_pending")
    return int(records[0]["pending"])


async def prune_batch(tx: AsyncManagedTransaction, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` finished schedules that finished before `cutoff` (timezone-aware); how many went."""
    records = await fetch(tx, "schedules_prune", cutoff=cutoff, batch=batch)
    return int(records[0]["deleted"]) if records else 0


def _native(stored: Any) -> dict[str, Any]:
    """A schedule read from the graph, its `at` a timezone-aware Python datetime."""
    schedule = dict(stored)
    schedule["at"] = schedule["at"].to_native()
    return schedule
