"""Sequential cold and warm lookups on a forest a Neo4j home already holds (issue 15).

bench/scale.py builds each size, measures it and deletes it; a store that took long to import
(100M orgs) can be measured again with this, without a second import:

    flock -x /tmp/graphflags-bench.lock .venv/bin/python bench/probe_home.py \\
        --home .local/neo4j/scale --orgs-csv .local/scale/import-100000000/orgs.csv

It draws --lookups org ids at random offsets of the import's orgs.csv (so every depth is drawn
as often as it occurs, not stratified as scale.py's probes are), restarts Neo4j (an empty page
cache), serves with one worker and times single lookups over keep-alive HTTP: cold (first touch
after the restart), warm (the same again: the service's cache answers), and GET /healthz the
same way as the no-op beside them. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from harness import serve, stop  # noqa: E402
from open_loop import FLAG  # noqa: E402
from scale import percentiles, sequential  # noqa: E402

from app.auth.tokens import mint_dev_token  # noqa: E402
from app.settings import Settings  # noqa: E402
from loaders.neo4j_home import Neo4jHome  # noqa: E402


def random_ids(orgs_csv: Path, count: int, seed: int = 7) -> list[str]:
    """`count` distinct ids from lines at random byte offsets (the line after each offset)."""
    size, rng, found = orgs_csv.stat().st_size, random.Random(seed), {}
    with orgs_csv.open("rb") as rows:
        while len(found) < count:
            rows.seek(rng.randrange(size))
            rows.readline()  # the rest of the line the offset fell in
            line = rows.readline().strip()
            if line:
                found[line.split(b",")[0].decode()] = None
    return list(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True)
    parser.add_argument("--orgs-csv", required=True, type=Path)
    parser.add_argument("--lookups", type=int, default=3000)
    args = parser.parse_args()
    home = Neo4jHome(Path(args.home))
    ids = random_ids(args.orgs_csv, args.lookups)
    with tempfile.TemporaryDirectory(prefix="graphflags-probe-") as scratch:
        work = Path(scratch)
        token = mint_dev_token(
            Settings(jwt_dev_key_file=work / "dev-jwt.key"), subject="bench", roles=["reader"], orgs=["*"], ttl=3600
        )
        clock = time.perf_counter()
        home.stop()
        home.start()
        restart_s = time.perf_counter() - clock
        service, base = serve(home, work, 1)
        try:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
                first = sequential(client, [f"/v1/orgs/{ids[0]}/flags/{FLAG}"])[0]  # connection, planning
                paths = [f"/v1/orgs/{org}/flags/{FLAG}" for org in ids[1:]]
                cold, warm = sequential(client, paths), sequential(client, paths)
                healthz = sequential(client, ["/healthz"] * len(paths))
        finally:
            stop(service)
    print(
        json.dumps(
            {
                "home": args.home,
                "lookups": len(paths),
                "restart_s": restart_s,
                "first_request_ms": first,
                "cold_ms": percentiles(cold),
                "warm_ms": percentiles(warm),
                "healthz_ms": percentiles(healthz),
                "store_bytes": home.store_bytes(),
                "load_average": os.getloadavg(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
