"""The change feed (`GET /v1/changes`) and the retention that bounds it.

A page is read in one transaction: the newest seq first, then the events above the
client's position, then the retention watermark. Reading the watermark last means a
prune that commits during the read is noticed (410) rather than silently skipped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from loguru import logger
from neo4j import AsyncManagedTransaction

from app.domain.access import Principal
from app.errors import Problem
from app.store import audit as audit_store
from app.store import retention as retention_store
from app.store.database import Database

DEFAULT_LIMIT = 1000
MAX_LIMIT = 1000
PRUNE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class ChangePage:
    events: list[dict[str, Any]]
    last: int  # where to continue: the next page is `after=last`
    full: bool  # the limit was reached: more events may be waiting already


class ChangeFeed:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(self, principal: Principal, after: int, limit: int = DEFAULT_LIMIT) -> ChangePage:
        # A scoped admin sees only events of orgs that were inside its subtrees, as in /v1/audit.
        scopes = None if principal.unscoped else sorted(principal.orgs)
        return await self.db.read(_page, after, limit, scopes)


async def _page(tx: AsyncManagedTransaction, after: int, limit: int, scopes: list[str] | None) -> ChangePage:
    # Everything up to `newest` has committed (writers are serialised and commit in seq
    # order), so answering `last = newest` never skips an event committed later.
    newest = await audit_store.last_seq(tx)
    found = await audit_store.events_after(tx, after, limit, scopes)
    pruned = await retention_store.pruned_through(tx)
    if after < pruned:
        raise Problem("changes-expired",
                      f"events up to seq {pruned} are no longer kept; reload, then follow from 'last'",
                      last=newest, oldest=pruned + 1)
    events = [event for event in found if event["seq"] <= newest]
    if len(events) == limit:
        return ChangePage(events, events[-1]["seq"], full=True)
    # Every event of (after, newest] the caller may see is in this page.
    return ChangePage(events, newest, full=False)


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
        while True:
            try:
                deleted = await self.prune()
                if deleted:
                    logger.bind(deleted=deleted).info("pruned {} audit events older than {} days", deleted,
                                                      self.retention.days)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database may be away: try again next round
                logger.warning("audit pruning failed ({}): {}", type(error).__name__, error)
            await asyncio.sleep(self.interval)
