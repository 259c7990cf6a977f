"""The collector policy (app/gc_policy.py): frozen objects are out of the collector's passes,
and the thaw gives garbage cycles among them back to one pass that reclaims them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref

import pytest

from app.gc_policy import NO_AUTOMATIC_FULL_PASS, GcPolicy
from tests.support.clock import ManualClock


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector can free it


@pytest.fixture(autouse=True)
def thawed():
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_a_round_freezes_and_a_cycle_frozen_waits_for_the_thaw():
    clock = ManualClock()
    policy = GcPolicy(freeze_every=60, thaw_every=900, clock=clock)
    cycle = Node()
    dead = weakref.ref(cycle)
    await policy.round()
    assert gc.get_freeze_count() > 0
    del cycle
    gc.collect()
    assert dead() is not None, "a frozen cycle is out of the collector's passes"

    clock.advance(899)
    await policy.round()
    gc.collect()
    assert dead() is not None, "no thaw before thaw_every"

    clock.advance(1)
    await policy.round()
    assert dead() is None, "the thaw's pass reclaimed it"
    assert gc.get_freeze_count() > 0, "and what lives is frozen again"


async def test_without_thaw_interval_reached_objects_freed_by_reference_counting_still_go():
    policy = GcPolicy(freeze_every=60, thaw_every=900, clock=ManualClock())
    plain = Node()
    plain.me = None  # no cycle: reference counting frees it, frozen or not
    gone = weakref.ref(plain)
    await policy.round()
    del plain
    assert gone() is None


def _full_passes_while_promoting(objects: int) -> int:
    """Full passes the collector ran by itself while `objects` long-lived containers were made."""
    before = gc.get_stats()[2]["collections"]
    kept = [[n] for n in range(objects)]
    passes = gc.get_stats()[2]["collections"] - before
    del kept
    return passes


async def test_while_the_policy_runs_the_collector_makes_no_full_pass_of_its_own():
    # Without the policy, promoting this many objects triggers full passes (the control: so the
    # assertion below can fail).
    gc.collect()
    assert _full_passes_while_promoting(2_000_000) > 0
    policy = GcPolicy(freeze_every=3600, thaw_every=0)
    running = asyncio.create_task(policy.run())
    await asyncio.sleep(0)  # into run(): frozen, thresholds set
    try:
        assert _full_passes_while_promoting(2_000_000) == 0
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert gc.get_threshold()[2] < NO_AUTOMATIC_FULL_PASS, "the threshold is given back"
