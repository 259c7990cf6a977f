"""Rows of a bulk org request, in the three formats API.md accepts.

Parsing never stops at the first bad row: it reports every row it cannot read, with
the row number the client counts by (the array's first element, NDJSON's first line,
CSV's first line after the header, each is row 1).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

import orjson

from app.domain.hierarchy import OrgRow, RowError
from app.domain.ids import is_org_id
from app.errors import Problem

FORMATS = ("application/json", "application/x-ndjson", "text/csv")


def parse_rows(raw: bytes, media_type: str) -> tuple[list[OrgRow], list[RowError]]:
    parser = RowParser(media_type)
    parser.feed(raw)
    return parser.close()


class RowParser:
    """Rows parsed as the body arrives: feed it chunks, then `close()` for (rows, errors).

    CSV and NDJSON are parsed a line at a time, so a large body is never held whole next
    to its rows (a 1,000,000-row request is ~30 MB of text, but ~200 MB of rows; holding
    both, plus the text decoded, plus dicts per row, is what made big requests big). A
    JSON array cannot be split safely without a streaming JSON parser: it is buffered,
    parsed at the end, and the buffer dropped before the rows are judged.
    """

    def __init__(self, media_type: str) -> None:
        if media_type in ("application/json", ""):
            self._format = "json"
        elif media_type in ("application/x-ndjson", "application/jsonl", "application/ndjson"):
            self._format = "ndjson"
        elif media_type == "text/csv":
            self._format = "csv"
        else:
            raise Problem("unsupported-media-type", f"send one of {', '.join(FORMATS)}, not {media_type!r}")
        self.rows: list[OrgRow] = []
        self.errors: list[RowError] = []
        self._pending = b""
        self._chunks: list[bytes] = []
        self._line = 0  # lines seen (NDJSON) / lines after the header (CSV)
        self._header: list[str] | None = None

    def feed(self, chunk: bytes) -> None:
        if self._format == "json":
            self._chunks.append(chunk)
            return
        data = self._pending + chunk
        end = data.rfind(b"\n")
        if end < 0:
            self._pending = data
            return
        self._pending = data[end + 1:]
        self._lines(data[:end].split(b"\n"))

    def close(self) -> tuple[list[OrgRow], list[RowError]]:
        if self._format == "json":
            raw = b"".join(self._chunks)
            self._chunks = []
            items = enumerate(_json_array(raw), start=1)
            del raw
            for number, item in items:
                self._add(number, item)
        else:
            if self._pending:
                self._lines([self._pending])
                self._pending = b""
            if self._format == "csv" and self._header is None:
                _check_header([])
        return self.rows, self.errors

    def _lines(self, lines: list[bytes]) -> None:
        if self._format == "ndjson":
            for line in lines:
                self._line += 1
                if line.strip():
                    try:
                        item = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        item = _Unreadable("the line is not valid JSON")
                    self._add(self._line, item)
            return
        try:
            text = [line.decode("utf-8") for line in lines]
        except UnicodeDecodeError:
            raise Problem("invalid-body", "the CSV is not UTF-8") from None
        if self._header is None:
            first = text.pop(0).removeprefix("\ufeff")
            self._header = _check_header(_csv_record(first) or [])
        # Ids hold no quotes or newlines, so a record never spans two lines that matter here.
        id_first = self._header[0] == "id"
        rows, errors = self.rows, self.errors
        try:
            records: list[Any] = list(csv.reader(text))
        except csv.Error:
            # A stray carriage return inside a line, or a field past csv's size limit: judge
            # these lines one at a time, so the bad ones become row errors rather than a 500.
            records = [_Unreadable("the line is not readable CSV") if (record := _csv_record(line)) is None else record
                       for line in text]
        for record in records:
            self._line += 1
            if isinstance(record, _Unreadable):
                self._add(self._line, record)
                continue
            if not record:
                continue
            if len(record) != 2:
                self._add(self._line, _Unreadable(f"expected 2 fields (id,parent), found {len(record)}"))
                continue
            org, parent = record if id_first else reversed(record)
            result = _pair(self._line, org, parent or None)
            (errors if isinstance(result, RowError) else rows).append(result)

    def _add(self, number: int, item: Any) -> None:
        result = _row(number, item)
        (self.errors if isinstance(result, RowError) else self.rows).append(result)


def _csv_record(line: str) -> list[str] | None:
    """One line's fields, or None when csv cannot read it."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def _check_header(columns: list[str]) -> list[str]:
    header = [column.strip().lower() for column in columns]
    if sorted(header) != ["id", "parent"]:
        raise Problem("invalid-body", f"the CSV header must be the columns id,parent; it is {','.join(header)!r}")
    return header


def _json_array(raw: bytes) -> list[Any]:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Problem("invalid-body", f"the body is not valid JSON: {error}") from None
    if not isinstance(document, list):
        raise Problem("invalid-body", 'the body must be a JSON array of {"id", "parent"} objects')
    return document


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
    return _pair(number, org, parent)


def _pair(number: int, org: Any, parent: Any) -> OrgRow | RowError:
    if not is_org_id(org):
        return RowError(number, org if isinstance(org, str) else None, "invalid-id", f"id {org!r} is not a valid org id")
    if parent is not None and not is_org_id(parent):
        return RowError(number, org, "invalid-id", f"parent {parent!r} is not a valid org id")
    return OrgRow(number, org, parent)

