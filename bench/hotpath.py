"""Hot-path load benchmark (issue 4): lookups, toggles and bulk reads against a 1M-org graph.

    make bench            # or: .venv/bin/python bench/hotpath.py [--orgs 1000000] [--duration 10]

What it does, all on this machine (loopback only):
1. a dedicated Neo4j home (.local/neo4j/bench, free ports; bench/harness.py), filled with N orgs
   (a complete tree, fan-out 10) through POST /v1/orgs/bulk when it holds fewer;
2. `graphflags serve` with one uvicorn worker per usable CPU (--workers) on a free port against it;
3. for each case, h2load at fixed rates (1,000 / 5,000 / 10,000 requests/s over 50
   connections, per-request log -> p50/p95/p99; uncached lookups and toggles with vegeta,
   whose requests are evenly spaced and each URI once) and wrk at saturation, recording the
   CPU seconds the load tool and the service each used (from /proc);
4. the same for a no-op baseline (GET /healthz) measured in the same run;
5. the tables go into bench/RESULTS.md between the hotpath markers; Neo4j is stopped.
Run it on a quiet machine: the load tool and the service share the two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    CONNECTIONS,
    REPO,
    Run,
    bench_home,
    dev_token,
    ensure_orgs,
    healthz,
    measured_on,
    serve,
    service_pids,
    sh,
    stop,
    vegeta,
    watch,
    write_section,
    wrk,
)

HOME = REPO / ".local" / "neo4j" / "bench"
# The service's log and development key (tokens are minted with it).
WORK = REPO / ".local" / "bench-hotpath"
START, END = "<!-- hotpath:start -->", "<!-- hotpath:end -->"
# Issue 11: each cached lookup beside the no-op of the same run.
CEILING_START, CEILING_END = "<!-- ceiling:start -->", "<!-- ceiling:end -->"
CEILING_CASES = {
    "cached": "`GET /v1/orgs/{org}/flags/{flag}`",
    "seed": "seed `GET /{org}/{flag}`",
    "ofrep": "OFREP `POST /ofrep/v1/evaluate/flags/{flag}`",
}
DEFAULT_CASES = "noop,cached,seed,ofrep,uncached,mix,toggles,bulk"
# h2load sends POSTs only with a body file (it cannot mmap /dev/null): the seed toggle ignores it.
BODY = Path(__file__).resolve().parent / "empty-body.txt"
FLAGS = ["new-checkout", "theme", "max-upload-mb", "retention-days", "beta-dashboard"]


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


def warm_every_worker(base: str, paths: list[str], token: str) -> None:
    """Fill every worker's cache with `paths` (unmeasured): each worker has a cache of its own,
    and one keep-alive connection reaches one worker only. h2load's CONNECTIONS connections are
    spread over the workers by the kernel, and each goes through the whole list once."""
    uri_file = Path(tempfile.gettempdir()) / "hotpath-warm-uris.txt"
    uri_file.write_text("\n".join(base + path for path in paths) + "\n")
    sh(
        "h2load", "--h1", f"-c{CONNECTIONS}", "-t1", f"-n{len(paths) * CONNECTIONS}",
        "-i", str(uri_file), "-H", f"Authorization: Bearer {token}", capture_output=True,
    )  # fmt: skip


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
    load = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    load_cpu, wall, service_cpu = watch(load, pids)
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
        service_cpu / wall,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rates", default="1000,5000,10000")
    # Unset: what `make run` starts, one worker per usable CPU (GRAPHFLAGS_WORKERS's default).
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--cases", default=DEFAULT_CASES)
    parser.add_argument("--heap", default="2g", help="Neo4j's heap (the published figures: 2g)")
    parser.add_argument("--pagecache", default="2g", help="Neo4j's page cache (the published figures: 2g)")
    parser.add_argument("--no-write", action="store_true", help="print the tables, leave RESULTS.md alone")
    options = parser.parse_args()
    rates = [int(rate) for rate in options.rates.split(",")]
    cases = options.cases.split(",")

    if options.workers is None:
        from app.settings import usable_cpus

        options.workers = usable_cpus()
    load_before = os.getloadavg()
    home = bench_home(HOME, heap=options.heap, pagecache=options.pagecache)
    service = None
    try:
        service, base = serve(home, WORK, options.workers)
        token = dev_token(WORK, "bench", "admin", ["*"])
        # Lookups are measured as clients make them: a reader, scoped to the tree's root (o-0).
        reader = dev_token(WORK, "bench-reader", "reader", ["o-0"])
        ensure_orgs(base, options.orgs, token)
        pids = service_pids(service.pid)
        rng = random.Random(42)
        hot = [f"o-{rng.randrange(options.orgs)}" for _ in range(1000)]
        # Single-flag lookups and bulk evaluations fill different entries: warm both.
        warm_every_worker(
            base,
            [f"/v1/orgs/{org}/flags{suffix}" for org in hot for suffix in (f"/{FLAGS[0]}", f"/{FLAGS[1]}", "")],
            token,
        )
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
                    runs.append(h2load(case, rate, [base + "/healthz"], token, options.duration, pids))
                elif case == "cached":
                    runs.append(h2load(case, rate, [base + p for p in lookups], reader, options.duration, pids))
                elif case == "seed":
                    runs.append(h2load(case, rate, [base + p for p in seed_lookups], reader, options.duration, pids))
                elif case == "ofrep":
                    # h2load sends one body: one org, every flag in turn.
                    runs.append(
                        h2load(
                            case,
                            rate,
                            [f"{base}/ofrep/v1/evaluate/flags/{flag}" for flag in FLAGS],
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
                            [f"GET {base}{p}" for p in cold_paths(rate * options.duration)],
                            token,
                            options.duration,
                            pids,
                        )
                    )
                elif case == "bulk":
                    runs.append(
                        h2load(
                            case, rate, [f"{base}/v1/orgs/{org}/flags" for org in hot], token, options.duration, pids
                        )
                    )
                elif case == "toggles":
                    runs.append(vegeta(case, rate, [f"POST {base}{p}" for p in toggles], token, options.duration, pids))
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
                    writer.stdin.write("\n".join(base + p for p in toggles) + "\n")
                    writer.stdin.close()
                    run = h2load(case, rate - toggle_rate, [base + p for p in lookups], token, options.duration, pids)
                    writer.wait()
                    run.case = "mix (99% lookups; 1% toggles beside)"
                    runs.append(run)
            print(f"{case} at saturation ...", flush=True)
            if case == "noop":
                runs.append(healthz(base, options.duration, pids))
            elif case == "cached":
                runs.append(wrk(case, base, lookups, reader, options.duration, pids)[0])
            elif case == "seed":
                runs.append(wrk(case, base, seed_lookups, reader, options.duration, pids)[0])
            elif case == "ofrep":
                runs.append(wrk(case, base, evaluations, reader, options.duration, pids, bodies=contexts)[0])
            elif case == "uncached":
                runs.append(wrk(case, base, cold_paths(60_000), token, options.duration, pids)[0])
            elif case == "bulk":
                runs.append(wrk(case, base, [f"/v1/orgs/{org}/flags" for org in hot], token, options.duration, pids)[0])
            elif case == "toggles":
                runs.append(wrk(case, base, toggles, token, options.duration, pids, method="POST")[0])
        report(runs, options, load_before, os.getloadavg())
    finally:
        stop(service)
        home.stop()  # bench/soak.py starts it again for the same graph


def report(runs: list[Run], options, load_before: tuple[float, ...], load_after: tuple[float, ...]) -> None:
    lines = [
        START,
        f"{measured_on()}, "
        f"24 GiB; Neo4j 5.26.30 (heap {options.heap}, page cache {options.pagecache}) with {options.orgs:,} orgs (fan-out 10, depth 6); "
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


if __name__ == "__main__":
    main()
