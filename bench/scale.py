"""Scale benchmark (issues 3 and 15): 1M, 10M and 100M orgs in one run, so the three compare.

The full run (about 2-3 hours, ~40 GB of disk at its peak, all of it deleted at the end):

    flock -x /tmp/graphflags-bench.lock .venv/bin/python bench/scale.py --sizes 1000000,10000000,100000000

A smoke run that proves the script end to end in a few minutes (RESULTS.md left alone):

    nice -n 19 .venv/bin/python bench/scale.py --sizes 100000,300000 --rates 100,200 --duration 3 \\
        --lookups 300 --pagecache 1g --heap 1g --admin-heap 1g --admin-off-heap 1g --no-write

For each size N, one after another in one Neo4j home of its own (--home; each size replaces the
database of the one before):
1. generate the synthetic forest as neo4j-admin import files (loaders.synthetic default shape,
   depth up to 20, 1% value density), keeping a depth-stratified sample (sequential probes) and
   a random sample of ids (open-loop requests, each for an org never asked before);
2. neo4j-admin import (time, and the peak RSS of the neo4j-admin JVM sampled from /proc), start,
   migrations (the unique constraints are built here), catalog sync; store size on disk;
3. restart Neo4j (empty page cache) and start `graphflags serve` with one worker: sequential
   lookups over keep-alive HTTP, cold (first touch after the restart) then warm (the same again,
   answered by the service's cache), and GET /healthz the same way: the no-op beside them;
4. warm the page cache (every Org, PARENT_OF and SET read once, as bench/cold.py does), serve
   with --workers, and send vegeta open-loop traffic at each of --rates, every request for an
   org never asked before; GET /healthz at the same rate right after each, as its no-op;
5. online export (`graphflags backup`, encrypted with a key made for the run), restore from it,
   offline dump (`graphflags backup --offline`), restore from the dump: time and size of each,
   and whether RTO 15 min / RPO 1 h hold at this size;
6. write WORK/scale-N.json, delete the import files and backups.
At the end: the tables (stdout, and bench/RESULTS.md between the scale-15 markers unless
--no-write), then the home and the work folder are deleted unless --keep.
Heap and page cache default to 4g / 10g: sized for this 24 GiB machine with ~8 GiB left to
others (the 100M store is ~12 GiB, so the page cache holds most but not all of it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from harness import free_port, serve, service_pids, stop, write_section  # noqa: E402
from open_loop import FLAG, IdSample, Unasked, attack, targets, warm_database  # noqa: E402

from app.auth.tokens import mint_dev_token  # noqa: E402
from app.domain.catalog import Catalog  # noqa: E402
from app.neo4j_server import ServerConf  # noqa: E402
from app.settings import Settings  # noqa: E402
from loaders.admin_import import import_directory  # noqa: E402
from loaders.neo4j_home import Neo4jHome  # noqa: E402
from loaders.synthetic import DepthSample, Shape, write_admin  # noqa: E402

START, END = "<!-- scale15:start -->", "<!-- scale15:end -->"
GRAPHFLAGS = str(REPO / ".venv/bin/graphflags")
RTO_S, RPO_S = 15 * 60, 60 * 60


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
        "n": len(ordered),
    }


class BothSamples:
    """Hands every generated org to the depth sample and to the id sample."""

    def __init__(self, *samples) -> None:
        self.samples = samples

    def offer(self, org: str, depth: int) -> None:
        for sample in self.samples:
            sample.offer(org, depth)


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The parent pid is the 2nd field after the ")" that closes the command name.
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@contextmanager
def peak_rss(
    markers: tuple[bytes, ...] = (b"Neo4jAdminCommand", b"AdminTool"), every: float = 0.5
) -> Iterator[dict[str, int]]:
    """The highest total RSS (bytes) of this process's descendants whose command line holds one of
    `markers`: neo4j-admin's small launcher JVM and the JVM it starts to do the work. Sampled
    from /proc, so a peak shorter than `every` can be missed."""
    peak = {"bytes": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every):
            total = 0
            for pid in _descendants(os.getpid()):
                try:
                    command = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if not any(marker in command for marker in markers):
                        continue
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
                except (OSError, ValueError):
                    continue
            peak["bytes"] = max(peak["bytes"], total)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def sequential(client: httpx.Client, paths: list[str]) -> list[float]:
    took = []
    for path in paths:
        start = time.perf_counter()
        response = client.get(path)
        took.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text}")
    return took


def generate(
    orgs: int, folder: Path, catalog: Catalog, open_loop_orgs: int
) -> tuple[DepthSample, list[str], dict, float]:
    shutil.rmtree(folder, ignore_errors=True)
    depths, ids = DepthSample(500, seed=42), IdSample(min(1.0, 1.5 * open_loop_orgs / orgs), seed=7)
    clock = time.perf_counter()
    manifest = write_admin(
        Shape(orgs=orgs, max_depth=20, density=0.01, seed=42), folder, catalog, BothSamples(depths, ids)
    )
    seconds = time.perf_counter() - clock
    random.Random(11).shuffle(ids.ids)
    return depths, ids.ids, manifest.counts(), seconds


def sequential_lookups(
    home: Neo4jHome, work: Path, depths: DepthSample, catalog: Catalog, count: int, token: str
) -> dict:
    """Restart Neo4j, one fresh worker: cold then warm single lookups, and /healthz the same way."""
    clock = time.perf_counter()
    home.stop()
    home.start()
    restart_s = time.perf_counter() - clock
    rng = random.Random(7)
    per_depth = {int(depth): ids for depth, ids in depths.document()["per_depth"].items()}
    flags = [flag.name for flag in catalog]
    probes = list(
        dict.fromkeys(
            (rng.choice(per_depth[d]), rng.choice(flags)) for d in (rng.choice(sorted(per_depth)) for _ in range(count))
        )
    )
    first_org = per_depth[0][0]
    probes = [probe for probe in probes if probe[0] != first_org]  # cold means first touch
    service, base = serve(home, work, 1)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            # The first request pays for the driver's first connection and Cypher planning: apart.
            first = sequential(client, [f"/v1/orgs/{first_org}/flags/{FLAG}"])[0]
            paths = [f"/v1/orgs/{org}/flags/{flag}" for org, flag in probes]
            cold = sequential(client, paths)
            warm = sequential(client, paths)
            healthz = sequential(client, ["/healthz"] * len(paths))
    finally:
        stop(service)
    return {
        "restart_s": restart_s,
        "first_request_ms": first,
        "cold_ms": percentiles(cold),
        "warm_ms": percentiles(warm),
        "healthz_ms": percentiles(healthz),
        "deepest_depth": depths.deepest[0],
    }


def open_loop(home: Neo4jHome, work: Path, ids: list[str], token: str, args) -> dict:
    """Warmed page cache, --workers workers, vegeta at each rate on never-asked orgs, then /healthz."""
    warm_s = warm_database(home)
    neo4j_pid = int((home.path / "run" / "neo4j.pid").read_text().strip())
    service, base = serve(home, work, args.workers)
    tmp = Path(tempfile.mkdtemp(prefix="scale-vegeta-", dir=work))
    rows = []
    try:
        pids = service_pids(service.pid)
        fresh = Unasked(ids, "lower --rates or --duration").take

        # Connections, plans and both workers warmed on orgs never measured afterwards.
        warmup = min(2000, len(ids) // 10)
        attack("rest", max(1, warmup // 5), 5, targets("rest", base, fresh(warmup), token), pids, neo4j_pid, tmp)
        for rate in (int(r) for r in args.rates.split(",")):
            run, neo4j_cpu, statuses = attack(
                "rest",
                rate,
                args.duration,
                targets("rest", base, fresh(rate * args.duration), token),
                pids,
                neo4j_pid,
                tmp,
            )
            noop, _, _ = attack(
                "healthz",
                rate,
                args.duration,
                targets("healthz", base, ["-"] * (rate * args.duration), token),
                pids,
                neo4j_pid,
                tmp,
            )
            rows.append(
                {
                    "rate": rate,
                    "rps": run.rps,
                    "p50": run.p50,
                    "p95": run.p95,
                    "p99": run.p99,
                    "errors": run.errors,
                    "statuses": dict(statuses),
                    "service_cpu": run.service_cpu,
                    "neo4j_cpu": neo4j_cpu,
                    "healthz": {"p50": noop.p50, "p95": noop.p95, "p99": noop.p99},
                }
            )
            print(
                f"  open loop {rate}/s: {run.rps:,.0f}/s p50/p95/p99 {run.p50:.1f}/{run.p95:.1f}/{run.p99:.1f} ms "
                f"errors {run.errors}; healthz p95 {noop.p95:.1f} ms",
                flush=True,
            )
            time.sleep(2)  # let queues drain before the next rate
    finally:
        stop(service)
        shutil.rmtree(tmp, ignore_errors=True)
    return {"warm_s": warm_s, "rates": rows}


def backups(home: Neo4jHome, work: Path, args) -> dict:
    """Online export, restore from it, offline dump, restore from that: time and size of each."""
    out = work / "backups"
    out.mkdir(exist_ok=True)
    key = work / "backup.key"
    if not key.exists():
        subprocess.run([GRAPHFLAGS, "backup-key", "--out", str(key)], check=True, capture_output=True)
    env = {
        **os.environ,
        "NEO4J_URI": home.bolt_uri,
        "NEO4J_PASSWORD": home.password,
        "GRAPHFLAGS_BACKUP_KEY_FILE": str(key),
        "GRAPHFLAGS_LOG_LEVEL": "WARNING",
        "GRAPHFLAGS_FLAGS_FILE": str(REPO / "flags.json"),
    }

    def timed(*command: str) -> tuple[float, str]:
        clock = time.perf_counter()
        done = subprocess.run([GRAPHFLAGS, *command], env=env, cwd=REPO, check=True, capture_output=True, text=True)
        return time.perf_counter() - clock, done.stdout.strip().splitlines()[-1].split()[
            0
        ] if done.stdout.strip() else ""

    home.start()
    result: dict = {}
    try:
        result["export_s"], folder = timed("backup", "--to", str(out), "--home", str(home.path))
        result["export_bytes"] = folder_bytes(Path(folder))
        result["restore_export_s"], _ = timed(
            "restore",
            "--from",
            folder,
            "--home",
            str(home.path),
            "--heap",
            args.admin_heap,
            "--off-heap",
            args.admin_off_heap,
        )
        shutil.rmtree(folder)
        result["dump_s"], folder = timed("backup", "--offline", "--to", str(out), "--home", str(home.path))
        result["dump_bytes"] = folder_bytes(Path(folder))
        result["restore_dump_s"], _ = timed(
            "restore", "--from", folder, "--home", str(home.path), "--heap", args.admin_heap
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    # RPO 1 h with an hourly export: the newest is at most an hour plus its own duration old, so
    # the export must finish well inside the hour (here: half of it). RTO 15 min: the restore
    # (verify, load or import, start, migrations, sync) plus ~1 min to restart the service.
    result["rpo_1h_holds"] = result["export_s"] < RPO_S / 2
    result["rto_15min_holds_dump"] = result["restore_dump_s"] + 60 < RTO_S
    result["rto_15min_holds_export"] = result["restore_export_s"] + 60 < RTO_S
    return result


def run_size(orgs: int, args, catalog: Catalog, home: Neo4jHome, work: Path, token: str) -> dict:
    folder = work / f"import-{orgs}"
    open_loop_orgs = sum(int(rate) for rate in args.rates.split(",")) * args.duration + 2000
    depths, ids, counts, generate_s = generate(orgs, folder, catalog, open_loop_orgs)
    csv_bytes = folder_bytes(folder)
    print(f"[{orgs:,}] generated {counts} ({csv_bytes / 2**20:,.0f} MiB) in {generate_s:.1f} s", flush=True)
    settings = Settings(flags_file=REPO / "flags.json", watch_catalog=False, log_json=False, log_level="WARNING")
    with peak_rss() as admin_peak:
        report = import_directory(home, folder, settings, heap=args.admin_heap, off_heap=args.admin_off_heap)
    shutil.rmtree(folder)
    print(
        f"[{orgs:,}] import {report.seconds}, neo4j-admin peak RSS {admin_peak['bytes'] / 2**30:.2f} GiB, "
        f"store {report.store_bytes / 2**20:,.0f} MiB",
        flush=True,
    )
    result = {
        "orgs": orgs,
        "counts": counts,
        "rows": sum(counts.values()),
        "csv_bytes": csv_bytes,
        "generate_s": generate_s,
        "import": report.seconds,
        "admin_peak_rss_bytes": admin_peak["bytes"],
        "store_bytes": report.store_bytes,
        "tx_log_bytes": home.transaction_log_bytes(),
    }
    result["sequential"] = sequential_lookups(home, work, depths, catalog, args.lookups, token)
    print(f"[{orgs:,}] sequential {json.dumps(result['sequential'])}", flush=True)
    result["open_loop"] = open_loop(home, work, ids, token, args)
    if args.backups:
        result["backup"] = backups(home, work, args)
        print(f"[{orgs:,}] backup {json.dumps(result['backup'])}", flush=True)
    result["load_average"] = os.getloadavg()
    (work / f"scale-{orgs}.json").write_text(json.dumps(result, indent=2))
    return result


def tables(results: list[dict], args) -> str:
    ms = lambda d: f"{d['p50']:.2f} / {d['p95']:.2f} / {d['p99']:.2f}"  # noqa: E731
    gib = lambda n: f"{n / 2**30:,.2f} GiB"  # noqa: E731
    lines = [
        START,
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM; Neo4j heap {args.heap}, "
        f"page cache {args.pagecache}; neo4j-admin heap {args.admin_heap}, off-heap {args.admin_off_heap}.",
        "",
        f"Command: `flock -x /tmp/graphflags-bench.lock .venv/bin/python bench/scale.py --sizes {args.sizes} "
        f"--rates {args.rates} --duration {args.duration} --lookups {args.lookups}`",
        "",
        "| orgs | records | generate | neo4j-admin import | admin peak RSS | migrations (constraints) + sync | "
        "store | restart |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r["import"]
        lines.append(
            f"| {r['orgs']:,} | {r['rows']:,} | {r['generate_s']:.1f} s | {s['neo4j-admin import']:.1f} s | "
            f"{gib(r['admin_peak_rss_bytes'])} | {s['migrations (constraints)']:.1f} + {s['catalog sync']:.1f} s | "
            f"{gib(r['store_bytes'])} | {r['sequential']['restart_s']:.1f} s |"
        )
    lines += [
        "",
        "Sequential single lookups after a restart, one worker, keep-alive HTTP (ms, p50 / p95 / p99):",
        "",
        "| orgs | cold (first touch) | warm (service cache) | GET /healthz (no-op) | first request |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        q = r["sequential"]
        lines.append(
            f"| {r['orgs']:,} | {ms(q['cold_ms'])} | {ms(q['warm_ms'])} | {ms(q['healthz_ms'])} | "
            f"{q['first_request_ms']:.1f} |"
        )
    lines += [
        "",
        f"Open-loop cold lookups (vegeta, {args.duration} s a rate, every request for an org never asked "
        f"before, page cache warmed first, {args.workers} workers); /healthz at the same rate right after:",
        "",
        "| orgs | rate | achieved/s | p50 / p95 / p99 ms | errors | service CPU | Neo4j CPU | /healthz p50 / p95 / p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for row in r["open_loop"]["rates"]:
            lines.append(
                f"| {r['orgs']:,} | {row['rate']:,}/s | {row['rps']:,.0f} | {ms(row)} | {row['errors']} | "
                f"{row['service_cpu']:.2f} | {row['neo4j_cpu']:.2f} | {ms(row['healthz'])} |"
            )
    if any("backup" in r for r in results):
        lines += [
            "",
            "Backups (encrypted; restore = verify, load or import, start, migrations, sync):",
            "",
            "| orgs | online export | restore from export | offline dump | restore from dump | RPO 1 h | RTO 15 min |",
            "|---:|---:|---:|---:|---:|---|---|",
        ]
        for r in results:
            b = r.get("backup")
            if b:
                rto = (
                    "holds (dump and export)"
                    if b["rto_15min_holds_export"]
                    else "holds from a dump only"
                    if b["rto_15min_holds_dump"]
                    else "does not hold: failover"
                )
                lines.append(
                    f"| {r['orgs']:,} | {b['export_s']:.0f} s, {b['export_bytes'] / 2**20:,.0f} MiB | "
                    f"{b['restore_export_s']:.0f} s | {b['dump_s']:.0f} s, {b['dump_bytes'] / 2**20:,.0f} MiB | "
                    f"{b['restore_dump_s']:.0f} s | {'holds' if b['rpo_1h_holds'] else 'does not hold'} | {rto} |"
                )
    lines += [
        "",
        "Load average after each size: " + "; ".join(f"{r['orgs']:,}: {r['load_average'][0]:.1f}" for r in results),
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000,100000000", help="comma-separated org counts")
    parser.add_argument("--home", default=str(REPO / ".local/neo4j/scale"))
    parser.add_argument("--work", default=str(REPO / ".local/scale"))
    parser.add_argument("--heap", default="4g")
    parser.add_argument("--pagecache", default="10g")
    parser.add_argument("--admin-heap", default="4g")
    parser.add_argument("--admin-off-heap", default="6g")
    parser.add_argument("--lookups", type=int, default=3000, help="sequential probes (cold, then warm)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rates", default="1000,2000,3000,4000", help="open-loop rates, requests/s")
    parser.add_argument("--duration", type=int, default=10, help="seconds per open-loop rate")
    parser.add_argument("--no-backups", dest="backups", action="store_false", help="skip backup and restore")
    parser.add_argument("--keep", action="store_true", help="keep the home (last size's database) and work folder")
    parser.add_argument("--no-write", action="store_true", help="print the tables, leave RESULTS.md alone")
    args = parser.parse_args()
    catalog = Catalog.load(REPO / "flags.json")
    home_dir, work = Path(args.home), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    home = Neo4jHome.init(
        Path(home_dir),
        ServerConf(bolt_port=free_port(), http_port=free_port(), heap=args.heap, pagecache=args.pagecache),
    )
    token = mint_dev_token(
        Settings(jwt_dev_key_file=work / "dev-jwt.key"), subject="bench", roles=["reader"], orgs=["*"], ttl=6 * 3600
    )
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    results = []
    try:
        for size in (int(part) for part in args.sizes.split(",")):
            results.append(run_size(size, args, catalog, home, work, token))
            print(tables(results, args), flush=True)
    finally:
        home.stop()
        if not args.keep:  # the disk budget: nothing the run wrote stays behind
            shutil.rmtree(home_dir, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
            print(f"deleted {home_dir} and {work}", flush=True)
    if results and not args.no_write:
        write_section(START, END, "Scale at 1M, 10M and 100M orgs (issue 15)", tables(results, args))


if __name__ == "__main__":
    main()
