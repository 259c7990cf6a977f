"""`make fuzz`: the long contract fuzz, `schemathesis run` against a served graphflags.

    .venv/bin/python tests/fuzzing/run.py [--max-examples 300] [--workers 2] [--seed N]

On this machine only (loopback): a disposable Neo4j home (.local/neo4j/fuzz on free ports,
wiped each run; or the server NEO4J_URI names, which must be disposable), `graphflags
serve` on a free port with its own catalog copy and development key, a seeded org tree
(tests/fuzzing/contract.py), then one `schemathesis run` with every check per token kind
(unscoped admin; admin, writer, reader scoped to subtrees). Exit status: 0 when every run
passed and the service logged no unhandled error. The reports go to .local/fuzz/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from contract import CATALOG, CONFIG, SEED, plant  # noqa: E402

from app.neo4j_server import Neo4jHome  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.support.neo4j import new_home  # noqa: E402
from tests.support.serve import Served  # noqa: E402

WORK = REPO / ".local" / "fuzz"
HOME = REPO / ".local" / "neo4j" / "fuzz"
BIN = Path(sys.executable).parent


def start_neo4j() -> tuple[str, str, str] | None:
    """(uri, user, password) of a fresh disposable server; None when NEO4J_URI names one."""
    if os.environ.get("NEO4J_URI"):
        return None
    shutil.rmtree(HOME, ignore_errors=True)
    home = new_home(HOME, heap="512m", pagecache="256m")
    home.start()
    return home.bolt_uri, "neo4j", home.password


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=300, help="per operation, per token kind")
    parser.add_argument("--workers", default="1", help="schemathesis workers")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    neo4j = start_neo4j()
    env = dict(os.environ)
    if neo4j is not None:
        env.update(NEO4J_URI=neo4j[0], NEO4J_USER=neo4j[1], NEO4J_PASSWORD=neo4j[2])
    shutil.copy(CATALOG, WORK / "flags.json")
    env.update(
        GRAPHFLAGS_HOST="127.0.0.1",
        GRAPHFLAGS_WORKERS="1",
        GRAPHFLAGS_FLAGS_FILE=str(WORK / "flags.json"),
        GRAPHFLAGS_JWT_DEV_KEY_FILE=str(WORK / "dev-jwt.key"),
        GRAPHFLAGS_LOG_JSON="false",
        GRAPHFLAGS_LOG_LEVEL="WARNING",
    )
    env.pop("GRAPHFLAGS_METRICS_PORT", None)
    env.pop("GRAPHFLAGS_PORT", None)  # a free port of its own
    server = Served(env, WORK / "serve.log")
    base = server.url
    results: dict[str, int] = {}
    try:
        server.start(timeout=120)
        tokens = SEED.tokens(Settings(jwt_dev_key_file=WORK / "dev-jwt.key"))
        plant(base, tokens["admin"])
        config = CONFIG
        for kind, token in tokens.items():
            command = [
                str(BIN / "schemathesis"),
                "--config-file",
                str(config),
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(args.max_examples),
                "--workers",
                args.workers,
                "--header",
                f"Authorization: Bearer {token}",
                "--report",
                "junit",
                "--report-junit-path",
                str(WORK / f"junit-{kind}.xml"),
                "--no-color",
            ]
            if args.seed is not None:
                command += ["--seed", str(args.seed)]
            print(f"\n=== schemathesis as {kind} ===", flush=True)
            started = time.monotonic()
            results[kind] = subprocess.run(command, cwd=WORK, env={**env, "SCHEMATHESIS_HOOKS": ""}).returncode
            print(f"=== {kind}: exit {results[kind]} in {time.monotonic() - started:.0f} s ===", flush=True)
    finally:
        server.stop()
        if neo4j is not None:
            Neo4jHome(HOME).stop()

    unhandled = [line for line in (WORK / "serve.log").read_text().splitlines() if "unhandled error" in line]
    print("\n=== summary ===")
    for kind, code in results.items():
        print(f"{kind}: {'passed' if code == 0 else f'FAILED (exit {code})'}")
    print(f"unhandled errors logged by the service: {len(unhandled)}")
    for line in unhandled[:20]:
        print("  " + line)
    return 0 if results and not any(results.values()) and not unhandled else 1


if __name__ == "__main__":
    sys.exit(main())
