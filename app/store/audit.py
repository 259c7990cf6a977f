"""Units of work on the audit log: append-only `(:AuditEvent {seq, ...})` nodes.

Every change appends its events in the same transaction as the change itself, after
taking the sequence lock with `claim_sequence`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from neo4j import AsyncManagedTransaction

from app.store.database import execute, fetch


@dataclass(frozen=True, slots=True)
class Change:
    """One audit event about to be written."""

    action: str  # flag.set, flag.clear, org.create, org.move
    org: str
    path: Sequence[str]  # the org and its ancestors at the time of the change
    old: Any = None
    new: Any = None
    flag: str | None = None

    def params(self) -> dict[str, Any]:
        # old/new may be any JSON value (objects included): stored as JSON text.
        return {
            "action": self.action,
            "org": self.org,
            "flag": self.flag,
            "old": _json(self.old),
            "new": _json(self.new),
            "path": list(self.path),
        }


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


async def claim_sequence(tx: AsyncManagedTransaction) -> None:
    """Serialise writers; see cypher/audit_claim_sequence.cypher for why."""
    await execute(tx, "audit_claim_sequence")


async def append(tx: AsyncManagedTransaction, actor: str, changes: Sequence[Change], batch: int = 10_000) -> None:
    for start in range(0, len(changes), batch):
        events = [change.params() for change in changes[start:start + batch]]
        await execute(tx, "audit_append", actor=actor, events=events)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    before: int
    limit: int
    org: str | None = None
    subtree: bool = False
    flag: str | None = None
    actor: str | None = None
    since: str | None = None
    scopes: list[str] | None = None


async def events(tx: AsyncManagedTransaction, query: AuditQuery) -> list[dict[str, Any]]:
    records = await fetch(
        tx, "audit_list", before=query.before, limit=query.limit, org=query.org, subtree=query.subtree,
        flag=query.flag, actor=query.actor, since=query.since, scopes=query.scopes,
    )
    return [
        {
            "seq": record["seq"],
            "at": _rfc3339(record["at"]),
            "actor": record["actor"],
            "action": record["action"],
            "org": record["org"],
            "flag": record["flag"],
            "old": None if record["old"] is None else orjson.loads(record["old"]),
            "new": None if record["new"] is None else orjson.loads(record["new"]),
        }
        for record in records
    ]


def _rfc3339(value: Any) -> str:
    moment: datetime = value.to_native()
    return moment.isoformat().replace("+00:00", "Z")
