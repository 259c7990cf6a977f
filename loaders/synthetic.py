"""Synthetic org hierarchies shaped like real tenants, streamed: no N rows held in memory.

    python -m loaders.synthetic --orgs 10000 > orgs.csv                    # id,parent CSV
    python -m loaders.synthetic --orgs 10000 --values values.csv > orgs.csv # + org,flag,value
    python -m loaders.synthetic --orgs 10000000 --admin-dir .local/import   # neo4j-admin files

The forest: a few huge tenants share `huge_share` of the orgs; the rest is a long tail
of small tenants whose sizes follow a Pareto law (most have a handful of orgs, a few
have thousands). Each tenant is a tree filled breadth first with `fanout[level]`
children per org at each level (the last figure repeats), at most `max_depth` levels
below its root; each huge tenant also has one thin division that goes down to exactly
`max_depth`, so the deepest lookups exist at every size. A fraction `density` of the
orgs set a value of a random catalog flag, and half the tenant roots set one.

Everything derives from `seed`: the same shape gives the same rows, byte for byte.
Org ids are `t<tenant>-<n>`, n counting breadth first from the tenant root (0).
Parents always come before their children.
"""

from __future__ import annotations

import csv
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import click
import orjson

from app.domain.catalog import Catalog, FlagDefinition
from loaders.admin_csv import AdminCsvWriter, Manifest, now_rfc3339

MAX_DEPTH = 20
SYNTHETIC_ACTOR = "loader:synthetic"


@dataclass(frozen=True)
class Shape:
    orgs: int
    fanout: tuple[int, ...] = (10, 8, 6, 4)
    max_depth: int = 12
    huge: int = 3
    huge_share: float = 0.5
    tail_alpha: float = 1.2
    tail_max: int = 5_000
    density: float = 0.01
    seed: int = 1
    prefix: str = "t"

    def __post_init__(self) -> None:
        if self.orgs < 1:
            raise ValueError("orgs must be at least 1")
        if not 1 <= self.max_depth <= MAX_DEPTH:
            raise ValueError(f"max_depth must be 1..{MAX_DEPTH}")
        if not self.fanout or min(self.fanout) < 1:
            raise ValueError("fanout figures must be at least 1")
        if not 0 <= self.huge_share <= 1 or not 0 <= self.density <= 1:
            raise ValueError("huge_share and density are fractions (0..1)")


class Org(NamedTuple):
    id: str
    parent: str | None
    depth: int
    values: tuple[tuple[FlagDefinition, Any], ...]  # (flag, value as the API takes it)


def tenant_sizes(shape: Shape) -> Iterator[int]:
    """Sizes of the tenants, huge ones first; they add up to shape.orgs exactly."""
    rng = random.Random(shape.seed)
    huge = min(shape.huge, shape.orgs)
    huge_total = int(shape.orgs * shape.huge_share) if huge else 0
    remaining = shape.orgs
    for index in range(huge):
        size = max(1, huge_total // huge + (1 if index < huge_total % huge else 0))
        size = min(size, remaining)
        if size:
            yield size
            remaining -= size
    while remaining > 0:
        # Pareto(alpha) from 1 up: half the tenants are a single org or two, a few are big.
        size = min(shape.tail_max, int(rng.paretovariate(shape.tail_alpha)), remaining)
        yield size
        remaining -= size


def level_sizes(size: int, fanout: tuple[int, ...], max_depth: int) -> list[int]:
    """How many orgs each level of a breadth-first tree of `size` orgs holds."""
    levels = [1]
    remaining = size - 1
    while remaining > 0:
        depth = len(levels)  # the level being filled
        if depth == max_depth:
            levels.append(remaining)  # no deeper: the last level takes the rest
            break
        width = min(remaining, levels[-1] * fanout[min(depth - 1, len(fanout) - 1)])
        levels.append(width)
        remaining -= width
    return levels


def tenant(index: int, size: int, shape: Shape, deep: bool) -> Iterator[tuple[str, str | None, int]]:
    """One tenant's orgs, breadth first: (id, parent, depth below the forest's roots)."""
    name = f"{shape.prefix}{index}-"
    chain = 0
    if deep:
        bfs_depth = len(level_sizes(size, shape.fanout, shape.max_depth)) - 1
        chain = min(shape.max_depth - bfs_depth, size - 1)
        while chain > 0:  # taking orgs for the chain can make the tree shallower: settle it
            bfs_depth = len(level_sizes(size - chain, shape.fanout, shape.max_depth)) - 1
            wanted = min(shape.max_depth - bfs_depth, size - 1)
            if wanted == chain:
                break
            chain = wanted
    levels = level_sizes(size - chain, shape.fanout, shape.max_depth)
    yield f"{name}0", None, 0
    start, previous, n = 0, 1, 1
    for depth, width in enumerate(levels[1:], start=1):
        for i in range(width):
            # Spread the level evenly over the parents above it: each gets at most its fan-out.
            yield f"{name}{n}", f"{name}{start + (i * previous) // width}", depth
            n += 1
        start, previous = start + previous, width
    # The thin deep division hangs under the last org of the deepest level.
    parent, depth = n - 1, len(levels) - 1
    for _ in range(chain):
        depth += 1
        yield f"{name}{n}", f"{name}{parent}", depth
        parent, n = n, n + 1


def random_value(flag: FlagDefinition, rng: random.Random) -> Any:
    """A valid value of `flag`, as a client would send it."""
    match flag.type:
        case "boolean":
            value: Any = rng.random() < 0.5
        case "integer":
            low = int(flag.min) if flag.min is not None else 0
            value = rng.randint(low, int(flag.max) if flag.max is not None else low + 1000)
        case "number":
            low = flag.min if flag.min is not None else 0.0
            value = round(rng.uniform(low, flag.max if flag.max is not None else low + 1000), 2)
        case "string":
            value = rng.choice(flag.allowed) if flag.allowed else f"notice {rng.randrange(1000)}"
        case _:
            template = flag.default if isinstance(flag.default, dict) and flag.default else {"level": 0}
            value = {key: _like(old, rng) for key, old in template.items()}
    return flag.check(value)


def _like(old: Any, rng: random.Random) -> Any:
    if isinstance(old, bool):
        return rng.random() < 0.5
    if isinstance(old, int):
        return rng.randint(1, 240)
    if isinstance(old, float):
        return round(rng.uniform(0, 100), 2)
    return old


def generate(shape: Shape, catalog: Catalog | None = None) -> Iterator[Org]:
    flags = list(catalog) if catalog is not None else []
    rng = random.Random(shape.seed * 1_000_003 + 7)  # values: a stream of their own, the shape stays put
    for index, size in enumerate(tenant_sizes(shape)):
        for org, parent, depth in tenant(index, size, shape, deep=index < shape.huge):
            values: tuple[tuple[FlagDefinition, Any], ...] = ()
            if flags and (rng.random() < shape.density or (parent is None and rng.random() < 0.5)):
                flag = rng.choice(flags)
                values = ((flag, random_value(flag, rng)),)
            yield Org(org, parent, depth, values)


class DepthSample:
    """Up to `per_depth` orgs at each depth, uniformly chosen (reservoir sampling), and the deepest org."""

    def __init__(self, per_depth: int, seed: int) -> None:
        self.per_depth = per_depth
        self.rng = random.Random(seed)
        self.seen: dict[int, int] = {}
        self.kept: dict[int, list[str]] = {}
        self.deepest: tuple[int, str] = (-1, "")

    def offer(self, org: str, depth: int) -> None:
        seen = self.seen.get(depth, 0) + 1
        self.seen[depth] = seen
        kept = self.kept.setdefault(depth, [])
        if len(kept) < self.per_depth:
            kept.append(org)
        else:
            slot = self.rng.randrange(seen)
            if slot < self.per_depth:
                kept[slot] = org
        if depth > self.deepest[0]:
            self.deepest = (depth, org)

    def document(self) -> dict[str, Any]:
        return {
            "per_depth": {str(d): self.kept[d] for d in sorted(self.kept)},
            "orgs_at_depth": {str(d): self.seen[d] for d in sorted(self.seen)},
            "deepest": {"depth": self.deepest[0], "id": self.deepest[1]},
        }


def write_csv(
    shape: Shape,
    out: TextIO,
    values_out: TextIO | None = None,
    catalog: Catalog | None = None,
    sample: DepthSample | None = None,
) -> int:
    """The user-facing format: `id,parent` (and `org,flag,value`, the value as JSON)."""
    out.write("id,parent\n")
    writer = csv.writer(values_out, lineterminator="\n") if values_out is not None else None
    if writer is not None:
        writer.writerow(["org", "flag", "value"])
    count = 0
    for org in generate(shape, catalog if writer is not None else None):
        out.write(f"{org.id},{org.parent or ''}\n")
        if writer is not None:
            for flag, value in org.values:
                writer.writerow([org.id, flag.name, orjson.dumps(value).decode()])
        if sample is not None:
            sample.offer(org.id, org.depth)
        count += 1
    return count


def write_admin(shape: Shape, directory: Path, catalog: Catalog, sample: DepthSample | None = None) -> Manifest:
    """The same forest as neo4j-admin import files (generated rows are valid by construction)."""
    writer = AdminCsvWriter(directory, source="synthetic")
    at = now_rfc3339()
    writer.catalog(catalog)
    max_depth = 0
    for org in generate(shape, catalog):
        writer.org(org.id, org.parent)
        for flag, value in org.values:
            writer.value(org.id, flag.name, flag.to_graph(value), at, SYNTHETIC_ACTOR)
        if sample is not None:
            sample.offer(org.id, org.depth)
        max_depth = max(max_depth, org.depth)
    return writer.close(shape=shape_document(shape), max_depth=max_depth)


def shape_document(shape: Shape) -> dict[str, Any]:
    return {**shape.__dict__, "fanout": list(shape.fanout)}


def parse_fanout(_ctx, _param, text: str) -> tuple[int, ...]:
    try:
        figures = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter("a comma-separated list of integers, e.g. 10,8,6,4") from None
    if not figures or min(figures) < 1:
        raise click.BadParameter("every fan-out must be at least 1")
    return figures


@click.command()
@click.option("--orgs", type=click.IntRange(min=1), required=True, help="How many orgs.")
@click.option(
    "--fanout",
    default="10,8,6,4",
    show_default=True,
    callback=parse_fanout,
    help="Children per org at each level below a tenant root; the last figure repeats.",
)
@click.option(
    "--max-depth",
    type=click.IntRange(1, MAX_DEPTH),
    default=12,
    show_default=True,
    help="Deepest level below a root; huge tenants reach it through one thin division.",
)
@click.option("--huge", type=click.IntRange(min=0), default=3, show_default=True, help="Huge tenants.")
@click.option(
    "--huge-share",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Fraction of all orgs in the huge tenants.",
)
@click.option("--tail-max", type=click.IntRange(min=1), default=5000, show_default=True, help="Largest small tenant.")
@click.option(
    "--density",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="Fraction of orgs that set a flag value of their own.",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--prefix", default="t", show_default=True, help="Org ids are PREFIX<tenant>-<n>.")
@click.option(
    "--catalog",
    "catalog_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path("flags.json"),
    show_default=True,
    help="Flags the values are drawn from.",
)
@click.option(
    "--values",
    "values_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write org,flag,value rows (value as JSON) to this file.",
)
@click.option(
    "--admin-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write neo4j-admin import files (orgs, edges, flags, values) here instead of CSV to stdout.",
)
@click.option(
    "--sample",
    "sample_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write up to 500 orgs per depth (and the deepest org) to this JSON file, for benchmarks.",
)
def main(
    orgs: int,
    fanout: tuple[int, ...],
    max_depth: int,
    huge: int,
    huge_share: float,
    tail_max: int,
    density: float,
    seed: int,
    prefix: str,
    catalog_file: Path,
    values_file: Path | None,
    admin_dir: Path | None,
    sample_file: Path | None,
) -> None:
    shape = Shape(
        orgs=orgs,
        fanout=fanout,
        max_depth=max_depth,
        huge=huge,
        huge_share=huge_share,
        tail_max=tail_max,
        density=density,
        seed=seed,
        prefix=prefix,
    )
    catalog = Catalog.load(catalog_file)
    sample = DepthSample(500, seed) if sample_file else None
    if admin_dir is not None:
        manifest = write_admin(shape, admin_dir, catalog, sample)
        click.echo(f"wrote {manifest.counts()} to {admin_dir}", err=True)
    elif values_file is not None:
        with open(values_file, "w", encoding="utf-8", newline="") as values_out:
            write_csv(shape, sys.stdout, values_out, catalog, sample)
    else:
        write_csv(shape, sys.stdout, sample=sample)
    if sample is not None and sample_file is not None:
        sample_file.write_bytes(orjson.dumps(sample.document()))


if __name__ == "__main__":
    main()
