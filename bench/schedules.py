"""Scheduled changes (issue 13): how late after `at` a schedule is applied, with two instances.

    flock -x /tmp/graphflags-bench.lock env NEO4J_URI=bolt://127.0.0.1:PORT NEO4J_PASSWORD=... \\
        GRAPHFLAGS_FLAGS_FILE=tests/data/catalog.json .venv/bin/python bench/schedules.py --schedules 50

Starts two `graphflags serve` instances on the Neo4j the environment names, creates one org
per schedule, schedules a value on each for a time 3 to 8 seconds ahead (spread), waits for
all to be applied, and reads from the audit log when each was applied (the event's time,
the database's clock, the same clock `at` is compared with) and by how many events: lateness
= event time - at, and each schedule must have exactly one event.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bulk_values import serve  # noqa: E402

from app.auth.tokens import mint_dev_token  # noqa: E402
from app.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=50)
    parser.add_argument("--flag", default="beta")
    parser.add_argument("--work", default="/tmp/graphflags-schedules-bench")
    args = parser.parse_args()
    work = Path(args.work)
    load_before = os.getloadavg()
    services = []
    for name in ("one", "two"):
        (work / name).mkdir(parents=True, exist_ok=True)
    token = mint_dev_token(
        Settings(jwt_dev_key_file=work / "dev-jwt.key"), subject="bench", roles=["admin"], orgs=["*"], ttl=3600
    )
    for name in ("one", "two"):
        (work / name / "dev-jwt.key").write_bytes((work / "dev-jwt.key").read_bytes())
        services.append(serve(work / name))
    try:
        (one, url_one), (two, url_two) = services
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(headers=headers, timeout=60) as client:
            prefix = f"sb{uuid.uuid4().hex[:6]}"
            orgs = [f"{prefix}-{i}" for i in range(args.schedules)]
            created = client.post(f"{url_one}/v1/orgs/bulk", json=[{"id": org, "parent": None} for org in orgs])
            assert created.status_code == 200, created.text
            start = datetime.now(UTC)
            taken = {}
            for i, org in enumerate(orgs):
                at = start + timedelta(seconds=3 + 5 * i / args.schedules)
                url = (url_one, url_two)[i % 2]
                response = client.put(
                    f"{url}/v1/orgs/{org}/flags/{args.flag}",
                    json={"value": True, "at": at.isoformat().replace("+00:00", "Z")},
                )
                assert response.status_code == 202, response.text
                taken[org] = (response.json()["schedule"], at)
            deadline = time.monotonic() + 60
            while client.get(f"{url_two}/v1/schedules", params={"flag": args.flag}).json()["schedules"]:
                assert time.monotonic() < deadline, "schedules still pending after a minute"
                time.sleep(0.2)
            late, events_per_schedule = [], []
            for org, (schedule, at) in taken.items():
                events = [
                    e
                    for e in client.get(f"{url_one}/v1/audit", params={"org": org}).json()["events"]
                    if e.get("schedule") == schedule
                ]
                events_per_schedule.append(len(events))
                late.append((datetime.fromisoformat(events[0]["at"]) - at).total_seconds())
            health = []
            for _ in range(50):
                begin = time.perf_counter()
                assert client.get(f"{url_one}/healthz").status_code == 200
                health.append(time.perf_counter() - begin)
    finally:
        for process, _ in services:
            process.terminate()
            process.wait(timeout=30)
    ordered = sorted(late)
    print(
        json.dumps(
            {
                "schedules": args.schedules,
                "events_per_schedule": sorted(set(events_per_schedule)),
                "late_s": {
                    "min": round(ordered[0], 3),
                    "p50": round(statistics.median(ordered), 3),
                    "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
                    "max": round(ordered[-1], 3),
                },
                "healthz_ms": {"p50": round(statistics.median(health) * 1000, 2), "max": round(max(health) * 1000, 2)},
                "load_before": load_before,
                "load_after": os.getloadavg(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
