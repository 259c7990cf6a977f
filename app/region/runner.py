"""Runs a region's follower beside the server: `graphflags serve --upstream URL`.

The follower lives in the `serve` process (one per region, however many workers serve
requests), in a thread with its own event loop and its own database driver. A fresh
region bootstraps before the server listens, so it never answers from a partial copy.
"""

from __future__ import annotations

import asyncio
import threading

from app.region.follower import RegionFollower
from app.settings import Settings
from app.store.database import Database


async def _with_follower(settings: Settings, work: str) -> None:
    db = Database(settings)
    follower = RegionFollower(settings, db)
    try:
        await getattr(follower, work)()
    finally:
        await follower.close()
        await db.close()


def start(settings: Settings) -> threading.Thread:
    """Bootstrap if there is no copy yet (blocking, retried), then follow in a daemon thread."""
    asyncio.run(_with_follower(settings, "prepare"))
    thread = threading.Thread(target=asyncio.run, args=(_with_follower(settings, "run"),),
                              name="region-follower", daemon=True)
    thread.start()
    return thread
