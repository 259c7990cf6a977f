"""The one error type every layer raises: an RFC 9457 problem, named by its `ProblemType`.

The HTTP layer turns a `Problem` into `application/problem+json`; the domain and the
store only say which problem it is. `ProblemType` is the full list, each type with its
status and title, and docs/api.md "Problem types" lists the same (tests/test_problem_types.py).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

PROBLEM_TYPE_BASE = "https://graphflags.dev/problems/"


class ProblemType(StrEnum):
    """Every problem this service answers. The value is the slug at the end of the `type` URI;
    being a `str`, a member still compares equal to its slug (`problem.slug == "sealed"`)."""

    status: int
    title: str

    def __new__(cls, slug: str, status: int, title: str) -> ProblemType:
        member = str.__new__(cls, slug)
        member._value_ = slug
        member.status = status
        member.title = title
        return member

    invalid_id = "invalid-id", 422, "Invalid identifier"
    invalid_value = "invalid-value", 422, "Value does not fit the flag"
    invalid_body = "invalid-body", 400, "Unreadable request body"
    invalid_query = "invalid-query", 422, "Invalid query parameter"
    org_not_found = "org-not-found", 404, "Organization not found"
    flag_not_found = "flag-not-found", 404, "Flag not found"
    parent_not_found = "parent-not-found", 422, "Parent organization not found"
    org_conflict = "org-conflict", 409, "Organization already exists"
    cycle = "cycle", 409, "Move would create a cycle"
    too_deep = "too-deep", 422, "Organization would be too deep"
    sealed = "sealed", 409, "The flag is sealed on an org above"
    unauthorized = "unauthorized", 401, "Authentication required"
    forbidden = "forbidden", 403, "Forbidden"
    payload_too_large = "payload-too-large", 413, "Request body too large"
    unsupported_media_type = "unsupported-media-type", 415, "Unsupported media type"
    unavailable = "unavailable", 503, "Service unavailable"
    invalid_rows = "invalid-rows", 422, "Some rows are invalid; nothing was written"
    invalid_catalog = "invalid-catalog", 422, "Invalid flag catalog"
    changes_expired = "changes-expired", 410, "Changes expired"
    # A region (docs/regions.md) serves reads only; the problem names the upstream.
    read_only_region = "read-only-region", 421, "Writes go to the upstream"
    rate_limited = "rate-limited", 429, "Too many requests"
    not_found = "not-found", 404, "Not found"
    method_not_allowed = "method-not-allowed", 405, "Method not allowed"
    internal = "internal", 500, "Internal error"


class Problem(Exception):
    """A failure the client is told about, as a problem document."""

    def __init__(
        self,
        type_: ProblemType,
        detail: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        # ProblemType(...) also takes a row error's slug (app/domain/org_rows.py), and refuses an unknown one.
        self.type = ProblemType(type_)
        self.title = self.type.title
        self.status = status or self.type.status
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions
        super().__init__(f"{self.type}: {detail}")

    @property
    def slug(self) -> ProblemType:
        return self.type

    def document(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_TYPE_BASE + self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extensions,
        }
