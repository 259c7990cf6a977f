"""The projection to a billion orgs from bench/scale.py's three points (docs/scale.md, "Method").

    .venv/bin/python bench/scale_fit.py [bench/RESULTS.md]

Reads the tables bench/scale.py wrote between the scale15 markers and prints, for each
quantity, the three points, the fit the method names and the figure at 1,000,000,000 orgs:
- sizes and times that grow with N: q = c.N^k (least squares on log q against log N), and
  q(1B) = q(100M) x 10^k: k near 1 says linear;
- those with a fixed part (neo4j-admin import, migrations, the dump and both restores: JVM and
  server starts weigh on the small sizes): q = a + b.N, and a + b x 1e9;
- latencies: a + b.log10(N) (one more B-tree level per ~100x, while the page cache holds the store);
- capacity: the highest open-loop rate whose p95 stayed within 50 ms, per core the service and
  Neo4j used at it, and each side's cores per 1,000 cold lookups/s (C_svc, C_db).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

from harness import RESULTS
from scale import END, START  # the section bench/scale.py writes

BILLION = 1_000_000_000
P95_BOUND_MS = 50.0


def section(path: Path) -> str:
    text = path.read_text()
    return text[text.index(START) : text.index(END)]


def tables(text: str) -> list[list[list[str]]]:
    """Every markdown table of the section, as rows of cells (header and rule left out)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if current is None:
                current = []  # the header
                found.append(current)
            elif not set("".join(cells)) <= set("-:"):
                current.append(cells)
        else:
            current = None
    return found


def number(cell: str) -> float:
    """The first number of a cell: '1,204 MiB' -> 1204.0, '17.8 s' -> 17.8."""
    match = re.search(r"-?[\d,]+(?:\.\d+)?", cell)
    if match is None:
        raise ValueError(f"no number in {cell!r}")
    return float(match.group().replace(",", ""))


def power_law(ns: list[float], qs: list[float]) -> tuple[float, float]:
    """(c, k) of q = c.N^k, least squares on the logs."""
    xs, ys = [math.log(n) for n in ns], [math.log(q) for q in qs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    k = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return math.exp(my - k * mx), k


def straight(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(a, b) of y = a + b.x, least squares."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.1f} s"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    imports, sequential, open_loop, backups = tables(section(path))
    ns = [number(row[0]) for row in imports]
    if len(ns) < 2:
        raise SystemExit("at least two sizes are needed for a fit")
    print(f"points: {', '.join(f'{n:,.0f}' for n in ns)} orgs; projected to {BILLION:,}\n")

    def grows(name: str, qs: list[float], unit: str, show=lambda q: f"{q:,.2f}") -> float:
        c, k = power_law(ns, qs)
        at_1b = qs[-1] * (BILLION / ns[-1]) ** k
        kind = "linear" if 0.9 <= k <= 1.1 else f"k = {k:.2f}, not linear"
        points = " | ".join(show(q) for q in qs)
        print(f"{name}: {points} ({unit}); q = c.N^k, k = {k:.3f} ({kind}); 1B: {show(at_1b)} {unit}")
        return at_1b

    def fixed_part(name: str, qs: list[float]) -> None:
        a, b = straight(ns, qs)
        print(
            f"{name}: {' | '.join(f'{q:,.1f}' for q in qs)} (s); a + b.N with a = {a:.1f} s, "
            f"b = {b * 1e6:.3f} s per million orgs; 1B: {duration(a + b * BILLION)}"
        )

    grows("records (nodes + rels)", [number(row[1]) for row in imports], "records", lambda q: f"{q:,.0f}")
    store_1b = grows("store", [number(row[6]) for row in imports], "GiB")
    print(f"page cache to hold it (store x 1.1) at 1B: {store_1b * 1.1:,.0f} GiB")
    grows("generate import files", [number(row[2]) for row in imports], "s")
    fixed_part("neo4j-admin import", [number(row[3]) for row in imports])
    grows("neo4j-admin peak RSS", [number(row[4]) for row in imports], "GiB")
    migrations = [number(row[5]) + number(row[5].split("+")[1]) for row in imports]
    fixed_part("migrations + catalog sync", migrations)
    if backups:
        grows("online export", [number(row[1]) for row in backups], "s")
        grows("export size", [number(row[1].split(",", 1)[1]) for row in backups], "MiB")
        fixed_part("restore from export", [number(row[2]) for row in backups])
        fixed_part("offline dump", [number(row[3]) for row in backups])
        grows("dump size", [number(row[3].split(",", 1)[1]) for row in backups], "MiB")
        fixed_part("restore from dump", [number(row[4]) for row in backups])
    print()
    for column, name in ((1, "cold"), (2, "warm")):
        for share, index in (("p50", 0), ("p95", 1), ("p99", 2)):
            qs = [number(row[column].split("/")[index]) for row in sequential]
            a, b = straight([math.log10(n) for n in ns], qs)
            print(
                f"sequential {name} {share}: {' | '.join(f'{q:.2f}' for q in qs)} ms; "
                f"a + b.log10(N), b = {b:.2f} ms per decade; 1B: {a + b * 9:.2f} ms"
            )
    print()
    for n in ns:
        rows = [row for row in open_loop if number(row[0]) == n]
        for row in rows:  # what a cold lookup costs, whatever its latency: cores per 1,000/s
            rate, svc, db = number(row[2]), number(row[5]), number(row[6])
            print(
                f"{n:,.0f} at {rate:,.0f}/s: p95 {row[3].split('/')[1].strip()} ms; "
                f"C_svc {svc / rate * 1000:.2f}, C_db {db / rate * 1000:.2f} cores per 1,000/s"
            )
        within = [row for row in rows if number(row[3].split("/")[1]) <= P95_BOUND_MS and number(row[4]) == 0]
        if not within:
            print(f"{n:,.0f}: no rate kept p95 within {P95_BOUND_MS:.0f} ms")
            continue
        best = max(within, key=lambda row: number(row[2]))
        rate, svc, db = number(best[2]), number(best[5]), number(best[6])
        print(
            f"{n:,.0f}: {rate:,.0f}/s within p95 {P95_BOUND_MS:.0f} ms (p95 {best[3].split('/')[1].strip()} ms, "
            f"/healthz p95 {best[7].split('/')[1].strip()} ms) on {svc:.2f} service + {db:.2f} Neo4j cores: "
            f"{rate / (svc + db):,.0f} per core; C_svc {svc / rate * 1000:.2f}, C_db {db / rate * 1000:.2f} "
            "cores per 1,000/s"
        )


if __name__ == "__main__":
    main()
