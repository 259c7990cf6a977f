"""CPU per cached lookup inside one process, instrumentation off and on (issue 6).

    flock /tmp/graphflags-bench.lock .venv/bin/python bench/observability_cpu.py [--requests 30000] [--rounds 5]

wrk's throughput on two shared cores moves with whatever else the machine runs; the CPU
time one process spends per request does much less. This drives the real ASGI app (real
middleware, token check, cache, handler, JSON) directly, without sockets, for a cached
GET /v1/orgs/{org}/flags/{flag}, and reports process CPU microseconds per request:
- off:          GRAPHFLAGS_METRICS=false, no tracing: no middleware at all
- metrics:      metrics in multiprocess mode, as `graphflags serve` runs them (mmap files)
- tracing 1%:   metrics plus tracing at the default sample ratio, spans to an in-memory exporter
- tracing 10%:  the same, one request in ten traced
- tracing 100%: every request traced
Each configuration runs in a fresh process (prometheus_client picks its mode at import);
configurations take turns, `--rounds` times. Needs the dev Neo4j (the orgs of
bench/observability.py; run that first, or any org chain `bench-obs-0..3`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ORG, FLAG = "bench-obs-3", "new-checkout"
CONFIGS = {
    "off": {"GRAPHFLAGS_METRICS": "false"},
    "metrics": {"GRAPHFLAGS_METRICS": "true", "MULTIPROC": "1"},
    "tracing 1%": {"GRAPHFLAGS_METRICS": "true", "MULTIPROC": "1", "TRACE": "0.01"},
    "tracing 10%": {"GRAPHFLAGS_METRICS": "true", "MULTIPROC": "1", "TRACE": "0.1"},
    "tracing 100%": {"GRAPHFLAGS_METRICS": "true", "MULTIPROC": "1", "TRACE": "1.0"},
}


async def measure(
    requests: int, around: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
) -> float:
    """CPU microseconds per request; `around()` wraps the measured requests only (a profiler)."""
    from asgi_lifespan import LifespanManager
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from app.auth.tokens import mint_dev_token
    from app.http.app import create_app
    from app.observability import tracing
    from app.settings import Settings

    settings = Settings(watch_catalog=False, log_level="WARNING")
    token = mint_dev_token(settings, subject="bench", roles=["reader"], orgs=["*"], ttl=3600)
    app = create_app(settings)
    path = f"/v1/orgs/{ORG}/flags/{FLAG}"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    statuses: list[int] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async with LifespanManager(app, startup_timeout=60):
        ratio = os.environ.get("TRACE")
        if ratio:
            exporter = InMemorySpanExporter()
            tracing.configure(None, SimpleSpanProcessor(exporter), ratio=float(ratio))
        for _ in range(2000):  # warm the cache, the token memo, the label children
            await app(dict(scope), receive, send)
            if ratio:
                exporter.clear()
        statuses.clear()
        with around():
            started = time.process_time()
            for done in range(requests):
                await app(dict(scope), receive, send)
                if ratio and done % 1000 == 0:
                    exporter.clear()  # an exporter would ship them; do not let memory grow
            spent = time.process_time() - started
    assert statuses == [200] * requests, set(statuses)
    return 1e6 * spent / requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true")
    options = parser.parse_args()
    if options.child:
        print(json.dumps(asyncio.run(measure(options.requests))))
        return
    results: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(options.rounds):
        for name, overrides in CONFIGS.items():
            env = {**os.environ, **overrides}
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            with tempfile.TemporaryDirectory(prefix="graphflags-bench-metrics-") as metrics_dir:
                if overrides.get("MULTIPROC"):
                    env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
                out = subprocess.run(
                    [sys.executable, __file__, "--child", "--requests", str(options.requests)],
                    env=env,
                    cwd=REPO,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            results[name].append(json.loads(out.strip().splitlines()[-1]))
            print(name, f"{results[name][-1]:.1f} us", file=sys.stderr, flush=True)
    base = statistics.median(results["off"])
    print(f"\n{options.rounds} rounds of {options.requests:,} cached lookups each, median shown\n")
    print("| configuration | CPU us/request | vs off | each round |")
    print("| --- | --- | --- | --- |")
    for name, runs in results.items():
        median = statistics.median(runs)
        print(f"| {name} | {median:.1f} | {100 * (median / base - 1):+.1f}% | {', '.join(f'{r:.1f}' for r in runs)} |")


if __name__ == "__main__":
    main()
