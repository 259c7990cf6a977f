"""Group commit: the writes waiting in one process go to the database together, as one transaction.

Every value write takes the one audit sequence lock (commit-ordered, gap-free seqs: see
cypher/audit_claim_sequence.cypher), so writes are serialised in the database whatever the
number of writers. One write per transaction held that lock for four round trips and a
commit each, and more writers only queued for it (bench/RESULTS.md, "Toggles"). A batch
holds it for the same four round trips however many writes it carries, so throughput grows
with the queue instead of latency.

No timer: a write that finds no batch in flight goes at once (a lone write waits no longer
than before); the ones that arrive while a batch is in flight make up the next one. Each
caller is answered with its own outcome once its batch has committed (or failed).

Admission: a write not taken into a batch within `queue_timeout` seconds is dropped from
the queue and refused (DatabaseUnavailable: 503 with Retry-After), so overload is refused
quickly rather than answered late. A write already taken waits for its batch.

asyncio has no such queue and the micro-batching packages on PyPI are small and little kept;
this is the whole of it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from app.observability import metrics
from app.store.database import DatabaseUnavailable

Item = TypeVar("Item")

# Runs one batch; one outcome per item, in order: a result, or an exception for that item alone.
# Raising fails every item of the batch.
BatchRunner = Callable[[list[Item]], Awaitable[list[Any]]]


@dataclass(slots=True, eq=False)
class _Waiting(Generic[Item]):
    item: Item
    answer: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    taken: bool = False  # in a batch already: no longer the queue's to refuse


class GroupCommit(Generic[Item]):
    def __init__(self, run: BatchRunner[Item], max_batch: int, queue_timeout: float, in_flight: int = 1) -> None:
        self._run = run
        self.max_batch = max_batch
        self.queue_timeout = queue_timeout
        self.in_flight = in_flight  # batches at once (each is one flusher task)
        self._queue: deque[_Waiting[Item]] = deque()
        # Counted by the flushers themselves, not by their tasks' done callbacks: those run a
        # loop turn later, and a write queued in between would find no flusher coming for it.
        self._flushing = 0
        self._tasks: set[asyncio.Task] = set()  # strong references, so a running flusher is never collected

    async def submit(self, item: Item) -> Any:
        """`item`'s outcome once its batch has committed; its exception if it failed."""
        waiting = _Waiting(item)
        self._queue.append(waiting)
        if self._flushing < self.in_flight:
            self._flushing += 1
            flusher = asyncio.create_task(self._flush())
            self._tasks.add(flusher)
            flusher.add_done_callback(self._tasks.discard)
        try:
            # Shielded: a caller that gives up (timeout, client gone) never cancels the outcome
            # its batch will set.
            return await asyncio.wait_for(asyncio.shield(waiting.answer), self.queue_timeout)
        except TimeoutError:
            if waiting.taken:
                return await asyncio.shield(waiting.answer)
            self._queue.remove(waiting)
            metrics.refused_for_load("writes")
            raise DatabaseUnavailable(1.0, "too many writes in progress; retry shortly") from None
        except asyncio.CancelledError:
            if not waiting.taken:
                self._queue.remove(waiting)  # never sent: nothing to answer
            raise

    def __len__(self) -> int:
        """Writes waiting for a batch."""
        return len(self._queue)

    @property
    def busy(self) -> bool:
        """A batch is in flight."""
        return self._flushing > 0

    async def _flush(self) -> None:
        try:
            await self._flush_queue()
        finally:
            self._flushing -= 1  # no await since the queue was last seen empty

    async def _flush_queue(self) -> None:
        while self._queue:
            batch: list[_Waiting[Item]] = []
            while self._queue and len(batch) < self.max_batch:
                waiting = self._queue.popleft()
                waiting.taken = True
                batch.append(waiting)
            try:
                outcomes = await self._run([waiting.item for waiting in batch])
            except Exception as error:
                for waiting in batch:
                    _settle(waiting.answer, error)
                continue
            except BaseException:
                for waiting in batch:  # cancelled (shutdown): so are the callers, then the flusher stops
                    waiting.answer.cancel()
                raise
            for waiting, outcome in zip(batch, outcomes, strict=True):
                _settle(waiting.answer, outcome)


def _settle(answer: asyncio.Future, outcome: Any) -> None:
    if answer.done():
        return
    if isinstance(outcome, BaseException):
        answer.set_exception(outcome)
        answer.exception()  # retrieved here, so an outcome whose caller went away is not logged as lost
    else:
        answer.set_result(outcome)
