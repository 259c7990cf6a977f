"""Rows of a bulk request, in the three formats docs/api.md accepts: the streaming reader
both bulk endpoints use (`BulkReader`), and bulk orgs' rows (`RowParser`).

Parsing never stops at the first bad row: it reports every row it cannot read, with
the row number the client counts by (the array's first element, NDJSON's first line,
CSV's first line after the header, each is row 1).
"""

from __future__ import annotations

import csv
import re
from typing import Any

import orjson

from app.domain.hierarchy import OrgRow, RowError
from app.domain.ids import is_org_id
from app.errors import Problem, ProblemType

FORMATS = ("application/json", "application/x-ndjson", "text/csv")


def parse_rows(raw: bytes, media_type: str) -> tuple[list[OrgRow], list[RowError]]:
    parser = RowParser(media_type)
    parser.feed(raw)
    return parser.close()


class BulkReader:
    """The rows of a bulk request, parsed as the body arrives: feed it chunks, then `close()`
    for (rows, errors). Both bulk endpoints read their bodies with it (bulk orgs: `RowParser`
    below; bulk values: app/domain/value_rows.py); a subclass says what a row is.

    CSV and NDJSON are parsed a line at a time, so a large body is never held whole next
    to its rows (a 1,000,000-row request is ~30 MB of text, but ~200 MB of rows; holding
    both, plus the text decoded, plus dicts per row, is what made big requests big). A
    JSON array is split into its elements as it arrives (`_ArraySplitter`), each parsed
    on its own: the work per chunk is bounded by the chunk, never the body so far.
    `scanned` counts the bytes examined, so that tests can check the work stays linear.
    """

    COLUMNS: tuple[str, str]  # the CSV header's two columns, in either order
    SHAPE: str  # a row as the client sends it, for errors: '{"id", "parent"}'

    def __init__(self, media_type: str) -> None:
        if media_type in ("application/json", ""):
            self._format = "json"
        elif media_type in ("application/x-ndjson", "application/jsonl", "application/ndjson"):
            self._format = "ndjson"
        elif media_type == "text/csv":
            self._format = "csv"
        else:
            raise Problem(ProblemType.unsupported_media_type, f"send one of {', '.join(FORMATS)}, not {media_type!r}")
        self.rows: list[Any] = []
        self.errors: list[RowError] = []
        self._pending: list[bytes] = []  # the unfinished last line, in the pieces it came in
        self._array = (
            _ArraySplitter(f"the body must be a JSON array of {self.SHAPE} objects") if self._format == "json" else None
        )
        self.scanned = 0
        self._line = 0  # lines seen (NDJSON) / lines after the header (CSV)
        self._header: list[str] | None = None

    def row(self, number: int, item: Any) -> Any:
        """One JSON or NDJSON row (`_Unreadable` when it is not JSON): the row, or its RowError."""
        raise NotImplementedError

    def object_row(self, number: int, item: Any) -> dict[str, Any] | RowError:
        """The checks every JSON or NDJSON row shares: it was read, it is an object, and it has
        no field beyond `COLUMNS` (whether each is present, and what it holds, is the row's own rule)."""
        if isinstance(item, _Unreadable):
            return RowError(number, None, ProblemType.invalid_body, item.why)
        if not isinstance(item, dict):
            return RowError(number, None, ProblemType.invalid_body, f"each row must be an object {self.SHAPE}")
        unknown = set(item) - set(self.COLUMNS)
        if unknown:
            why = f"unknown field(s) {sorted(unknown)}"
            return RowError(number, sent_id(item.get(self.COLUMNS[0])), ProblemType.invalid_body, why)
        return item

    def fields(self, number: int, first: str, second: str) -> Any:
        """One CSV record's fields, in `COLUMNS` order: the row, or its RowError."""
        raise NotImplementedError

    def feed(self, chunk: bytes) -> None:
        if self._array is not None:
            for number, element in self._array.feed(chunk):
                self._add(number, _json_element(element))
            self.scanned = self._array.scanned
            return
        # Only the new chunk is searched, and each byte is joined into a line once: a long
        # line arriving in many small chunks costs its length, not its length squared.
        self.scanned += len(chunk)
        end = chunk.rfind(b"\n")
        if end < 0:
            if chunk:
                self._pending.append(chunk)
            return
        data = b"".join([*self._pending, chunk[:end]]) if self._pending else chunk[:end]
        self.scanned += len(data)
        rest = chunk[end + 1 :]
        self._pending = [rest] if rest else []
        self._lines(data.split(b"\n"))

    def close(self) -> tuple[list[Any], list[RowError]]:
        if self._array is not None:
            self._array.close()
        else:
            if self._pending:
                self._lines([b"".join(self._pending)])
                self._pending = []
            if self._format == "csv" and self._header is None:
                self._check_header([])
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
        if self._header is None:
            # The header is judged on its own, before any line after it is decoded: then a body
            # gets the same answer however it was cut (a bad byte after a bad header used to win
            # only when both came in one chunk).
            first = _utf8(lines[:1])[0].removeprefix("\ufeff")
            self._header = self._check_header(_csv_record(first) or [])
            lines = lines[1:]
        text = _utf8(lines)
        # Ids hold no quotes or newlines, nor does a value's JSON text hold a raw newline, so
        # a record never spans two lines that matter here: each line is its own record. One
        # reader over many lines would join a line that opens a quote with the next, and then
        # the rows would depend on where the chunks were cut.
        in_order = self._header[0] == self.COLUMNS[0]
        rows, errors = self.rows, self.errors
        records: list[Any]
        try:
            if any('"' in line for line in text):
                raise csv.Error("quotes: judged line by line")
            records = list(csv.reader(text))
        except csv.Error:
            # A quote, a stray carriage return inside a line, or a field past csv's size limit:
            # judge these lines one at a time, so the bad ones become row errors, never a 500.
            records = [
                _Unreadable("the line is not readable CSV") if (record := _csv_record(line)) is None else record
                for line in text
            ]
        for record in records:
            self._line += 1
            if isinstance(record, _Unreadable):
                self._add(self._line, record)
                continue
            if not record:
                continue
            if len(record) != 2:
                self._add(self._line, _Unreadable(f"expected 2 fields ({','.join(self.COLUMNS)}), found {len(record)}"))
                continue
            first, second = record if in_order else reversed(record)
            result = self.fields(self._line, first, second)
            (errors if isinstance(result, RowError) else rows).append(result)

    def _add(self, number: int, item: Any) -> None:
        result = self.row(number, item)
        (self.errors if isinstance(result, RowError) else self.rows).append(result)

    def _check_header(self, columns: list[str]) -> list[str]:
        header = [column.strip().lower() for column in columns]
        if sorted(header) != sorted(self.COLUMNS):
            raise Problem(
                ProblemType.invalid_body,
                f"the CSV header must be the columns {','.join(self.COLUMNS)}; it is {','.join(header)!r}",
            )
        return header


def _utf8(lines: list[bytes]) -> list[str]:
    try:
        return [line.decode("utf-8") for line in lines]
    except UnicodeDecodeError:
        raise Problem(ProblemType.invalid_body, "the CSV is not UTF-8") from None


class RowParser(BulkReader):
    """Rows of a bulk org request: `{"id", "parent"}`; CSV `id,parent`."""

    COLUMNS = ("id", "parent")
    SHAPE = '{"id", "parent"}'
    rows: list[OrgRow]

    def row(self, number: int, item: Any) -> OrgRow | RowError:
        checked = self.object_row(number, item)
        if isinstance(checked, RowError):
            return checked
        return _pair(number, checked.get("id"), checked.get("parent"))

    def fields(self, number: int, first: str, second: str) -> OrgRow | RowError:
        return _pair(number, first, second or None)


def _csv_record(line: str) -> list[str] | None:
    """One line's fields, or None when csv cannot read it."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def _json_element(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Problem(ProblemType.invalid_body, f"the body is not valid JSON: {error}") from None


_WHITESPACE = b" \t\r\n"
_NON_WHITESPACE = re.compile(rb"[^ \t\r\n]")
_VALUE_START = frozenset(b'{["-0123456789tfn')
# Inside an element: a whole string, a bracket, a comma, or a string left open at the chunk's end.
_TOKEN = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"|[\[\]{},"]', re.DOTALL)
# The rest of a string left open: up to its closing quote, or to the chunk's end (possibly
# stopping before a lone backslash whose escaped byte is in the next chunk).
_STRING_REST = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+', re.DOTALL)
# A bulk row as clients send it, an object with no nesting: matched in one step. Possessive
# quantifiers: a failed match (an object cut by the chunk's end) never backtracks.
_FLAT = rb'\{(?:[^{}\[\]"]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")*+\}'
_FLAT_OBJECT = re.compile(_FLAT, re.DOTALL)
# The common case whole: such an object and the comma after it, one step per row.
_FLAT_ROW = re.compile(rb"[ \t\r\n]*+(" + _FLAT + rb")[ \t\r\n]*+,", re.DOTALL)


class _ArraySplitter:
    """Splits a JSON array, as it streams in, into the raw text of its elements.

    Only strings, brackets and commas are tracked, to find where each top-level element
    ends; orjson parses (and judges) each element. Everything outside the elements is
    checked here, so a body that is not an array is refused from its first bytes.
    State carries from chunk to chunk, and every byte is examined a bounded number of times.
    """

    def __init__(self, not_array: str) -> None:
        self._not_array = not_array  # what the body must be, said when it is something else
        self._state = "start"  # start: before '['; between: before an element; element; end: after ']'
        self._need_element = False  # after a comma, ']' may not come next
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._pieces: list[bytes] = []  # the current element's text from earlier chunks
        self._elements = 0
        self.scanned = 0

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        found: list[tuple[int, bytes]] = []
        size = len(chunk)
        self.scanned += size
        start = 0  # where the current element begins in this chunk
        pos = 0
        while pos < size:
            if self._state == "between":
                row = _FLAT_ROW.match(chunk, pos)
                if row is not None:
                    self.scanned += row.end() - pos
                    found.append(self._finish(row.group(1)))
                    self._need_element, pos = True, row.end()
                    continue
            if self._state != "element":
                match = _NON_WHITESPACE.search(chunk, pos)
                if match is None:
                    break
                pos = match.start()
                byte = chunk[pos]
                if self._state == "start":
                    if byte != ord("["):
                        raise Problem(ProblemType.invalid_body, self._not_array)
                    self._state, pos = "between", pos + 1
                elif self._state == "end":
                    raise Problem(ProblemType.invalid_body, "the body is not valid JSON: data after the array")
                elif byte == ord("]") and not self._need_element:
                    self._state, pos = "end", pos + 1
                elif byte in _VALUE_START:
                    self._state, self._depth, start = "element", 0, pos
                    if byte == ord("{"):
                        flat = _FLAT_OBJECT.match(chunk, pos)
                        self.scanned += (flat.end() if flat else size) - pos
                        if flat is not None:
                            pos = flat.end()
                            continue
                else:
                    raise Problem(
                        ProblemType.invalid_body,
                        f"the body is not valid JSON: unexpected {chr(byte)!r} "
                        f"in the array, before row {self._elements + 1}",
                    )
                continue
            if self._in_string:
                if self._escape:
                    self._escape, pos = False, pos + 1
                    continue
                rest = _STRING_REST.match(chunk, pos)
                assert rest is not None  # the pattern matches the empty string too
                end = rest.end()
                self.scanned += end - pos
                if end == size:
                    pos = size
                elif chunk[end] == ord("\\"):  # the last byte: it escapes the next chunk's first
                    self._escape, pos = True, size
                else:
                    self._in_string, pos = False, end + 1
                continue
            match = _TOKEN.search(chunk, pos)
            if match is None:
                self.scanned += size - pos
                pos = size
                break
            self.scanned += match.end() - pos
            token = match.group()
            pos = match.end()
            if len(token) > 1:
                continue  # a whole string
            if token == b'"':
                self._in_string = True
            elif token in (b"{", b"["):
                self._depth += 1
            elif self._depth > 0 and token in (b"}", b"]"):
                self._depth -= 1
            elif self._depth == 0 and token in (b",", b"]"):
                found.append(self._finish(chunk[start : pos - 1]))
                self._need_element = token == b","
                self._state = "between" if token == b"," else "end"
        if self._state == "element":
            self._pieces.append(chunk[start:])
        return found

    def _finish(self, tail: bytes) -> tuple[int, bytes]:
        text = b"".join([*self._pieces, tail]) if self._pieces else tail
        self._pieces = []
        self.scanned += len(text)
        self._elements += 1
        return self._elements, text.rstrip(_WHITESPACE)

    def close(self) -> None:
        if self._state == "start":
            raise Problem(ProblemType.invalid_body, "the body is empty; " + self._not_array)
        if self._state != "end":
            raise Problem(ProblemType.invalid_body, "the body is not valid JSON: the array does not end")


class _Unreadable:
    def __init__(self, why: str) -> None:
        self.why = why


def _pair(number: int, org: Any, parent: Any) -> OrgRow | RowError:
    if (invalid := invalid_org(number, org, "id")) is not None:
        return invalid
    if parent is not None and not is_org_id(parent):
        return RowError(number, org, ProblemType.invalid_id, f"parent {parent!r} is not a valid org id")
    return OrgRow(number, org, parent)


def invalid_org(number: int, org: Any, field: str) -> RowError | None:
    """The row's error when its `field` (the org it is about) is not an org id, else None."""
    if is_org_id(org):
        return None
    return RowError(number, sent_id(org), ProblemType.invalid_id, f"{field} {org!r} is not a valid org id")


def sent_id(org: Any) -> str | None:
    """The id a row error names: what the client sent, when it sent a string at all."""
    return org if isinstance(org, str) else None
