"""The one error type every layer raises: an RFC 9457 problem, named by its slug.

The HTTP layer turns a `Problem` into `application/problem+json`; the domain and the
store only say which problem it is. The table below is the full list in docs/api.md.
"""

from __future__ import annotations

from typing import Any

PROBLEM_TYPE_BASE = "https://graphflags.dev/problems/"

# slug -> (HTTP status, title)
PROBLEMS: dict[str, tuple[int, str]] = {
    "invalid-id": (422, "Invalid identifier"),
    "invalid-value": (422, "Value does not fit the flag"),
    "invalid-body": (400, "Unreadable request body"),
    "invalid-query": (422, "Invalid query parameter"),
    "org-not-found": (404, "Organization not found"),
    "flag-not-found": (404, "Flag not found"),
    "parent-not-found": (422, "Parent organization not found"),
    "org-conflict": (409, "Organization already exists"),
    "cycle": (409, "Move would create a cycle"),
    "too-deep": (422, "Organization would be too deep"),
    "sealed": (409, "The flag is sealed on an org above"),
    "unauthorized": (401, "Authentication required"),
    "forbidden": (403, "Forbidden"),
    "payload-too-large": (413, "Request body too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "unavailable": (503, "Service unavailable"),
    "invalid-rows": (422, "Some rows are invalid; nothing was written"),
    "invalid-catalog": (422, "Invalid flag catalog"),
    "changes-expired": (410, "Changes expired"),
    # A region (docs/regions.md) serves reads only; the problem names the upstream.
    "read-only-region": (421, "Writes go to the upstream"),
    "rate-limited": (429, "Too many requests"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "internal": (500, "Internal error"),
}


class Problem(Exception):
    """A failure the client is told about, as a problem document."""

    def __init__(self, slug: str, detail: str, *, status: int | None = None, headers: dict[str, str] | None = None,
                 **extensions: Any) -> None:
        default_status, self.title = PROBLEMS[slug]
        self.slug = slug
        self.status = status or default_status
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions
        super().__init__(f"{slug}: {detail}")

    def document(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extensions,
        }
