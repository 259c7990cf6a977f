"""A clock that moves only when a test moves it, for code that takes `clock=` (the value cache,
the token verifier, the collector policy): expiry is tested to the instant, with no sleeps."""

from __future__ import annotations

import time


class ManualClock:
    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
