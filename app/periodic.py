"""A background loop: one round every `interval` seconds until stopped, never ended by an error.

The service's background work (the cache follower, a region's status, the scheduler, the
audit pruner) is a round repeated for as long as the process serves. A failing round (the
database away) must not end it: the failure is logged once when it starts and once when it
ends, not every round, and the wait after each failure doubles up to `backoff_max`, so an
outage is not hammered. Only cancellation or `stop()` ends the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from loguru import logger

# Error texts are cut: they carry messages and addresses, and a log line is not a dump.
_ERROR_TEXT = 300


class Periodic:
    def __init__(
        self,
        work: Callable[[], Awaitable[object]],
        interval: float,
        *,
        what: str,
        consequence: str = "",
        backoff_max: float | None = None,
    ) -> None:
        """`what` completes "cannot ..." in the failure's log line; `consequence` says what the
        failure means meanwhile. The wait after failures grows to `backoff_max` (default: four
        intervals, so a recovered database is noticed within a few rounds)."""
        self._work = work
        self.interval = interval
        self.what = what
        self.consequence = consequence
        self.backoff_max = max(interval, backoff_max if backoff_max is not None else 4 * interval)
        self.failures = 0  # rounds failed in a row
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        """End the loop after the round in progress (or at once, if it is waiting)."""
        self._stopped.set()

    def wait_after_round(self) -> float:
        if not self.failures:
            return self.interval
        return min(self.backoff_max, self.interval * 2 ** (self.failures - 1))

    async def run(self) -> None:
        while not self._stopped.is_set():
            await self.round()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.wait_after_round()):
                    await self._stopped.wait()

    async def round(self) -> None:
        """One round; a failure is logged and counted, never raised (cancellation is)."""
        try:
            await self._work()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.failures += 1
            level = "WARNING" if self.failures == 1 else "DEBUG"
            logger.log(
                level,
                "cannot {} ({}: {}){}; retrying",
                self.what,
                type(error).__name__,
                str(error)[:_ERROR_TEXT],
                f"; {self.consequence}" if self.consequence else "",
            )
            return
        if self.failures:
            logger.info("{}: working again after {} failed round(s)", self.what, self.failures)
        self.failures = 0
