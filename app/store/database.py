"""The Neo4j driver, and the two ways the app uses it: read and write units of work.

Store modules hold unit-of-work functions `async def f(tx, ...)`; services hand them to
`Database.read` / `Database.write`, which run them in a managed transaction. The
driver retries a unit of work on transient failures (leader changes, deadlocks), so a
unit of work must do nothing outside the transaction; what must happen only once it
has committed (logging the change) is handed to `after_commit`.

Behind `neo4j://` routing (a cluster, docs/scale.md "Neo4j cluster") reads go to secondaries
and writes to the leader. One bookmark manager per `Database` (one per process) chains every
session of this instance causally: each session starts with the bookmarks of the transactions
this instance committed, so a read that follows a write here waits, on whichever server
answers it, until that server has applied the write. Bookmarks travel inside the messages the
driver sends anyway (BEGIN, or RUN for an auto-commit query): no extra round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from loguru import logger
from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from purgatory.service._async.circuitbreaker import AsyncCircuitBreaker

from app.observability import metrics
from app.observability.tracing import observe_query
from app.settings import Settings
from app.store.cypher import cypher
from neo4j import (
    READ_ACCESS,
    WRITE_ACCESS,
    AsyncGraphDatabase,
    AsyncManagedTransaction,
    AsyncSession,
    Query,
    Record,
    unit_of_work,
)

P = ParamSpec("P")
T = TypeVar("T")
UnitOfWork = Callable[Concatenate[AsyncManagedTransaction, P], Awaitable[T]]

# The callbacks of the write attempt in progress (None outside Database.write).
_after_commit: ContextVar[list[Callable[[], None]] | None] = ContextVar("graphflags_after_commit", default=None)


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the write transaction in progress has committed.

    Never for an attempt the driver retries, nor for a transaction that fails.
    """
    pending = _after_commit.get()
    if pending is None:
        raise RuntimeError("after_commit is only for units of work run by Database.write")
    pending.append(callback)


class _ConnectionUse:
    """Counts a session's transaction as a pooled connection in use, and notes whether Neo4j answered."""

    __slots__ = ()

    def __enter__(self) -> None:
        metrics.pool_acquired()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        metrics.pool_released()
        if not isinstance(error, ServiceUnavailable | SessionExpired):
            metrics.database_reachable(True)
        else:
            metrics.database_reachable(False)


_connection_use = _ConnectionUse()


def is_outage(error: BaseException) -> bool:
    """Failures of the database rather than of the request: away, overloaded, or too slow."""
    if isinstance(error, ServiceUnavailable | SessionExpired | TransientError | TimeoutError | OSError | OpenedState):
        return True
    code = getattr(error, "code", None) or ""
    # LockClientStopped: the transaction was terminated while it waited for a lock, in practice
    # by its own timeout while queued for the writers' lock (seen under load: a 500 before).
    return "TransactionTimedOut" in code or "LockClientStopped" in code or code.startswith("Neo.TransientError")


class DatabaseUnavailable(Exception):
    """The circuit breaker is open (the database failed repeatedly and is left alone for a
    while), or too many reads or writes are waiting for their turn (admission)."""

    def __init__(self, retry_after: float, reason: str | None = None) -> None:
        super().__init__(reason or f"the database circuit is open; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


class Database:
    def __init__(self, settings: Settings) -> None:
        self.driver = AsyncGraphDatabase.driver(
            settings.neo4j_uri,
            auth=settings.neo4j_auth(),
            max_connection_pool_size=settings.neo4j_pool_size,
            connection_acquisition_timeout=settings.query_timeout,
            # The server's query notifications (e.g. "label does not exist yet" on a new
            # database) are for people writing Cypher, not for the service's logs.
            notifications_min_severity="OFF",
            # Fail fast when the server is away: the breaker and the cache take it from there.
            connection_timeout=settings.connect_timeout,
            max_transaction_retry_time=settings.retry_time,
            # Bolt over TLS against a CA file when one is configured (docs/security.md).
            **settings.neo4j_encryption(),
        )
        self.name = settings.neo4j_database
        # Read-your-writes for this instance (see the module docstring). Reads also return
        # bookmarks, so the reads of one instance never go back in time either, even when the
        # routing sends consecutive ones to secondaries at different points of the log.
        self.bookmarks = AsyncGraphDatabase.bookmark_manager()
        metrics.pool_capacity(settings.neo4j_pool_size)
        self.timeout = settings.query_timeout
        # Every call passes one circuit breaker: after `breaker_threshold` outages in a row the
        # database is not called for `breaker_reset` seconds (calls fail at once), then one
        # call at a time tests it. Only outages count: a 404 raised inside a unit of work is
        # an answer, not a failure.
        self.breaker_reset = settings.breaker_reset
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=settings.breaker_threshold,
            default_ttl=settings.breaker_reset,
            exclude=[(BaseException, lambda error: not is_outage(error))],
        )
        self._breaker: AsyncCircuitBreaker | None = None
        # Admission (see Settings.write_concurrency, read_concurrency): a storm beyond what the
        # database answers gets quick 503s with Retry-After instead of answers 30 s late.
        self._writers = asyncio.Semaphore(settings.write_concurrency)
        self.write_queue_timeout = settings.write_queue_timeout
        self._readers = asyncio.Semaphore(settings.read_concurrency)
        self.read_queue_timeout = settings.read_queue_timeout

    async def _guard(self) -> AsyncCircuitBreaker:
        if self._breaker is None:
            self._breaker = await self._breakers.get_breaker("neo4j")
        return self._breaker

    @property
    def circuit_open_for(self) -> float | None:
        """Seconds until the breaker lets a call through again, or None while it is closed."""
        if self._breaker is None or self._breaker.context.state != "opened":
            return None
        opened_at = self._breaker.context.opened_at or 0.0
        return max(0.0, opened_at + self.breaker_reset - time.time())

    def session(self, access_mode: str) -> AsyncSession:
        """A session of this instance's causal chain. `READ_ACCESS` lets routing pick a secondary
        (for auto-commit queries; managed transactions are routed by execute_read/execute_write)."""
        return self.driver.session(database=self.name, default_access_mode=access_mode, bookmark_manager=self.bookmarks)

    @contextlib.asynccontextmanager
    async def _admitted(self, places: asyncio.Semaphore, wait: float, refused: str) -> AsyncIterator[None]:
        """Hold one of `places`, waiting at most `wait` seconds for it, else DatabaseUnavailable.

        Beyond what Neo4j answers, more requests in flight only queue for pooled connections
        until they time out, and throughput collapses (make bench: uncached lookups at 1,000/s
        open-loop, just past the ~970/s the database served, answered 269/s after 20 s).
        Refusing the excess at once keeps the rest at full speed.
        """
        try:
            async with asyncio.timeout(wait):
                await places.acquire()
        except TimeoutError:
            metrics.refused_for_load(refused)
            raise DatabaseUnavailable(1.0, f"too many {refused} in progress; retry shortly") from None
        try:
            yield
        finally:
            places.release()

    async def read(self, work: UnitOfWork[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A read for a request: admitted like writes (Settings.read_concurrency); a secondary may answer."""
        return await self.read_within(self.timeout, work, *args, **kwargs)

    async def read_within(
        self,
        timeout: float,  # noqa: ASYNC109 (the driver's transaction timeout)
        work: UnitOfWork[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A read for a request whose time limit is not a request's (a dry run counting a million orgs)."""
        try:
            async with self._admitted(self._readers, self.read_queue_timeout, "reads"), await self._guard():
                async with self.session(READ_ACCESS) as session:
                    with _connection_use:
                        return await session.execute_read(unit_of_work(timeout=timeout)(work), *args, **kwargs)
        except OpenedState:  # the circuit is open: 503 as for any other read, not a 500
            raise DatabaseUnavailable(self.circuit_open_for or self.breaker_reset) from None

    async def read_from_leader(self, work: UnitOfWork[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A read for a request that must see the leader's newest commit, admitted like `read`.

        For the public change feed: a client may send consecutive pages to different
        instances, and a lagging secondary would answer "nothing after your position; the
        feed stands at <older seq>", sending the client back over events it already has.
        """
        async with self._admitted(self._readers, self.read_queue_timeout, "reads"):
            return await self.read_unqueued(work, *args, **kwargs)

    async def read_unqueued(self, work: UnitOfWork[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A read that keeps the service correct (the change feed): never refused for load,
        since a cache that stopped hearing from the feed would send every lookup to Neo4j.

        Answered by the leader, not a secondary: the cache's staleness bound (`max_lag`) counts
        from the moment the feed was asked, and a secondary's answer is older than that by its
        replication lag, which nothing bounds. Bookmarks cannot help there: they carry this
        instance's writes, not other instances'. `execute_write` is how the driver routes to
        the leader; the unit of work only reads. The callers (change follower, schedule and
        region pollers, migrations) send one small query every few hundred ms per instance.
        """
        try:
            async with await self._guard():
                async with self.session(WRITE_ACCESS) as session:
                    with _connection_use:
                        return await session.execute_write(unit_of_work(timeout=self.timeout)(work), *args, **kwargs)
        except OpenedState:
            raise DatabaseUnavailable(self.circuit_open_for or self.breaker_reset) from None

    async def read_autocommit(self, work: UnitOfWork[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A one-statement read for a request, admitted like `read`, run as an auto-commit query.

        One round trip where a managed read transaction takes three (BEGIN, RUN + PULL, COMMIT,
        each awaited by the driver): for batched cache misses the round trips are the cost
        (DESIGN.md, "Cold lookups"). No retry on transient errors: the caller's batch fails and
        its lookups answer from the last-known cache or 503, as for an outage.
        """
        async with self._admitted(self._readers, self.read_queue_timeout, "reads"):
            try:
                async with await self._guard():
                    async with self.session(READ_ACCESS) as session:
                        with _connection_use:
                            # Stands in for a transaction: the unit of work only calls `run`.
                            autocommit = cast(AsyncManagedTransaction, _AutoCommit(session, self.timeout))
                            return await work(autocommit, *args, **kwargs)
            except OpenedState:
                raise DatabaseUnavailable(self.circuit_open_for or self.breaker_reset) from None

    async def write(self, work: UnitOfWork[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.write_within(self.timeout, work, *args, **kwargs)

    async def write_within(
        self,
        timeout: float,  # noqa: ASYNC109 (the driver's transaction timeout)
        work: UnitOfWork[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """A write whose time limit is not a request's (catalog syncs of 100,000 flags)."""
        callbacks: list[Callable[[], None]] = []

        async def attempt(tx: AsyncManagedTransaction, *a: Any, **kw: Any) -> T:
            callbacks.clear()  # a retried attempt starts over
            return await work(tx, *a, **kw)

        pending = _after_commit.set(callbacks)
        try:
            async with self._admitted(self._writers, self.write_queue_timeout, "writes"), await self._guard():
                async with self.session(WRITE_ACCESS) as session:
                    with _connection_use:
                        result = await session.execute_write(unit_of_work(timeout=timeout)(attempt), *args, **kwargs)
        except OpenedState:
            raise DatabaseUnavailable(self.circuit_open_for or self.breaker_reset) from None
        finally:
            _after_commit.reset(pending)
        for callback in callbacks:
            try:
                callback()
            except Exception:  # committed already: a failing log line must not turn it into a 500
                logger.exception("after-commit callback failed")
        return result

    async def run_schema(self, statement: str) -> None:
        """Schema statements cannot share a transaction with data: each runs on its own."""
        async with self.session(WRITE_ACCESS) as session:
            await (await session.run(statement)).consume()

    async def ping(self) -> None:
        await self.driver.verify_connectivity()

    async def close(self) -> None:
        await self.driver.close()


class _AutoCommit:
    """Stands in for a transaction in a unit of work of one statement: `run` is an auto-commit query."""

    __slots__ = ("_session", "_timeout")

    def __init__(self, session: Any, timeout: float) -> None:
        self._session = session
        self._timeout = timeout

    def run(self, text: str, parameters: dict[str, Any] | None = None) -> Awaitable[Any]:
        result: Awaitable[Any] = self._session.run(Query(text, timeout=self._timeout), parameters)
        return result


async def fetch(tx: AsyncManagedTransaction, statement: str, **params: Any) -> list[Record]:
    """Run `cypher/<statement>.cypher` and return all its records."""
    with observe_query(statement):
        result = await tx.run(cypher(statement), params)
        return [record async for record in result]


async def execute(tx: AsyncManagedTransaction, statement: str, **params: Any) -> None:
    """Run `cypher/<statement>.cypher` for its effect."""
    with observe_query(statement):
        await (await tx.run(cypher(statement), params)).consume()
