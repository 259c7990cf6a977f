"""Open-loop load on a running `graphflags serve`: shared by bench/cold.py and bench/scale.py.

`serve` starts the service over a Neo4j home; `targets` builds vegeta targets (one request per
org, so every request can be for an org never asked before); `attack` sends them at a fixed
rate with vegeta and reports latency and the CPU each side used; `IdSample` keeps a random
share of a synthetic forest's ids while it is generated; `warm_database` reads the store once
so the page cache holds it, as on a long-running server.
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from neo4j import GraphDatabase

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from hotpath import VEGETA, Run, cpu_seconds, service_pids  # noqa: E402

from loaders.neo4j_home import Neo4jHome  # noqa: E402

FLAG = "new-checkout"


def free_port() -> int:
    """A free port below the kernel's ephemeral range: a port the kernel picked for us (bind to
    0) may be handed to someone's outgoing connection before our server binds it, which on this
    busy machine happened (Neo4j: "Address already in use")."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, min(low, 32768))
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found below the ephemeral range")


class IdSample:
    """A random share of the forest's org ids (write_admin offers each one, with its depth)."""

    def __init__(self, share: float, seed: int) -> None:
        self.share = share
        self.rng = random.Random(seed)
        self.ids: list[str] = []

    def offer(self, org: str, depth: int) -> None:
        if self.rng.random() < self.share:
            self.ids.append(org)


def warm_database(home: Neo4jHome) -> float:
    """Read every record the lookups use once, so they come from the page cache afterwards."""
    clock = time.perf_counter()
    with GraphDatabase.driver(home.bolt_uri, auth=("neo4j", home.password)) as driver:
        for statement in (
            "MATCH (o:Org) WHERE o.id >= '' RETURN count(o.id)",  # the id index and properties
            "MATCH (:Org)-[r:PARENT_OF]->() RETURN count(r)",  # nodes and relationships
            "MATCH (:Org)-[s:SET]->(:Flag) RETURN count(s.value)",
        ):
            driver.execute_query(statement, database_="neo4j")
    return time.perf_counter() - clock


def serve(
    home: Neo4jHome, work: Path, workers: int, settings: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """`graphflags serve` over `home` on a free port (extra `settings`: GRAPHFLAGS_* variables)."""
    port = free_port()
    env = {
        **os.environ,
        "NEO4J_URI": home.bolt_uri,
        "NEO4J_PASSWORD": home.password,
        "GRAPHFLAGS_PORT": str(port),
        "GRAPHFLAGS_WORKERS": str(workers),
        "GRAPHFLAGS_WATCH_CATALOG": "false",
        "GRAPHFLAGS_LOG_LEVEL": "WARNING",
        "GRAPHFLAGS_JWT_DEV_KEY_FILE": str(work / "dev-jwt.key"),
        **(settings or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "serve.log", "w"),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200 and process.poll() is None:
                return process, base
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the service exited; see {work / 'serve.log'}")
        time.sleep(0.25)
    raise SystemExit("the service did not become ready")


def targets(case: str, base: str, orgs: list[str], token: str) -> list[dict]:
    auth = {"Authorization": [f"Bearer {token}"]}
    if case == "rest":
        return [{"method": "GET", "url": f"{base}/v1/orgs/{org}/flags/{FLAG}", "header": auth} for org in orgs]
    if case == "bulk":
        return [{"method": "GET", "url": f"{base}/v1/orgs/{org}/flags", "header": auth} for org in orgs]
    if case == "ofrep":
        header = {**auth, "Content-Type": ["application/json"]}
        return [
            {
                "method": "POST",
                "url": f"{base}/ofrep/v1/evaluate/flags/{FLAG}",
                "header": header,
                "body": base64.b64encode(json.dumps({"context": {"targetingKey": org}}).encode()).decode(),
            }
            for org in orgs
        ]
    if case == "healthz":
        return [{"method": "GET", "url": f"{base}/healthz"}] * len(orgs)
    raise ValueError(case)


def attack(
    case: str,
    rate: int,
    duration: int,
    chosen: list[dict],
    pids: list[int],
    neo4j_pid: int,
    tmp: Path,
    profile: Path | None = None,
) -> tuple[Run, float, Counter]:
    target_file, results = tmp / f"cold-{case}.json", tmp / f"cold-{case}-{rate}.bin"
    target_file.write_text("".join(json.dumps(t) + "\n" for t in chosen))
    before, neo4j_before = cpu_seconds(pids), cpu_seconds([neo4j_pid])
    started = time.monotonic()
    load = subprocess.Popen(
        [
            VEGETA,
            "attack",
            "-format=json",
            f"-rate={rate}/s",
            f"-duration={duration}s",
            f"-targets={target_file}",
            "-timeout=10s",
            f"-output={results}",
        ]
    )
    spy = None
    if profile is not None:
        worker = max(service_pids(pids[0])[1:], key=lambda pid: cpu_seconds([pid]))  # a worker, not a helper
        spy = subprocess.Popen(
            [
                str(REPO / ".venv/bin/py-spy"),
                "record",
                "-p",
                str(worker),
                "-d",
                str(max(1, duration - 2)),
                "-r",
                "200",
                "-f",
                "raw",
                "-o",
                str(profile),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    load_cpu = 0.0
    while load.poll() is None:
        load_cpu = max(load_cpu, cpu_seconds([load.pid]))
        time.sleep(0.2)
    wall = time.monotonic() - started
    if spy is not None:
        spy.wait(timeout=60)
    report = json.loads(
        subprocess.run(
            [VEGETA, "report", "-type=json", str(results)], capture_output=True, text=True, check=True
        ).stdout
    )
    statuses = Counter(report["status_codes"])
    ok = sum(n for code, n in statuses.items() if code.startswith("2"))
    latency = {key: nanos / 1e6 for key, nanos in report["latencies"].items()}
    run = Run(
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
    return run, (cpu_seconds([neo4j_pid]) - neo4j_before) / wall, statuses
