"""`GET /v1/changes`: the change feed as JSON pages, or as a Server-Sent Events stream.

The stream polls the store every `POLL_SECONDS`; each event's `id:` is its seq, so a
client reconnecting with `Last-Event-ID` resumes where it stopped. The first page is
read before the stream starts, so a stale position, a scope or a database failure is
still answered with its HTTP status rather than inside a 200 stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
from loguru import logger
from starlette.requests import Request
from starlette.responses import Response

from app.domain.access import Principal, Role
from app.errors import Problem, ProblemType
from app.http.auth import authorized
from app.http.responses import JSON
from app.http.streams import open_stream
from app.services.changes import DEFAULT_LIMIT, MAX_LIMIT, ChangeFeed, ChangePage

POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
_MAX_SEQ_DIGITS = 18  # seqs are Neo4j integers (64-bit)


def _seq(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_SEQ_DIGITS:  # "²".isdigit() is true
        raise Problem(ProblemType.invalid_query, f"{name} must be a non-negative integer seq")
    return int(text)


def _position(request: Request) -> tuple[int, int]:
    params = request.query_params
    unknown = set(params) - {"after", "limit"}
    if unknown:
        raise Problem(ProblemType.invalid_query, f"unknown query parameter(s): {sorted(unknown)}")
    # A reconnecting EventSource repeats the original URL; Last-Event-ID is the newer position.
    # `after` is checked even then: a malformed query is refused whatever else the request says.
    after = _seq(params.get("after", "0"), "after")
    resume = request.headers.get("last-event-id")
    # Present but empty is malformed too: an EventSource never sends an empty one.
    if resume is not None:
        after = _seq(resume, "Last-Event-ID")
    text = params.get("limit")
    limit = DEFAULT_LIMIT if text is None else _seq(text, "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(ProblemType.invalid_query, f"limit must be 1 to {MAX_LIMIT}")
    return after, limit


def _wants_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


@authorized(Role.admin)
async def list_changes(request: Request, principal: Principal) -> Response:
    after, limit = _position(request)
    feed: ChangeFeed = request.app.state.services.change_feed()
    if not _wants_stream(request):
        page = await feed.page(principal, after, limit)
        return JSON({"events": page.events, "last": page.last})
    # A token holds a bounded number of streams, each ending at its expiry (app/http/streams.py).
    with open_stream(request) as place:
        page = await feed.page(principal, after, limit)
        return place.response(
            principal,
            _stream(feed, principal, after, limit, page),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


def _event(event: dict) -> bytes:
    return b"id: %d\ndata: %s\n\n" % (event["seq"], orjson.dumps(event))


async def _stream(
    feed: ChangeFeed, principal: Principal, after: int, limit: int, page: ChangePage
) -> AsyncIterator[bytes]:
    # Sent at once so the client sees the headers (and the reconnection delay) immediately.
    yield b"retry: 1000\n: graphflags change feed\n\n"
    quiet_since = time.monotonic()
    while True:
        if page.events:
            yield b"".join(_event(event) for event in page.events)
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
            yield b": heartbeat\n\n"
            quiet_since = time.monotonic()
        after = max(after, page.through)
        if not page.full:
            await asyncio.sleep(POLL_SECONDS)
        try:
            page = await feed.page(principal, after, limit)
        except Problem as problem:
            # Pruned past this stream's position: tell the client to reload, then end.
            yield b"event: expired\ndata: %s\n\n" % orjson.dumps(problem.document())
            return
        except Exception as error:  # the database away, the circuit open, ...: a status can no longer be sent
            # The client reconnects (with Last-Event-ID) and is answered properly then.
            logger.warning("change stream ended: {} ({})", type(error).__name__, error)
            return
