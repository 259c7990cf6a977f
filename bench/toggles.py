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
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hotpath import (
    NEO4JCTL,
    REPO,
    Run,
    _ms,
    cpu_seconds,
    service_pids,
    vegeta,
    wait_ready,
    write_section,
)

HOME = REPO / ".local" / "neo4j" / "bench-toggles"
START, END = "<!-- toggles:start -->", "<!-- toggles:end -->"
FLAG = "beta-dashboard"
ORGS_PER_RUN = 5_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sh(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, text=True, **kwargs)


def uptime() -> str:
    return sh("uptime", capture_output=True).stdout.strip().split("load average:")[1].strip()


def toggles(first: int, count: int) -> list[str]:
    """Every org of the slice set true, then every one set false: each request a change."""
    orgs = [f"o-{n}" for n in range(first, first + count)]
    return [f"/{org}/{FLAG}/true" for org in orgs] + [f"/{org}/{FLAG}/false" for org in orgs]


def wrk(
    case: str,
    base: str,
    paths: list[str],
    token: str,
    duration: int,
    connections: int,
    pids: list[int],
    method: str = "GET",
    tmp: Path = Path(tempfile.gettempdir()),
) -> tuple[Run, str]:
    script = tmp / ("toggles-" + re.sub(r"\W+", "-", case) + f"-{connections}.lua")
    listing = ",".join(f'"{path}"' for path in paths)
    script.write_text(
        f"local paths = {{{listing}}}\nlocal i = 0\n"
        f'wrk.method = "{method}"\nwrk.headers["Authorization"] = "Bearer {token}"\n'
        "request = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n"
    )
    before = cpu_seconds(pids)
    started = time.monotonic()
    load = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), base],
        stdout=subprocess.PIPE,
        text=True,
    )
    load_cpu = 0.0
    while load.poll() is None:
        load_cpu = max(load_cpu, cpu_seconds([load.pid]))
        time.sleep(0.2)
    out = load.stdout.read()
    wall = time.monotonic() - started
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {
        m.group(1): _ms(m.group(2), m.group(3)) for m in re.finditer(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)$", out, re.M)
    }
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += (
        sum(int(n) for n in re.findall(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)[0])
        if "Socket errors" in out
        else 0
    )
    sent = int(re.search(r"(\d+) requests in", out).group(1))
    return Run(
        case,
        f"wrk -c{connections}",
        sent,
        sent - errors,
        errors,
        rps,
        latency.get("50", 0),
        latency.get("90", 0),
        latency.get("99", 0),
        load_cpu / wall,
        (cpu_seconds(pids) - before) / wall,
    ), out


def clear_toggled_values(uri: str, password: str) -> None:
    """Start from no stored value of the toggled flag, so every toggle is a change."""
    from neo4j import AsyncGraphDatabase

    async def clear() -> None:
        async with AsyncGraphDatabase.driver(uri, auth=("neo4j", password)) as driver:
            await driver.execute_query("MATCH (:Org)-[s:SET]->(:Flag {name: $flag}) DELETE s", flag=FLAG)

    asyncio.run(clear())


def ensure_orgs(base: str, orgs: int, token: str) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600) as http:
        wait_ready(http)
        if http.get(f"/v1/orgs/o-{orgs - 1}").status_code == 200:
            return
        print(f"loading {orgs:,} orgs through POST /v1/orgs/bulk ...", flush=True)
        rows = "".join(f"o-{n},{f'o-{(n - 1) // 10}' if n else ''}\n" for n in range(orgs))
        response = http.post("/v1/orgs/bulk", content="id,parent\n" + rows, headers={"Content-Type": "text/csv"})
        response.raise_for_status()


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
        before = cpu_seconds(pids)
        time.sleep(3)
        used = (cpu_seconds(pids) - before) / 3
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
    parser.add_argument("--profile", action="store_true", help="py-spy the busiest worker at 50 connections")
    parser.add_argument("--no-write", action="store_true", help="print the tables, leave RESULTS.md alone")
    options = parser.parse_args()
    connections = [int(c) for c in options.connections.split(",")]
    rates = [int(r) for r in options.rates.split(",")]
    if options.orgs < ORGS_PER_RUN * (1 + len(connections) + len(rates)):
        raise SystemExit(f"--orgs must be at least {ORGS_PER_RUN * (1 + len(connections) + len(rates)):,}")

    bolt, http_port, port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    sh(
        str(NEO4JCTL),
        "init",
        str(HOME),
        "--bolt-port",
        str(bolt),
        "--http-port",
        str(http_port),
        "--heap",
        "2g",
        "--pagecache",
        "2g",
        stdout=subprocess.DEVNULL,
    )
    password = (HOME / "password").read_text().strip()
    env = {
        **os.environ,
        "NEO4J_URI": f"bolt://127.0.0.1:{bolt}",
        "NEO4J_PASSWORD": password,
        "GRAPHFLAGS_PORT": str(port),
        "GRAPHFLAGS_LOG_LEVEL": "WARNING",
        "GRAPHFLAGS_WORKERS": str(options.workers),
    }
    token = sh(
        sys.executable,
        "-m",
        "app.cli",
        "token",
        "--sub",
        "bench",
        "--role",
        "admin",
        "--org",
        "*",
        "--ttl",
        "86400",
        capture_output=True,
        cwd=REPO,
    ).stdout.strip()
    sh(str(NEO4JCTL), "start", str(HOME), stdout=subprocess.DEVNULL)
    service = None
    try:
        sh(sys.executable, "-m", "app.cli", "migrate", env=env, cwd=REPO, stdout=subprocess.DEVNULL)
        service = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=open(REPO / ".local" / "bench-toggles-serve.log", "w"),
        )
        ensure_orgs(base, options.orgs, token)
        clear_toggled_values(env["NEO4J_URI"], password)
        pids = service_pids(service.pid)
        neo4j = [int((HOME / "run" / "neo4j.pid").read_text().strip())]
        # Warm up (not reported): the JVM compiles the write path, and Neo4j works off the bulk load
        # (the first run after loading saw Neo4j use 0.8 cores at 23 toggles/s). Then wait for it to idle.
        print("warming up the write path ...", flush=True)
        wrk("warm-up", base, toggles(0, ORGS_PER_RUN), token, 10, 8, pids, method="POST")
        settle(neo4j)
        load_before = uptime()
        runs: list[Run] = []
        database_cpu: list[float] = []

        def measured(run_load):
            """Run one load, noting the cores Neo4j used meanwhile."""
            before, started = cpu_seconds(neo4j), time.monotonic()
            run = run_load()
            database_cpu.append((cpu_seconds(neo4j) - before) / (time.monotonic() - started))
            return run

        print("noop (GET /healthz) at saturation ...", flush=True)
        runs.append(
            measured(lambda: wrk("noop GET /healthz", base, ["/healthz"], token, options.duration, 50, pids)[0])
        )
        slice_ = 1  # slice 0 was the warm-up's
        spy = None
        for count in connections:
            print(f"toggles at {count} connections ...", flush=True)
            if options.profile and count == max(connections):
                busiest = max(pids[1:] or pids, key=lambda pid: cpu_seconds([pid]))
                spy = profile(busiest, options.duration, REPO / ".local" / f"toggles-c{count}.pyspy.txt")
            paths = toggles(slice_ * ORGS_PER_RUN, ORGS_PER_RUN)
            run, out = measured(
                lambda: wrk("toggles", base, paths, token, options.duration, count, pids, method="POST")
            )
            slice_ += 1
            runs.append(run)
            if spy is not None:
                spy.wait()
                spy = None
        for rate in rates:
            print(f"toggles at {rate}/s (vegeta) ...", flush=True)
            paths = toggles(slice_ * ORGS_PER_RUN, ORGS_PER_RUN)
            slice_ += 1
            run = measured(
                lambda: vegeta(
                    "toggles", rate, [base + path for path in paths], token, options.duration, pids, method="POST"
                )
            )
            run.rate = f"vegeta {rate:,}/s"
            runs.append(run)
        load_after = uptime()
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
            problems = http.get("/readyz").json()
        if options.profile:
            summarise(REPO / ".local" / f"toggles-c{max(connections)}.pyspy.txt")
        report(runs, database_cpu, options, load_before, load_after, problems)
    finally:
        if service is not None:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=30)
        sh(str(NEO4JCTL), "stop", str(HOME), stdout=subprocess.DEVNULL)


def report(runs: list[Run], database_cpu: list[float], options, load_before: str, load_after: str, ready) -> None:
    cpu = subprocess.run(
        ["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        START,
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores ({cpu}); "
        f"Neo4j 5.26.30 (heap 2g, page cache 2g) with {options.orgs:,} orgs (fan-out 10); `graphflags serve` with "
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
    print(table)
    print(f"readyz after the run: {ready}")
    if not options.no_write:
        write_section(START, END, "Toggles: writes that scale with writers (issue 11)", table)


if __name__ == "__main__":
    main()
