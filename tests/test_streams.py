"""Streams bound to their token (docs/api.md "Limits"): an SSE stream ends when its token
expires, and one token holds at most GRAPHFLAGS_MAX_STREAMS_PER_TOKEN (4) streams."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import orjson
import uvloop

from app.http.streams import _until

SSE = {"Accept": "text/event-stream"}
FAR = {"after": 10**15}  # no events: only the stream's own lines


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **SSE}


async def _until_the_end(stream: httpx.Response) -> list[str]:
    return [line async for line in stream.aiter_lines()]


async def test_a_stream_ends_when_its_token_expires(live_server, tokens):
    # Long enough to open the stream on a busy machine, short enough to wait for.
    token = tokens.mint("admin", ttl=6, sub="short-lived")
    expires = orjson.loads(_payload(token))["exp"]
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        async with http.stream("GET", "/v1/changes", params=FAR, headers=bearer(token)) as stream:
            assert stream.status_code == 200, await stream.aread()
            # Polled with a bound: the stream must end on its own, soon after the expiry.
            lines = await asyncio.wait_for(_until_the_end(stream), timeout=max(0.0, expires - time.time()) + 20)
    assert time.time() >= expires
    # The last event says why, so a client knows to come back with a fresh token.
    assert "event: token-expired" in lines
    data = next(line for line in reversed(lines) if line.startswith("data: "))
    assert orjson.loads(data.removeprefix("data: "))["status"] == 401


async def test_a_fifth_stream_on_one_token_is_429_until_one_closes(live_server, tokens):
    token = tokens.mint("admin", sub="many-streams")
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http, contextlib.AsyncExitStack() as open_:
        streams = []
        for _ in range(4):
            stream = await open_.enter_async_context(
                http.stream("GET", "/v1/changes", params=FAR, headers=bearer(token))
            )
            assert stream.status_code == 200
            streams.append(stream)
        async with http.stream("GET", "/v1/changes", params=FAR, headers=bearer(token)) as fifth:
            assert fifth.status_code == 429
            await fifth.aread()
        assert fifth.headers["content-type"].startswith("application/problem+json")
        assert fifth.json()["type"].endswith("/rate-limited")
        assert int(fifth.headers["retry-after"]) >= 1
        # Another token (even of the same subject) has places of its own; JSON pages need none.
        other = tokens.mint("admin", sub="many-streams", ttl=599)
        async with http.stream("GET", "/v1/changes", params=FAR, headers=bearer(other)) as stream:
            assert stream.status_code == 200
        assert (
            await http.get("/v1/changes", params=FAR, headers={"Authorization": f"Bearer {token}"})
        ).status_code == 200
        # Closing one stream frees its place (once the server has seen the connection go).
        await streams[0].aclose()
        deadline = time.monotonic() + 20
        while True:
            async with http.stream("GET", "/v1/changes", params=FAR, headers=bearer(token)) as again:
                if again.status_code == 200:
                    break
                assert again.status_code == 429
            assert time.monotonic() < deadline, "closing a stream did not free its place"
            await asyncio.sleep(0.1)


def _payload(token: str) -> bytes:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_the_expiry_event_is_sent_under_uvloop_whose_timers_round_to_milliseconds():
    """The server runs on uvloop (uvicorn picks it), whose timers fire on a whole-millisecond,
    cached loop clock: a stream must not take the timer's early tick for an end of its own.
    (It did, about half the time at sub-millisecond deadlines, and CI once met it.)"""

    async def closes_with_the_expiry_event(delay: float) -> bool:
        stopped = asyncio.Event()

        async def body():
            yield b": opening\n\n"
            await stopped.wait()  # ends only when told to, as an event stream's writer does

        chunks = [chunk async for chunk in _until(body(), time.time() + delay, stopped.set)]
        return any(chunk.startswith(b"event: token-expired") for chunk in chunks)

    async def all_rounds() -> list[bool]:
        return [await closes_with_the_expiry_event(0.0003 + (i % 10) * 0.0001) for i in range(100)]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert all(runner.run(all_rounds()))
