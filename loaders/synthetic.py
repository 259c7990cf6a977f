"""Synthetic org hierarchies as `id,parent` CSV, streamed: no N rows held in memory.

    python -m loaders.synthetic --orgs 10000 --fanout 10 > orgs.csv
    curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/csv' \
         --data-binary @orgs.csv localhost:8080/v1/orgs/bulk

Org n (counting from 0) has parent (n - 1) // fanout: a complete tree, breadth first, so
every parent is written before its children and depth grows as log_fanout(N).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

import click


def tree(orgs: int, fanout: int, prefix: str = "org") -> Iterator[tuple[str, str | None]]:
    for n in range(orgs):
        yield f"{prefix}-{n}", (f"{prefix}-{(n - 1) // fanout}" if n else None)


def write_csv(rows: Iterator[tuple[str, str | None]], out: TextIO) -> int:
    out.write("id,parent\n")
    count = 0
    for org, parent in rows:
        out.write(f"{org},{parent or ''}\n")
        count += 1
    return count


@click.command()
@click.option("--orgs", type=click.IntRange(min=1), required=True, help="How many orgs.")
@click.option("--fanout", type=click.IntRange(min=1), default=10, show_default=True, help="Children per org.")
@click.option("--prefix", default="org", show_default=True, help="Id prefix: ids are PREFIX-0, PREFIX-1, ...")
def main(orgs: int, fanout: int, prefix: str) -> None:
    write_csv(tree(orgs, fanout, prefix), sys.stdout)


if __name__ == "__main__":
    main()
