"""OpenFeature event streams at scale (issue 14): 10,000 open streams against one served instance.

    make bench            # runs this after the others
    flock /tmp/graphflags-bench.lock .venv/bin/python bench/streams.py [--streams 10000] [--duration 15]

What it does, all on this machine (loopback, free ports):
1. its own Neo4j home (.local/neo4j/bench-streams), holding a root, 100 units under it and
   100 orgs under each unit (10,000 leaves), loaded through POST /v1/orgs/bulk when missing;
2. two `graphflags serve`, ONE uvicorn worker each: one answers lookups and bulk evaluations,
   whose eventStreams URLs name the other (GRAPHFLAGS_STREAM_BASE_URL), which holds every
   stream (so its RSS and CPU are theirs) at niceness 10, as docs/operations.md advises for
   thousands of streams; with --co-located, one instance does both, in one process.
   GRAPHFLAGS_MAX_STREAMS_PER_TOKEN is raised above --streams;
3. lookups with no stream open (for information): vegeta at a fixed rate on cached lookups,
   and the no-op (`GET /healthz`) at the same rate; once with no change at all, and once with
   one change of the root a third of the way into the load;
4. for each of N leaves a bulk OFREP evaluation, then its eventStreams URL opened by the Go
   reader bench/sse-reader (every stream is its own answer: N groups to judge per change);
5. measures: the worker's RSS before and with the N streams (per stream), its CPU over 30 s
   while they sit idle (from /proc; the keep-alive timer ticks in that window), the fan-out of
   one change of the root to every stream (time from the write's 200 to each stream's
   refetchEvaluation: p50 / p95 / max, and how many arrived), and the lookups and the no-op of
   step 3 again with the streams open, in --rounds A/B rounds: one change a third of the way
   into the load that no stream hears (an org on a tree of its own: the baseline), then one of
   the root, fanned out to every stream. The two changes cost the lookups alike (one write,
   written through to the cache); only the fan-out differs. The ratio of the medians of the
   rounds is the contract: at most 10 % slower. Turns, not one run each, because on two shared
   cores a lookup p95 of about 1 ms moves by 20 % from one run to the next;
6. the table into bench/RESULTS.md between the streams markers (full-size runs only).

The reader shares the two cores with the service (as vegeta and Neo4j do): the fan-out times
include it reading N events, and the table gives its CPU while the streams sit idle. It is in
Go because a Python reader (httpx, asyncio, as until 2026-12-01) took most of a core to read
10,000 streams, so the figures measured the client as much as the service.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, Run, cpu_seconds, free_port, serve, service_pids, write_section
from open_loop import FLAG, attack, targets

from app.auth.tokens import mint_dev_token
from app.neo4j_server import ServerConf
from app.settings import Settings
from loaders.neo4j_home import Neo4jHome

HOME = REPO / ".local" / "neo4j" / "bench-streams"
WORK = REPO / ".local" / "bench-streams"
START, END = "<!-- streams:start -->", "<!-- streams:end -->"
UNITS, PER_UNIT = 100, 100
ROOT = "bs-root"
ELSEWHERE = "bs-elsewhere"  # a root of its own, with no stream on its tree
ROUNDS = 3  # A/B rounds of the lookup load with the streams open (--rounds)
LOOKUP_RATE = 1000  # the default of --rate
LOOKUP_ORGS = 1000  # leaves the lookup load cycles through (all cached after the warm-up)
IDLE_SECONDS = 30
FAN_OUTS = 3  # one change of the root each, measured one after the other
WAIT = 30.0  # seconds a fan-out may take before the streams not heard from are counted missing
OPEN_ATTEMPTS = 3
OPENING = 100  # streams being opened at once (an evaluation, then a connection each)
PROBES = 50  # sequential no-op requests per probe
STREAMS_NICE = 10  # the streams instance's niceness (not --co-located)
STREAMS_FOLLOW_INTERVAL = 0.1  # the streams instance's GRAPHFLAGS_CACHE_FOLLOW_INTERVAL
HEARTBEAT = 15  # GRAPHFLAGS_STREAM_HEARTBEAT_SECONDS: the default, set here so that the table can say it


def leaf(n: int) -> str:
    return f"bs-{n // PER_UNIT}-{n % PER_UNIT}"


def ensure_orgs(http: httpx.Client) -> None:
    if http.get(f"/v1/orgs/{ELSEWHERE}").status_code == 404:
        http.post("/v1/orgs", json={"id": ELSEWHERE}).raise_for_status()
    if http.get(f"/v1/orgs/{leaf(UNITS * PER_UNIT - 1)}").status_code == 200:
        return
    rows = [f"{ROOT},"] + [f"bs-{u},{ROOT}" for u in range(UNITS)]
    rows += [f"{leaf(n)},bs-{n // PER_UNIT}" for n in range(UNITS * PER_UNIT)]
    http.post(
        "/v1/orgs/bulk", content="id,parent\n" + "\n".join(rows) + "\n", headers={"Content-Type": "text/csv"}
    ).raise_for_status()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def raise_open_files(streams: int) -> int:
    """Lift this process's open-files limit to the hard limit (the service inherits it): each
    stream is a socket on both sides. Stops when even the hard limit is too low."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < streams + 1000:
        raise SystemExit(
            f"the hard open-files limit ({hard:,}) is too low for {streams:,} streams: raise it "
            f"(ulimit -Hn, or LimitNOFILE for a service) to at least {streams + 1000:,}"
        )
    return hard


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


class Streams:
    """N open event streams, held by the Go reader (bench/sse-reader), which notes when each hears
    a refetchEvaluation. Reading them from Python took most of a core on this two-core machine,
    the core the service's fan-out needed: the Go reader takes a few percent (the table says)."""

    def __init__(self) -> None:
        self.reader: asyncio.subprocess.Process | None = None
        self.opened = 0
        self.changes = 0  # changes of the root since the streams opened: each stream hears each once

    async def open(self, http: httpx.AsyncClient, token: str, orgs: list[str]) -> list[str]:
        """Evaluate each org in bulk, then hand the eventStreams URLs to the reader, which opens
        them; the errors of those that did not open."""
        gate = asyncio.Semaphore(OPENING)

        async def evaluated(org: str) -> str:
            async with gate:
                for attempt in range(1, OPEN_ATTEMPTS + 1):
                    answer = await http.post(
                        "/ofrep/v1/evaluate/flags",
                        json={"context": {"targetingKey": org}},
                        headers={"X-API-Key": token},
                    )
                    if answer.status_code != 503 or attempt == OPEN_ATTEMPTS:
                        break
                    await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
                answer.raise_for_status()
                return answer.json()["eventStreams"][0]["url"]

        urls = await asyncio.gather(*(evaluated(org) for org in orgs))
        # Niced as the streams instance is: it stands in for clients on other machines, and
        # reading 10,000 events at once should not take the lookups' CPU on this one.
        self.reader = await asyncio.create_subprocess_exec(
            "nice",
            "-n",
            str(STREAMS_NICE),
            str(reader_binary()),
            str(OPENING),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**20,
        )
        self.reader.stdin.write(("\n".join(urls) + "\n\n").encode())
        await self.reader.stdin.drain()
        _, opened, failed, first_error = (await self._line()).split(" ", 3)
        self.opened = int(opened)
        return [first_error] * int(failed)

    async def _line(self) -> str:
        line = await self.reader.stdout.readline()
        if not line:
            raise SystemExit(f"the stream reader ended (exit code {await self.reader.wait()})")
        return line.decode().rstrip("\n")

    def changed(self) -> int:
        """Note one more change of the root; the number every stream should now have heard."""
        self.changes += 1
        return self.changes

    async def arrivals(self, heard: int, acknowledged_ns: int) -> list[float]:
        """Seconds from `acknowledged_ns` (Unix ns) to each open stream's `heard`-th event, for
        those that heard it within WAIT."""
        self.reader.stdin.write(f"wait {heard} {int(WAIT * 1000)}\n".encode())
        await self.reader.stdin.drain()
        times = []
        while (line := await self._line()) != "done":
            times.append(int(line))
        return [(at - acknowledged_ns) / 1e9 for at in times if at > 0]

    @property
    def pid(self) -> int:
        return self.reader.pid

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.stdin.close()
            await self.reader.wait()


def reader_binary() -> Path:
    """bench/sse-reader, built (Go's build cache makes a rebuild of an unchanged source instant)."""
    binary = REPO / ".local" / "bin" / "sse-reader"
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=REPO / "bench" / "sse-reader", check=True)
    return binary


async def noop_probe(http: httpx.AsyncClient) -> tuple[float, float]:
    """p50 and p95 (ms) of sequential `GET /healthz`, from this process's event loop."""
    took = []
    for _ in range(PROBES):
        started = time.perf_counter()
        (await http.get("/healthz")).raise_for_status()
        took.append((time.perf_counter() - started) * 1000)
    return percentile(took, 0.5), percentile(took, 0.95)


class Flipper:
    """An org's value of FLAG, flipped by each change, so that every change really changes it (a
    write of the value already stored changes nothing, tells no stream). The root's reaches every
    stream (every leaf inherits it); ELSEWHERE's none (no stream is on its tree)."""

    def __init__(self, http: httpx.AsyncClient, admin: str, org: str) -> None:
        self.http, self.admin, self.org = http, admin, org
        self.value = False

    async def change(self) -> int:
        """Flip the value; the moment the write's 200 arrived (Unix ns: the reader's clock)."""
        self.value = not self.value
        response = await self.http.put(
            f"/v1/orgs/{self.org}/flags/{FLAG}",
            json={"value": self.value},
            headers={"Authorization": f"Bearer {self.admin}"},
        )
        response.raise_for_status()
        return time.time_ns()


async def fan_out(http: httpx.AsyncClient, root: Flipper, streams: Streams, worker: int) -> dict:
    """One change of the root: seconds from the write's 200 to each stream's refetchEvaluation,
    one no-op request sent at the write's 200 (how long the service took to answer it), and the
    worker's CPU seconds from the write to the last arrival (CPU time, unlike the latencies,
    holds on a busy machine: the figure to compare changes of the fan-out by)."""
    cpu_before = cpu_seconds([worker])
    acknowledged = await root.change()
    heard = streams.changed()
    started = time.perf_counter()
    (await http.get("/healthz")).raise_for_status()
    noop_ms = (time.perf_counter() - started) * 1000
    arrivals = await streams.arrivals(heard, acknowledged)
    return {"arrivals": arrivals, "noop_ms": noop_ms, "cpu_s": cpu_seconds([worker]) - cpu_before}


async def lookups(base: str, token: str, rate: int, duration: int, worker: int, neo4j_pid: int) -> tuple[Run, Run]:
    """The fixed-rate lookup load and the no-op at the same rate (vegeta, in a thread)."""
    loop = asyncio.get_running_loop()
    orgs = [leaf(n * (UNITS * PER_UNIT // LOOKUP_ORGS)) for n in range(LOOKUP_ORGS)]
    tmp = Path(tempfile.gettempdir())
    runs = []
    for case, chosen in (
        ("rest", targets("rest", base, orgs, token)),
        ("healthz", targets("healthz", base, ["-"], token)),
    ):
        run, _neo4j_cpu, _statuses = await loop.run_in_executor(
            None, lambda: attack(case, rate, duration, chosen, [worker], neo4j_pid, tmp)
        )
        runs.append(run)
    return runs[0], runs[1]


async def lookups_with_change(
    base: str, token: str, options, worker: int, neo4j_pid: int, root: Flipper
) -> tuple[tuple[Run, Run], float]:
    """The lookup load with one change of the root a third of the way into it (the same moment
    with streams open or not); the runs, and the moment the change's 200 arrived."""
    load = asyncio.create_task(lookups(base, token, options.rate, options.duration, worker, neo4j_pid))
    await asyncio.sleep(options.duration / 3)
    acknowledged = await root.change()
    return await load, acknowledged


@dataclass(frozen=True)
class Workers:
    """The worker answering lookups and the one holding the streams: the same process unless
    the streams have an instance of their own (the default; --co-located: one instance)."""

    lookups: int
    streams: int


async def measure(base: str, reader: str, admin: str, options, workers: Workers, neo4j_pid: int) -> dict:
    worker = workers.streams
    results: dict = {"streams_asked": options.streams}
    streams = Streams()
    orgs = [leaf(n) for n in range(options.streams)]
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=httpx.Limits(max_connections=OPENING)) as http:
        # Warm-up: the root's value written once (the first fan-out's costs paid), every org the
        # lookups cycle through asked at least once (cached).
        root, elsewhere = Flipper(http, admin, ROOT), Flipper(http, admin, ELSEWHERE)
        await root.change()
        await elsewhere.change()
        await lookups(base, reader, options.rate, math.ceil(LOOKUP_ORGS / options.rate) + 2, workers.lookups, neo4j_pid)
        print("lookups without streams, no change ...", flush=True)
        results["unchanged"] = await lookups(base, reader, options.rate, options.duration, workers.lookups, neo4j_pid)
        print("lookups without streams, one change of the root (the baseline) ...", flush=True)
        results["quiet"], _ = await lookups_with_change(base, reader, options, workers.lookups, neo4j_pid, root)
        await asyncio.sleep(2)
        results["rss_before"], results["noop_before"] = rss_bytes(worker), await noop_probe(http)
        print(f"opening {options.streams:,} streams ...", flush=True)
        started = time.monotonic()
        failed = await streams.open(http, reader, orgs)
        results["open_s"] = time.monotonic() - started
        results["failed"] = len(failed)
        if failed:
            print(f"{len(failed):,} streams did not open; the first: {failed[0]!r}", flush=True)
        if not streams.opened:
            raise SystemExit("no stream opened")
        await asyncio.sleep(3)
        results["rss_with"], results["noop_with"] = rss_bytes(worker), await noop_probe(http)
        print(f"idle for {options.idle} s ...", flush=True)
        before, client_before, started = cpu_seconds([worker]), cpu_seconds([streams.pid]), time.monotonic()
        await asyncio.sleep(options.idle)
        wall = time.monotonic() - started
        results["idle_cores"] = (cpu_seconds([worker]) - before) / wall
        results["idle_client_cores"] = (cpu_seconds([streams.pid]) - client_before) / wall
        results["noop_idle"] = await noop_probe(http)
        print("fan-outs ...", flush=True)
        results["fan_outs"] = []
        for _ in range(FAN_OUTS):
            results["fan_outs"].append(await fan_out(http, root, streams, worker))
            await asyncio.sleep(1)
        # The contract's measure: the same load with the streams open, one change a third of the
        # way into it, A/B in turns (so that the machine's drift falls on both alike): a change
        # no stream hears (ELSEWHERE's), then the root's, fanned out to every stream.
        results["rounds"] = []
        for n in range(1, options.rounds + 1):
            print(f"round {n}: lookups with the streams open, a change elsewhere, then one fanned out ...", flush=True)
            elsewhere_runs, _ = await lookups_with_change(base, reader, options, workers.lookups, neo4j_pid, elsewhere)
            fanned_runs, acknowledged = await lookups_with_change(
                base, reader, options, workers.lookups, neo4j_pid, root
            )
            heard = len(await streams.arrivals(streams.changed(), acknowledged))
            results["rounds"].append((elsewhere_runs, fanned_runs, heard))
        results["streams"] = streams.opened
    await streams.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=15, help="seconds of each lookup load")
    parser.add_argument("--rate", type=int, default=LOOKUP_RATE, help="lookups per second of the fixed-rate load")
    parser.add_argument("--idle", type=int, default=IDLE_SECONDS, help="seconds the streams sit idle")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="A/B rounds of the lookup load with streams open")
    parser.add_argument(
        "--co-located",
        action="store_true",
        help="one instance answers the lookups and holds the streams (default: the streams on an instance of their own)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the table, leave RESULTS.md alone")
    options = parser.parse_args()
    if not 0 < options.streams <= UNITS * PER_UNIT:
        raise SystemExit(f"--streams is between 1 and {UNITS * PER_UNIT:,} (one leaf each)")
    options.open_files = raise_open_files(options.streams)
    WORK.mkdir(parents=True, exist_ok=True)
    home = Neo4jHome.init(HOME, ServerConf(bolt_port=free_port(), http_port=free_port(), heap="1g", pagecache="512m"))

    def token(role: str, org: str) -> str:
        keys = Settings(jwt_dev_key_file=WORK / "dev-jwt.key")
        return mint_dev_token(keys, subject="bench-streams", roles=[role], orgs=[org], ttl=86400)

    admin, reader = token("admin", "*"), token("reader", ROOT)
    # A generous start bound: on a busy machine Neo4j's first start took over the default.
    home.start(timeout=600)
    services: list[subprocess.Popen] = []
    try:
        settings = {
            "GRAPHFLAGS_MAX_STREAMS_PER_TOKEN": str(options.streams + 10),
            "GRAPHFLAGS_STREAM_HEARTBEAT_SECONDS": str(HEARTBEAT),
        }
        if not options.co_located:
            # The streams' own instance, niced: on two shared cores a fan-out's CPU then yields to
            # the lookups (on machines of their own the streams instances need no niceness).
            # It follows the change feed every 0.1 s (the default is 0.25 s): the wait for the next
            # poll is part of every stream's time to hear of a change (docs/operations.md).
            streams_settings = {**settings, "GRAPHFLAGS_CACHE_FOLLOW_INTERVAL": str(STREAMS_FOLLOW_INTERVAL)}
            streams_service, streams_base = serve(
                home, WORK, 1, streams_settings, name="serve-streams", nice=STREAMS_NICE
            )
            services.append(streams_service)
            settings["GRAPHFLAGS_STREAM_BASE_URL"] = streams_base
        service, base = serve(home, WORK, 1, settings)
        services.append(service)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=600) as http:
            ensure_orgs(http)
        # With one worker, uvicorn serves in the process it started. services[0] holds the streams:
        # their own instance, or with --co-located the one instance.
        workers = Workers(lookups=service_pids(service.pid)[-1], streams=service_pids(services[0].pid)[-1])
        neo4j_pid = home.pid() or 0
        load_before = os.getloadavg()
        results = asyncio.run(measure(base, reader, admin, options, workers, neo4j_pid))
        load_after = os.getloadavg()
    finally:
        for service in services:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=60)
        home.stop()
    report(results, options, load_before, load_after)


def report(results: dict, options, load_before: tuple[float, ...], load_after: tuple[float, ...]) -> None:
    count = results["streams"]
    per_stream = (results["rss_with"] - results["rss_before"]) / max(count, 1)
    unchanged, unchanged_noop = results["unchanged"]
    quiet, quiet_noop = results["quiet"]
    rounds = results["rounds"]

    def noop(key: str) -> str:
        p50, p95 = results[key]
        return f"{p50:.2f} / {p95:.2f} ms"

    where = (
        "on the one uvicorn worker that also answers the lookups (--co-located)"
        if options.co_located
        else f"on an instance of their own (one uvicorn worker, nice {STREAMS_NICE}, following the change feed "
        f"every {STREAMS_FOLLOW_INTERVAL} s; GRAPHFLAGS_STREAM_BASE_URL of the instance answering the lookups, one "
        "worker, names it)"
    )
    lines = [
        START,
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores: {count:,} "
        f"OpenFeature event streams {where}, each on its own leaf org (so {count:,} answers to judge "
        f"per change of the root), read by the Go reader bench/sse-reader on the same machine (nice {STREAMS_NICE}); open-files hard "
        f"limit {options.open_files:,}; load average before {load_before[0]:.1f} / {load_before[1]:.1f}, after "
        f"{load_after[0]:.1f} / {load_after[1]:.1f} (1 / 5 min).",
        "",
        f"Command: `flock /tmp/graphflags-bench.lock .venv/bin/python bench/streams.py --streams {options.streams} "
        f"--rate {options.rate} --duration {options.duration} --idle {options.idle} --rounds {options.rounds}"
        f"{' --co-located' if options.co_located else ''}` (`make bench` runs the defaults)",
        "",
        f"No-op probes are {PROBES} sequential `GET /healthz` from the bench's event loop (p50 / p95).",
        "",
        "| measure | value | no-op in the same run |",
        "| --- | --- | --- |",
        f"| streams opened (bulk evaluation + SSE connect each) | {count:,} of {results['streams_asked']:,} in "
        f"{results['open_s']:.1f} s ({results['failed']:,} failed) | |",
        f"| worker RSS before / with the streams | {results['rss_before'] / 2**20:.0f} MiB / "
        f"{results['rss_with'] / 2**20:.0f} MiB | before {noop('noop_before')}; with {noop('noop_with')} |",
        f"| RSS per open stream | {per_stream / 1024:.1f} KiB | |",
        f"| worker CPU, streams idle {options.idle} s (keep-alives every {HEARTBEAT} s included) | "
        f"{results['idle_cores'] * 100:.2f} % of one core (the reader {results['idle_client_cores'] * 100:.2f} %) | "
        f"after the idle time {noop('noop_idle')} |",
    ]
    for n, fan in enumerate(results["fan_outs"], 1):
        arrivals = fan["arrivals"]
        timing = (
            "none heard"
            if not arrivals
            else f"p50 {percentile(arrivals, 0.5) * 1000:.0f} / p95 {percentile(arrivals, 0.95) * 1000:.0f} / "
            f"max {max(arrivals) * 1000:.0f} ms"
        )
        lines.append(
            f"| fan-out {n}: one change of the root, write's 200 -> refetchEvaluation | {timing}; "
            f"{len(arrivals):,} of {count:,} streams heard it within {WAIT:.0f} s; worker CPU "
            f"{fan['cpu_s'] * 1e6 / max(len(arrivals), 1):.0f} µs per stream heard | "
            f"one `GET /healthz` sent at the 200: {fan['noop_ms']:.1f} ms |"
        )
    elsewhere_p95 = statistics.median(elsewhere.p95 for (elsewhere, _), _f, _h in rounds)
    fanned_p95 = statistics.median(fanned.p95 for _e, (fanned, _), _h in rounds)
    elsewhere_p50 = statistics.median(elsewhere.p50 for (elsewhere, _), _f, _h in rounds)
    fanned_p50 = statistics.median(fanned.p50 for _e, (fanned, _), _h in rounds)
    p50_ratio, p95_ratio = fanned_p50 / elsewhere_p50, fanned_p95 / elsewhere_p95
    errors = unchanged.errors + quiet.errors + sum(e.errors + f.errors for (e, _), (f, _n), _h in rounds)
    if errors:
        verdict = "not judged: a run had errors"
    else:
        verdict = "met" if max(p50_ratio, p95_ratio) <= 1.10 else "NOT met"

    def row(run, noop_run) -> str:
        return (
            f"{run.p50:.2f} / {run.p95:.2f} / {run.p99:.2f} ms ({run.errors} errors) | `GET /healthz` at "
            f"{options.rate:,}/s: {noop_run.p50:.2f} / {noop_run.p95:.2f} / {noop_run.p99:.2f} ms |"
        )

    lines += [
        f"| lookups at {options.rate:,}/s (vegeta, {options.duration} s), no stream open, no change (for "
        f"information): p50 / p95 / p99 | {row(unchanged, unchanged_noop)}",
        f"| the same, no stream open, one change of the root a third of the way into it | {row(quiet, quiet_noop)}",
    ]
    for n, ((elsewhere, elsewhere_noop), (fanned, fanned_noop), heard) in enumerate(rounds, 1):
        lines += [
            f"| round {n}, {count:,} streams open: one change a third of the way in that no stream hears | "
            f"{row(elsewhere, elsewhere_noop)}",
            f"| round {n}, {count:,} streams open: one change of the root, fanned out ({heard:,} heard it) | "
            f"{row(fanned, fanned_noop)}",
        ]
    lines += [
        f"| lookups during a fan-out / during a change no stream hears, medians of the {len(rounds)} rounds: "
        f"p50, p95 (the contract: at most 1.10) | {p50_ratio:.2f}, {p95_ratio:.2f}: {verdict} | |",
        f"| for information: lookups during a fan-out (median p95) / no stream open (p95) | "
        f"{fanned_p95 / quiet.p95:.2f} | |",
        END,
    ]
    table = "\n".join(lines)
    print(table)
    if not options.no_write and count >= 10_000:
        write_section(START, END, "OpenFeature event streams (bench/streams.py)", table)


if __name__ == "__main__":
    main()
