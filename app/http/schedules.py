"""Scheduled changes (docs/api.md, "Safe changes"): list and cancel; taking one is a value write with `at`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.domain.access import Principal, Role
from app.errors import Problem, ProblemType
from app.http import dry_run
from app.http.auth import authorized
from app.http.responses import JSON
from app.services.schedules import Schedules


def service(request: Request) -> Schedules:
    schedules: Schedules = request.app.state.services.schedules()
    return schedules


async def take(
    request: Request, principal: Principal, org: str, flag: str, value, at, sealed=None, clear: bool = False
) -> Response:
    """`202 {"schedule", "org", "flag", "value", "at"}` once the change passed the immediate change's checks."""
    return JSON(await service(request).schedule(principal, org, flag, value, at, sealed, clear), status_code=202)


@authorized(Role.writer)
async def list_schedules(request: Request, principal: Principal) -> Response:
    query = request.query_params
    subtree = query.get("subtree", "false").lower()
    if subtree not in ("true", "false"):
        raise Problem(ProblemType.invalid_query, "subtree must be true or false")
    found = await service(request).pending(principal, query.get("org"), subtree == "true", query.get("flag"))
    return JSON({"schedules": found})


@authorized(Role.writer)
async def cancel_schedule(request: Request, principal: Principal) -> Response:
    # The contract gives a cancel no dry run; a client that asks for one must not cancel for real.
    if dry_run.requested(request) is not None:
        raise Problem(ProblemType.invalid_query, "a cancel has no dry run; nothing was cancelled")
    await service(request).cancel(principal, request.path_params["schedule"])
    return Response(status_code=204)
