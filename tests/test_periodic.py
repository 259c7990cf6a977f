"""The one background-loop helper (app/periodic.py) every background task runs on:
a failing round never ends the loop, failures back off, stop() and cancellation end it."""

from __future__ import annotations

import asyncio

import pytest
from loguru import logger

from app.periodic import Periodic


@pytest.fixture
def log_lines():
    lines: list[tuple[str, str]] = []
    sink = logger.add(
        lambda message: lines.append((message.record["level"].name, message.record["message"])), level="DEBUG"
    )
    yield lines
    logger.remove(sink)


async def test_a_failing_round_does_not_end_the_loop_and_is_logged_once(log_lines):
    outcomes = [OSError("database away"), OSError("still away"), None, None]
    rounds = 0

    async def work() -> None:
        nonlocal rounds
        rounds += 1
        outcome = outcomes[rounds - 1]
        if rounds == len(outcomes):
            loop.stop()
        if outcome is not None:
            raise outcome

    loop = Periodic(work, 0.001, what="read the feed", consequence="the cache stops answering")
    await asyncio.wait_for(loop.run(), timeout=30)
    assert rounds == 4
    warnings = [text for level, text in log_lines if level == "WARNING"]
    assert warnings == ["cannot read the feed (OSError: database away); the cache stops answering; retrying"]
    assert [text for level, text in log_lines if level == "INFO"] == [
        "read the feed: working again after 2 failed round(s)"
    ]


async def test_the_wait_doubles_after_each_failure_up_to_the_bound_and_resets_on_success():
    failing = True

    async def work() -> None:
        if failing:
            raise RuntimeError("no")

    loop = Periodic(work, 1.0, what="x", backoff_max=5.0)
    assert loop.wait_after_round() == 1.0
    waits = []
    for _ in range(5):
        await loop.round()
        waits.append(loop.wait_after_round())
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]
    failing = False
    await loop.round()
    assert loop.wait_after_round() == 1.0


async def test_stop_ends_a_waiting_loop_and_cancellation_is_not_swallowed():
    async def nothing() -> None:
        return None

    waiting = Periodic(nothing, 3600.0, what="x")
    task = asyncio.create_task(waiting.run())
    await asyncio.sleep(0.05)
    waiting.stop()
    await asyncio.wait_for(task, timeout=30)  # would wait an hour without stop()

    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await Periodic(cancelled, 0.001, what="x").run()
