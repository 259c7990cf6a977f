"""Cold lookups over a 10M-org graph (issue 11, item 1): orgs never asked before, at fixed rates.

    flock -x /tmp/graphflags-bench.lock .venv/bin/python bench/cold.py     # `make bench` runs it

What it does, all on this machine (loopback, free ports):
1. generates the synthetic forest (loaders.synthetic's default shape, depth up to 20, as
   bench/scale.py does) and imports it with neo4j-admin into a Neo4j home of its own
   (--home, default /tmp/graphflags-cold), keeping a random sample of the org ids;
2. starts that Neo4j and warms it as a long-running server would be: every Org record,
   PARENT_OF relationship and the id index read once, so the page cache holds the store;
3. starts `graphflags serve` with 2 workers, warms it (connections, plans) on orgs that are
   not measured afterwards;
4. for each case (REST single flag, OFREP single flag, bulk GET /v1/orgs/{org}/flags) sends
   vegeta open-loop traffic at fixed rates, every request for an org never asked before,
   and climbs the rates until p95 passes 50 ms at or beyond 5,000/s; GET /healthz under the
   same tool at 5,000/s and under wrk at saturation is the no-op of the same run;
5. records the CPU each process used (load tool, service, Neo4j), the load average before
   and after, optionally a py-spy profile of one worker at one case and rate;
6. writes the table into bench/RESULTS.md between the cold markers, and deletes the store
   unless --keep.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from neo4j import GraphDatabase

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from harness import Run, free_port, healthz, publish, serve, service_pids, stop  # noqa: E402
from open_loop import FLAG, IdSample, Unasked, attack, targets, warm_database  # noqa: E402

from app.auth.tokens import mint_dev_token  # noqa: E402
from app.domain.catalog import Catalog  # noqa: E402
from app.neo4j_server import ServerConf  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.store.cypher import cypher  # noqa: E402
from loaders.admin_import import import_directory  # noqa: E402
from loaders.neo4j_home import Neo4jHome  # noqa: E402
from loaders.synthetic import Shape, write_admin  # noqa: E402

START, END = "<!-- cold:start -->", "<!-- cold:end -->"
TARGET_MS, TARGET_RATE = 50.0, 5000


def build(home: Neo4jHome, orgs: int, work: Path, catalog: Catalog, args) -> list[str]:
    folder = work / f"import-{orgs}"
    shutil.rmtree(folder, ignore_errors=True)
    sample = IdSample(min(1.0, args.sample / orgs), seed=7)
    clock = time.perf_counter()
    write_admin(Shape(orgs=orgs, max_depth=20, density=0.01, seed=42), folder, catalog, sample)
    print(f"generated {orgs:,} orgs in {time.perf_counter() - clock:.1f} s", flush=True)
    settings = Settings(flags_file=REPO / "flags.json", watch_catalog=False, log_json=False, log_level="WARNING")
    report = import_directory(home, folder, settings, heap=args.admin_heap, off_heap=args.admin_off_heap)
    print(f"imported: {report.seconds}, store {report.store_bytes / 2**20:,.0f} MiB", flush=True)
    shutil.rmtree(folder)
    random.Random(11).shuffle(sample.ids)
    (work / f"ids-{orgs}.txt").write_text("\n".join(sample.ids))
    return sample.ids


def profile_statement(home: Neo4jHome, orgs: list[str]) -> list[str]:
    """The operators of the batch statement's PROFILE: index seeks only, never a scan."""
    with GraphDatabase.driver(home.bolt_uri, auth=("neo4j", home.password)) as driver:
        summary = driver.execute_query(
            "PROFILE " + cypher("lookup_chains"), lookups=[[org, FLAG] for org in orgs], database_="neo4j"
        ).summary
    operators: list[str] = []

    def walk(plan: dict) -> None:
        operators.append(f"{plan['operatorType']} (db hits {plan.get('dbHits', 0)})")
        for child in plan.get("children", []):
            walk(child)

    walk(summary.profile)
    return operators


def hot_spots(profile: Path, top: int = 30) -> list[str]:
    """Share of samples per function (inclusive) from a py-spy raw (collapsed) profile."""
    inclusive: Counter = Counter()
    total = 0
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        # A frame reads "function (path/file.py:line)": the line number is dropped to add up per function.
        for frame in {re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")}:
            inclusive[frame] += int(count)
    return [f"{n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=10_000_000)
    parser.add_argument("--home", default="/tmp/graphflags-cold")
    parser.add_argument("--heap", default="2g")
    # The 10M store is 1.2 GiB with its indexes (bench/RESULTS.md, scale): 2g holds all of it,
    # so a warmed server answers every lookup from memory, as a production one sized to its store.
    parser.add_argument("--pagecache", default="2g")
    parser.add_argument("--admin-heap", default="2g")
    parser.add_argument("--admin-off-heap", default="4g")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rates", default="2000,3000,4000,5000,6000,7000,8000")
    parser.add_argument("--cases", default="rest,ofrep,bulk")
    parser.add_argument("--sample", type=int, default=1_500_000, help="org ids kept to draw requests from")
    parser.add_argument("--profile", default="rest:5000", help="CASE:RATE to profile one worker with py-spy ('' off)")
    parser.add_argument("--reuse", action="store_true", help="measure the graph --home already holds")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards (deleted by default)")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave RESULTS.md alone")
    args = parser.parse_args()
    home_dir, work = Path(args.home), Path(args.home) / "work"
    load_before = os.getloadavg()
    catalog = Catalog.load(REPO / "flags.json")
    if not args.reuse:
        shutil.rmtree(home_dir, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    home = Neo4jHome.init(
        Path(home_dir),
        ServerConf(bolt_port=free_port(), http_port=free_port(), heap=args.heap, pagecache=args.pagecache),
    )
    service = None
    try:
        if args.reuse:
            ids = (work / f"ids-{args.orgs}.txt").read_text().split("\n")
            home.start()
        else:
            ids = build(home, args.orgs, work, catalog, args)
        warm_s = warm_database(home)
        print(f"Neo4j warmed in {warm_s:.1f} s", flush=True)
        neo4j_pid = int((home_dir / "run" / "neo4j.pid").read_text().strip())
        plan = profile_statement(home, ids[:50])
        print("PROFILE lookup_chains (50 orgs):\n  " + "\n  ".join(plan), flush=True)
        token = mint_dev_token(
            Settings(jwt_dev_key_file=work / "dev-jwt.key"), subject="bench", roles=["reader"], orgs=["*"], ttl=3600
        )
        service, base = serve(home, work, args.workers)
        pids = service_pids(service.pid)
        tmp = Path(tempfile.gettempdir())
        fresh = Unasked(ids, "raise --sample").take

        # Warm the service (pooled connections, query plans, both workers) on orgs measured never after.
        attack("rest", 1000, 5, targets("rest", base, fresh(5000), token), pids, neo4j_pid, tmp)
        attack("bulk", 500, 4, targets("bulk", base, fresh(2000), token), pids, neo4j_pid, tmp)
        rows: list[tuple[Run, float, Counter]] = []
        crossing: dict[str, int | None] = {}
        hot: list[str] = []
        profile_case, _, profile_rate = args.profile.partition(":")
        rates = [int(rate) for rate in args.rates.split(",")]
        for case in args.cases.split(","):
            crossing[case] = None
            for rate in rates:
                print(f"{case} at {rate}/s ...", flush=True)
                spy = (
                    tmp / f"cold-{case}-{rate}.spy"
                    if (case == profile_case and str(rate) == profile_rate and (REPO / ".venv/bin/py-spy").exists())
                    else None
                )
                row = attack(
                    case,
                    rate,
                    args.duration,
                    targets(case, base, fresh(rate * args.duration), token),
                    pids,
                    neo4j_pid,
                    tmp,
                    spy,
                )
                rows.append(row)
                print(f"  {row[0].row()} neo4j CPU {row[1]:.2f} {dict(row[2])}", flush=True)
                if spy is not None and spy.exists():
                    hot = hot_spots(spy)
                if row[0].p95 > TARGET_MS and crossing[case] is None:
                    crossing[case] = rate
                if crossing[case] is not None and rate >= TARGET_RATE:
                    break
                time.sleep(2)  # let queues drain before the next rate
        noop = attack(
            "healthz", TARGET_RATE, args.duration, targets("healthz", base, ["-"], token), pids, neo4j_pid, tmp
        )
        noop_wrk = healthz(base, args.duration, pids).rps
    finally:
        stop(service)
        home.stop()
    load_after = os.getloadavg()
    report(rows, noop, noop_wrk, crossing, plan, hot, load_before, load_after, warm_s, args)
    if not args.keep:
        shutil.rmtree(home_dir, ignore_errors=True)
        print(f"deleted {home_dir}", flush=True)


def report(rows, noop, noop_wrk, crossing, plan, hot, load_before, load_after, warm_s, args) -> None:
    names = {
        "rest": f"REST `GET /v1/orgs/{{org}}/flags/{FLAG}`",
        "ofrep": f"OFREP `POST /ofrep/v1/evaluate/flags/{FLAG}`",
        "bulk": "bulk `GET /v1/orgs/{org}/flags`",
    }
    lines = [
        START,
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores; "
        f"{args.orgs:,} synthetic orgs (loaders.synthetic default shape, depth up to 20), Neo4j 5.26 heap "
        f"{args.heap}, page cache {args.pagecache}, warmed ({warm_s:.0f} s); `graphflags serve` with {args.workers} "
        f"workers, misses read in batches (app/cache/batched_reads.py). vegeta open loop, every request for an "
        f"org never asked before; load average before {load_before[0]:.1f} / {load_before[1]:.1f}, after "
        f"{load_after[0]:.1f} / {load_after[1]:.1f} (1 / 5 min).",
        "",
        f"Command: `flock -x /tmp/graphflags-bench.lock .venv/bin/python bench/cold.py --orgs {args.orgs} "
        f"--rates {args.rates} --duration {args.duration} --cases {args.cases}` (run by `make bench`)",
        "",
        f"No-op of the same run: `GET /healthz` under vegeta at {TARGET_RATE:,}/s p50 {noop[0].p50:.2f} ms, "
        f"p95 {noop[0].p95:.2f} ms, p99 {noop[0].p99:.2f} ms; under wrk -t1 -c50 {noop_wrk:,.0f} requests/s.",
        "",
        "| case | rate | achieved req/s | p50 ms | p95 ms | p99 ms | errors | status codes | vegeta CPU | service CPU | Neo4j CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run, neo4j_cpu, statuses in rows:
        lines.append(
            f"| {names[run.case]} | {run.rate} | {run.rps:,.0f} | {run.p50:.2f} | {run.p95:.2f} | "
            f"{run.p99:.2f} | {run.errors} | {' '.join(f'{c}: {n}' for c, n in sorted(statuses.items()))} | "
            f"{run.load_cpu:.2f} | {run.service_cpu:.2f} | {neo4j_cpu:.2f} |"
        )
    lines += [
        "",
        "p95 first above 50 ms: "
        + "; ".join(
            f"{names[case]} at {f'{rate:,}/s' if rate else 'none of the rates tried'}"
            for case, rate in crossing.items()
        ),
        "",
        "`PROFILE` of the batch statement (50 orgs): " + ", ".join(plan),
    ]
    if hot:
        lines += ["", f"py-spy, one worker during {args.profile} (inclusive share of samples):", "", "```", *hot, "```"]
    lines.append(END)
    table = "\n".join(lines)
    publish(table, START, END, "Cold lookups over 10M orgs (issue 11)", write=not args.no_write)


if __name__ == "__main__":
    main()
