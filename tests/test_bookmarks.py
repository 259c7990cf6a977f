"""Bookmarks flow from each write to the reads that follow it on the same instance (no Neo4j).

The driver is replaced by a stand-in that keeps the driver's documented contract with a
bookmark manager: a transaction (or auto-commit query) starts with the manager's bookmarks,
and on success hands back `update_bookmarks(bookmarks it started with, [its new bookmark])`.
What is tested is ours: that every kind of read and write `Database` runs uses the one
instance-wide manager, in the access mode routing needs, so that what a write committed is
what the next read waits for. tests/test_routing.py runs the real driver over neo4j://.
"""

from __future__ import annotations

import itertools

import pytest

from app.settings import Settings
from app.store.database import Database
from neo4j import READ_ACCESS, WRITE_ACCESS


class _Result:
    async def consume(self) -> None:
        return None


class _Session:
    """One session of the stand-in driver; records what each unit of work started with."""

    def __init__(self, driver: _Driver, database: str, default_access_mode: str, bookmark_manager) -> None:
        self.driver = driver
        self.mode = default_access_mode
        self.manager = bookmark_manager

    async def __aenter__(self) -> _Session:
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    async def _unit(self, routed_as: str, work, *args, **kwargs):
        started_with = set(await self.manager.get_bookmarks())
        result = await work(self, *args, **kwargs)
        committed = f"bookmark-{next(self.driver.counter)}"
        self.driver.log.append((routed_as, started_with, committed))
        await self.manager.update_bookmarks(started_with, [committed])
        return result

    async def execute_read(self, work, *args, **kwargs):
        return await self._unit("read", work, *args, **kwargs)

    async def execute_write(self, work, *args, **kwargs):
        return await self._unit("write", work, *args, **kwargs)

    async def run(self, query, parameters=None):
        """An auto-commit query: routed by the session's access mode."""

        async def statement(_session):
            return _Result()

        return await self._unit("read" if self.mode == READ_ACCESS else "write", statement)


class _Driver:
    def __init__(self) -> None:
        self.log: list[tuple[str, set[str], str]] = []
        self.sessions: list[_Session] = []
        self.counter = itertools.count(1)

    def session(self, **config) -> _Session:
        session = _Session(self, **config)
        self.sessions.append(session)
        return session

    async def close(self) -> None:
        return None


async def _work(tx, *args, **kwargs) -> str:
    return "answer"


async def _one_statement(tx) -> str:
    await (await tx.run("RETURN 1")).consume()
    return "answer"


@pytest.fixture
async def db():
    database = Database(Settings(neo4j_uri="neo4j://127.0.0.1:1", neo4j_password="unused"))
    real = database.driver
    database.driver = _Driver()
    yield database
    await real.close()


async def test_each_read_after_a_write_starts_with_that_write_bookmark(db):
    reads = {
        "read": lambda: db.read(_work),
        "read_within": lambda: db.read_within(5.0, _work),
        "read_autocommit (batched cold lookups)": lambda: db.read_autocommit(_one_statement),
        "read_unqueued (change follower, from the leader)": lambda: db.read_unqueued(_work),
        "read_from_leader (public change feed)": lambda: db.read_from_leader(_work),
    }
    for name, read in reads.items():
        assert await db.write(_work) == "answer"
        written = db.driver.log[-1][2]
        assert await read() == "answer"
        _, started_with, _ = db.driver.log[-1]
        assert written in started_with, f"{name} did not wait for the write before it"


async def test_one_manager_for_every_session_and_reads_routed_to_readers(db):
    await db.write(_work)
    await db.read(_work)
    await db.read_within(5.0, _work)
    await db.read_autocommit(_one_statement)
    await db.read_unqueued(_work)
    await db.read_from_leader(_work)
    await db.run_schema("RETURN 1")
    assert {id(session.manager) for session in db.driver.sessions} == {id(db.bookmarks)}
    routed = [entry[0] for entry in db.driver.log]
    # write, read, read_within, read_autocommit: a secondary may answer; read_unqueued,
    # read_from_leader and schema statements go to the leader.
    assert routed == ["write", "read", "read", "read", "write", "write", "write"]
    assert [session.mode for session in db.driver.sessions] == [
        WRITE_ACCESS,
        READ_ACCESS,
        READ_ACCESS,
        READ_ACCESS,
        WRITE_ACCESS,
        WRITE_ACCESS,
        WRITE_ACCESS,
    ]


async def test_a_second_instance_does_not_share_the_first_instance_bookmarks(db):
    """Bookmarks are per instance (per process): another instance hears of a write through the
    change feed, within the cache's staleness bound, not through bookmarks."""
    other = Database(Settings(neo4j_uri="neo4j://127.0.0.1:1", neo4j_password="unused"))
    try:
        await db.write(_work)
        assert db.bookmarks is not other.bookmarks
        assert not list(await other.bookmarks.get_bookmarks())
    finally:
        await other.close()
