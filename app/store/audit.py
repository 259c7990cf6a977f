"""Units of work on the audit log: append-only `(:AuditEvent {seq, ...})` nodes.

Every change appends its events in the same transaction as the change itself, after
taking the sequence lock with `claim_sequence`.
`Change` (app/domain/audit_events.py) is imported here too, for the services that append.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

import orjson

from app.domain.audit_events import EVENT_FIELDS, JSON_TEXT_FIELDS, OCCASIONAL_FIELDS, Change
from app.observability import events as events_log
from app.store.database import after_commit, execute, fetch
from neo4j import AsyncManagedTransaction


async def claim_sequence(tx: AsyncManagedTransaction) -> None:
    """Serialise writers; see cypher/audit_claim_sequence.cypher for why."""
    await execute(tx, "audit_claim_sequence")


async def append(tx: AsyncManagedTransaction, actor: str, changes: Sequence[Change], batch: int = 10_000) -> int | None:
    """Write the events; the seq of the first (the others follow it), None for no changes.

    Each change is logged and counted once the transaction commits (never from inside it:
    a retried or failed attempt would log changes that did not happen).
    """
    first: int | None = None
    for start in range(0, len(changes), batch):
        events = [change.params() for change in changes[start : start + batch]]
        records = await fetch(tx, "audit_append", actor=actor, events=events)
        if first is None and records:
            first = records[0]["first"]
    if changes:
        after_commit(partial(events_log.changes_committed, actor, list(changes), first))
    return first


async def append_each(tx: AsyncManagedTransaction, changes: Sequence[tuple[str, Change]]) -> int | None:
    """`append` for events of different actors (a group commit of several callers' writes):
    `(actor, change)` pairs, in seq order; the seq of the first, None for no changes."""
    if not changes:
        return None
    events = [{**change.params(), "actor": actor} for actor, change in changes]
    records = await fetch(tx, "audit_append", actor=None, events=events)
    first = int(records[0]["first"])
    after_commit(partial(_each_committed, list(changes), first))
    return first


async def append_copied(tx: AsyncManagedTransaction, events: Sequence[dict[str, Any]]) -> None:
    """Write events copied from elsewhere (a region applying its upstream's): each carries its
    own actor, `at` and `upstream_seq`, old/new already JSON text. Not logged as changes made here."""
    if events:
        await execute(tx, "audit_append", actor=None, events=list(events))


def _each_committed(changes: list[tuple[str, Change]], first: int) -> None:
    for offset, (actor, change) in enumerate(changes):
        events_log.changes_committed(actor, [change], first + offset)


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

    def statement(self) -> str:
        """The statement that seeks an index for one equality filter, or walks the seq index."""
        if self.actor is not None:
            return "audit_list_by_actor"
        if self.org is not None and not self.subtree:
            return "audit_list_by_org"
        if self.flag is not None:
            return "audit_list_by_flag"
        return "audit_list"

    def bounded(self) -> bool:
        """Whether a filter remains that no index serves: then a request scans a window only."""
        equalities = sum(x is not None for x in (self.actor, self.flag, None if self.subtree else self.org))
        return (
            self.scopes is not None
            or self.since is not None
            or (self.org is not None and self.subtree)
            or equalities > 1
        )


# Events one audit request may pass over when a filter is left that no index serves
# (subtree, scope, since, a second equality); the page then ends early with a cursor.
SCAN_WINDOW = 10_000
# How much earlier than its seq's neighbours an event's `at` may be: a transaction's time
# is taken when it starts, before it waits for the sequence lock (at most the query timeout).
_AT_SKEW_SECONDS = 60


async def events(
    tx: AsyncManagedTransaction, query: AuditQuery, scan: int = SCAN_WINDOW
) -> tuple[list[dict[str, Any]], int | None]:
    """A page, newest first, and the seq to continue below (None: nothing older matches).

    A filter an index serves reads only matching events. Any other filter reads a window
    of at most `scan` events below `before`; a page may then hold fewer than `limit`
    events, even none, and still have a cursor.
    """
    before, floor = query.before, 0
    if query.bounded():
        before = min(before, await last_seq(tx) + 1)
        floor = max(before - scan, 0)
    records = await fetch(tx, query.statement(), **{**asdict(query), "before": before, "floor": floor})
    found = [public_event(record) for record in records]
    if len(found) == query.limit:
        return found, found[-1]["seq"]
    if floor == 0:
        return found, None
    # Seqs are dense above the retention watermark: below it nothing is left to scan.
    pruned = (await fetch(tx, "audit_pruned"))[0]["pruned"]
    if floor <= pruned + 1:
        return found, None
    if query.since is not None:
        older = await fetch(tx, "audit_older_than", seq=floor, since=query.since, margin=_AT_SKEW_SECONDS)
        if older and older[0]["older"]:
            return found, None
    return found, floor


async def events_after(
    tx: AsyncManagedTransaction, after: int, limit: int, scopes: list[str] | None = None, ceiling: int = 2**63 - 1
) -> list[dict[str, Any]]:
    """The change feed: events with seq in (after, ceiling], oldest first."""
    records = await fetch(tx, "audit_after", after=after, ceiling=ceiling, limit=limit, scopes=scopes)
    return [public_event(event) for event in records[0]["events"]]


class FeedRead(NamedTuple):
    """One read of the change feed for the cache follower (`invalidations`)."""

    last: int  # the newest seq it is safe to resume from
    changes: list[list[Any]]  # [seq, action, org, flag] of each change that invalidates cache entries
    missed: bool  # retention deleted events above the position read from: what they changed is unknown


async def invalidations(tx: AsyncManagedTransaction, after: int) -> FeedRead:
    """For the cache follower: what changed after `after`.

    `last` is the sequence's newest seq when every event up to it was visible to this read (or
    deleted by retention); else `after` again, so the events of a commit this read caught
    half-applied are read on the next round.
    """
    records = await fetch(tx, "cache_invalidations", after=after)
    record = records[0]
    complete = record["visible"] >= record["last"] - record["from"]
    return FeedRead(record["last"] if complete else after, record["changes"], record["missed"])


async def last_seq(tx: AsyncManagedTransaction) -> int:
    records = await fetch(tx, "audit_last_seq")
    return records[0]["last"] if records else 0


def public_event(stored: Any) -> dict[str, Any]:
    """An event as the API shows it (old/new decoded, time in RFC 3339; `sealed` and `schedule`
    only where they apply)."""
    event = {"seq": stored["seq"], "at": _rfc3339(stored["at"]), "actor": stored["actor"]}
    for name in EVENT_FIELDS:
        value = stored.get(name)
        if value is None and name in OCCASIONAL_FIELDS:
            continue
        event[name] = orjson.loads(value) if name in JSON_TEXT_FIELDS and value is not None else value
    return event


def _rfc3339(value: Any) -> str:
    moment: datetime = value.to_native()
    return moment.isoformat().replace("+00:00", "Z")
