"""Keeps the cyclic garbage collector's full passes short in a process that holds much for long.

Ten thousand open event streams are some three million objects, and CPython's collector walks
every one of them on each full pass, with the event loop stopped: about a second here. In
bench/streams.py's profile (2026-11-30) such a pass came after a keep-alive tick, every lookup
waited for it, and the change-feed follower, held up as well, let the cache's staleness bound
pass, so the lookups behind it went to the database: p95 1.6-2.4 s against 1 ms without streams.

So the collector's automatic full passes are turned off while the policy runs (their threshold
set out of reach; the young generations are still collected as usual), and every `freeze_every`
seconds what the process holds is moved into the collector's permanent generation (`gc.freeze()`:
a list splice, microseconds). Freezing alone was not enough: streams opened between two freezes
still triggered automatic full passes, up to 0.7 s each in bench/streams.py (2026-12-01), one in
the middle of a fan-out.

Objects are still freed by reference counting the moment nothing uses them; only garbage cycles
(what a closed stream leaves) wait for the scheduled pass: every `thaw_every` seconds everything
frozen is handed back and one full pass reclaims them, the one pause this policy keeps, at a
known rate instead of whenever allocation happens to trigger it.

Every full pass that stops the process for longer than LONG_PASS_SECONDS is logged (a warning,
with its length and what it walked), so that a pause in the lookups can be matched to it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from loguru import logger

from app.periodic import Periodic

LONG_PASS_SECONDS = 0.1
# A full pass is due when this many middle-generation passes have run: never, in practice.
NO_AUTOMATIC_FULL_PASS = 2**31 - 1


class GcPolicy:
    def __init__(self, freeze_every: float, thaw_every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.thaw_every = thaw_every
        self._thawed_at = clock()
        self._pass_started = 0.0  # when the collector's current full pass began (perf_counter)
        self.loop = Periodic(self.round, freeze_every, what="freeze the collector's long-lived objects")

    async def round(self) -> None:
        if self.thaw_every and self.clock() - self._thawed_at >= self.thaw_every:
            self.thaw()
        gc.freeze()

    def thaw(self) -> None:
        """Hand every frozen object back and reclaim the garbage cycles among them (one full pass)."""
        frozen = gc.get_freeze_count()
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        self._thawed_at = self.clock()
        logger.bind(frozen=frozen, collected=found, seconds=round(time.perf_counter() - started, 3)).info(
            "gc: thawed and collected"
        )

    async def run(self) -> None:
        gc.freeze()  # what start-up built (modules, the app, the driver) is never garbage
        young, middle, full = gc.get_threshold()
        gc.set_threshold(young, middle, NO_AUTOMATIC_FULL_PASS)
        gc.callbacks.append(self._time_full_passes)
        try:
            await self.loop.run()
        finally:
            gc.callbacks.remove(self._time_full_passes)
            gc.set_threshold(young, middle, full)

    def _time_full_passes(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._pass_started = time.perf_counter()
            return
        took = time.perf_counter() - self._pass_started
        if took >= LONG_PASS_SECONDS:
            logger.bind(seconds=round(took, 3), collected=info["collected"], frozen=gc.get_freeze_count()).warning(
                "gc: a full pass stopped the process"
            )
