"""Where a cached lookup's CPU goes: pyinstrument over the real ASGI app (issue 4).

    .venv/bin/pip install pyinstrument   # a profiler, not a dependency of the service
    flock /tmp/graphflags-bench.lock .venv/bin/python bench/profile_lookup.py [--requests 50000]

The same request as bench/observability_cpu.py (a cached GET /v1/orgs/{org}/flags/{flag}
with the default instrumentation: metrics on, tracing off), without sockets, so uvicorn's
HTTP parsing is not in it. Needs the dev Neo4j with the orgs bench/observability.py makes.
Prints the call tree of the measured requests only (start-up and warm-up excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path

from pyinstrument import Profiler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from observability_cpu import measure


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50_000)
    options = parser.parse_args()
    os.environ.setdefault("GRAPHFLAGS_METRICS", "true")
    # Metrics in multiprocess mode (memory-mapped files), as `graphflags serve` runs them.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="graphflags-profile-metrics-")
    profiler = Profiler(interval=0.0002)

    @contextlib.contextmanager
    def profiled():
        profiler.start()
        try:
            yield
        finally:
            profiler.stop()

    per_request = asyncio.run(measure(options.requests, profiled))
    print(f"{per_request:.1f} us CPU per request over {options.requests:,} requests")
    print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
