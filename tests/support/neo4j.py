"""Disposable Neo4j homes for tests, through app/neo4j_server (no shell-out to neo4jctl)."""

from __future__ import annotations

import contextlib
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


def new_home(path: Path, *, heap: str = "512m", pagecache: str = "128m", bolt_tls: bool = False) -> Neo4jHome:
    """An initialised (not started) home on free ports."""
    return Neo4jHome.init(
        path,
        ServerConf(bolt_port=free_port(), http_port=free_port(), heap=heap, pagecache=pagecache, bolt_tls=bolt_tls),
    )


# A JVM start takes ~20 s on a quiet machine and has taken over 120 s (the CLI's default) on this
# shared one under load: a test harness waits longer rather than fail a whole session for it.
START_TIMEOUT = 600


@contextlib.contextmanager
def running_home(path: Path, *, start: bool = True, **conf) -> Iterator[Neo4jHome]:
    """A home on free ports, started (unless `start=False`), and always stopped at the end."""
    home = new_home(path, **conf)
    try:
        if start:
            home.start(START_TIMEOUT)
        yield home
    finally:
        home.stop()
