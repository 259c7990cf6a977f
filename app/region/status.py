"""What a region's worker process knows of its copy: read from the local database.

The follower runs in the `serve` process and records its state on the Replica node;
each worker reads it every `interval` seconds, so answers can say how stale they may be
without a query per request.
"""

from __future__ import annotations

import time
from typing import Any

from app.periodic import Periodic
from app.store import region as store
from app.store.database import Database


class RegionStatus:
    def __init__(self, db: Database, upstream: str, interval: float = 0.25) -> None:
        self.db = db
        self.upstream = upstream
        self.interval = interval
        self.replica: dict[str, Any] = {}

    @property
    def staleness(self) -> float | None:
        """Seconds since the copy was last known to hold everything the upstream had; None: never."""
        confirmed = self.replica.get("confirmed_at")
        return None if confirmed is None else max(0.0, time.time() - confirmed)

    def describe(self) -> dict[str, Any]:
        staleness = self.staleness
        return {
            "upstream": self.upstream,
            "connected": bool(self.replica.get("connected")),
            "staleness_seconds": None if staleness is None else round(staleness, 3),
            "upstream_seq": self.replica.get("seq"),
            "reloading": bool(self.replica.get("reloading")),
            "bootstraps": self.replica.get("bootstraps") or 0,
        }

    async def poll(self) -> None:
        self.replica = (await self.db.read_unqueued(store.state)).replica or {}

    async def run(self) -> None:
        # While the local database is away the state is not refreshed: the staleness keeps growing.
        await Periodic(self.poll, self.interval, what="read the region's state").run()
