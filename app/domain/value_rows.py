"""Rows of a bulk value write (`PUT /v1/flags/{flag}/values`), in the three formats docs/api.md accepts.

Read by the bulk orgs' streaming reader (app/domain/org_rows.py's `BulkReader`): the same
per-row error contract, and bounded memory whatever the format (a JSON array is split into
its elements as it arrives, not held whole). A row is `{"org", "value"}`; in CSV the header
is `org,value` and the value is JSON text (a string keeps its JSON quotes, doubled by CSV
quoting); a null value clears.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from app.domain.hierarchy import RowError
from app.domain.ids import is_org_id
from app.domain.org_rows import FORMATS, BulkReader, _Unreadable
from app.errors import ProblemType

__all__ = ["FORMATS", "ValueRow", "ValueRowParser"]


@dataclass(frozen=True, slots=True)
class ValueRow:
    row: int  # counts from 1, as the client numbered it
    org: str
    value: Any  # as sent; None clears


class ValueRowParser(BulkReader):
    """Feed it chunks as the body arrives, then `close()` for (rows, errors)."""

    COLUMNS = ("org", "value")
    SHAPE = '{"org", "value"}'
    rows: list[ValueRow]

    def row(self, number: int, item: Any) -> ValueRow | RowError:
        if isinstance(item, _Unreadable):
            return RowError(number, None, ProblemType.invalid_body, item.why)
        if not isinstance(item, dict):
            return RowError(number, None, ProblemType.invalid_body, 'each row must be an object {"org", "value"}')
        org = item.get("org")
        unknown = set(item) - {"org", "value"}
        if unknown or "value" not in item:
            why = f"unknown field(s) {sorted(unknown)}" if unknown else 'missing field "value" (null clears)'
            return RowError(number, org if isinstance(org, str) else None, ProblemType.invalid_body, why)
        return _pair(number, org, item["value"])

    def fields(self, number: int, first: str, second: str) -> ValueRow | RowError:
        org, text = first, second
        try:
            value = orjson.loads(text) if text.strip() else None
        except orjson.JSONDecodeError:
            return RowError(
                number,
                org if is_org_id(org) else None,
                ProblemType.invalid_value,
                f"the value {text!r} is not JSON text (a string needs quotes)",
            )
        return _pair(number, org, value)


def _pair(number: int, org: Any, value: Any) -> ValueRow | RowError:
    if not is_org_id(org):
        return RowError(
            number, org if isinstance(org, str) else None, ProblemType.invalid_id, f"org {org!r} is not a valid org id"
        )
    return ValueRow(number, org, value)
