"""Bulk value writes (issue 13): 100,000 rows in one `PUT /v1/flags/{flag}/values`, timed.

    flock -x /tmp/graphflags-bench.lock env NEO4J_URI=bolt://127.0.0.1:PORT NEO4J_PASSWORD=... \\
        .venv/bin/python bench/bulk_values.py --rows 100000

Against the Neo4j the environment names (a disposable one: it creates orgs there), it starts
`graphflags serve` (one worker) on a free port, creates the orgs (a root with ROWS children,
through POST /v1/orgs/bulk), then sends ROWS rows of one flag as CSV, NDJSON and a JSON array
in turn, alternating the value so every request changes every row, and times each request
end to end. The service's peak resident memory (VmHWM) is read before and after, next to
GET /healthz latency measured in the same run, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from scale import free_port  # noqa: E402

from app.auth.tokens import mint_dev_token  # noqa: E402
from app.settings import Settings  # noqa: E402


def serve(work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "GRAPHFLAGS_PORT": str(port),
        "GRAPHFLAGS_WATCH_CATALOG": "false",
        "GRAPHFLAGS_LOG_LEVEL": "WARNING",
        "GRAPHFLAGS_JWT_DEV_KEY_FILE": str(work / "dev-jwt.key"),
    }
    process = subprocess.Popen(
        [str(REPO / ".venv/bin/graphflags"), "serve"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "serve.log", "w"),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200 and process.poll() is None:
                return process, f"http://127.0.0.1:{port}"
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"the service exited; see {work / 'serve.log'}")
        time.sleep(0.25)
    raise RuntimeError("the service did not become ready")


def peak_rss_mib(process: subprocess.Popen) -> float:
    """The largest resident set of the service's processes (supervisor and worker)."""
    pids = [process.pid] + [
        int(p) for p in subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    ]
    peak = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--flag", default="beta-dashboard")
    parser.add_argument("--work", default="/tmp/graphflags-bulk-values")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    token = mint_dev_token(
        Settings(jwt_dev_key_file=work / "dev-jwt.key"), subject="bench", roles=["admin"], orgs=["*"], ttl=3600
    )
    service, base_url = serve(work)
    prefix = f"bv{uuid.uuid4().hex[:6]}"
    root, orgs = f"{prefix}-root", [f"{prefix}-{i}" for i in range(args.rows)]
    results: dict = {"rows": args.rows, "load_before": load_before}
    try:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=600) as client:
            csv_orgs = "id,parent\n" + f"{root},\n" + "".join(f"{org},{root}\n" for org in orgs)
            created = client.post("/v1/orgs/bulk", content=csv_orgs.encode(), headers={"content-type": "text/csv"})
            assert created.status_code == 200, created.text
            results["rss_after_orgs_mib"] = peak_rss_mib(service)
            runs = []
            for index, form in enumerate(("csv", "ndjson", "json")):
                value = index % 2 == 0
                if form == "csv":
                    body = ("org,value\n" + "".join(f"{org},{'true' if value else 'false'}\n" for org in orgs)).encode()
                    kind = "text/csv"
                elif form == "ndjson":
                    body = b"".join(orjson.dumps({"org": org, "value": value}) + b"\n" for org in orgs)
                    kind = "application/x-ndjson"
                else:
                    body, kind = orjson.dumps([{"org": org, "value": value} for org in orgs]), "application/json"
                start = time.perf_counter()
                response = client.put(f"/v1/flags/{args.flag}/values", content=body, headers={"content-type": kind})
                took = time.perf_counter() - start
                assert response.status_code == 200, response.text[:500]
                assert response.json() == {"changed": args.rows, "unchanged": 0}, response.text
                runs.append(
                    {
                        "format": form,
                        "seconds": round(took, 2),
                        "body_mib": round(len(body) / 2**20, 1),
                        "rss_peak_mib": round(peak_rss_mib(service), 1),
                    }
                )
                print(json.dumps(runs[-1]), flush=True)
            # A dry run of flipping every row again: judged like the real request, counted by Neo4j.
            flipped = orjson.dumps([{"org": org, "value": not value} for org in orgs])
            start = time.perf_counter()
            dry = client.put(
                f"/v1/flags/{args.flag}/values",
                params={"dry_run": "true"},
                content=flipped,
                headers={"content-type": "application/json"},
            )
            results["dry_run_same_rows"] = {
                "seconds": round(time.perf_counter() - start, 2),
                "affected": dry.json()["affected"]["orgs"],
            }
            health = []
            for _ in range(50):
                start = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                health.append(time.perf_counter() - start)
            results["healthz_ms"] = {
                "p50": round(statistics.median(health) * 1000, 2),
                "max": round(max(health) * 1000, 2),
            }
            results["runs"] = runs
    finally:
        service.terminate()
        service.wait(timeout=30)
    results["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
