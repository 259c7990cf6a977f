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
from app.domain.org_rows import FORMATS, BulkReader, invalid_org, sent_id
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
        checked = self.object_row(number, item)
        if isinstance(checked, RowError):
            return checked
        if "value" not in checked:
            why = 'missing field "value" (null clears)'
            return RowError(number, sent_id(checked.get("org")), ProblemType.invalid_body, why)
        return _pair(number, checked.get("org"), checked["value"])

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
    return invalid_org(number, org, "org") or ValueRow(number, org, value)
