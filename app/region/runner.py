"""Runs a region's follower beside the server: `graphflags serve --upstream URL`.

The follower lives in the `serve` process (one per region, however many workers serve
requests), in a thread with its own event loop and its own database driver. A fresh
region bootstraps before the server listens, so it never answers from a partial copy.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from enum import Enum

from app.region.follower import RegionFollower
from app.settings import Settings
from app.store.database import Database


class Work(Enum):
    prepare = "prepare"  # bootstrap from the upstream's snapshot when there is no copy yet
    run = "run"  # follow the upstream's change feed until the process ends


# What the follower does for each kind of work (its own connection and loop either way).
_WORK: dict[Work, Callable[[RegionFollower], Awaitable[None]]] = {
    Work.prepare: RegionFollower.prepare,
    Work.run: RegionFollower.run,
}


async def _with_follower(settings: Settings, work: Work) -> None:
    db = Database(settings)
    follower = RegionFollower(settings, db)
    try:
        await _WORK[work](follower)
    finally:
        await follower.close()
        await db.close()


def start(settings: Settings) -> threading.Thread:
    """Bootstrap if there is no copy yet (blocking, retried), then follow in a daemon thread."""
    asyncio.run(_with_follower(settings, Work.prepare))
    thread = threading.Thread(
        target=asyncio.run, args=(_with_follower(settings, Work.run),), name="region-follower", daemon=True
    )
    thread.start()
    return thread
