"""Units of work that mirror the catalog into `(:Flag)` nodes and read values back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.domain.catalog import FlagDefinition
from app.store.database import execute, fetch
from neo4j import AsyncManagedTransaction


async def stored_definitions(tx: AsyncManagedTransaction) -> dict[str, tuple[str | None, bool]]:
    """name -> (definition JSON as last synced, active)."""
    records = await fetch(tx, "flags_stored")
    return {name: (definition, bool(active)) for name, definition, active in records[0]["flags"]}


async def stored_values(tx: AsyncManagedTransaction, names: Sequence[str]) -> dict[str, list[Any]]:
    """The distinct stored values of each flag of `names` that has any."""
    return {r["name"]: r["values"] for r in await fetch(tx, "flags_stored_values", names=list(names))}


def differences(
    flags: Sequence[FlagDefinition], stored: dict[str, tuple[str | None, bool]]
) -> tuple[list[FlagDefinition], list[str]]:
    """What a sync must write: (new or changed flags, names to mark inactive)."""
    changed = [f for f in flags if stored.get(f.name) != (f.stored_definition(), True)]
    current = {f.name for f in flags}
    retired = [name for name, (_, active) in stored.items() if active and name not in current]
    return changed, retired


async def sync(
    tx: AsyncManagedTransaction, changed: Sequence[FlagDefinition], retired: Sequence[str], batch: int = 10_000
) -> None:
    rows = [
        {
            "name": f.name,
            "type": f.type,
            "default": f.to_graph(f.default),
            "set": f.set,
            "description": f.description,
            "definition": f.stored_definition(),
        }
        for f in changed
    ]
    for start in range(0, len(rows), batch):
        await execute(tx, "flags_sync", flags=rows[start : start + batch])
    for start in range(0, len(retired), batch):
        await execute(tx, "flags_deactivate", names=list(retired[start : start + batch]))
