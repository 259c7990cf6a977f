"""Scale benchmark (issue 3): import N synthetic orgs with neo4j-admin, then time lookups.

Run under the benchmark lock, one size after another (each replaces the scale home's database):

    flock /tmp/graphflags-bench.lock .venv/bin/python bench/scale.py --sizes 1000000,10000000

For each N: generate the import files (loaders.synthetic, depth up to 20), import them
into a Neo4j home of its own (.local/neo4j/scale, bolt 17687, http 17474, heap 4g,
page cache 6g), apply migrations and sync the catalog; then restart Neo4j and start the
service (`graphflags serve`, one worker) and time single lookups
`GET /v1/orgs/{org}/flags/{flag}` one at a time over keep-alive HTTP:
cold (first touch of each org after the restart), warm (the same requests again: the
service's in-process cache answers), and the database's own share (the flag_chain
statement through the driver, warm page cache). Orgs are drawn at random depths: a
depth uniformly from 0..max, then an org uniformly from a reservoir sample at that depth.
Prints a Markdown table and writes the raw figures to WORK/scale-N.json.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from neo4j import GraphDatabase

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.auth.tokens import mint_dev_token  # noqa: E402
from app.domain.catalog import Catalog  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.store.cypher import cypher  # noqa: E402
from loaders.admin_import import ImportReport, import_directory  # noqa: E402
from loaders.neo4j_home import NEO4JCTL, Neo4jHome  # noqa: E402
from loaders.synthetic import DepthSample, Shape, generate, write_admin  # noqa: E402

def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1],
            "mean": statistics.fmean(ordered), "n": len(ordered)}


def ensure_home(path: Path, heap: str, pagecache: str) -> Neo4jHome:
    subprocess.run([NEO4JCTL, "init", path, "--bolt-port", "17687", "--http-port", "17474", "--heap", heap,
                    "--pagecache", pagecache], check=True, capture_output=True)
    return Neo4jHome(path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(home: Neo4jHome, work: Path) -> tuple[subprocess.Popen, str]:
    """`graphflags serve` on a free port: (process, base URL)."""
    port = free_port()
    env = {**os.environ, "NEO4J_URI": home.bolt_uri, "NEO4J_PASSWORD": home.password,
           "GRAPHFLAGS_PORT": str(port), "GRAPHFLAGS_WATCH_CATALOG": "false",
           "GRAPHFLAGS_LOG_LEVEL": "WARNING", "GRAPHFLAGS_JWT_DEV_KEY_FILE": str(work / "dev-jwt.key")}
    process = subprocess.Popen([str(REPO / ".venv/bin/graphflags"), "serve"], env=env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=open(work / "serve.log", "w"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            ready = False
        # Alive after answering: another process on the same port must not pass for ours.
        if ready and process.poll() is None:
            return process, f"http://127.0.0.1:{port}"
        if process.poll() is not None:
            raise RuntimeError(f"the service exited; see {work / 'serve.log'}")
        time.sleep(0.25)
    raise RuntimeError("the service did not become ready")


def lookups(client: httpx.Client, probes: list[tuple[str, str]]) -> list[float]:
    took = []
    for org, flag in probes:
        start = time.perf_counter()
        response = client.get(f"/v1/orgs/{org}/flags/{flag}")
        took.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{org}/{flag}: {response.status_code} {response.text}")
    return took


def database_lookups(home: Neo4jHome, probes: list[tuple[str, str]]) -> list[float]:
    took = []
    statement = cypher("flag_chain")
    with GraphDatabase.driver(home.bolt_uri, auth=("neo4j", home.password)) as driver:
        with driver.session(database="neo4j") as session:
            for org, flag in probes:
                start = time.perf_counter()
                session.execute_read(lambda tx: tx.run(statement, org=org, flag=flag).values())
                took.append((time.perf_counter() - start) * 1000)
    return took


def run_size(orgs: int, args, catalog: Catalog, home: Neo4jHome) -> dict:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    folder = work / f"import-{orgs}"
    shutil.rmtree(folder, ignore_errors=True)
    shape = Shape(orgs=orgs, max_depth=20, density=0.01, seed=42)
    sample = DepthSample(500, seed=42)
    clock = time.perf_counter()
    if args.reuse:
        # The home already holds this very forest (same shape and seed): only the sample is needed.
        counts = {"Org": 0, "PARENT_OF": 0, "SET": 0, "Flag": len(catalog)}
        for org in generate(shape, catalog):
            sample.offer(org.id, org.depth)
            counts["Org"] += 1
            counts["PARENT_OF"] += org.parent is not None
            counts["SET"] += len(org.values)
        report = ImportReport(counts=counts, seconds={"neo4j-admin import": float("nan"),
                                                      "migrations (constraints)": float("nan"),
                                                      "catalog sync": float("nan")},
                              store_bytes=home.store_bytes())
        csv_bytes, generate_s = 0, time.perf_counter() - clock
    else:
        manifest = write_admin(shape, folder, catalog, sample)
        generate_s = time.perf_counter() - clock
        csv_bytes = sum(p.stat().st_size for p in folder.glob("*.csv"))
        counts = manifest.counts()
        print(f"[{orgs:,}] generated {counts} ({csv_bytes / 2**20:.0f} MiB CSV) in {generate_s:.1f} s", flush=True)
        settings = Settings(flags_file=REPO / "flags.json", watch_catalog=False, log_json=False, log_level="WARNING")
        report = import_directory(home, folder, settings, heap=args.admin_heap, off_heap=args.admin_off_heap)
        print(f"[{orgs:,}] import {report.seconds}", flush=True)
        shutil.rmtree(folder)
    rows = counts["Org"] + counts.get("PARENT_OF", 0) + counts.get("SET", 0) + counts.get("Flag", 0)

    # Cold: Neo4j restarted (empty page cache) and a fresh service (empty in-process cache).
    home.stop()
    home.start()
    rng = random.Random(7)
    per_depth = {int(depth): ids for depth, ids in sample.document()["per_depth"].items()}
    depths = sorted(per_depth)
    flags = [flag.name for flag in catalog]
    probes = []
    for _ in range(args.lookups):
        depth = rng.choice(depths)
        probes.append((rng.choice(per_depth[depth]), rng.choice(flags)))
    probes = [p for p in dict.fromkeys(probes) if p[0] != f"{shape.prefix}0-0"]  # each (org, flag) once per pass: cold means first touch
    deepest = sample.deepest[1]
    token = mint_dev_token(Settings(jwt_dev_key_file=work / "dev-jwt.key"), subject="bench", roles=["reader"],
                           orgs=["*"], ttl=3600)
    service, base_url = serve(home, work)
    try:
        with httpx.Client(base_url=base_url,
                          headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            # The very first request also pays for Cypher planning and the driver's first
            # connection: reported apart, on an org outside the probes.
            first = lookups(client, [(f"{shape.prefix}0-0", "theme")])[0]
            deepest_cold = lookups(client, [(deepest, "theme")])[0]
            cold = lookups(client, probes)
            warm = lookups(client, probes)
            deepest_warm = lookups(client, [(deepest, flag) for flag in flags] * 20)
    finally:
        service.terminate()
        service.wait(timeout=30)
    database = database_lookups(home, probes)
    deepest_database = database_lookups(home, [(deepest, flag) for flag in flags] * 20)

    result = {
        "orgs": orgs, "counts": counts, "rows": rows, "csv_bytes": csv_bytes, "generate_s": generate_s,
        "import": report.seconds, "store_bytes": report.store_bytes,
        "tx_log_bytes": home.transaction_log_bytes(), "max_depth": sample.deepest[0], "deepest": deepest,
        "cold_ms": percentiles(cold), "warm_ms": percentiles(warm), "database_ms": percentiles(database),
        "deepest_cold_ms": deepest_cold, "deepest_warm_ms": percentiles(deepest_warm),
        "deepest_database_ms": percentiles(deepest_database), "first_request_ms": first,
        "load_average": os.getloadavg(),
    }
    (work / f"scale-{orgs}.json").write_text(json.dumps(result, indent=2))
    return result


def table(results: list[dict]) -> str:
    ms = lambda d: f"{d['p50']:.2f} / {d['p95']:.2f} / {d['p99']:.2f}"  # noqa: E731
    lines = [
        "| orgs | rows (nodes+rels) | neo4j-admin import | rows/s | constraints + sync | store on disk | "
        "cold HTTP p50/p95/p99 ms | warm HTTP (cache) ms | database (Cypher) ms | deepest (depth) cold / warm / db p50 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        admin = r["import"]["neo4j-admin import"]
        after = r["import"]["migrations (constraints)"] + r["import"]["catalog sync"]
        lines.append(
            f"| {r['orgs']:,} | {r['rows']:,} | {admin:.1f} s | {r['rows'] / admin:,.0f} | {after:.1f} s | "
            f"{r['store_bytes'] / 2**20:,.0f} MiB | {ms(r['cold_ms'])} | {ms(r['warm_ms'])} | {ms(r['database_ms'])} | "
            f"({r['max_depth']}) {r['deepest_cold_ms']:.1f} / {r['deepest_warm_ms']['p50']:.2f} / "
            f"{r['deepest_database_ms']['p50']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated org counts")
    parser.add_argument("--home", default=str(REPO / ".local/neo4j/scale"))
    parser.add_argument("--work", default=str(REPO / ".local/scale"))
    parser.add_argument("--heap", default="4g")
    parser.add_argument("--pagecache", default="6g")
    parser.add_argument("--admin-heap", default="2g")
    parser.add_argument("--admin-off-heap", default="4g")
    parser.add_argument("--lookups", type=int, default=3000)
    parser.add_argument("--reuse", action="store_true",
                        help="measure lookups on the forest the home already holds (imported by an earlier run)")
    parser.add_argument("--keep-running", action="store_true", help="leave the scale Neo4j up afterwards")
    args = parser.parse_args()
    catalog = Catalog.load(REPO / "flags.json")
    home = ensure_home(Path(args.home), args.heap, args.pagecache)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM, Python {platform.python_version()}",
          flush=True)
    results = []
    try:
        for size in (int(part) for part in args.sizes.split(",")):
            results.append(run_size(size, args, catalog, home))
            print(table(results), flush=True)
    finally:
        if not args.keep_running:
            home.stop()
    print(table(results))


if __name__ == "__main__":
    main()
