"""Toggle benchmark (issue 11, item 4): seed toggles over distinct orgs as writers grow.

    make bench            # runs this after bench/hotpath.py
    flock -x /tmp/graphflags-bench.lock .venv/bin/python bench/toggles.py [--orgs 100000] [--duration 15]

What it does, all on this machine (loopback, free ports):
1. its own Neo4j home (.local/neo4j/bench-toggles), filled with N orgs (a complete tree,
   fan-out 10) through POST /v1/orgs/bulk when it holds fewer, and every stored value of the
   toggled flag removed, so each toggle below changes a value (no no-ops);
2. `graphflags serve` with 2 uvicorn workers against it;
3. `GET /healthz` under wrk -c50 (the stack's no-op ceiling, same run);
4. `POST /{org}/beta-dashboard/{true|false}` under wrk -t1 at 2, 8, 20 and 50 connections,
   each run over its own 5,000 orgs (every org set true, then every org set false, round
   and round), then vegeta at fixed rates (requests evenly spaced, each target once in turn);
5. `uptime` before and after, and the tables into bench/RESULTS.md between the toggles markers.
`--profile` also records the busiest worker with py-spy during the 50-connection run
(`.venv/bin/pip install py-spy`: a profiler, not a dependency of the service).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from harness import REPO, Run

HOME = REPO / ".local" / "neo4j" / "bench-toggles"
# The service's log and development key (tokens are minted with it).
WORK = REPO / ".local" / "bench-toggles"
START, END = "<!-- toggles:start -->", "<!-- toggles:end -->"
FLAG = "beta-dashboard"
ORGS_PER_RUN = 5_000


def toggles(first: int, count: int) -> list[str]:
    """Every org of the slice set true, then every one set false: each request a change."""
    orgs = [f"o-{n}" for n in range(first, first + count)]
    return [f"/{org}/{FLAG}/true" for org in orgs] + [f"/{org}/{FLAG}/false" for org in orgs]


def clear_toggled_values(uri: str, password: str) -> None:
    """Start from no stored value of the toggled flag, so every toggle is a change."""
    from neo4j import AsyncGraphDatabase

    async def clear() -> None:
        async with AsyncGraphDatabase.driver(uri, auth=("neo4j", password)) as driver:
            await driver.execute_query("MATCH (:Org)-[s:SET]->(:Flag {name: $flag}) DELETE s", flag=FLAG)

    asyncio.run(clear())


def profile(pid: int, duration: int, out: Path) -> subprocess.Popen:
    spy = shutil_which("py-spy")
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(duration),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def settle(pids: list[int], idle: float = 0.15, longest: float = 90.0) -> None:
    """Wait (at most `longest` s) until these processes use under `idle` cores over 3 s."""
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        before = harness.cpu_seconds(pids)
        time.sleep(3)
        used = (harness.cpu_seconds(pids) - before) / 3
        if used < idle:
            return
        print(f"  Neo4j still busy ({used:.2f} cores); waiting", flush=True)


def summarise(raw: Path, top: int = 25) -> None:
    """The functions a worker spent most samples in (own time and with callees), from py-spy's raw stacks."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        samples += int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + int(count)
    print(f"py-spy: {samples} samples of the busiest worker ({raw})")
    for title, table in (("own", own), ("with callees", total)):
        print(f"  top {top} by {title}:")
        for frame, count in sorted(table.items(), key=lambda item: -item[1])[:top]:
            print(f"    {100 * count / samples:5.1f}%  {frame}")


def shutil_which(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", default="2,8,20,50")
    parser.add_argument("--rates", default="200,1000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--heap", default="2g", help="Neo4j's heap (the published figures: 2g)")
    parser.add_argument("--pagecache", default="2g", help="Neo4j's page cache (the published figures: 2g)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=60,
        help="seconds of unreported toggles first: Neo4j's JIT was still compiling the write path "
        "after thousands of toggles (bench/profiles/writecpu-2026-11-30.txt)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the busiest worker at 50 connections")
    parser.add_argument("--no-write", action="store_true", help="print the tables, leave RESULTS.md alone")
    options = parser.parse_args()
    connections = [int(c) for c in options.connections.split(",")]
    rates = [int(r) for r in options.rates.split(",")]
    if options.orgs < ORGS_PER_RUN * (1 + len(connections) + len(rates)):
        raise SystemExit(f"--orgs must be at least {ORGS_PER_RUN * (1 + len(connections) + len(rates)):,}")

    home = harness.bench_home(HOME, heap=options.heap, pagecache=options.pagecache)
    service = None
    try:
        service, base = harness.serve(home, WORK, options.workers)
        token = harness.dev_token(WORK, "bench", "admin", ["*"])
        harness.ensure_orgs(base, options.orgs, token)
        clear_toggled_values(home.bolt_uri, home.password)
        pids = harness.service_pids(service.pid)
        neo4j = [home.pid()]
        # Warm up (not reported): the JVM compiles the write path, and Neo4j works off the bulk load
        # (the first run after loading saw Neo4j use 0.8 cores at 23 toggles/s). Then wait for it to idle.
        print("warming up the write path ...", flush=True)
        harness.wrk(
            "warm-up", base, toggles(0, ORGS_PER_RUN), token, options.warmup, pids, connections=8, method="POST"
        )
        settle(neo4j)
        load_before = harness.uptime()
        runs: list[Run] = []
        database_cpu: list[float] = []

        def measured(run_load):
            """Run one load, noting the cores Neo4j used meanwhile."""
            before, started = harness.cpu_seconds(neo4j), time.monotonic()
            run = run_load()
            database_cpu.append((harness.cpu_seconds(neo4j) - before) / (time.monotonic() - started))
            return run

        print("noop (GET /healthz) at saturation ...", flush=True)
        runs.append(
            measured(lambda: harness.healthz(base, options.duration, pids, case="noop GET /healthz", label="wrk -c50"))
        )
        slice_ = 1  # slice 0 was the warm-up's
        spy = None
        for count in connections:
            print(f"toggles at {count} connections ...", flush=True)
            if options.profile and count == max(connections):
                busiest = max(pids[1:] or pids, key=lambda pid: harness.cpu_seconds([pid]))
                spy = profile(busiest, options.duration, REPO / ".local" / f"toggles-c{count}.pyspy.txt")
            paths = toggles(slice_ * ORGS_PER_RUN, ORGS_PER_RUN)
            run, out = measured(
                lambda: harness.wrk(
                    "toggles",
                    base,
                    paths,
                    token,
                    options.duration,
                    pids,
                    connections=count,
                    method="POST",
                    label=f"wrk -c{count}",
                )
            )
            slice_ += 1
            runs.append(run)
            if spy is not None:
                spy.wait()
                spy = None
        for rate in rates:
            print(f"toggles at {rate}/s (vegeta) ...", flush=True)
            requests = [f"POST {base}{path}" for path in toggles(slice_ * ORGS_PER_RUN, ORGS_PER_RUN)]
            slice_ += 1
            run = measured(lambda: harness.vegeta("toggles", rate, requests, token, options.duration, pids))
            run.rate = f"vegeta {rate:,}/s"
            runs.append(run)
        load_after = harness.uptime()
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
            problems = http.get("/readyz").json()
        if options.profile:
            summarise(REPO / ".local" / f"toggles-c{max(connections)}.pyspy.txt")
        report(runs, database_cpu, options, load_before, load_after, problems)
    finally:
        harness.stop(service)
        home.stop()


def report(runs: list[Run], database_cpu: list[float], options, load_before: str, load_after: str, ready) -> None:
    lines = [
        START,
        f"{harness.measured_on()}; "
        f"Neo4j 5.26.30 (heap {options.heap}, page cache {options.pagecache}) with {options.orgs:,} orgs (fan-out 10); `graphflags serve` with "
        f"{options.workers} uvicorn workers; load tool on the same two cores. Toggles: seed "
        f"`POST /{{org}}/{FLAG}/{{true|false}}`, each run over its own {ORGS_PER_RUN:,} orgs, every request a change. "
        f"wrk -t1 at saturation (its p90 stands in the p95 column); vegeta at fixed rates (requests evenly "
        f"spaced). CPU columns: cores used. Load average before: {load_before}; after: {load_after}.",
        "",
        f"Command: `make bench` (`.venv/bin/python bench/toggles.py --orgs {options.orgs} --duration "
        f"{options.duration} --connections {options.connections} --rates {options.rates}`)",
        "",
        "| case | load | achieved req/s | p50 ms | p95 ms | p99 ms | errors | load tool CPU | service CPU | Neo4j CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(f"{run.row()} {cpu:.2f} |" for run, cpu in zip(runs, database_cpu)),
        END,
    ]
    table = "\n".join(lines)
    harness.publish(table, START, END, "Toggles: writes that scale with writers (issue 11)", write=not options.no_write)
    print(f"readyz after the run: {ready}")


if __name__ == "__main__":
    main()
