"""Units of work on flag values: `(:Org)-[:SET {value}]->(:Flag)`."""

from __future__ import annotations

from typing import Any

from neo4j import AsyncManagedTransaction

from app.domain.resolution import Link
from app.store.database import execute, fetch


async def flag_chain(tx: AsyncManagedTransaction, org: str, flag: str) -> list[Link] | None:
    """The org and its ancestors, nearest first, each with its stored value of `flag`.

    None when the org does not exist.
    """
    records = await fetch(tx, "flag_chain", org=org, flag=flag)
    return [Link(record["org"], record["value"]) for record in records] or None


async def flags_chain(tx: AsyncManagedTransaction, org: str) -> list[tuple[str, dict[str, Any]]] | None:
    """The org and its ancestors, nearest first, each with every value stored on it."""
    records = await fetch(tx, "flags_chain", org=org)
    return [(record["org"], dict(record["values"])) for record in records] or None


async def set_value(tx: AsyncManagedTransaction, org: str, flag: str, stored: Any, actor: str) -> None:
    await execute(tx, "value_set", org=org, flag=flag, value=stored, actor=actor)


async def clear_value(tx: AsyncManagedTransaction, org: str, flag: str) -> None:
    await execute(tx, "value_clear", org=org, flag=flag)
