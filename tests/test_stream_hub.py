"""The stream hub's keep-alive wheel (app/services/event_streams.py), in-process: every stream
is kept alive once per interval, and the wake-ups are spread over the interval, never all at
once. (What a change tells which stream is tested end to end in test_event_streams.py.)"""

from __future__ import annotations

import asyncio
import contextlib

from app.domain.access import Principal
from app.services.event_streams import KEEP_ALIVE_SLICES, Notice, StreamHub, Subscriber

INTERVAL = 1.5
STREAMS = 2 * KEEP_ALIVE_SLICES


class OneAnswer:
    """Every org answers the same one flag: what is answered plays no part in keeping alive."""

    async def entries(self, org, sets, only=None):
        return [org], {"beta": b'{"key":"beta","value":true}'}

    def etag(self, entries):
        return '"one"'


async def _keep_alives(subscriber: Subscriber, heard: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while (notice := await subscriber.next()) is not None:
        if notice is Notice.KEEP_ALIVE:
            heard.append(loop.time())


async def test_each_stream_is_kept_alive_once_an_interval_and_the_wake_ups_are_spread():
    hub = StreamHub(OneAnswer(), lambda flag: None)
    reader = Principal("reader", None, frozenset({"*"}))
    subscribers = [await hub.subscribe(reader, f"org{n}", None, '"one"') for n in range(STREAMS)]
    leaver = subscribers.pop()
    hub.unsubscribe(f"org{STREAMS - 1}", None, leaver)
    heard: list[list[float]] = [[] for _ in subscribers]
    readers = [asyncio.create_task(_keep_alives(s, times)) for s, times in zip(subscribers, heard, strict=True)]
    started = asyncio.get_running_loop().time()
    wheel = asyncio.create_task(hub.keep_alive(INTERVAL))
    try:
        await asyncio.sleep(INTERVAL * 2.5)
    finally:
        wheel.cancel()
        for task in readers:
            task.cancel()
        for task in (wheel, *readers):
            with contextlib.suppress(asyncio.CancelledError):
                await task
    # Each stream heard one keep-alive per interval: at least two in two and a half intervals,
    # and never two much closer than an interval apart (each stream has one slot of the wheel).
    assert all(len(times) >= 2 for times in heard), [len(times) for times in heard]
    gaps = [later - earlier for times in heard for earlier, later in zip(times, times[1:])]
    assert min(gaps) > INTERVAL / 2, min(gaps)
    # Spread: the first keep-alives span most of the first interval; one tick for all would
    # have sent them within a few milliseconds of each other, at its end.
    firsts = sorted(times[0] - started for times in heard)
    assert firsts[-1] - firsts[0] >= INTERVAL / 2, firsts
    assert firsts[0] < INTERVAL / 2, firsts
    # A stream that left is kept alive no more.
    assert not leaver.keep_alive_due
