"""`graphflags serve` in a process of its own, over the test Neo4j: start, wait ready, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import SecretStr

from app.settings import Settings
from tests.support.neo4j import Neo4jServer
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parent.parent.parent


def service_env(settings: Settings, **variables: str) -> dict[str, str]:
    """The environment `make run` gives the service, pointed at `settings`' database, key and catalog."""
    user, password = settings.neo4j_auth()
    # A port from the caller's shell would make every served process ask for the same one.
    inherited = {name: value for name, value in os.environ.items() if name != "GRAPHFLAGS_PORT"}
    return {
        **inherited,
        "NEO4J_URI": settings.neo4j_uri,
        "NEO4J_USER": user,
        "NEO4J_PASSWORD": password,
        "GRAPHFLAGS_JWT_DEV_KEY_FILE": str(settings.jwt_dev_key_file),
        "GRAPHFLAGS_FLAGS_FILE": str(settings.flags_file),
        "GRAPHFLAGS_WATCH_CATALOG": "false",
        **variables,
    }


def wait_until(
    answers: Callable[[], bool],
    *,
    alive: Callable[[], bool] = lambda: True,
    timeout: float = 90,
    what: str = "the service",
    details: Callable[[], str] = lambda: "",
) -> None:
    """Poll `answers()` until it is true; a transport error counts as "not yet". Fails at once
    when `alive()` turns false, and at `timeout` (generous: the machine may be loaded)."""
    deadline = time.monotonic() + timeout
    while True:
        assert alive(), f"{what} exited: {details()}"
        try:
            if answers():
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{what} did not become ready: {details()}"
        time.sleep(0.1)


class Served:
    """One `graphflags serve ARGS` process on a free port, its output in `log`.

    `kill()` is a crash (SIGKILL to its whole session: `serve` runs workers as child processes,
    and a crash must take them all); `stop()` is SIGTERM and a wait; `start()` starts it again.
    """

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        *arguments: str,
        name: str = "graphflags serve",
        ready_path: str = "/readyz",
    ) -> None:
        # A port the environment names (GRAPHFLAGS_PORT, as `make run` sets it) is honoured as is.
        self.port = int(env["GRAPHFLAGS_PORT"]) if "GRAPHFLAGS_PORT" in env else free_port()
        self.port_arguments = () if "GRAPHFLAGS_PORT" in env else ("--port", str(self.port))
        self.url = f"http://127.0.0.1:{self.port}"
        self.env, self.log, self.arguments, self.name, self.ready_path = env, log, arguments, name, ready_path
        self.process: subprocess.Popen | None = None

    def start(self, *, ready: Callable[[], bool] | None = None, timeout: float = 90) -> Served:
        """Start and wait until `ready()` (default: GET `ready_path` answers 200)."""
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", *self.port_arguments, *self.arguments],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(
                ready or (lambda: httpx.get(f"{self.url}{self.ready_path}", timeout=5).status_code == 200),
                alive=self.alive,
                timeout=timeout,
                what=self.name,
                details=self.tail,
            )
        except BaseException:
            self.kill()  # never leave a half-started server behind a failed test
            raise
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self, timeout: float = 30) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *_) -> None:
        self.stop()


def crashable_env(settings: Settings, server: Neo4jServer) -> dict[str, str]:
    """The environment of a process a test kills as a crash, over `server`: one process, because
    uvicorn's workers outlive a killed supervisor; upstream retries capped at 1 s."""
    over_server = settings.model_copy(
        update={"neo4j_uri": server.uri, "neo4j_user": server.user, "neo4j_password": SecretStr(server.password)}
    )
    return service_env(
        over_server,
        GRAPHFLAGS_LOG_JSON="false",
        GRAPHFLAGS_METRICS="false",
        GRAPHFLAGS_UPSTREAM_BACKOFF_MAX="1",
        GRAPHFLAGS_WORKERS="1",
    )


def crashable(name: str, env: dict[str, str], logs: Path, *arguments: str) -> Served:
    """A named `graphflags serve` (log `logs/<name>.log`), ready once /healthz answers: a region
    is not ready (/readyz) before it has followed its upstream."""
    return Served(env, logs / f"{name}.log", *arguments, name=name, ready_path="/healthz")
