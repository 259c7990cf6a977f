"""The change feed (`GET /v1/changes`) and the retention that bounds it.

A page is read in one transaction: the newest seq first, then the events above the
client's position, then the retention watermark. Reading the watermark last means a
prune that commits during the read is noticed (410) rather than silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from loguru import logger

from app.domain.access import Principal
from app.errors import Problem, ProblemType
from app.periodic import Periodic
from app.store import audit as audit_store
from app.store import retention as retention_store
from app.store.database import Database
from neo4j import AsyncManagedTransaction

DEFAULT_LIMIT = 1000
MAX_LIMIT = 1000
PRUNE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class ChangePage:
    events: list[dict[str, Any]]
    last: int  # where to continue: the next page is `after=last`
    full: bool  # the limit (or a scoped reader's scan window) was reached: more may be waiting already
    # How far this page read: a stream, which shows its reader only events, goes on from here.
    through: int = 0


# Events one scoped page may pass over (its filter, the path, has no index): a window of
# seqs above `after`, so that a tenant following its few events never walks the whole log.
SCAN_WINDOW = 10_000


class ChangeFeed:
    def __init__(self, db: Database, scan: int = SCAN_WINDOW) -> None:
        self.db = db
        self.scan = scan

    async def page(self, principal: Principal, after: int, limit: int = DEFAULT_LIMIT) -> ChangePage:
        # A scoped admin sees only events of orgs that were inside its subtrees, as in /v1/audit.
        scopes = None if principal.unscoped else sorted(principal.orgs)
        # From the leader: behind neo4j:// routing a lagging secondary could answer with a
        # position behind the client's own (Database.read_from_leader).
        return await self.db.read_from_leader(_page, after, limit, scopes, self.scan)


async def _page(tx: AsyncManagedTransaction, after: int, limit: int, scopes: list[str] | None, scan: int) -> ChangePage:
    # Everything up to `newest` has committed (writers are serialised and commit in seq
    # order), so answering `last = newest` never skips an event committed later.
    newest = await audit_store.last_seq(tx)
    ceiling = newest if scopes is None else min(newest, after + scan)
    found = await audit_store.events_after(tx, after, limit, scopes, ceiling)
    pruned = await retention_store.pruned_through(tx)
    if after < pruned:
        raise Problem(
            ProblemType.changes_expired,
            f"events up to seq {pruned} are no longer kept; reload, then follow from 'last'",
            # A scoped reader is not told the newest seq: that is every tenant's activity.
            last=newest if scopes is None else pruned,
            oldest=pruned + 1,
        )
    events = [event for event in found if event["seq"] <= newest]
    if scopes is None:
        # Seqs have no gaps (each is taken under the sequence lock, in the transaction that
        # writes its event), yet a read can see the sequence node of a transaction whose
        # events it does not see yet: Neo4j's reads are read-committed, not a snapshot. So the
        # page ends before the first seq it is missing, and `last` never passes an event that
        # was not in it (tests/test_values.py, the gap-free feed of two writing instances).
        if after >= newest:  # nothing after it yet (or a position past the end): where the feed stands
            return ChangePage([], newest, full=False, through=newest)
        events = _contiguous(events, after)
        last = events[-1]["seq"] if events else after
        return ChangePage(events, last, full=len(events) == limit, through=last)
    if len(events) == limit:
        return ChangePage(events, events[-1]["seq"], full=True, through=events[-1]["seq"])
    if ceiling < newest:
        # The window ended before the newest event: go on from its end. All this says of
        # other tenants is that at least `scan` events followed.
        return ChangePage(events, ceiling, full=True, through=ceiling)
    # A scoped reader's `last` is the newest of its own events (or where it stood): the
    # global newest would show every tenant's activity. Following from it skips nothing of
    # its own; the next page passes over the others' events since then again (at most `scan`).
    last = events[-1]["seq"] if events else after
    return ChangePage(events, last, full=False, through=max(after, ceiling))


def _contiguous(events: list[dict], after: int) -> list[dict]:
    """The leading events whose seqs run after+1, after+2, ... without a gap."""
    for index, event in enumerate(events):
        if event["seq"] != after + 1 + index:
            return events[:index]
    return events


class AuditPruner:
    """Deletes audit events older than the retention, in batches, every `interval` seconds."""

    def __init__(self, db: Database, retention_days: int, interval: float, batch: int = PRUNE_BATCH) -> None:
        self.db = db
        self.retention = timedelta(days=retention_days)
        self.interval = interval
        self.batch = batch

    async def prune(self, now: datetime | None = None) -> int:
        """One pass: every event older than the retention goes; how many did."""
        cutoff = (now or datetime.now(UTC)) - self.retention
        total = 0
        while True:
            # Small transactions: each holds the sequence lock only briefly (see audit_prune).
            deleted = await self.db.write(retention_store.prune_batch, cutoff, self.batch)
            total += deleted
            if deleted < self.batch:
                return total

    async def run(self) -> None:
        # No backoff: a round an hour apart already spares the database.
        await Periodic(self._prune_and_log, self.interval, what="prune the audit log", backoff_max=self.interval).run()

    async def _prune_and_log(self) -> None:
        deleted = await self.prune()
        if deleted:
            logger.bind(deleted=deleted).info("pruned {} audit events older than {} days", deleted, self.retention.days)
