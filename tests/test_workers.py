"""How many uvicorn workers `graphflags serve` starts (issue 11, item 3): one per usable CPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.settings import Settings

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="CPU affinity is Linux-only")

_WORKERS_ON = """
import os, sys
os.sched_setaffinity(0, {int(cpu) for cpu in sys.argv[1].split(",")})
from app.settings import Settings
print(Settings().workers)
"""


def _workers_when_allowed(cpus: set[int]) -> int:
    env = {name: value for name, value in os.environ.items() if name != "GRAPHFLAGS_WORKERS"}
    out = subprocess.run(
        [sys.executable, "-c", _WORKERS_ON, ",".join(map(str, sorted(cpus)))],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out)


def test_workers_default_to_the_cpus_the_process_may_use():
    allowed = os.sched_getaffinity(0)
    assert _workers_when_allowed(allowed) == len(allowed)
    # A container or `taskset` that leaves one CPU gets one worker, whatever the machine has.
    assert _workers_when_allowed({min(allowed)}) == 1


def test_graphflags_workers_overrides_the_default(monkeypatch):
    monkeypatch.setenv("GRAPHFLAGS_WORKERS", "3")
    assert Settings().workers == 3
    monkeypatch.setenv("GRAPHFLAGS_WORKERS", "0")
    with pytest.raises(ValueError, match="workers must be at least 1"):
        Settings()
