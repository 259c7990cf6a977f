"""Units of work on the audit log: append-only `(:AuditEvent {seq, ...})` nodes.

Every change appends its events in the same transaction as the change itself, after
taking the sequence lock with `claim_sequence`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import orjson
from neo4j import AsyncManagedTransaction

from app.observability import events as events_log
from app.store.database import after_commit, execute, fetch


@dataclass(frozen=True, slots=True)
class Change:
    """One audit event about to be written."""

    action: str  # flag.set, flag.clear, org.create, org.move
    org: str
    path: Sequence[str]  # the org and its ancestors at the time of the change
    old: Any = None
    new: Any = None
    flag: str | None = None
    # Set on value events that involve a seal: True (the value is sealed), False (it was unsealed).
    sealed: bool | None = None
    # Set on changes a schedule applied: its id.
    schedule: str | None = None

    def params(self) -> dict[str, Any]:
        # old/new may be any JSON value (objects included): stored as JSON text.
        return {
            "action": self.action,
            "org": self.org,
            "flag": self.flag,
            "old": _json(self.old),
            "new": _json(self.new),
            "path": list(self.path),
            "sealed": self.sealed,
            "schedule": self.schedule,
        }


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


async def claim_sequence(tx: AsyncManagedTransaction) -> None:
    """Serialise writers; see cypher/audit_claim_sequence.cypher for why."""
    await execute(tx, "audit_claim_sequence")


async def append(tx: AsyncManagedTransaction, actor: str, changes: Sequence[Change], batch: int = 10_000
                 ) -> int | None:
    """Write the events; the seq of the first (the others follow it), None for no changes.

    Each change is logged and counted once the transaction commits (never from inside it:
    a retried or failed attempt would log changes that did not happen).
    """
    first: int | None = None
    for start in range(0, len(changes), batch):
        events = [change.params() for change in changes[start:start + batch]]
        records = await fetch(tx, "audit_append", actor=actor, events=events)
        if first is None and records:
            first = records[0]["first"]
    if changes:
        after_commit(partial(events_log.changes_committed, actor, list(changes), first))
    return first


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
    return [public_event(record) for record in records]


async def events_after(tx: AsyncManagedTransaction, after: int, limit: int, scopes: list[str] | None = None
                       ) -> list[dict[str, Any]]:
    """The change feed: events with seq above `after`, oldest first."""
    records = await fetch(tx, "audit_after", after=after, limit=limit, scopes=scopes)
    return [public_event(event) for event in records[0]["events"]]


async def last_seq(tx: AsyncManagedTransaction) -> int:
    records = await fetch(tx, "audit_last_seq")
    return records[0]["last"] if records else 0


def public_event(stored: Any) -> dict[str, Any]:
    """An event as the API shows it (old/new decoded, time in RFC 3339; `sealed` only where it applies)."""
    event = {
        "seq": stored["seq"],
        "at": _rfc3339(stored["at"]),
        "actor": stored["actor"],
        "action": stored["action"],
        "org": stored["org"],
        "flag": stored["flag"],
        "old": None if stored["old"] is None else orjson.loads(stored["old"]),
        "new": None if stored["new"] is None else orjson.loads(stored["new"]),
    }
    sealed = stored.get("sealed")
    if sealed is not None:
        event["sealed"] = sealed
    schedule = stored.get("schedule")
    if schedule is not None:
        event["schedule"] = schedule
    return event


def _rfc3339(value: Any) -> str:
    moment: datetime = value.to_native()
    return moment.isoformat().replace("+00:00", "Z")
