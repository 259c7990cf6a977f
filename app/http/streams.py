"""Long-lived answers (Server-Sent Events) bound to the token that opened them.

A token is checked once, when a stream opens; without more, a stream would outlive its
token, and one token could hold any number of them. Every streaming endpoint answers
through `open_stream(request)` and `place.response(...)` instead of a bare `StreamingResponse`:

- the stream ends when the token's `exp` passes, with a last `event: token-expired`
  (a 401 problem document); the client reconnects with a fresh token and `Last-Event-ID`;
- one token holds at most `GRAPHFLAGS_MAX_STREAMS_PER_TOKEN` streams at once; past that,
  `429 rate-limited`. Counted per worker process, like the rate limits.

The place is given back when the response ends, however it ends (expiry, the client
gone, the server stopping), in the response's own `__call__`, not in the body's
generator: a generator suspended at `yield` when its client leaves is only closed when
it is garbage-collected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping

import orjson
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.domain.access import Principal
from app.errors import Problem, ProblemType

# A refused stream may try again after this many seconds (another of the token's streams
# may have ended by then; at the latest they all end at the token's expiry).
RETRY_AFTER_SECONDS = 5


class StreamSlots:
    """Open streams per token, at most `per_token` each (one per worker process)."""

    def __init__(self, per_token: int) -> None:
        self.per_token = per_token
        self._open: dict[str, int] = {}

    def claim(self, token: str) -> Callable[[], None]:
        """Take a place for `token` (or raise 429); the returned callable gives it back, once."""
        count = self._open.get(token, 0)
        if count >= self.per_token:
            raise Problem(
                ProblemType.rate_limited,
                f"this token already holds {count} open streams, the most it may "
                f"(GRAPHFLAGS_MAX_STREAMS_PER_TOKEN); close one first",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self._open[token] = count + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._open[token] - 1
            if left:
                self._open[token] = left
            else:
                del self._open[token]

        return release


def credential(headers: Mapping[str, str]) -> str:
    """The token exactly as the request presented it (authentication has accepted it already)."""
    authorization = headers.get("authorization")
    if authorization is not None:
        return authorization.partition(" ")[2].strip()
    return headers.get("x-api-key", "").strip()


class StreamPlace:
    """One of a token's places, held while its stream is being prepared, then by the response.

    with open_stream(request) as place:          # 429 here, before anything is read
        first = await ...                        # a failure here gives the place back
        return place.response(principal, body)   # the response gives it back when it ends
    """

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self._handed_over = False

    def response(
        self,
        principal: Principal,
        body: AsyncIterator[bytes],
        *,
        media_type: str = "text/event-stream",
        headers: Mapping[str, str] | None = None,
        on_end: Callable[[], None] | None = None,
        stop: Callable[[], None] | None = None,
    ) -> StreamingResponse:
        """`body` as a streamed answer that ends at the token's expiry, holding this place.

        `on_end` runs when the response ends, however it ends, even if `body` never started.
        `stop`, when given, makes `body` end soon (without raising): it is called once, at the
        token's expiry, and spares a timeout around every chunk (see `_until`).
        """
        release = self._release
        if on_end is not None:

            def release() -> None:
                try:
                    on_end()
                finally:
                    self._release()

        answer = _TokenStream(_until(body, principal.expires, stop), release, media_type=media_type, headers=headers)
        self._handed_over = True
        return answer

    def __enter__(self) -> StreamPlace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._handed_over:
            self._release()


def open_stream(request: Request, token: str | None = None) -> StreamPlace:
    """A place for one more stream of the request's token (or of `token`: what a stream URL
    names its caller's token by), or `429 rate-limited`."""
    return StreamPlace(request.app.state.stream_slots.claim(token or credential(request.headers)))


class _TokenStream(StreamingResponse):
    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None], **kwargs) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def _until(
    body: AsyncIterator[bytes], expires: float | None, stop: Callable[[], None] | None = None
) -> AsyncIterator[bytes]:
    """`body`'s chunks until `expires` (seconds since the epoch), then one closing event.

    Without `stop`, each chunk is awaited under a timeout. With it, one timer for the stream's
    life calls `stop` at the expiry: a fan-out sends an event on ten thousand streams at once,
    and a timeout per chunk (a timer armed and cancelled each) was a fifth of that cost."""
    if expires is None:  # a token always has an exp (it is essential); nothing to bound otherwise
        async for chunk in body:
            yield chunk
        return
    loop = asyncio.get_running_loop()
    # The wall-clock expiry as a point on the loop's monotonic clock, fixed once.
    deadline = loop.time() + (expires - time.time())
    expired = False

    def at_expiry(stop: Callable[[], None]) -> None:
        nonlocal expired
        expired = True
        stop()

    # Whether the timer fired is recorded, not judged by comparing clocks afterwards: uvloop's
    # timers are whole milliseconds on a cached loop clock, so one may fire while loop.time() is
    # still just short of `deadline` (the stream then ended with no token-expired event).
    timer = None if stop is None else loop.call_at(deadline, at_expiry, stop)
    try:
        if timer is not None:
            async for chunk in body:
                yield chunk
            if not expired:
                return  # the body ended for a reason of its own, not `stop`
        else:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(body)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    break
                yield chunk
                if loop.time() >= deadline:
                    break
        problem = Problem(
            ProblemType.unauthorized,
            "the token this stream was opened with has expired; reconnect with a fresh token and Last-Event-ID",
        )
        yield b"event: token-expired\ndata: %s\n\n" % orjson.dumps(problem.document())
    finally:
        if timer is not None:
            timer.cancel()
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()
