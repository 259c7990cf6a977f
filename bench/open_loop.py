"""Open-loop load on a running `graphflags serve`: shared by bench/cold.py and bench/scale.py.

`targets` builds vegeta targets (one request per
org, so every request can be for an org never asked before); `attack` sends them at a fixed
rate with vegeta and reports latency and the CPU each side used; `IdSample` keeps a random
share of a synthetic forest's ids while it is generated; `warm_database` reads the store once
so the page cache holds it, as on a long-running server. The service itself, its home and the
CPU accounting are bench/harness.py's.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from neo4j import GraphDatabase

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from harness import VEGETA, Run, cpu_seconds, service_pids, vegeta_report, vegeta_run, watch  # noqa: E402

from loaders.neo4j_home import Neo4jHome  # noqa: E402

FLAG = "new-checkout"


class IdSample:
    """A random share of the forest's org ids (write_admin offers each one, with its depth)."""

    def __init__(self, share: float, seed: int) -> None:
        self.share = share
        self.rng = random.Random(seed)
        self.ids: list[str] = []

    def offer(self, org: str, depth: int) -> None:
        if self.rng.random() < self.share:
            self.ids.append(org)


class Unasked:
    """Org ids handed out once each, in order: every open-loop request is for an org never asked before."""

    def __init__(self, ids: list[str], hint: str) -> None:
        self.ids, self.hint, self.cursor = ids, hint, 0

    def take(self, count: int) -> list[str]:
        if self.cursor + count > len(self.ids):
            raise SystemExit(f"out of never-asked org ids ({len(self.ids):,}): {self.hint}")
        self.cursor += count
        return self.ids[self.cursor - count : self.cursor]


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
    neo4j_before = cpu_seconds([neo4j_pid])
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
    load_cpu, wall, service_cpu = watch(load, pids)
    if spy is not None:
        spy.wait(timeout=60)
    report = vegeta_report(results)
    run = vegeta_run(case, rate, report, load_cpu, wall, service_cpu)
    return run, (cpu_seconds([neo4j_pid]) - neo4j_before) / wall, Counter(report["status_codes"])
