"""Hot-path load benchmark (issue 4): lookups, toggles and bulk reads against a 1M-org graph.

    make bench            # or: .venv/bin/python bench/hotpath.py [--orgs 1000000] [--duration 10]

What it does, all on this machine (loopback only):
1. a dedicated Neo4j home (.local/neo4j/bench, ports 27687/27474), filled with N orgs
   (a complete tree, fan-out 10) through POST /v1/orgs/bulk when it holds fewer;
2. `graphflags serve` with 2 uvicorn workers on 127.0.0.1:18080 against it;
3. for each case, h2load at fixed rates (1,000 / 5,000 / 10,000 requests/s over 50
   connections, per-request log -> p50/p95/p99; uncached lookups and toggles with vegeta,
   whose requests are evenly spaced and each URI once) and wrk at saturation, recording the
   CPU seconds the load tool and the service each used (from /proc);
4. the same for a no-op baseline (GET /healthz) measured in the same run;
5. the tables go into bench/RESULTS.md between the hotpath markers.
Run it on a quiet machine: the load tool and the service share the two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
NEO4JCTL = REPO / "neo4j" / "neo4jctl"
HOME = REPO / ".local" / "neo4j" / "bench"
BOLT, HTTP, PORT = 27687, 27474, 18080
BASE = f"http://127.0.0.1:{PORT}"
RESULTS = REPO / "bench" / "RESULTS.md"
START, END = "<!-- hotpath:start -->", "<!-- hotpath:end -->"
# Issue 11: each cached lookup beside the no-op of the same run.
CEILING_START, CEILING_END = "<!-- ceiling:start -->", "<!-- ceiling:end -->"
CEILING_CASES = {
    "cached": "`GET /v1/orgs/{org}/flags/{flag}`",
    "seed": "seed `GET /{org}/{flag}`",
    "ofrep": "OFREP `POST /ofrep/v1/evaluate/flags/{flag}`",
}
DEFAULT_CASES = "noop,cached,seed,ofrep,uncached,mix,toggles,bulk"
CONNECTIONS = 50
# h2load sends POSTs only with a body file (it cannot mmap /dev/null): the seed toggle ignores it.
BODY = Path(__file__).resolve().parent / "empty-body.txt"
# `make bench` installs vegeta into .local/bin with `go install` when it is not on PATH.
VEGETA = shutil.which("vegeta") or str(REPO / ".local" / "bin" / "vegeta")
FLAGS = ["new-checkout", "theme", "max-upload-mb", "retention-days", "beta-dashboard"]


@dataclass
class Run:
    case: str
    rate: str
    sent: int
    ok: int
    errors: int
    rps: float
    p50: float
    p95: float
    p99: float
    load_cpu: float  # cores used by the load tool
    service_cpu: float  # cores used by the service (all workers)

    def row(self) -> str:
        return (
            f"| {self.case} | {self.rate} | {self.rps:,.0f} | {self.p50:.2f} | {self.p95:.2f} | {self.p99:.2f} "
            f"| {self.errors} | {self.load_cpu:.2f} | {self.service_cpu:.2f} |"
        )


def sh(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, text=True, **kwargs)


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except FileNotFoundError:
            pass
    return total


def service_pids(master: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return [master, *map(int, children)]


def start_database(env: dict[str, str]) -> None:
    """The benchmark's own Neo4j, up and migrated before the service starts (serve needs it)."""
    sh(str(NEO4JCTL), "start", str(HOME))
    sh(sys.executable, "-m", "app.cli", "migrate", env=env, cwd=REPO)


def ensure_orgs(orgs: int, token: str) -> None:
    with httpx.Client(base_url=BASE, headers={"Authorization": f"Bearer {token}"}, timeout=600) as http:
        wait_ready(http)
        if http.get(f"/v1/orgs/o-{orgs - 1}").status_code == 200:
            return
        print(f"loading {orgs:,} orgs through POST /v1/orgs/bulk ...", flush=True)
        rows = "".join(f"o-{n},{f'o-{(n - 1) // 10}' if n else ''}\n" for n in range(orgs))
        started = time.monotonic()
        response = http.post("/v1/orgs/bulk", content="id,parent\n" + rows, headers={"Content-Type": "text/csv"})
        response.raise_for_status()
        print(f"  {response.json()} in {time.monotonic() - started:.1f} s", flush=True)


def wait_ready(http: httpx.Client) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if http.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit("the service did not become ready")


def percentiles(log: Path) -> tuple[int, int, list[float]]:
    ok, errors, latencies = 0, 0, []
    for line in log.read_text().splitlines():
        _, status, micros = line.split("\t")
        latencies.append(int(micros) / 1000)
        if 200 <= int(status) < 300:
            ok += 1
        else:
            errors += 1
    return ok, errors, latencies


def h2load(
    case: str,
    rate: int,
    uris: list[str],
    token: str,
    duration: int,
    pids: list[int],
    tmp: Path = Path(tempfile.gettempdir()),
    body: bytes | None = None,
) -> Run:
    """`body`: every request is a POST of it (JSON)."""
    uri_file, log = tmp / f"{case}-uris.txt", tmp / f"{case}-{rate}.log"
    uri_file.write_text("\n".join(uris) + "\n")
    log.unlink(missing_ok=True)
    args = [
        "h2load",
        "--h1",
        f"-c{CONNECTIONS}",
        "-t1",
        f"--rps={rate / CONNECTIONS:g}",
        f"-D{duration}",
        f"--log-file={log}",
        "-i",
        str(uri_file),
        "-H",
        f"Authorization: Bearer {token}",
    ]
    if body is not None:
        body_file = tmp / f"{case}-body.json"
        body_file.write_bytes(body)
        args += ["-d", str(body_file), "-H", "Content-Type: application/json"]
    before = cpu_seconds(pids)
    started = time.monotonic()
    load = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    load_cpu = 0.0
    while load.poll() is None:
        load_cpu = max(load_cpu, cpu_seconds([load.pid]))
        time.sleep(0.2)
    wall = time.monotonic() - started
    ok, errors, latencies = percentiles(log)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Run(
        case,
        f"{rate:,}/s",
        ok + errors,
        ok,
        errors,
        (ok + errors) / duration,
        quantiles[49],
        quantiles[94],
        quantiles[98],
        load_cpu / wall,
        (cpu_seconds(pids) - before) / wall,
    )


def vegeta(
    case: str,
    rate: int,
    uris: list[str],
    token: str,
    duration: int,
    pids: list[int],
    method: str = "GET",
    tmp: Path = Path(tempfile.gettempdir()),
) -> Run:
    """A fixed rate with vegeta: requests evenly spaced (one every 1/rate s), each target used
    once in turn, and connections opened as needed, so a slow answer never holds back the
    next request. Used where h2load misleads: its --rps fires every connection's request in
    the same instant, and every connection walks the same URI list, so toggles (serialised
    writes) measured the wait behind a burst of 50, and 'uncached' lookups asked for each
    cold org 50 times (one database read, 49 answers from it)."""
    targets, results = tmp / f"{case}-targets.txt", tmp / f"{case}-{rate}.bin"
    targets.write_text("".join(f"{method} {uri}\n" for uri in uris))
    before = cpu_seconds(pids)
    started = time.monotonic()
    load = subprocess.Popen(
        [
            VEGETA,
            "attack",
            f"-rate={rate}/s",
            f"-duration={duration}s",
            f"-targets={targets}",
            "-header",
            f"Authorization: Bearer {token}",
            f"-output={results}",
        ]
    )
    load_cpu = 0.0
    while load.poll() is None:
        load_cpu = max(load_cpu, cpu_seconds([load.pid]))
        time.sleep(0.2)
    wall = time.monotonic() - started
    report = json.loads(
        subprocess.run(
            [VEGETA, "report", "-type=json", str(results)], capture_output=True, text=True, check=True
        ).stdout
    )
    ok = sum(n for code, n in report["status_codes"].items() if code.startswith("2"))
    latency = {key: nanos / 1e6 for key, nanos in report["latencies"].items()}
    return Run(
        case,
        f"{rate:,}/s",
        report["requests"],
        ok,
        report["requests"] - ok,
        report["throughput"],
        latency["50th"],
        latency["95th"],
        latency["99th"],
        load_cpu / wall,
        (cpu_seconds(pids) - before) / wall,
    )


def wrk(
    case: str,
    paths: list[str],
    token: str,
    duration: int,
    pids: list[int],
    method: str = "GET",
    tmp: Path = Path(tempfile.gettempdir()),
    bodies: list[str] | None = None,
) -> Run:
    """`bodies`: JSON bodies sent in turn with the paths (each request a POST)."""
    script = tmp / f"{case}.lua"
    listing = ",".join(f'"{path}"' for path in paths)
    if bodies is None:
        script.write_text(
            f"local paths = {{{listing}}}\nlocal i = 0\n"
            f'wrk.method = "{method}"\nwrk.headers["Authorization"] = "Bearer {token}"\n'
            "request = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n"
        )
    else:
        contents = ",".join(f"[[{body}]]" for body in bodies)
        script.write_text(
            f"local paths = {{{listing}}}\nlocal bodies = {{{contents}}}\nlocal i = 0\n"
            f'wrk.method = "POST"\nwrk.headers["Authorization"] = "Bearer {token}"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            "request = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i], nil, bodies[i])\nend\n"
        )
    before = cpu_seconds(pids)
    started = time.monotonic()
    load = subprocess.Popen(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", "-s", str(script), BASE],
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
    sent = int(re.search(r"(\d+) requests in", out).group(1))
    return Run(
        case,
        "saturation",
        sent,
        sent - errors,
        errors,
        rps,
        latency.get("50", 0),
        latency.get("90", 0),
        latency.get("99", 0),
        load_cpu / wall,
        (cpu_seconds(pids) - before) / wall,
    )


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rates", default="1000,5000,10000")
    # Unset: what `make run` starts, one worker per usable CPU (GRAPHFLAGS_WORKERS's default).
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--cases", default=DEFAULT_CASES)
    parser.add_argument("--no-write", action="store_true", help="print the tables, leave RESULTS.md alone")
    options = parser.parse_args()
    rates = [int(rate) for rate in options.rates.split(",")]
    cases = options.cases.split(",")

    env = {
        **os.environ,
        "NEO4J_URI": f"bolt://127.0.0.1:{BOLT}",
        "NEO4J_PASSWORD": (HOME / "password").read_text().strip() if (HOME / "password").exists() else "",
        "GRAPHFLAGS_PORT": str(PORT),
        "GRAPHFLAGS_LOG_LEVEL": "WARNING",
    }
    if options.workers is None:
        env.pop("GRAPHFLAGS_WORKERS", None)
        sys.path.insert(0, str(REPO))
        from app.settings import usable_cpus

        options.workers = usable_cpus()
    else:
        env["GRAPHFLAGS_WORKERS"] = str(options.workers)
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
    # Lookups are measured as clients make them: a reader, scoped to the tree's root (o-0).
    reader = sh(
        sys.executable,
        "-m",
        "app.cli",
        "token",
        "--sub",
        "bench-reader",
        "--role",
        "reader",
        "--org",
        "o-0",
        "--ttl",
        "86400",
        capture_output=True,
        cwd=REPO,
    ).stdout.strip()
    load_before = os.getloadavg()
    sh(
        str(NEO4JCTL),
        "init",
        str(HOME),
        "--bolt-port",
        str(BOLT),
        "--http-port",
        str(HTTP),
        "--heap",
        "2g",
        "--pagecache",
        "2g",
        stdout=subprocess.DEVNULL,
    )
    env["NEO4J_PASSWORD"] = (HOME / "password").read_text().strip()
    start_database(env)
    service = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=open(REPO / ".local" / "bench-serve.log", "w"),
    )
    try:
        ensure_orgs(options.orgs, token)
        pids = service_pids(service.pid)
        rng = random.Random(42)
        hot = [f"o-{rng.randrange(options.orgs)}" for _ in range(1000)]
        with httpx.Client(base_url=BASE, headers={"Authorization": f"Bearer {token}"}) as http:
            for org in hot:  # warm the cache of every worker a few times over
                for flag in FLAGS[:2]:
                    for _ in range(3):
                        http.get(f"/v1/orgs/{org}/flags/{flag}")
                http.get(f"/v1/orgs/{org}/flags")
            for flag in FLAGS:  # the one org h2load's OFREP body names
                for _ in range(6):
                    http.post(f"/ofrep/v1/evaluate/flags/{flag}", json={"context": {"targetingKey": hot[0]}})
        cold = rng.sample(range(options.orgs), min(options.orgs, 400_000))
        cold_cursor = 0

        def cold_paths(count: int) -> list[str]:
            nonlocal cold_cursor
            chosen = cold[cold_cursor : cold_cursor + count]
            cold_cursor += count
            return [f"/v1/orgs/o-{n}/flags/new-checkout" for n in chosen]

        lookups = [f"/v1/orgs/{org}/flags/{FLAGS[i % 2]}" for i, org in enumerate(hot)]
        seed_lookups = [f"/{org}/{FLAGS[i % 2]}" for i, org in enumerate(hot)]
        evaluations = [f"/ofrep/v1/evaluate/flags/{FLAGS[i % 2]}" for i in range(len(hot))]
        contexts = [json.dumps({"context": {"targetingKey": org}}) for org in hot]
        toggles = [f"/{org}/beta-dashboard/{'true' if i % 2 else 'false'}" for i, org in enumerate(hot * 2)]
        runs: list[Run] = []
        for case in cases:
            # Writes are serialised (commit-ordered audit seqs): show where their ceiling lies too.
            for rate in [50, 100, *rates] if case == "toggles" else rates:
                print(f"{case} at {rate}/s ...", flush=True)
                if case == "noop":
                    runs.append(h2load(case, rate, [BASE + "/healthz"], token, options.duration, pids))
                elif case == "cached":
                    runs.append(h2load(case, rate, [BASE + p for p in lookups], reader, options.duration, pids))
                elif case == "seed":
                    runs.append(h2load(case, rate, [BASE + p for p in seed_lookups], reader, options.duration, pids))
                elif case == "ofrep":
                    # h2load sends one body: one org, every flag in turn.
                    runs.append(
                        h2load(
                            case,
                            rate,
                            [f"{BASE}/ofrep/v1/evaluate/flags/{flag}" for flag in FLAGS],
                            reader,
                            options.duration,
                            pids,
                            body=json.dumps({"context": {"targetingKey": hot[0]}}).encode(),
                        )
                    )
                elif case == "uncached":
                    runs.append(
                        vegeta(
                            case,
                            rate,
                            [BASE + p for p in cold_paths(rate * options.duration)],
                            token,
                            options.duration,
                            pids,
                        )
                    )
                elif case == "bulk":
                    runs.append(
                        h2load(
                            case, rate, [f"{BASE}/v1/orgs/{org}/flags" for org in hot], token, options.duration, pids
                        )
                    )
                elif case == "toggles":
                    runs.append(
                        vegeta(case, rate, [BASE + p for p in toggles], token, options.duration, pids, method="POST")
                    )
                elif case == "mix":
                    toggle_rate = max(1, rate // 100)
                    writer = subprocess.Popen(
                        [
                            "h2load",
                            "--h1",
                            "-c2",
                            "-t1",
                            f"--rps={toggle_rate / 2:g}",
                            f"-D{options.duration}",
                            "-d",
                            str(BODY),
                            "-i",
                            "/dev/stdin",
                            "-H",
                            f"Authorization: Bearer {token}",
                        ],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL,
                        text=True,
                    )
                    writer.stdin.write("\n".join(BASE + p for p in toggles) + "\n")
                    writer.stdin.close()
                    run = h2load(case, rate - toggle_rate, [BASE + p for p in lookups], token, options.duration, pids)
                    writer.wait()
                    run.case = "mix (99% lookups; 1% toggles beside)"
                    runs.append(run)
            print(f"{case} at saturation ...", flush=True)
            if case == "noop":
                runs.append(wrk(case, ["/healthz"], token, options.duration, pids))
            elif case == "cached":
                runs.append(wrk(case, lookups, reader, options.duration, pids))
            elif case == "seed":
                runs.append(wrk(case, seed_lookups, reader, options.duration, pids))
            elif case == "ofrep":
                runs.append(wrk(case, evaluations, reader, options.duration, pids, bodies=contexts))
            elif case == "uncached":
                runs.append(wrk(case, cold_paths(60_000), token, options.duration, pids))
            elif case == "bulk":
                runs.append(wrk(case, [f"/v1/orgs/{org}/flags" for org in hot], token, options.duration, pids))
            elif case == "toggles":
                runs.append(wrk(case, toggles, token, options.duration, pids, method="POST"))
        report(runs, options, load_before, os.getloadavg())
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)


def report(runs: list[Run], options, load_before: tuple[float, ...], load_after: tuple[float, ...]) -> None:
    cpu = subprocess.run(
        ["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        START,
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores ({cpu}), "
        f"24 GiB; Neo4j 5.26.30 (heap 2g, page cache 2g) with {options.orgs:,} orgs (fan-out 10, depth 6); "
        f"`graphflags serve` with {options.workers} uvicorn workers; load tool on the same two cores, "
        f"{CONNECTIONS} connections. Fixed rates: h2load, latency from its per-request log (uncached and toggles: "
        f"vegeta, requests evenly spaced, each URI once); saturation: wrk (its p90 stands in the p95 column). "
        f"CPU columns: cores used (CPU seconds / wall seconds).",
        "",
        f"Command: `make bench` (`.venv/bin/python bench/hotpath.py --orgs {options.orgs} --duration "
        f"{options.duration} --rates {options.rates}`)",
        "",
        "| case | rate | achieved req/s | p50 ms | p95 ms | p99 ms | errors | load tool CPU | service CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(run.row() for run in runs),
        END,
    ]
    table = "\n".join(lines)
    print(table)
    ceiling = ceiling_table(runs, options, load_before, load_after)
    if ceiling:
        print(ceiling)
    if not options.no_write:
        # A run of some of the cases leaves the full table of an earlier run alone.
        if set(options.cases.split(",")) >= set(DEFAULT_CASES.split(",")):
            write_section(START, END, "Hot path (issue 4)", table)
        if ceiling:
            write_section(CEILING_START, CEILING_END, "Cached path at the stack's ceiling (issue 11)", ceiling)


def ceiling_table(runs: list[Run], options, load_before: tuple[float, ...], load_after: tuple[float, ...]) -> str:
    """Each cached lookup beside `GET /healthz` of the same run: saturation ratio, p95 at 10,000/s."""

    def find(case: str, rate: str) -> Run | None:
        return next((run for run in runs if run.case == case and run.rate == rate), None)

    noop = find("noop", "saturation")
    if noop is None or not any(find(case, "saturation") for case in CEILING_CASES):
        return ""
    noop_fixed = find("noop", "10,000/s")
    rows = []
    for case, label in CEILING_CASES.items():
        run, fixed = find(case, "saturation"), find(case, "10,000/s")
        if run is None:
            continue
        rows.append(
            f"| {label} | {run.rps:,.0f} | {noop.rps:,.0f} | {run.rps / noop.rps:.2f} "
            f"| {f'{fixed.p95:.2f}' if fixed else '-'} | {f'{noop_fixed.p95:.2f}' if noop_fixed else '-'} "
            f"| {f'{1e6 * run.service_cpu / run.rps:.0f}'} | {1e6 * noop.service_cpu / noop.rps:.0f} |"
        )
    return "\n".join(
        [
            CEILING_START,
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: cached lookups with a reader token "
            f"(scoped to the root o-0), `graphflags serve` with {options.workers} workers (the default: one per usable "
            f"CPU), {CONNECTIONS} connections; saturation `wrk -t1 -c{CONNECTIONS} -d{options.duration}s`, fixed "
            f"10,000/s `h2load --h1 -c{CONNECTIONS} -t1 --rps={10_000 // CONNECTIONS} -D {options.duration}` (p95 from "
            f"its per-request log); the no-op is `GET /healthz` in the same run. Load average before "
            f"{load_before[0]:.2f}, after {load_after[0]:.2f} (1 min).",
            "",
            f"Command: `make bench` runs it with every case; this run: `.venv/bin/python bench/hotpath.py --orgs "
            f"{options.orgs} --duration {options.duration} --rates {options.rates} --cases {options.cases}`",
            "",
            "| request | wrk req/s | healthz req/s | ratio | p95 ms at 10,000/s | healthz p95 ms | "
            "service CPU us/request | healthz CPU us/request |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            *rows,
            CEILING_END,
        ]
    )


def write_section(start: str, end: str, heading: str, table: str) -> None:
    """Put `table` (which begins with `start` and ends with `end`) into bench/RESULTS.md,
    replacing the previous one between the same markers; other sections are left alone."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if start in text:
        text = text[: text.index(start)] + table + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + f"\n\n## {heading}\n\n" + table + "\n"
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
