"""Concurrent cache misses of different entries go to the database together, in one statement.

At a billion orgs almost every lookup is a miss, and one statement per miss is bound by
round trips, not by graph work: on a 10M-org graph one walk-up per statement reached
about 1,900 orgs/s, the same walk-up for 25-50 orgs per statement about 15,000 orgs/s
(DESIGN.md, "Cold lookups"). So misses queue here, and a batch leaves as soon as one of
`in_flight` places is free: an idle service sends a lone miss at once (no added wait),
and under load each batch carries whatever queued while the previous ones were out,
up to `batch_size`; the batch size follows the load by itself.

Admission: a key that waited longer than `queue_timeout` for a batch, or that arrives
while `max_waiting` keys already wait, is refused with DatabaseUnavailable (503 with
Retry-After): past capacity, quick refusals keep the rest at full speed.

A batch that fails for a reason other than an outage is split and each key read on its
own, so one bad key cannot fail the others' lookups. Keys waiting together share one
read; a caller that must not share a read already sent (app/cache/shared_reads.py, the
epoch rule) never does: only keys not yet sent are joined.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from app.observability import metrics
from app.store.database import DatabaseUnavailable, is_outage

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchedReads(Generic[K, V]):
    def __init__(
        self,
        read_batch: Callable[[Sequence[K]], Awaitable[dict[K, V]]],
        *,
        batch_size: int = 64,
        in_flight: int = 4,
        queue_timeout: float = 0.5,
        max_waiting: int | None = None,
    ) -> None:
        """`read_batch(keys)` answers a dict with an entry for each key found (missing: None)."""
        self._read_batch = read_batch
        self.batch_size = batch_size
        self.in_flight = in_flight
        self.queue_timeout = queue_timeout
        self.max_waiting = max_waiting if max_waiting is not None else 8 * batch_size * in_flight
        self._waiting: dict[K, tuple[asyncio.Future, float]] = {}
        self._running = 0  # batches started, whether they have picked their keys yet or not
        self._starting = 0  # batches started that have not picked their keys yet
        self.batches = 0  # statements sent, for tests and metrics: fewer than keys under load

    async def read(self, key: K) -> V | None:
        # Shielded: a caller that goes away (client disconnect) does not cancel the others' read.
        return await asyncio.shield(self.submit(key))

    def submit(self, key: K) -> asyncio.Future:
        """The future answer for `key` (what `read` awaits), without a task of its own: for
        callers that share and shield it themselves (app/cache/shared_reads.py)."""
        entry = self._waiting.get(key)
        if entry is None:
            if len(self._waiting) >= self.max_waiting:
                metrics.refused_for_load("reads")  # the same count and alert as the database's admission
                raise DatabaseUnavailable(1.0, "too many reads waiting; retry shortly")
            entry = (asyncio.get_running_loop().create_future(), time.monotonic())
            self._waiting[key] = entry
            self._start_batches(contextvars.copy_context())
        return entry[0]

    def _start_batches(self, context: contextvars.Context) -> None:
        # The batch picks its keys when it starts, one loop turn later: misses that arrive in
        # the same turn leave together at no cost in latency.
        while self._running < self.in_flight and len(self._waiting) > self._starting * self.batch_size:
            self._running += 1
            self._starting += 1
            asyncio.get_running_loop().create_task(self._batch(), context=context)

    async def _batch(self) -> None:
        self._starting -= 1
        try:
            batch: dict[K, asyncio.Future] = {}
            refused_before = time.monotonic() - self.queue_timeout
            while self._waiting and len(batch) < self.batch_size:
                key = next(iter(self._waiting))
                future, queued_at = self._waiting.pop(key)
                if queued_at < refused_before:
                    metrics.refused_for_load("reads")
                    _settle(future, exception=DatabaseUnavailable(1.0, "too many reads in progress; retry shortly"))
                else:
                    batch[key] = future
            if batch:
                self.batches += 1
                await self._answer(batch)
        finally:
            self._running -= 1
            if self._waiting:
                # A fresh context: the next batch is no more part of this batch's request than any other's.
                self._start_batches(contextvars.Context())

    async def _answer(self, batch: dict[K, asyncio.Future]) -> None:
        try:
            found = await self._read_batch(list(batch))
        except Exception as error:
            if len(batch) > 1 and not (is_outage(error) or isinstance(error, DatabaseUnavailable)):
                # Something about one key, maybe: read each on its own so the others still answer.
                await asyncio.gather(*(self._answer({key: future}) for key, future in batch.items()))
                return
            for future in batch.values():
                _settle(future, exception=error)
            return
        for key, future in batch.items():
            _settle(future, result=found.get(key))


def _settle(future: asyncio.Future, result=None, exception: BaseException | None = None) -> None:
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
        # Retrieved here, so a read every caller abandoned is not logged as lost.
        future.add_done_callback(lambda done: done.exception())
    else:
        future.set_result(result)
