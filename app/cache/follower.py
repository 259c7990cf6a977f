"""Keeps this instance's cache honest about what other instances wrote.

Every `interval` seconds it reads, from the audit log, the changes committed since
the last seq it saw, and drops the cache entries they touch. So a toggle made on
another instance is seen here within `interval` plus one query; if the feed cannot be
read for longer than the cache's `max_lag`, the cache stops answering (lookups go to
the database) rather than serve values that may be stale beyond the bound.
"""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger

from app.cache.values import ValueCache
from app.periodic import Periodic
from app.store import audit as audit_store
from app.store.database import Database


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
        # No backoff: each poll is the cache's heartbeat, and after an outage the cache answers
        # again only once a poll succeeds; the query is one index seek, cheap for a database.
        self.loop = Periodic(
            self.poll,
            interval,
            what="read the change feed",
            consequence=f"the cache stops answering after {cache.max_lag} s",
            backoff_max=interval,
        )
        # Called with every batch of changes read (after the cache has dropped what they touch):
        # the open event streams hang off this one reader (app/services/event_streams.py).
        self.listeners: list[Callable[[list[list]], None]] = []
        # Called when changes were missed (see `poll`): anything may have changed.
        self.on_missed: list[Callable[[], None]] = []

    async def poll(self) -> None:
        """One round: read and apply what changed since the last round."""
        # The answer is as old as the moment the poll was sent, not the moment it came back: a
        # slow database must not stretch the staleness bound unnoticed.
        asked_at = self.cache.clock()
        if self.after is None:
            # Start at the present: the cache is empty, nothing older can be in it.
            self.after = (await self.db.read_unqueued(audit_store.invalidations, 2**62)).last
            self.cache.heard_from_feed(asked_at)
            return
        read = await self.db.read_unqueued(audit_store.invalidations, self.after)
        if read.missed:
            # Retention deleted events above our position before we read them (only a follower
            # left behind by more than the retention period, or events aged by hand, can see
            # this): what they changed is unknown, so nothing cached is trusted. Without this the
            # position never moved past the hole, and every poll re-applied every change since.
            logger.bind(after=self.after, resumed_at=read.last).warning(
                "cache: the change feed was pruned past this instance's position; the cache starts over"
            )
            self.cache.everything_changed()
            for on_missed in self.on_missed:
                on_missed()
        else:
            apply(self.cache, read.changes)
            if read.changes:
                for listener in self.listeners:
                    listener(read.changes)
        self.after = max(self.after, read.last)
        self.cache.heard_from_feed(asked_at)

    async def run(self) -> None:
        await self.loop.run()
