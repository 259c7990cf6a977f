"""Cost of the rate-limit check per request (app/http/rate_limits.py), single core, in-process.

    flock /tmp/graphflags-bench.lock .venv/bin/python bench/rate_limits.py

Calls RateLimits.check(principal) as `authorized` does, for: limits off, a token limit,
and token + tenant limits (a token with one tenant, and one with three), limits high
enough never to refuse. Reports CPU microseconds per call (process time, so time the
process spent waiting for a core on a busy machine is not counted).
"""

from __future__ import annotations

import time

from app.domain.access import Principal, Role
from app.http.rate_limits import RateLimits

CALLS = 200_000


def per_call(limits: RateLimits, principal: Principal) -> float:
    check = limits.check
    for _ in range(1000):
        check(principal)
    started = time.process_time()
    for _ in range(CALLS):
        check(principal)
    return (time.process_time() - started) / CALLS * 1e6


def main() -> None:
    one = Principal("alice", Role.reader, frozenset({"acme"}))
    three = Principal("bob", Role.reader, frozenset({"acme", "globex", "initech"}))
    cases = [
        ("off", RateLimits("", ""), one),
        ("token 10000000/second", RateLimits("10000000/second", ""), one),
        ("token + tenant, 1 tenant", RateLimits("10000000/second", "10000000/second"), one),
        ("token + tenant, 3 tenants", RateLimits("10000000/second", "10000000/second"), three),
    ]
    print(f"| case | CPU us per request ({CALLS:,} calls) |\n| --- | --- |")
    for name, limits, principal in cases:
        print(f"| {name} | {per_call(limits, principal):.2f} |")


if __name__ == "__main__":
    main()
