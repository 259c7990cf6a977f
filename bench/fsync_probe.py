"""How long one synchronous flush takes on this disk: what a Neo4j commit waits for (issue 11).

    nice -n 19 .venv/bin/python bench/fsync_probe.py [DIR]     # DIR: the Neo4j home (default .local/neo4j)

Neo4j appends each commit to its transaction log and forces it to disk before it answers, and
value writes commit one at a time under the writers' lock (cypher/audit_claim_sequence.cypher),
so one such flush per batch is the floor of a toggle's latency. This appends a small record to a
preallocated file and fdatasyncs it, as the log does, and prints the distribution.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", nargs="?", type=Path, default=REPO / ".local" / "neo4j")
    parser.add_argument("--count", type=int, default=300)
    options = parser.parse_args()
    probe = options.dir / "fsync-probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, b"\0" * (1 << 20))  # preallocated, as Neo4j preallocates its log files
        os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_SET)
        took = []
        for _ in range(options.count):
            os.write(fd, b"x" * 512)
            started = time.perf_counter()
            os.fdatasync(fd)
            took.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        probe.unlink()
    took.sort()

    def at(share: float) -> float:
        return took[min(len(took) - 1, int(share * len(took)))]

    print(
        f"fdatasync of a 512-byte append in {options.dir}, {options.count} times: p50 {at(0.5):.2f} ms, "
        f"p95 {at(0.95):.2f} ms, p99 {at(0.99):.2f} ms, max {took[-1]:.2f} ms"
    )


if __name__ == "__main__":
    main()
