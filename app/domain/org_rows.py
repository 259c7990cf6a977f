"""Rows of a bulk org request, in the three formats API.md accepts.

Parsing never stops at the first bad row: it reports every row it cannot read, with
the row number the client counts by (the array's first element, NDJSON's first line,
CSV's first line after the header, each is row 1).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import orjson

from app.domain.hierarchy import OrgRow, RowError
from app.domain.ids import is_org_id
from app.errors import Problem

FORMATS = ("application/json", "application/x-ndjson", "text/csv")


def parse_rows(raw: bytes, media_type: str) -> tuple[list[OrgRow], list[RowError]]:
    if media_type in ("application/json", ""):
        items = enumerate(_json_array(raw), start=1)
    elif media_type in ("application/x-ndjson", "application/jsonl", "application/ndjson"):
        items = _ndjson(raw)
    elif media_type == "text/csv":
        items = _csv(raw)
    else:
        raise Problem("unsupported-media-type", f"send one of {', '.join(FORMATS)}, not {media_type!r}")
    rows: list[OrgRow] = []
    errors: list[RowError] = []
    for number, item in items:
        result = _row(number, item)
        (errors if isinstance(result, RowError) else rows).append(result)
    return rows, errors


def _json_array(raw: bytes) -> list[Any]:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Problem("invalid-body", f"the body is not valid JSON: {error}") from None
    if not isinstance(document, list):
        raise Problem("invalid-body", 'the body must be a JSON array of {"id", "parent"} objects')
    return document


def _ndjson(raw: bytes) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError:
            yield number, _Unreadable("the line is not valid JSON")


def _csv(raw: bytes) -> Iterator[tuple[int, Any]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem("invalid-body", "the CSV is not UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [column.strip().lower() for column in next(reader, [])]
    if sorted(header) != ["id", "parent"]:
        raise Problem("invalid-body", f"the CSV header must be the columns id,parent; it is {','.join(header)!r}")
    for number, record in enumerate(reader, start=1):
        if not record:
            continue
        if len(record) != 2:
            yield number, _Unreadable(f"expected 2 fields (id,parent), found {len(record)}")
        else:
            values = dict(zip(header, record, strict=True))
            yield number, {"id": values["id"], "parent": values["parent"] or None}


class _Unreadable:
    def __init__(self, why: str) -> None:
        self.why = why


def _row(number: int, item: Any) -> OrgRow | RowError:
    if isinstance(item, _Unreadable):
        return RowError(number, None, "invalid-body", item.why)
    if not isinstance(item, dict):
        return RowError(number, None, "invalid-body", 'each row must be an object {"id", "parent"}')
    org, parent = item.get("id"), item.get("parent")
    unknown = set(item) - {"id", "parent"}
    if unknown:
        return RowError(number, org if isinstance(org, str) else None, "invalid-body",
                        f"unknown field(s) {sorted(unknown)}")
    if not is_org_id(org):
        return RowError(number, org if isinstance(org, str) else None, "invalid-id", f"id {org!r} is not a valid org id")
    if parent is not None and not is_org_id(parent):
        return RowError(number, org, "invalid-id", f"parent {parent!r} is not a valid org id")
    return OrgRow(number, org, parent)

