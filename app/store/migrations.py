"""Schema migrations: `cypher/migrations/NNNN_name.cypher`, each run once, in order.

A migration file may hold several statements separated by `;`. Each statement is
idempotent (IF NOT EXISTS, MERGE), so a run cut short is simply run again; the
`(:Migration {name})` node records a file only after all of it succeeded.
"""

from __future__ import annotations

import re

from loguru import logger

from app.store.cypher import migration_files
from app.store.database import Database, execute, fetch
from neo4j import AsyncManagedTransaction

_COMMENT = re.compile(r"^\s*//.*$", re.MULTILINE)


def statements_of(text: str) -> list[str]:
    return [part.strip() for part in _COMMENT.sub("", text).split(";") if part.strip()]


async def _applied(tx: AsyncManagedTransaction) -> set[str]:
    return {record["name"] for record in await fetch(tx, "migration_applied")}


async def _record(tx: AsyncManagedTransaction, name: str) -> None:
    await execute(tx, "migration_record", name=name)


async def apply_migrations(db: Database) -> list[str]:
    """Run the migrations not yet recorded; return their names."""
    # From the leader: a secondary that lags could list too few and have a migration run twice.
    done = await db.read_unqueued(_applied)
    ran = []
    for path in migration_files():
        if path.stem in done:
            continue
        for statement in statements_of(path.read_text()):
            await db.run_schema(statement)
        await db.write(_record, path.stem)
        logger.info("applied migration {}", path.stem)
        ran.append(path.stem)
    return ran
