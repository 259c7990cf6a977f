"""Observability overhead (issue 6): cached-lookup throughput with instrumentation off and on.

    flock /tmp/graphflags-bench.lock .venv/bin/python bench/observability.py [--duration 10] [--rounds 3]

Against the development Neo4j of `make run` (NEO4J_URI / NEO4J_PASSWORD, else 127.0.0.1:7687
with .local/neo4j/home/password), all on loopback:
1. creates one small chain of orgs (ids `bench-obs-*`) and sets a flag on its root;
2. for each configuration, starts `graphflags serve` (2 workers, port 18090), warms the
   cache, then runs `wrk -t1 -c50` on GET /v1/orgs/{leaf}/flags/{flag} with one token,
   recording the CPU the service used; configurations take turns, `--rounds` times, so
   drift of the machine spreads over all of them;
   - off:      GRAPHFLAGS_METRICS=false, no OTLP endpoint: no middleware at all
   - metrics:  the default (metrics on, tracing off as no endpoint is set)
   - tracing:  metrics on and spans exported over OTLP/HTTP to a sink in this process, with
               the default sample ratio (1%), with 10% and with every request traced
3. /healthz under `off` in the same runs: the stack's ceiling here.
Prints a Markdown table (median of the rounds) for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from harness import cpu_seconds  # one /proc reader for every benchmark

REPO = Path(__file__).resolve().parent.parent
PORT = 18090
BASE = f"http://127.0.0.1:{PORT}"
FLAG = "new-checkout"

CONFIGS = {
    "off": {"GRAPHFLAGS_METRICS": "false"},
    "metrics": {"GRAPHFLAGS_METRICS": "true"},
    "tracing 1%": {"GRAPHFLAGS_METRICS": "true", "GRAPHFLAGS_OTLP_ENDPOINT": "SINK"},
    "tracing 10%": {
        "GRAPHFLAGS_METRICS": "true",
        "GRAPHFLAGS_OTLP_ENDPOINT": "SINK",
        "GRAPHFLAGS_TRACE_SAMPLE_RATIO": "0.1",
    },
    "tracing 100%": {
        "GRAPHFLAGS_METRICS": "true",
        "GRAPHFLAGS_OTLP_ENDPOINT": "SINK",
        "GRAPHFLAGS_TRACE_SAMPLE_RATIO": "1.0",
    },
}


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that accepts and drops everything (counts the batches)."""

    batches = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        _Sink.batches += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def process_tree(root: int) -> list[int]:
    pids, frontier = [root], [root]
    while frontier:
        children = subprocess.run(["pgrep", "-P", str(frontier.pop())], capture_output=True, text=True).stdout.split()
        pids += [int(child) for child in children]
        frontier += [int(child) for child in children]
    return pids


def wait_ready() -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{BASE}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the service did not become ready")


def wrk(path: str, token: str, duration: int, pids: list[int]) -> tuple[float, float, float, float]:
    """Requests/s, p50 and p99 in ms, and the cores the service used."""
    before, started = cpu_seconds(pids), time.monotonic()
    out = subprocess.run(
        ["wrk", "-t1", "-c50", f"-d{duration}s", "--latency", "-H", f"Authorization: Bearer {token}", BASE + path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    cores = (cpu_seconds(pids) - before) / (time.monotonic() - started)
    if "Non-2xx" in out:
        raise SystemExit(f"errors under load:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups())
    p99 = _ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups())
    return rps, p50, p99, cores


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}"

    keys = Path(tempfile.mkdtemp(prefix="graphflags-bench-obs-"))
    env = {
        **os.environ,
        "GRAPHFLAGS_PORT": str(PORT),
        "GRAPHFLAGS_WORKERS": "2",
        "GRAPHFLAGS_JWT_DEV_KEY_FILE": str(keys / "dev-jwt.key"),
        "GRAPHFLAGS_LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    token = subprocess.run(
        [sys.executable, "-m", "app.cli", "token", "--sub", "bench", "--role", "admin", "--org", "*", "--ttl", "7200"],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    chain = [f"bench-obs-{depth}" for depth in range(4)]
    lookup = f"/v1/orgs/{chain[-1]}/flags/{FLAG}"

    results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in [*CONFIGS, "healthz (off)"]}
    for round_ in range(options.rounds):
        for name, overrides in CONFIGS.items():
            config_env = {**env, **{k: (sink_url if v == "SINK" else v) for k, v in overrides.items()}}
            service = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=config_env, cwd=REPO)
            try:
                wait_ready()
                if round_ == 0 and name == "off":
                    rows = [{"id": org, "parent": chain[i - 1] if i else None} for i, org in enumerate(chain)]
                    httpx.post(f"{BASE}/v1/orgs/bulk", json=rows, headers=headers).raise_for_status()
                    httpx.put(
                        f"{BASE}/v1/orgs/{chain[0]}/flags/{FLAG}", json={"value": True}, headers=headers
                    ).raise_for_status()
                for _ in range(200):  # both workers' caches hold the chain
                    assert httpx.get(BASE + lookup, headers=headers).json()["reason"] == "inherited"
                pids = process_tree(service.pid)
                results[name].append(wrk(lookup, token, options.duration, pids))
                if name == "off":
                    results["healthz (off)"].append(wrk("/healthz", token, options.duration, pids))
            finally:
                service.terminate()
                service.wait(timeout=30)
            print(name, results[name][-1], file=sys.stderr, flush=True)

    base = statistics.median(r[0] for r in results["off"])
    print(
        f"\n{options.rounds} rounds of {options.duration} s each, median shown; wrk -t1 -c50, 2 workers; "
        f"OTLP batches received by the sink: {_Sink.batches}\n"
    )
    print(
        "| configuration | requests/s | vs off | service CPU us/request | vs off | p50 ms | p99 ms "
        "| requests/s of each round |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    base_cpu = statistics.median(1e6 * r[3] / r[0] for r in results["off"])
    for name, runs in results.items():
        rps = statistics.median(r[0] for r in runs)
        cpu = statistics.median(1e6 * r[3] / r[0] for r in runs)  # CPU per request: robust to a busy machine
        print(
            f"| {name} | {rps:,.0f} | {100 * (rps / base - 1):+.1f}% | {cpu:.0f} | {100 * (cpu / base_cpu - 1):+.1f}% "
            f"| {statistics.median(r[1] for r in runs):.2f} | {statistics.median(r[2] for r in runs):.2f} "
            f"| {', '.join(f'{r[0]:,.0f}' for r in runs)} |"
        )


if __name__ == "__main__":
    main()
