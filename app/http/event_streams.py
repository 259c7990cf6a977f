"""OpenFeature event streams (OFREP ADR-0008): `eventStreams` in bulk answers, and the streams.

A bulk evaluation names one SSE stream, `GET /ofrep/v1/event-streams/{org}?token=...`. The
token is the URL's own credential (app/auth/stream_tokens.py), since an EventSource cannot
send headers; the URL is a secret, so nothing here logs it (paths are logged, never query
strings; uvicorn's access log is off). The stream says nothing but

    id: <etag>
    event: message
    data: {"type": "refetchEvaluation", "etag": "<etag>"}

each time the answer its client was given changes (app/services/event_streams.py decides
when), and a `: keep-alive` comment every GRAPHFLAGS_STREAM_HEARTBEAT_SECONDS; it ends at
the caller's token expiry like every stream (app/http/streams.py). The event id is the
ETag, so a client that reconnects with `Last-Event-ID` is told only of what it has not
heard; without one, of whatever changed since the answer its URL was issued with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from loguru import logger
from starlette.requests import Request
from starlette.responses import Response

from app.auth.stream_tokens import StreamGrant
from app.domain.access import Principal
from app.errors import Problem, ProblemType
from app.http.streams import credential, open_stream
from app.services.event_streams import KEEP_ALIVE, StreamHub, Subscriber

PATH = "/ofrep/v1/event-streams/"
# Sent first, so that the client sees the stream open at once: a comment, which no client
# dispatches (a `retry:` field here made some SSE clients dispatch an empty event).
_OPENING = b": listening for changes to this answer\n\n"
# An SSE comment line as well: proxies see traffic on an idle stream, clients dispatch nothing.
# No blank line after it: that would end an (empty) event, and some clients (httpx-sse 0.4)
# then dispatch one with an empty data once an event id has been seen, against the spec.
_KEEP_ALIVE = b": keep-alive\n"


def described(
    request: Request, principal: Principal, org: str, sets: frozenset[str] | None, etag: str
) -> list[dict[str, Any]]:
    """The `eventStreams` of a bulk answer to `principal` about `org` (its `sets`), whose ETag is `etag`."""
    token = request.app.state.stream_credentials.mint(principal, credential(request.headers), org, sets, etag)
    settings = request.app.state.settings
    base = str(settings.stream_base_url or request.base_url).rstrip("/")
    url = base + PATH + quote(org, safe="") + "?" + urlencode({"token": token})
    return [{"type": "sse", "url": url, "inactivityDelaySec": settings.stream_inactivity_delay}]


async def stream_events(request: Request) -> Response:
    """`GET /ofrep/v1/event-streams/{org}?token=`: refetchEvaluation events for one answer."""
    grant = _grant(request)
    if grant.org != request.path_params["org"]:
        # The credential names its org; a URL pointed at another org (another tenant's) is refused.
        logger.bind(actor=grant.principal.subject, path=request.url.path).warning(
            "forbidden: a stream URL used for another org"
        )
        raise Problem(ProblemType.forbidden, "this stream URL was issued for another organization")
    request.app.state.rate_limits.check(grant.principal)
    hub: StreamHub = request.app.state.stream_hub
    known = request.headers.get("last-event-id") or grant.etag
    with open_stream(request, grant.caller) as place:
        subscriber = await hub.subscribe(grant.principal, grant.org, grant.sets, known)
        return place.response(
            grant.principal,
            _events(subscriber),
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            on_end=lambda: hub.unsubscribe(grant.org, grant.sets, subscriber),
            stop=subscriber.end,  # at the token's expiry: one timer per stream, not one per event
        )


def _grant(request: Request) -> StreamGrant:
    token = request.query_params.get("token")
    try:
        if not token:
            raise Problem(
                ProblemType.unauthorized,
                "this stream URL carries no token; use the URL of an eventStreams entry",
                headers={"WWW-Authenticate": 'Bearer realm="graphflags"'},
            )
        return request.app.state.stream_credentials.verify(token)
    except Problem as problem:
        # The reason only: never the URL's query, which is the credential.
        logger.bind(path=request.url.path).warning("unauthorized stream: {}", problem.detail)
        raise


async def _events(subscriber: Subscriber) -> AsyncIterator[bytes]:
    yield _OPENING
    while (notice := await subscriber.next()) is not None:
        if notice is KEEP_ALIVE:
            yield _KEEP_ALIVE
            continue
        etag = notice
        data = orjson.dumps({"type": "refetchEvaluation", "etag": etag})
        yield b"id: %s\nevent: message\ndata: %s\n\n" % (etag.encode(), data)
