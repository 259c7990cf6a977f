"""OpenFeature event streams at scale (issue 14): 10,000 open streams against one served instance.

    make bench            # runs this after the others
    flock -x /tmp/graphflags-bench.lock .venv/bin/python bench/streams.py [--streams 10000] [--duration 15]

What it does, all on this machine (loopback, free ports):
1. its own Neo4j home (.local/neo4j/bench-streams), holding a root, 100 units under it and
   100 orgs under each unit (10,000 leaves), loaded through POST /v1/orgs/bulk when missing;
2. `graphflags serve` with ONE uvicorn worker (one process holds every stream, so its RSS
   is theirs), GRAPHFLAGS_MAX_STREAMS_PER_TOKEN raised above --streams;
3. for each of N leaves a bulk OFREP evaluation, then its eventStreams URL opened over a
   plain socket (this process, asyncio; every stream is its own answer: N groups to judge);
4. measures: the service's RSS before and after (per stream), its CPU while the N streams sit
   idle, the fan-out of one change of the root (every stream must hear it: time from the
   write's acknowledgement to the first and the last event), and the p95 of a cached lookup
   under h2load at a fixed rate, without and then with the root toggled once a second (each
   toggle a fan-out to all N streams) during the run;
5. `uptime` before and after; the table into bench/RESULTS.md between the streams markers.
The socket readers of step 3 run in this process and share the two cores with the service:
the idle and fan-out figures include no load tool, the lookup figures include h2load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hotpath import NEO4JCTL, REPO, cpu_seconds, h2load, service_pids, wait_ready, write_section
from toggles import free_port, sh, uptime

HOME = REPO / ".local" / "neo4j" / "bench-streams"
START, END = "<!-- streams:start -->", "<!-- streams:end -->"
UNITS, PER_UNIT = 100, 100
FLAG = "new-checkout"
LOOKUP_RATE = 1000


def leaf(n: int) -> str:
    return f"bs-{n // PER_UNIT}-{n % PER_UNIT}"


def ensure_orgs(http: httpx.Client) -> None:
    if http.get(f"/v1/orgs/{leaf(UNITS * PER_UNIT - 1)}").status_code == 200:
        return
    rows = ["bs-root,"] + [f"bs-{u},bs-root" for u in range(UNITS)]
    rows += [f"{leaf(n)},bs-{n // PER_UNIT}" for n in range(UNITS * PER_UNIT)]
    http.post(
        "/v1/orgs/bulk", content="id,parent\n" + "\n".join(rows) + "\n", headers={"Content-Type": "text/csv"}
    ).raise_for_status()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Streams:
    """N open event streams, each read by a small task that notes when a refetch arrives."""

    def __init__(self) -> None:
        self.heard: list[list[float]] = []
        self.tasks: list[asyncio.Task] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def open(self, http: httpx.AsyncClient, token: str, count: int) -> None:
        gate = asyncio.Semaphore(50)

        async def one(n: int) -> None:
            async with gate:
                answer = await http.post(
                    "/ofrep/v1/evaluate/flags",
                    json={"context": {"targetingKey": leaf(n)}},
                    headers={"X-API-Key": token},
                )
                answer.raise_for_status()
                url = urlsplit(answer.json()["eventStreams"][0]["url"])
                reader, writer = await asyncio.open_connection(url.hostname, url.port)
                writer.write(
                    f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                    f"Accept: text/event-stream\r\n\r\n".encode()
                )
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head.decode(errors="replace"))
                times: list[float] = []
                self.heard.append(times)
                self.writers.append(writer)
                self.tasks.append(asyncio.create_task(self._read(reader, times)))

        await asyncio.gather(*(one(n) for n in range(count)))

    @staticmethod
    async def _read(reader: asyncio.StreamReader, times: list[float]) -> None:
        tail = b""
        while chunk := await reader.read(4096):
            seen = tail + chunk
            times.extend([time.monotonic()] * seen.count(b"refetchEvaluation"))
            tail = seen[-20:].replace(b"refetchEvaluation", b"")

    def heard_since(self, marks: list[int]) -> list[float | None]:
        return [times[mark] if len(times) > mark else None for times, mark in zip(self.heard, marks, strict=True)]

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            writer.close()


async def fan_out(http: httpx.AsyncClient, admin: str, streams: Streams, value: bool, wait: float) -> tuple:
    """Change the root's value; seconds from the write's answer to the first and last stream
    hearing of it, and how many of them did within `wait` s."""
    marks = [len(times) for times in streams.heard]
    response = await http.put(
        f"/v1/orgs/bs-root/flags/{FLAG}", json={"value": value}, headers={"Authorization": f"Bearer {admin}"}
    )
    response.raise_for_status()
    acknowledged = time.monotonic()
    deadline = acknowledged + wait
    while time.monotonic() < deadline:
        arrivals = streams.heard_since(marks)
        if all(at is not None for at in arrivals):
            break
        await asyncio.sleep(0.05)
    arrivals = [at - acknowledged for at in streams.heard_since(marks) if at is not None]
    if not arrivals:
        return None, None, 0
    return min(arrivals), max(arrivals), len(arrivals)


async def measure(base: str, token: str, admin: str, count: int, duration: int, pid: int) -> dict:
    results: dict = {}
    streams = Streams()
    limits = httpx.Limits(max_connections=60)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        # Warm: the bulk answers of every leaf cached, the first fan-out paid.
        await http.put(
            f"/v1/orgs/bs-root/flags/{FLAG}", json={"value": False}, headers={"Authorization": f"Bearer {admin}"}
        )
        await asyncio.sleep(2)
        rss_before = rss_bytes(pid)
        started = time.monotonic()
        await streams.open(http, token, count)
        results["open_s"] = time.monotonic() - started
        await asyncio.sleep(3)
        results["rss_before"], results["rss_after"] = rss_before, rss_bytes(pid)
        # Idle: nothing changes for 10 s; the service should do nothing at all.
        before, started = cpu_seconds([pid]), time.monotonic()
        await asyncio.sleep(10)
        results["idle_cores"] = (cpu_seconds([pid]) - before) / (time.monotonic() - started)
        # Fan-out of one change to every stream, three times (true, false, true).
        results["fan_out"] = [await fan_out(http, admin, streams, value, wait=30) for value in (True, False, True)]
        results["streams"] = len(streams.heard)
        # Lookups without, then with, a fan-out a second running.
        loop = asyncio.get_running_loop()
        path = [f"/v1/orgs/{leaf(count // 2)}/flags/{FLAG}"]
        quiet = await loop.run_in_executor(None, lambda: h2load("lookup", LOOKUP_RATE, path, token, duration, [pid]))

        async def toggling(stop: asyncio.Event) -> int:
            toggles, value = 0, False
            while not stop.is_set():
                await http.put(
                    f"/v1/orgs/bs-root/flags/{FLAG}",
                    json={"value": value},
                    headers={"Authorization": f"Bearer {admin}"},
                )
                value, toggles = not value, toggles + 1
                try:
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                except TimeoutError:
                    pass
            return toggles

        stop = asyncio.Event()
        toggler = asyncio.create_task(toggling(stop))
        busy = await loop.run_in_executor(
            None, lambda: h2load("lookup+fan-out", LOOKUP_RATE, path, token, duration, [pid])
        )
        stop.set()
        results["toggles"] = await toggler
        results["lookups"] = (quiet, busy)
    streams.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--no-write", action="store_true", help="print the table, leave RESULTS.md alone")
    options = parser.parse_args()
    if options.streams > UNITS * PER_UNIT:
        raise SystemExit(f"--streams is at most {UNITS * PER_UNIT:,} (one leaf each)")
    # 10,000 sockets on each side: the service inherits this limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < options.streams + 1000:
        raise SystemExit(f"the open-files limit ({hard}) is too low for {options.streams:,} streams")

    ports: set[int] = set()
    while len(ports) < 3:  # a port just released may be handed out again
        ports.add(free_port())
    bolt, http_port, port = sorted(ports)
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
        "1g",
        "--pagecache",
        "512m",
        stdout=subprocess.DEVNULL,
    )
    password = (HOME / "password").read_text().strip()
    env = {
        **os.environ,
        "NEO4J_URI": f"bolt://127.0.0.1:{bolt}",
        "NEO4J_PASSWORD": password,
        "GRAPHFLAGS_PORT": str(port),
        "GRAPHFLAGS_LOG_LEVEL": "WARNING",
        "GRAPHFLAGS_WORKERS": "1",
        "GRAPHFLAGS_MAX_STREAMS_PER_TOKEN": str(options.streams + 10),
    }

    def token(role: str) -> str:
        return sh(
            sys.executable,
            "-m",
            "app.cli",
            "token",
            "--sub",
            "bench-streams",
            "--role",
            role,
            "--org",
            "bs-root" if role == "reader" else "*",
            "--ttl",
            "86400",
            capture_output=True,
            cwd=REPO,
        ).stdout.strip()

    admin, reader = token("admin"), token("reader")
    # A generous start bound: on a busy machine Neo4j's first start took over the default 120 s.
    sh(str(NEO4JCTL), "start", str(HOME), "--timeout", "600", stdout=subprocess.DEVNULL)
    service = None
    try:
        sh(sys.executable, "-m", "app.cli", "migrate", env=env, cwd=REPO, stdout=subprocess.DEVNULL)
        service = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=open(REPO / ".local" / "bench-streams-serve.log", "w"),
        )
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=600) as http:
            wait_ready(http)
            ensure_orgs(http)
        pids = service_pids(service.pid)
        worker = pids[-1]  # with one worker uvicorn serves in the process it started in (no children)
        load_before = uptime()
        results = asyncio.run(measure(base, reader, admin, options.streams, options.duration, worker))
        load_after = uptime()
        report(results, options, load_before, load_after)
    finally:
        if service is not None:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=30)
        sh(str(NEO4JCTL), "stop", str(HOME), stdout=subprocess.DEVNULL)


def report(results: dict, options, load_before: str, load_after: str) -> None:
    count = results["streams"]
    per_stream = (results["rss_after"] - results["rss_before"]) / max(count, 1)
    quiet, busy = results["lookups"]
    lines = [
        START,
        f"{count:,} OpenFeature event streams on one uvicorn worker, each on its own leaf org (so {count:,} answers "
        f"to judge per change of the root); load before: {load_before}; after: {load_after}.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| streams opened (bulk evaluation + SSE connect each) | {count:,} in {results['open_s']:.1f} s |",
        f"| worker RSS before / after | {results['rss_before'] / 2**20:.0f} MiB / {results['rss_after'] / 2**20:.0f} MiB |",
        f"| RSS per open stream | {per_stream / 1024:.1f} KiB |",
        f"| worker CPU, streams idle (10 s) | {results['idle_cores'] * 100:.2f} % of a core |",
    ]
    for n, (first, last, heard) in enumerate(results["fan_out"], 1):
        timing = "none heard" if first is None else f"first {first * 1000:.0f} ms, last {last * 1000:.0f} ms"
        lines.append(
            f"| fan-out {n}: one change of the root, write acknowledged -> event | {timing}; "
            f"{heard:,} of {count:,} streams |"
        )
    slower = (busy.p95 / quiet.p95 - 1) * 100 if quiet.p95 else float("nan")
    lines += [
        f"| cached lookup at {LOOKUP_RATE:,}/s (h2load), p50 / p95 / p99, no change | "
        f"{quiet.p50:.2f} / {quiet.p95:.2f} / {quiet.p99:.2f} ms ({quiet.errors} errors) |",
        f"| the same while the root is toggled once a second ({results['toggles']} fan-outs) | "
        f"{busy.p50:.2f} / {busy.p95:.2f} / {busy.p99:.2f} ms ({busy.errors} errors) |",
        f"| lookup p95 with fan-outs running vs without | {slower:+.1f} % (the bound: +10 %) |",
        END,
    ]
    table = "\n".join(lines)
    print(table)
    if not options.no_write and count >= 10_000:
        write_section(START, END, "OpenFeature event streams (bench/streams.py)", table)


if __name__ == "__main__":
    main()
