"""The graph as neo4j-admin import CSV: header files, data files and a manifest.

One directory holds one complete graph. Every file group is a header file
(`NAME.header.csv`, one line) plus a data file (`NAME.csv`), and `manifest.json` says
which label or relationship type each group is, so the `neo4j-admin database import
full` arguments follow from the directory alone (`import_arguments`). Synthetic data,
a checked user CSV and an online export all produce this same layout, so a restore is
an import.

    (:Org {id})-[:PARENT_OF]->(:Org)
    (:Org)-[:SET {value, updated_at, updated_by}]->(:Flag {name, type, default, set,
                                                         description, definition, active})
    (:AuditEvent {seq, at, actor, action, org, flag, old, new, path})
    (:AuditSequence {name: 'audit', last, pruned})

neo4j-admin types a column per file, while `SET.value` and `Flag.default` take the type
of their flag: values and flags are therefore split into one group per stored type.
Org ids and flag names are validated before they get here (no quote, comma or newline
can occur in them), so they are written bare; every other string is quoted, which is
also how an empty string stays an empty string (an unquoted empty field is "no property").
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from app.domain.catalog import Catalog

MANIFEST = "manifest.json"
FORMAT_VERSION = 1

# Stored Python type -> (file suffix, neo4j-admin column type)
_VALUE_TYPES = {
    bool: ("boolean", "boolean"),
    int: ("long", "long"),
    float: ("double", "double"),
    str: ("string", "string"),
    # A rollout (app/domain/rollouts.py): one JSON text, free of ';' (the array delimiter).
    list: ("rollout", "string[]"),
}
_COLUMN_TYPES = dict(_VALUE_TYPES.values())

_HEADERS = {
    "orgs": "id:ID(Org)",
    "parent_of": ":START_ID(Org),:END_ID(Org)",
    "audit_events": "seq:long,at:datetime,actor,action,org,flag,old,new,path:string[]",
    "audit_sequence": "name,last:long,pruned:long",
}


def quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def encode(value: Any) -> str:
    """One CSV field for neo4j-admin: None is an empty (absent) field, strings always quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be stored")
        return repr(value)
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, list) and all(isinstance(item, str) and ";" not in item for item in value):
        return quoted(";".join(value))
    raise TypeError(f"cannot write {type(value).__name__} to the import CSV")


def stored_kind(value: Any) -> str:
    """The group a stored value goes to: boolean, long, double or string."""
    for python_type, (kind, _) in _VALUE_TYPES.items():
        if type(value) is python_type:
            return kind
    raise TypeError(f"a stored flag value is never a {type(value).__name__}")


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Group:
    kind: str  # "nodes" or "relationships"
    name: str  # file stem
    label: str  # label or relationship type
    rows: int = 0

    def document(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "header": f"{self.name}.header.csv",
            "files": [f"{self.name}.csv"],
            "rows": self.rows,
        }


@dataclass
class Manifest:
    groups: list[Group] = field(default_factory=list)
    multiline: bool = False
    source: str = ""
    created_at: str = ""
    audit_last_seq: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for group in self.groups:
            totals[group.label] = totals.get(group.label, 0) + group.rows
        return totals

    def document(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "source": self.source,
            "created_at": self.created_at,
            "multiline": self.multiline,
            "audit_last_seq": self.audit_last_seq,
            "counts": self.counts(),
            "groups": [group.document() for group in self.groups],
            **self.extra,
        }


class AdminCsvWriter:
    """Streams a graph into an import directory; nothing but open files is held."""

    def __init__(self, directory: Path, source: str, buffer_bytes: int = 1 << 20) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / MANIFEST).exists() or any(directory.glob("*.csv")):
            raise FileExistsError(f"{directory} already holds import files; use an empty directory")
        self.manifest = Manifest(source=source, created_at=now_rfc3339())
        self._buffer = buffer_bytes
        self._files: dict[str, tuple[TextIO, Group]] = {}
        self._orgs = self._open("nodes", "orgs", "Org", _HEADERS["orgs"])
        self._edges = self._open("nodes", "parent_of", "PARENT_OF", _HEADERS["parent_of"], relationship=True)
        self._max_seq = 0

    def _open(self, kind: str, name: str, label: str, header: str, relationship: bool = False) -> tuple[TextIO, Group]:
        group = Group("relationships" if relationship else kind, name, label)
        (self.directory / f"{name}.header.csv").write_text(header + "\n")
        handle = open(self.directory / f"{name}.csv", "w", encoding="utf-8", newline="", buffering=self._buffer)
        self._files[name] = (handle, group)
        self.manifest.groups.append(group)
        return handle, group

    def _group(self, name: str, label: str, header: str, relationship: bool = False) -> tuple[TextIO, Group]:
        opened = self._files.get(name)
        return opened if opened is not None else self._open("nodes", name, label, header, relationship)

    def org(self, org: str, parent: str | None) -> None:
        handle, group = self._orgs
        handle.write(org + "\n")
        group.rows += 1
        if parent is not None:
            handle, group = self._edges
            handle.write(f"{parent},{org}\n")
            group.rows += 1

    def value(self, org: str, flag: str, stored: Any, updated_at: str, updated_by: str, sealed: bool = False) -> None:
        """`stored` as the graph holds it (FlagDefinition.to_graph): bool, int, float or str.

        Sealed values (README, "Safe changes") go to files of their own with a `sealed` column,
        so the common, unsealed ones carry no property for it, as the service writes them.
        """
        kind = stored_kind(stored)
        if sealed:
            handle, group = self._group(
                f"set_{kind}_sealed",
                "SET",
                f":START_ID(Org),:END_ID(Flag),value:{_COLUMN_TYPES[kind]},updated_at:datetime,updated_by,sealed:boolean",
                relationship=True,
            )
        else:
            handle, group = self._group(
                f"set_{kind}",
                "SET",
                f":START_ID(Org),:END_ID(Flag),value:{_COLUMN_TYPES[kind]},updated_at:datetime,updated_by",
                relationship=True,
            )
        text = encode(stored)
        if kind == "string" and ("\n" in text or "\r" in text):
            self.manifest.multiline = True
        handle.write(f"{org},{flag},{text},{updated_at},{encode(updated_by)}{',true' if sealed else ''}\n")
        group.rows += 1

    def flag(
        self,
        name: str,
        type_: str,
        default: Any,
        set_: str | None,
        description: str | None,
        definition: str | None,
        active: bool,
    ) -> None:
        """A Flag node; `default` as the graph holds it."""
        kind = stored_kind(default)
        handle, group = self._group(
            f"flags_{kind}", "Flag", f"name:ID(Flag),type,default:{kind},set,description,definition,active:boolean"
        )
        fields = [
            name,
            encode(type_),
            encode(default),
            encode(set_),
            encode(description),
            encode(definition),
            encode(active),
        ]
        line = ",".join(fields)
        if "\n" in line or "\r" in line:
            self.manifest.multiline = True
        handle.write(line + "\n")
        group.rows += 1

    def catalog(self, catalog: Catalog) -> None:
        for flag in catalog:
            # The text the catalog sync writes, so the first sync after an import finds nothing to change.
            self.flag(
                flag.name,
                flag.type,
                flag.to_graph(flag.default),
                flag.set,
                flag.description,
                flag.stored_definition(),
                True,
            )

    def audit_event(
        self,
        seq: int,
        at: str,
        actor: str,
        action: str,
        org: str | None,
        flag: str | None,
        old: str | None,
        new: str | None,
        path: list[str],
        sealed: bool | None = None,
        schedule: str | None = None,
    ) -> None:
        # Events of seals and of schedules (README, "Safe changes") carry one or two properties
        # more: files of their own, so every other event has no column for them.
        extra = [column for column, value in (("sealed:boolean", sealed), ("schedule", schedule)) if value is not None]
        name = "_".join(["audit_events", *(column.split(":")[0] for column in extra)])
        handle, group = self._group(name, "AuditEvent", ",".join([_HEADERS["audit_events"], *extra]))
        # Org ids hold no ';' (the array delimiter), so the path needs no escaping.
        line = ",".join(
            [
                str(seq),
                at,
                encode(actor),
                encode(action),
                encode(org),
                encode(flag),
                encode(old),
                encode(new),
                quoted(";".join(path)),
                *([str(sealed).lower()] if sealed is not None else []),
                *([encode(schedule)] if schedule is not None else []),
            ]
        )
        if "\n" in line or "\r" in line:
            self.manifest.multiline = True
        handle.write(line + "\n")
        group.rows += 1
        self._max_seq = max(self._max_seq, seq)

    def audit_sequence(self, last: int, pruned: int = 0) -> None:
        handle, group = self._group("audit_sequence", "AuditSequence", _HEADERS["audit_sequence"])
        handle.write(f'"audit",{int(last)},{int(pruned)}\n')
        group.rows += 1
        self.manifest.audit_last_seq = int(last)

    def close(self, **extra: Any) -> Manifest:
        for handle, _ in self._files.values():
            handle.close()
        self.manifest.extra.update(extra)
        write_manifest(self.directory, self.manifest.document())
        return self.manifest

    def discard(self) -> None:
        """Remove everything written: a refused input leaves no half-made import behind."""
        for name, (handle, _) in self._files.items():
            handle.close()
            for suffix in (".csv", ".header.csv"):
                (self.directory / f"{name}{suffix}").unlink(missing_ok=True)
        (self.directory / MANIFEST).unlink(missing_ok=True)


def write_manifest(directory: Path, document: dict[str, Any]) -> None:
    tmp = directory / f"{MANIFEST}.tmp"
    tmp.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(tmp, directory / MANIFEST)


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise FileNotFoundError(f"{directory} has no {MANIFEST}: not an import directory") from None
    if document.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: unknown format {document.get('format')!r} (expected {FORMAT_VERSION})")
    return document


def import_arguments(directory: Path, manifest: dict[str, Any]) -> list[str]:
    """The `--nodes` / `--relationships` arguments (and parse options) for neo4j-admin."""
    directory = directory.resolve()
    arguments = []
    for group in manifest["groups"]:
        if not group["rows"]:
            continue
        files = ",".join(str(directory / name) for name in [group["header"], *group["files"]])
        arguments.append(f"--{group['kind']}={group['label']}={files}")
    if manifest.get("multiline"):
        arguments.append("--multiline-fields=true")
    return arguments
