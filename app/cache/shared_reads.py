"""Concurrent cache misses of the same entry share one database read.

Without this, a burst of lookups for an entry that is not cached yet (after a start, an
eviction, or a toggle that dropped a popular entry) sends one identical query per request:
50 connections asking for the same org at once ran 50 `flag_chain` queries, and lookups
waited behind them (bench/RESULTS.md, "Hot path").

A read is shared only between callers that saw the same cache epochs: a caller that
arrives after a write was applied here gets a read of its own, started after that write,
so sharing never hands out a value older than one this instance already acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class SharedReads:
    def __init__(self) -> None:
        self._pending: dict[Hashable, asyncio.Future] = {}

    async def read(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> T:
        """The result of the read in flight under `key`, or of `start()` if there is none.

        `key` must include the cache epochs the caller noted (see the module's docstring).
        """
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(start())
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: a caller that goes away (client disconnect) does not cancel the others' read.
        return await asyncio.shield(pending)

    def _finished(self, key: Hashable, done: asyncio.Future) -> None:
        if self._pending.get(key) is done:
            del self._pending[key]
        if not done.cancelled():
            done.exception()  # retrieved here, so a read every caller abandoned is not logged as lost

    def __len__(self) -> int:
        return len(self._pending)
