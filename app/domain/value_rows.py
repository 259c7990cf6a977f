"""Rows of a bulk value write (`PUT /v1/flags/{flag}/values`), in the three formats docs/api.md accepts.

The same rules as bulk orgs (app/domain/org_rows.py): every unreadable row is reported
with the number the client counts by, and the body is parsed a line at a time as it
arrives (CSV, NDJSON) so a large one is never held whole next to its rows. A row is
`{"org", "value"}`; in CSV the header is `org,value` and the value is JSON text (a
string keeps its JSON quotes, doubled by CSV quoting); a null value clears.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from app.domain.hierarchy import RowError
from app.domain.ids import is_org_id
from app.domain.org_rows import _csv_record, _Unreadable
from app.errors import Problem

FORMATS = ("application/json", "application/x-ndjson", "text/csv")


@dataclass(frozen=True, slots=True)
class ValueRow:
    row: int  # counts from 1, as the client numbered it
    org: str
    value: Any  # as sent; None clears


class ValueRowParser:
    """Feed it chunks as the body arrives, then `close()` for (rows, errors)."""

    def __init__(self, media_type: str) -> None:
        if media_type in ("application/json", ""):
            self._format = "json"
        elif media_type in ("application/x-ndjson", "application/jsonl", "application/ndjson"):
            self._format = "ndjson"
        elif media_type == "text/csv":
            self._format = "csv"
        else:
            raise Problem("unsupported-media-type", f"send one of {', '.join(FORMATS)}, not {media_type!r}")
        self.rows: list[ValueRow] = []
        self.errors: list[RowError] = []
        self._pending = b""
        self._chunks: list[bytes] = []
        self._line = 0
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

    def close(self) -> tuple[list[ValueRow], list[RowError]]:
        if self._format == "json":
            raw = b"".join(self._chunks)
            self._chunks = []
            document = _json_array(raw)
            del raw
            for number, item in enumerate(document, start=1):
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
            self._header = _check_header(_csv_record(text.pop(0).removeprefix("\ufeff")) or [])
        org_first = self._header[0] == "org"
        for decoded in text:
            self._line += 1
            # One line at a time: a value's JSON text may hold commas and quotes, never a newline.
            record = _csv_record(decoded.rstrip("\r"))
            if record is None:
                self._add(self._line, _Unreadable("the line is not readable CSV"))
                continue
            if not record:
                continue
            if len(record) != 2:
                self._add(self._line, _Unreadable(f"expected 2 fields (org,value), found {len(record)}"))
                continue
            org, text_value = record if org_first else reversed(record)
            try:
                value = orjson.loads(text_value) if text_value.strip() else None
            except orjson.JSONDecodeError:
                self.errors.append(RowError(self._line, org if is_org_id(org) else None, "invalid-value",
                                            f"the value {text_value!r} is not JSON text (a string needs quotes)"))
                continue
            self._pair(self._line, org, value)

    def _add(self, number: int, item: Any) -> None:
        if isinstance(item, _Unreadable):
            self.errors.append(RowError(number, None, "invalid-body", item.why))
            return
        if not isinstance(item, dict):
            self.errors.append(RowError(number, None, "invalid-body", 'each row must be an object {"org", "value"}'))
            return
        org = item.get("org")
        unknown = set(item) - {"org", "value"}
        if unknown or "value" not in item:
            why = f"unknown field(s) {sorted(unknown)}" if unknown else 'missing field "value" (null clears)'
            self.errors.append(RowError(number, org if isinstance(org, str) else None, "invalid-body", why))
            return
        self._pair(number, org, item["value"])

    def _pair(self, number: int, org: Any, value: Any) -> None:
        if not is_org_id(org):
            self.errors.append(RowError(number, org if isinstance(org, str) else None, "invalid-id",
                                        f"org {org!r} is not a valid org id"))
            return
        self.rows.append(ValueRow(number, org, value))


def _check_header(columns: list[str]) -> list[str]:
    header = [column.strip().lower() for column in columns]
    if sorted(header) != ["org", "value"]:
        raise Problem("invalid-body", f"the CSV header must be the columns org,value; it is {','.join(header)!r}")
    return header


def _json_array(raw: bytes) -> list[Any]:
    # Whole, not split as it streams the way bulk orgs' arrays are (org_rows._ArraySplitter, whose
    # errors speak of {"id", "parent"} rows): NDJSON and CSV are the formats for the largest writes.
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Problem("invalid-body", f"the body is not valid JSON: {error}") from None
    if not isinstance(document, list):
        raise Problem("invalid-body", 'the body must be a JSON array of {"org", "value"} objects')
    return document
