"""Online bulk load benchmark (issue 3): one POST /v1/orgs/bulk of N rows, time and peak RSS.

    flock /tmp/graphflags-bench.lock .venv/bin/python bench/bulk_online.py --rows 1000000

Uses the scale home of bench/scale.py (.local/neo4j/scale, whatever graph it holds: the
new orgs get a fresh id prefix). Generates N rows of new tenants (loaders.synthetic,
depth up to 20) as an `id,parent` CSV, starts `graphflags serve` (one worker, so the
server is one process), streams the file to it, and reports the wall time, rows per
second, and the server's resident memory before and at its peak (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from harness import bench_home, serve, stop  # noqa: E402

from app.auth.tokens import mint_dev_token  # noqa: E402
from app.settings import Settings  # noqa: E402
from loaders.synthetic import Shape, write_csv  # noqa: E402


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--home", default=str(REPO / ".local/neo4j/scale"))
    parser.add_argument("--work", default=str(REPO / ".local/scale"))
    parser.add_argument("--heap", default="4g")
    parser.add_argument("--pagecache", default="6g")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    home = bench_home(Path(args.home), args.heap, args.pagecache)

    body = work / f"bulk-{args.rows}.csv"
    prefix = f"b{int(time.time())}x"
    with open(body, "w") as out:
        write_csv(Shape(orgs=args.rows, max_depth=20, density=0, seed=9, prefix=prefix), out)
    token = mint_dev_token(
        Settings(jwt_dev_key_file=work / "dev-jwt.key"), subject="bench-bulk", roles=["admin"], orgs=["*"], ttl=7200
    )
    service = None
    try:
        service, base_url = serve(home, work)
        before = memory_kib(service.pid)
        with open(body, "rb") as stream, httpx.Client(timeout=3600) as client:
            start = time.perf_counter()
            response = client.post(
                f"{base_url}/v1/orgs/bulk",
                content=stream,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
            )
            took = time.perf_counter() - start
        after = memory_kib(service.pid)
    finally:
        stop(service)
        home.stop()
    result = {
        "rows": args.rows,
        "body_bytes": body.stat().st_size,
        "status": response.status_code,
        "answer": response.text[:300],
        "seconds": took,
        "rows_per_s": args.rows / took,
        "rss_before_mib": before["VmRSS"] / 1024,
        "rss_peak_mib": after["VmHWM"] / 1024,
        "load_average": os.getloadavg(),
    }
    (work / f"bulk-online-{args.rows}.json").write_text(json.dumps(result, indent=2))
    body.unlink()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
