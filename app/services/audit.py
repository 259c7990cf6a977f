"""Reading the audit log, newest first, one page at a time."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from app.domain.access import Principal
from app.domain.ids import check_flag_name, check_org_id
from app.errors import Problem, ProblemType
from app.store import audit as audit_store
from app.store.audit import AuditQuery
from app.store.database import Database

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# A cursor is the seq to continue below; "before everything" starts at the top.
_TOP = 2**63 - 1


@dataclass(frozen=True, slots=True)
class AuditFilter:
    org: str | None = None
    subtree: bool = False
    flag: str | None = None
    actor: str | None = None
    since: str | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    @classmethod
    def from_query(cls, params: dict[str, str]) -> AuditFilter:
        """Validate the query string of `GET /v1/audit` (422 on anything malformed)."""
        unknown = set(params) - {field.name for field in fields(cls)}
        if unknown:
            raise Problem(ProblemType.invalid_query, f"unknown query parameter(s): {sorted(unknown)}")
        org = params.get("org")
        if org is not None:
            check_org_id(org)
        flag = params.get("flag")
        if flag is not None:
            check_flag_name(flag)
        subtree = params.get("subtree", "false").lower()
        if subtree not in ("true", "false"):
            raise Problem(ProblemType.invalid_query, "subtree must be true or false")
        since = params.get("since")
        if since is not None:
            try:
                moment = datetime.fromisoformat(since)
            except ValueError:
                raise Problem(ProblemType.invalid_query, f"since {since!r} is not an RFC 3339 time") from None
            if moment.tzinfo is None:
                raise Problem(ProblemType.invalid_query, "since needs a time zone offset, e.g. 2026-01-01T00:00:00Z")
            # In UTC: Neo4j takes offsets up to 18 hours, Python (and a fuzzer) up to 24.
            try:
                moment = moment.astimezone(UTC)
            except OverflowError:  # before year 1 or after 9999 once in UTC: the edge of time
                moment = (datetime.min if moment.utcoffset() > timedelta(0) else datetime.max).replace(tzinfo=UTC)
            since = moment.isoformat()
        limit = _int_param(params, "limit", DEFAULT_LIMIT)
        if not 1 <= limit <= MAX_LIMIT:
            raise Problem(ProblemType.invalid_query, f"limit must be 1 to {MAX_LIMIT}")
        cursor = params.get("cursor")
        if cursor is not None and (not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18):
            raise Problem(ProblemType.invalid_query, "cursor is not one this service gave out")
        return cls(org, subtree == "true", flag, params.get("actor"), since, limit, cursor)

    def query(self, scopes: list[str] | None) -> AuditQuery:
        """The store's query for this filter (the same fields), below the cursor, within `scopes` (None: all)."""
        filters = {name: value for name, value in asdict(self).items() if name != "cursor"}
        return AuditQuery(before=int(self.cursor) if self.cursor else _TOP, scopes=scopes, **filters)


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    # ASCII digits only: int() also takes "١٢", " 12" and "1_2", and thousands of digits raise.
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise Problem(ProblemType.invalid_query, f"{name} must be an integer")
    return int(text)


class AuditService:
    def __init__(self, db: Database, scan: int = audit_store.SCAN_WINDOW) -> None:
        self.db = db
        # Events one request may pass over for filters no index serves (app/store/audit.py).
        self.scan = scan

    async def page(self, principal: Principal, wanted: AuditFilter) -> tuple[list[dict[str, Any]], str | None]:
        # A scoped admin sees only events of orgs that were inside its subtrees.
        query = wanted.query(scopes=None if principal.unscoped else sorted(principal.orgs))
        events, following = await self.db.read(audit_store.events, query, self.scan)
        return events, None if following is None else str(following)
