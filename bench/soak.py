"""Soak (issue 7): lookups and toggles at a steady rate for ten minutes or more.

    make soak        # or: .venv/bin/python bench/soak.py [--minutes 10] [--lookups 2000] [--toggles 20]

Uses the hot-path benchmark's Neo4j home and 1M-org graph (bench/hotpath.py creates them),
serves `graphflags serve` with 2 workers, and runs two h2load processes side by side for the
whole time: lookups over 20,000 orgs (cache hits and misses both) and seed-path toggles
on 1,000 orgs. Reports errors (must be zero), the service's and Neo4j's resident memory at
start and end, sampled every 10 s (must be flat), and p50/p95/p99 per minute. The table
goes into bench/RESULTS.md between the soak markers.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import bench_home, dev_token, ensure_orgs, publish, serve, service_pids, stop
from hotpath import BODY, HOME, WORK

START, END = "<!-- soak:start -->", "<!-- soak:end -->"


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def per_minute(log: Path, started_us: int) -> tuple[int, int, dict[int, list[float]]]:
    ok, errors, minutes = 0, 0, {}
    for line in log.read_text().splitlines():
        start, status, micros = line.split("\t")
        minute = max(0, (int(start) - started_us)) // 60_000_000
        minutes.setdefault(minute, []).append(int(micros) / 1000)
        if 200 <= int(status) < 300:
            ok += 1
        else:
            errors += 1
    return ok, errors, minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--lookups", type=int, default=2000, help="lookups per second")
    parser.add_argument("--toggles", type=int, default=20, help="toggles per second")
    parser.add_argument("--orgs", type=int, default=1_000_000)
    parser.add_argument("--heap", default="2g", help="Neo4j's heap (the published figures: 2g)")
    parser.add_argument("--pagecache", default="2g", help="Neo4j's page cache (the published figures: 2g)")
    parser.add_argument("--no-write", action="store_true")
    options = parser.parse_args()
    seconds = options.minutes * 60

    home = bench_home(HOME, heap=options.heap, pagecache=options.pagecache)
    service = None
    tmp = Path(tempfile.mkdtemp())
    try:
        service, base = serve(home, WORK, workers=2)
        token = dev_token(WORK, "soak", "admin", ["*"], ttl=seconds + 3600)
        ensure_orgs(base, options.orgs, token)
        pids = service_pids(service.pid)
        neo4j_pid = home.pid()
        rng = random.Random(7)
        orgs = [f"o-{rng.randrange(options.orgs)}" for _ in range(20_000)]
        (tmp / "lookups.txt").write_text("".join(f"{base}/v1/orgs/{org}/flags/new-checkout\n" for org in orgs))
        (tmp / "toggles.txt").write_text(
            "".join(
                f"{base}/{org}/beta-dashboard/{'true' if i % 2 else 'false'}\n" for i, org in enumerate(orgs[:1000] * 2)
            )
        )
        samples: list[tuple[float, float, float]] = []
        sampled_enough = threading.Event()

        def sample() -> None:
            begun = time.monotonic()
            while not sampled_enough.is_set():
                samples.append((time.monotonic() - begun, rss_mib(pids), rss_mib([neo4j_pid])))
                sampled_enough.wait(10)

        sampler = threading.Thread(target=sample, daemon=True)
        started_us = time.time_ns() // 1000
        sampler.start()
        common = ["h2load", "--h1", "-t1", f"-D{seconds}", "-H", f"Authorization: Bearer {token}"]
        lookups = subprocess.Popen(
            [
                *common,
                "-c40",
                f"--rps={options.lookups / 40:g}",
                f"--log-file={tmp / 'lookups.log'}",
                "-i",
                str(tmp / "lookups.txt"),
            ],
            stdout=subprocess.DEVNULL,
        )
        toggles = subprocess.Popen(
            [
                *common,
                "-c4",
                f"--rps={options.toggles / 4:g}",
                "-d",
                str(BODY),
                f"--log-file={tmp / 'toggles.log'}",
                "-i",
                str(tmp / "toggles.txt"),
            ],
            stdout=subprocess.DEVNULL,
        )
        lookups.wait()
        toggles.wait()
        sampled_enough.set()
        sampler.join()
        samples.append((seconds, rss_mib(pids), rss_mib([neo4j_pid])))
        report(options, started_us, tmp, samples)
    finally:
        stop(service)
        home.stop()


def report(options, started_us: int, tmp: Path, samples) -> None:
    lines = [
        START,
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {options.minutes} minutes, "
        f"{options.lookups} lookups/s over 20,000 orgs of {options.orgs:,} and {options.toggles} toggles/s, "
        "h2load on the same two cores, `graphflags serve` with 2 workers. Command: "
        f"`make soak` (`.venv/bin/python bench/soak.py --minutes {options.minutes} --lookups {options.lookups} "
        f"--toggles {options.toggles}`)",
        "",
    ]
    for name in ("lookups", "toggles"):
        ok, errors, minutes = per_minute(tmp / f"{name}.log", started_us)
        lines += [
            f"**{name}**: {ok:,} answered 2xx, {errors} errors.",
            "",
            "| minute | requests | p50 ms | p95 ms | p99 ms |",
            "| --- | --- | --- | --- | --- |",
        ]
        for minute in sorted(minutes):
            latencies = minutes[minute]
            q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
            lines.append(f"| {minute + 1} | {len(latencies):,} | {q[49]:.2f} | {q[94]:.2f} | {q[98]:.2f} |")
        lines.append("")
    # Resident memory at the end of each minute: a leak climbs steadily to the end, a cache
    # that fills (20,000 orgs and their ancestors here) levels off once every org was asked.
    by_minute = {int(at // 60): service for at, service, _ in samples}
    lines += [
        "| minute | service resident MiB |",
        "| --- | --- |",
        *(f"| {minute} | {by_minute[minute]:.0f} |" for minute in sorted(by_minute)),
        "",
    ]
    first, last = samples[0], samples[-1]
    lines += [
        f"Memory (resident): service {first[1]:.0f} MiB at start, {last[1]:.0f} MiB at the end "
        f"(min {min(s[1] for s in samples):.0f}, max {max(s[1] for s in samples):.0f}); Neo4j "
        f"{first[2]:.0f} MiB -> {last[2]:.0f} MiB (heap and page cache are fixed sizes).",
        END,
    ]
    table = "\n".join(lines)
    publish(table, START, END, "Soak (issue 7)", write=not options.no_write)


if __name__ == "__main__":
    main()
