"""The Neo4j driver, and the two ways the app uses it: read and write units of work.

Store modules hold unit-of-work functions `async def f(tx, ...)`; services hand them to
`Database.read` / `Database.write`, which run them in a managed transaction. The
driver retries a unit of work on transient failures (leader changes, deadlocks), so a
unit of work must do nothing outside the transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from neo4j import AsyncGraphDatabase, AsyncManagedTransaction, Record, unit_of_work

from app.settings import Settings
from app.store.cypher import cypher

P = ParamSpec("P")
T = TypeVar("T")
UnitOfWork = Callable[Concatenate[AsyncManagedTransaction, P], Awaitable[T]]


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
        )
        self.name = settings.neo4j_database
        self.timeout = settings.query_timeout

    async def read(self, work: UnitOfWork[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self.driver.session(database=self.name) as session:
            return await session.execute_read(unit_of_work(timeout=self.timeout)(work), *args, **kwargs)

    async def write(self, work: UnitOfWork[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self.driver.session(database=self.name) as session:
            return await session.execute_write(unit_of_work(timeout=self.timeout)(work), *args, **kwargs)

    async def run_schema(self, statement: str) -> None:
        """Schema statements cannot share a transaction with data: each runs on its own."""
        async with self.driver.session(database=self.name) as session:
            await (await session.run(statement)).consume()

    async def ping(self) -> None:
        await self.driver.verify_connectivity()

    async def close(self) -> None:
        await self.driver.close()


async def fetch(tx: AsyncManagedTransaction, statement: str, **params: Any) -> list[Record]:
    """Run `cypher/<statement>.cypher` and return all its records."""
    result = await tx.run(cypher(statement), params)
    return [record async for record in result]


async def execute(tx: AsyncManagedTransaction, statement: str, **params: Any) -> None:
    """Run `cypher/<statement>.cypher` for its effect."""
    await (await tx.run(cypher(statement), params)).consume()
