"""Dry-run benchmark (issue 13): how long `?dry_run=true` takes at a tenant root of ~1M orgs.

Two phases, so the measurement gets a quiet machine and the preparation does not hold it:

    # build: generate a synthetic forest (loaders.synthetic, bench/scale.py's shape but
    # five huge tenants of 1M orgs each) and import it into a Neo4j home of its own
    flock -s /tmp/graphflags-bench.lock .venv/bin/python bench/dry_run.py build --orgs 10000000
    # measure: start the service on it and time dry runs at a tenant root, next to GET /healthz
    flock -x /tmp/graphflags-bench.lock .venv/bin/python bench/dry_run.py measure
    # drop: stop Neo4j and delete the graph
    .venv/bin/python bench/dry_run.py drop

The home (default /tmp/graphflags-dry-run) listens on free ports. `measure` times the
whole HTTP request (checks in a write transaction, then the count in a read one) for a
value write at t0-0 (the root of a 1M-org tenant) whose effective value changes for the
whole tenant except what is shielded below, first after a Neo4j restart (cold page
cache), then warm, and the Cypher count alone through the driver.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from scale import free_port, serve  # noqa: E402

from app.auth.tokens import mint_dev_token  # noqa: E402
from app.domain.catalog import Catalog  # noqa: E402
from app.neo4j_server import ServerConf  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.store.cypher import cypher  # noqa: E402
from loaders.admin_import import import_directory  # noqa: E402
from loaders.neo4j_home import Neo4jHome  # noqa: E402
from loaders.synthetic import Shape, write_admin  # noqa: E402

TENANT_ROOT = "t0-0"
FLAG = "beta-dashboard"  # boolean, default false: setting true changes every unshielded org


def build(args) -> None:
    home_dir = Path(args.home)
    home = Neo4jHome.init(
        Path(home_dir),
        ServerConf(bolt_port=free_port(), http_port=free_port(), heap=args.heap, pagecache=args.pagecache),
    )
    folder = home_dir / "import"
    shutil.rmtree(folder, ignore_errors=True)
    catalog = Catalog.load(REPO / "flags.json")
    shape = Shape(orgs=args.orgs, huge=args.huge, huge_share=args.huge * 0.1, max_depth=20, density=0.01, seed=42)
    clock = time.perf_counter()
    manifest = write_admin(shape, folder, catalog)
    print(f"generated {manifest.counts()} in {time.perf_counter() - clock:.1f} s", flush=True)
    settings = Settings(flags_file=REPO / "flags.json", watch_catalog=False, log_json=False, log_level="WARNING")
    report = import_directory(home, folder, settings, heap="2g", off_heap="3g")
    print(f"imported: {report.seconds}", flush=True)
    shutil.rmtree(folder)
    (home_dir / "shape.json").write_text(json.dumps({**shape.__dict__, "fanout": list(shape.fanout)}))


def measure(args) -> None:
    home = Neo4jHome(Path(args.home))
    work = Path(args.home) / "work"
    work.mkdir(exist_ok=True)
    load_before = os.getloadavg()
    home.stop()
    home.start()  # cold page cache
    token = mint_dev_token(
        Settings(jwt_dev_key_file=work / "dev-jwt.key"), subject="bench", roles=["writer"], orgs=["*"], ttl=3600
    )
    service, base_url = serve(home, work, 1)
    results: dict = {"load_before": load_before}
    try:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
            current = client.get(f"/v1/orgs/{TENANT_ROOT}/flags/{FLAG}").json()
            results["current"] = current

            def dry_run() -> tuple[float, dict]:
                start = time.perf_counter()
                response = client.put(
                    f"/v1/orgs/{TENANT_ROOT}/flags/{FLAG}",
                    params={"dry_run": "true"},
                    json={"value": not current["value"]},
                )
                took = time.perf_counter() - start
                assert response.status_code == 200, response.text
                return took, response.json()["affected"]

            def healthz() -> float:
                start = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                return time.perf_counter() - start

            cold, affected = dry_run()
            warm = [dry_run()[0] for _ in range(args.repeat)]
            health = [healthz() for _ in range(50)]
            results.update(
                cold_s=cold,
                warm_s=warm,
                affected={**affected, "sample": affected["sample"][:3]},
                healthz_ms={"p50": statistics.median(health) * 1000, "max": max(health) * 1000},
            )
    finally:
        service.terminate()
        service.wait(timeout=30)
    from neo4j import GraphDatabase

    with GraphDatabase.driver(home.bolt_uri, auth=("neo4j", home.password)) as driver:
        with driver.session(database="neo4j") as session:
            took, subtraction = [], []
            for _ in range(args.repeat):
                start = time.perf_counter()
                record = session.run(
                    cypher("dry_run_region"), flag=FLAG, roots=[TENANT_ROOT], cap=1_000_001, sample=20
                ).single()
                took.append(time.perf_counter() - start)
                start = time.perf_counter()
                parts = session.run(cypher("dry_run_shielded"), flag=FLAG, root=TENANT_ROOT, cap=1_000_001).single()
                subtraction.append(time.perf_counter() - start)
            results.update(
                subtraction_s=subtraction,
                subtraction_orgs=parts["total"] - parts["shielded"],
                flag_setters=session.run(cypher("dry_run_flag_setters"), flag=FLAG).single()["setters"],
            )
            subtree = session.run(
                "MATCH (:Org {id: $root})-[:PARENT_OF*0..]->(d) RETURN count(d) AS n", root=TENANT_ROOT
            ).single()["n"]
    results.update(cypher_s=took, cypher_orgs=record["orgs"], subtree=subtree, load_after=os.getloadavg())
    print(json.dumps(results, indent=2))


def drop(args) -> None:
    home_dir = Path(args.home)
    if home_dir.exists():
        Neo4jHome(home_dir).stop()
        shutil.rmtree(home_dir)
    print(f"dropped {home_dir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", choices=["build", "measure", "drop"])
    parser.add_argument("--home", default="/tmp/graphflags-dry-run")
    parser.add_argument("--orgs", type=int, default=10_000_000)
    parser.add_argument("--huge", type=int, default=5, help="huge tenants, each orgs/10 orgs")
    parser.add_argument("--heap", default="3g")
    parser.add_argument("--pagecache", default="4g")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    {"build": build, "measure": measure, "drop": drop}[args.phase](args)


if __name__ == "__main__":
    main()
