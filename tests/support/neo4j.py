"""Disposable Neo4j homes for tests, through app/neo4j_server (no shell-out to neo4jctl)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.neo4j_server import Neo4jHome, ServerConf
from tests.support.ports import free_port


@dataclass(frozen=True)
class Neo4jServer:
    uri: str
    user: str
    password: str

    @classmethod
    def of(cls, home: Neo4jHome) -> Neo4jServer:
        return cls(home.bolt_uri, "neo4j", home.password)


# The files that make a new home's initial credentials: the password and the auth.ini that
# `neo4j-admin dbms set-initial-password` writes. That command is a JVM of its own (seconds of
# both cores); the first home of a test process runs it, and every later home gets a copy of its
# result, which Neo4jHome.init then keeps (it sets a password only where none is set).
_CREDENTIALS = (Path("password"), Path("data") / "dbms" / "auth.ini")
_credentials_lock = threading.Lock()
_credentials: dict[Path, bytes] = {}


def new_home(path: Path, *, heap: str = "512m", pagecache: str = "128m", bolt_tls: bool = False) -> Neo4jHome:
    """An initialised (not started) home on free ports, for a server that lives only as long as
    its tests (so the JVM skips C2: see ServerConf.short_lived)."""
    conf = ServerConf(
        bolt_port=free_port(),
        http_port=free_port(),
        heap=heap,
        pagecache=pagecache,
        bolt_tls=bolt_tls,
        short_lived=True,
    )
    with _credentials_lock:
        for name, content in _credentials.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            # Owner-only, as Neo4jHome writes them: the password must never be readable by others.
            with os.fdopen(os.open(path / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as copy:
                copy.write(content)
        home = Neo4jHome.init(path, conf)
        if not _credentials:
            # Read now: the server consumes auth.ini when it first starts.
            _credentials.update({name: (home.path / name).read_bytes() for name in _CREDENTIALS})
    return home


# A JVM start takes ~20 s on a quiet machine and has taken over 120 s (the CLI's default) on this
# shared one under load: a test harness waits longer rather than fail a whole session for it.
START_TIMEOUT = 600


@contextlib.contextmanager
def running_home(path: Path, *, start: bool = True, **conf) -> Iterator[Neo4jHome]:
    """A home on free ports, started (unless `start=False`), and always killed at the end: its data
    is thrown away, so a clean stop (the launcher's JVM and a checkpoint) would buy nothing. Clean
    stops are tested where they matter (test_bolt_tls stops its server for an offline backup)."""
    home = new_home(path, **conf)
    try:
        if start:
            home.start(START_TIMEOUT)
        yield home
    finally:
        home.kill()


def started_and_emptied(home: Neo4jHome) -> Neo4jHome:
    """`home` running (started if it is not) with no nodes left: how the modules that share the
    session's spare server (tests/conftest.py) take it over from one another."""
    from neo4j import GraphDatabase

    if not home.running():
        home.start(START_TIMEOUT)
    with (
        GraphDatabase.driver(home.bolt_uri, auth=("neo4j", home.password)) as driver,
        driver.session() as session,  # an auto-commit query: IN TRANSACTIONS needs one
    ):
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
    return home


class BootingHome:
    """A home whose server starts in a thread of its own, so that the tests which need no server
    run meanwhile (a JVM start is the longest wait of a session). `wait()` answers the started
    home, or raises what the start raised; `close()` kills the server, started or not."""

    def __init__(self, path: Path, **conf) -> None:
        self.home: Neo4jHome | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._boot, args=(path, conf), name="neo4j-boot", daemon=True)
        self.thread.start()

    def _boot(self, path: Path, conf: dict) -> None:
        try:
            self.home = new_home(path, **conf)
            self.home.start(START_TIMEOUT)
        except BaseException as error:  # handed to whoever waits for the server
            self.failure = error

    def wait(self) -> Neo4jHome:
        self.thread.join()
        if self.failure is not None:
            raise self.failure
        assert self.home is not None
        return self.home

    def close(self) -> None:
        self.thread.join()
        if self.home is not None:
            self.home.kill()
