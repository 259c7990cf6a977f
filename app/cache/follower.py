"""Keeps this instance's cache honest about what other instances wrote.

Every `interval` seconds it reads, from the audit log, the changes committed since
the last seq it saw, and drops the cache entries they touch. So a toggle made on
another instance is seen here within `interval` plus one query; if the feed cannot be
read for longer than the cache's `max_lag`, the cache stops answering (lookups go to
the database) rather than serve values that may be stale beyond the bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from loguru import logger
from neo4j import AsyncManagedTransaction

from app.cache.values import ValueCache
from app.store.database import Database, fetch


async def _invalidations(tx: AsyncManagedTransaction, after: int) -> tuple[int, list[list[str]]]:
    """The newest seq it is safe to resume from, and the invalidating changes seen after `after`.

    That is `last` when every event up to it was visible to this read; else `after` again, so
    the events of a commit this read caught half-applied are read on the next round.
    """
    records = await fetch(tx, "cache_invalidations", after=after)
    record = records[0]
    complete = record["visible"] >= record["last"] - after
    return (record["last"] if complete else after), record["changes"]


def apply(cache: ValueCache, changes: list[list]) -> None:
    for seq, action, org, flag in changes:
        if cache.made_here(seq):
            continue  # applied when it committed; dropping it again would only cost hits
        if action == "org.move":
            cache.hierarchy_changed()
        else:
            cache.value_changed(org, flag)


class ChangeFollower:
    def __init__(self, db: Database, cache: ValueCache, interval: float) -> None:
        self.db = db
        self.cache = cache
        self.interval = interval
        self.after: int | None = None
        # Called with every batch of changes read (after the cache has dropped what they touch):
        # the open event streams hang off this one reader (app/services/event_streams.py).
        self.listeners: list[Callable[[list[list]], None]] = []

    async def poll(self) -> None:
        """One round: read and apply what changed since the last round."""
        # The answer is as old as the moment the poll was sent, not the moment it came back: a
        # slow database must not stretch the staleness bound unnoticed.
        asked_at = time.monotonic()
        if self.after is None:
            # Start at the present: the cache is empty, nothing older can be in it.
            self.after, _ = await self.db.read_unqueued(_invalidations, 2**62)
            self.cache.heard_from_feed(asked_at)
            return
        last, changes = await self.db.read_unqueued(_invalidations, self.after)
        apply(self.cache, changes)
        self.after = max(self.after, last)
        if changes:
            for listener in self.listeners:
                listener(changes)
        self.cache.heard_from_feed(asked_at)

    async def run(self) -> None:
        failing = False
        while True:
            try:
                await self.poll()
                if failing:
                    logger.info("change feed readable again; cache in use")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database may be away; keep trying
                if not failing:
                    logger.warning("cannot read the change feed ({}); the cache stops answering after {} s",
                                   type(error).__name__, self.cache.max_lag)
                failing = True
            await asyncio.sleep(self.interval)
