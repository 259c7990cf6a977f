"""The app served by uvicorn over real HTTP in a thread of the test process (see `live_server`)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from app.http.app import create_app
from app.settings import Settings
from tests.support.ports import free_port


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """An app over `settings`, served until the block ends; yields its base URL."""
    port = free_port()
    # The grace period bounds shutdown while an SSE stream is still open.
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=settings.keep_alive_timeout,
        )
    )
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the live server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
