"""`?dry_run=true` (docs/api.md, "Safe changes"): what a change would reach, without making it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.errors import Problem, ProblemType
from app.http.responses import JSON
from app.services.dry_run import Affected, DryRun


def requested(request: Request) -> DryRun | None:
    """The dry run the query asks for, or None for the real change; anything but true/false is 422."""
    text = request.query_params.get("dry_run")
    if text is None or text.lower() == "false":
        return None
    if text.lower() == "true":
        settings = request.app.state.settings
        return DryRun(settings.dry_run_max, settings.dry_run_timeout)
    raise Problem(ProblemType.invalid_query, "dry_run must be true or false")


def answer(affected: Affected) -> Response:
    return JSON(affected.document())
