"""Keeps this instance's cache honest about what other instances wrote.

Every `interval` seconds it reads, from the audit log, the changes committed since
the last seq it saw, and drops the cache entries they touch. So a toggle made on
another instance is seen here within `interval` plus one query; if the feed cannot be
read for longer than the cache's `max_lag`, the cache stops answering (lookups go to
the database) rather than serve values that may be stale beyond the bound.
"""

from __future__ import annotations

from collections.abc import Callable

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

    async def poll(self) -> None:
        """One round: read and apply what changed since the last round."""
        # The answer is as old as the moment the poll was sent, not the moment it came back: a
        # slow database must not stretch the staleness bound unnoticed.
        asked_at = self.cache.clock()
        if self.after is None:
            # Start at the present: the cache is empty, nothing older can be in it.
            self.after, _ = await self.db.read_unqueued(audit_store.invalidations, 2**62)
            self.cache.heard_from_feed(asked_at)
            return
        last, changes = await self.db.read_unqueued(audit_store.invalidations, self.after)
        apply(self.cache, changes)
        self.after = max(self.after, last)
        if changes:
            for listener in self.listeners:
                listener(changes)
        self.cache.heard_from_feed(asked_at)

    async def run(self) -> None:
        await self.loop.run()
