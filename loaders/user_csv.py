"""An operator's own CSV (`id,parent` rows, optionally `org,flag,value` rows), checked, as import files.

The whole input is judged before anything is imported: every bad row is reported with
its file and line number, and a forest that is not a forest (unknown parent, duplicate
id, cycle, bad id) or a value that does not fit its flag is refused whole. The ids are
held as one dict to small ints plus two int arrays (about 120 bytes an org), never as
row objects; the rows themselves stream from the input to the import files, which are
removed again if the input is refused.

Values are JSON, as the API takes them (`true`, `900`, `"dark"`, `{"mfa": true}`),
checked against the catalog and stored as `FlagDefinition.to_graph` stores them.
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from app.domain.catalog import Catalog
from app.domain.hierarchy import ROOT, on_cycles
from app.domain.ids import is_org_id
from loaders.admin_csv import AdminCsvWriter, Manifest, now_rfc3339

# How many bad rows a refusal lists (the total is always given).
MAX_REPORTED = 100

_ROOT = ROOT  # parent slot of a root
_UNSEEN = 0  # line slot of an id only ever named as a parent


@dataclass(frozen=True, slots=True)
class BadRow:
    file: str
    line: int
    id: str | None
    type: str
    detail: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.type}: {self.detail}"


@dataclass
class BadRows(Exception):
    """The input was refused; `rows` holds the first MAX_REPORTED of `total` bad rows."""

    rows: list[BadRow] = field(default_factory=list)
    total: int = 0

    def add(self, row: BadRow) -> None:
        self.total += 1
        if len(self.rows) < MAX_REPORTED:
            self.rows.append(row)

    def __str__(self) -> str:
        more = f" (first {len(self.rows)} listed)" if self.total > len(self.rows) else ""
        return f"{self.total} bad row(s){more}; nothing was imported:\n" + "\n".join(map(str, self.rows))


def _records(path: Path, expected: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each data row; the header must name exactly `expected`."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [column.strip().lower() for column in next(reader, [])]
        if header != expected:
            raise BadRows(
                [
                    BadRow(
                        path.name,
                        1,
                        None,
                        "invalid-header",
                        f"the header must be {','.join(expected)}, it is {','.join(header)!r}",
                    )
                ],
                1,
            )
        start = reader.line_num
        for record in reader:
            if record:
                yield start + 1, record
            start = reader.line_num


class Forest:
    """The orgs of an input, by index: enough to judge parents, duplicates and cycles."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.parent = array("q")
        self.line = array("q")  # line that defines the org; _UNSEEN if only named as a parent

    def slot(self, org: str) -> int:
        found = self.index.get(org)
        if found is None:
            found = self.index[org] = len(self.parent)
            self.parent.append(_ROOT)
            self.line.append(_UNSEEN)
        return found

    def defined(self, org: str) -> bool:
        found = self.index.get(org)
        return found is not None and self.line[found] != _UNSEEN

    def cyclic(self) -> Iterator[int]:
        """Orgs on a cycle."""
        return on_cycles(self.parent)


def check_and_write(
    orgs_csv: Path, values_csv: Path | None, catalog: Catalog, directory: Path, actor: str = "import"
) -> Manifest:
    """Judge the input; if it is sound write the import files to `directory`, else raise BadRows."""
    bad = BadRows()
    forest = Forest()
    writer = AdminCsvWriter(directory, source=f"csv:{orgs_csv.name}")
    try:
        writer.catalog(catalog)
        for line, record in _records(orgs_csv, ["id", "parent"]):
            _org_row(orgs_csv.name, line, record, forest, writer, bad)
        if any(line == _UNSEEN for line in forest.line):
            _unknown_parents(orgs_csv, forest, bad)
        cyclic = list(forest.cyclic())
        if cyclic:
            names = {index: org for org, index in forest.index.items()}
            for index in cyclic:
                bad.add(
                    BadRow(
                        orgs_csv.name,
                        forest.line[index],
                        names[index],
                        "cycle",
                        f"{names[index]!r} would be its own ancestor",
                    )
                )
        if values_csv is not None:
            _values(values_csv, forest, catalog, writer, actor, bad)
        if bad.total:
            bad.rows.sort(key=lambda row: (row.file != orgs_csv.name, row.line))
            raise bad
    except BaseException:
        writer.discard()
        raise
    return writer.close(orgs_file=str(orgs_csv), values_file=str(values_csv) if values_csv else None)


def _org_row(file: str, line: int, record: list[str], forest: Forest, writer: AdminCsvWriter, bad: BadRows) -> None:
    if len(record) != 2:
        bad.add(BadRow(file, line, None, "invalid-row", f"expected 2 fields (id,parent), found {len(record)}"))
        return
    org, parent = record[0], record[1] or None
    if not is_org_id(org):
        bad.add(BadRow(file, line, None, "invalid-id", f"id {org!r} is not a valid org id"))
        return
    if parent is not None and not is_org_id(parent):
        bad.add(BadRow(file, line, org, "invalid-id", f"parent {parent!r} is not a valid org id"))
        return
    index = forest.slot(org)
    if forest.line[index] != _UNSEEN:
        bad.add(BadRow(file, line, org, "duplicate-id", f"{org!r} is already defined on line {forest.line[index]}"))
        return
    forest.line[index] = line
    forest.parent[index] = forest.slot(parent) if parent is not None else _ROOT
    writer.org(org, parent)


def _unknown_parents(orgs_csv: Path, forest: Forest, bad: BadRows) -> None:
    """A second read, only when some parent is never defined: which lines name one."""
    for line, record in _records(orgs_csv, ["id", "parent"]):
        if len(record) == 2 and record[1] and is_org_id(record[1]) and not forest.defined(record[1]):
            bad.add(BadRow(orgs_csv.name, line, record[0], "parent-not-found", f"no organization {record[1]!r}"))
    # Forget the phantom parents, so the cycle walk sees them as roots.
    for index, line in enumerate(forest.line):
        if line == _UNSEEN:
            forest.parent[index] = _ROOT


def _values(
    values_csv: Path, forest: Forest, catalog: Catalog, writer: AdminCsvWriter, actor: str, bad: BadRows
) -> None:
    file = values_csv.name
    at = now_rfc3339()
    flags = {flag.name: position for position, flag in enumerate(catalog)}
    seen: dict[int, int] = {}  # org index * flags + flag position -> line
    for line, record in _records(values_csv, ["org", "flag", "value"]):
        if len(record) != 3:
            bad.add(BadRow(file, line, None, "invalid-row", f"expected 3 fields (org,flag,value), found {len(record)}"))
            continue
        org, name, text = record
        if not forest.defined(org):
            bad.add(BadRow(file, line, org, "org-not-found", f"no organization {org!r} in the orgs file"))
            continue
        flag = catalog.get(name)
        if flag is None:
            bad.add(BadRow(file, line, org, "flag-not-found", f"no flag named {name!r} in the catalog"))
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            bad.add(BadRow(file, line, org, "invalid-value", f"value {text!r} is not JSON (strings need quotes)"))
            continue
        problem = flag.problem_with(value)
        if problem:
            bad.add(BadRow(file, line, org, "invalid-value", f"flag {name!r} ({flag.type}): {problem}"))
            continue
        key = forest.index[org] * len(flags) + flags[name]
        if key in seen:
            bad.add(BadRow(file, line, org, "duplicate-value", f"{org!r} already sets {name!r} on line {seen[key]}"))
            continue
        seen[key] = line
        writer.value(org, name, flag.to_graph(flag.check(value)), at, actor)
