"""Handlers for the org hierarchy (API.md, "Organizations")."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.domain.access import Principal, Role
from app.domain.hierarchy import invalid_rows
from app.domain.org_rows import RowParser
from app.errors import Problem
from app.http import dry_run
from app.http.auth import authorized
from app.http.bodies import json_object, media_type, require_keys, stream_body
from app.http.responses import JSON


def _optional_id(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise Problem("invalid-id", f"{key} must be a string or null")
    return value


@authorized(Role.admin)
async def create_org(request: Request, principal: Principal) -> Response:
    body = await json_object(request)
    require_keys(body, {"id"}, {"parent"})
    if not isinstance(body["id"], str):
        raise Problem("invalid-id", "id must be a string")
    org, parent = body["id"], _optional_id(body, "parent")
    created = await request.app.state.services.orgs.create(principal, org, parent)
    return JSON({"id": org, "parent": parent}, status_code=201 if created else 200)


@authorized(Role.admin)
async def create_orgs_bulk(request: Request, principal: Principal) -> Response:
    # Parsed as it arrives: the raw body is never held next to its rows.
    parser = RowParser(media_type(request))
    async for chunk in stream_body(request):
        parser.feed(chunk)
    rows, errors = parser.close()
    if errors:
        raise invalid_rows(errors)
    plan = await request.app.state.services.orgs.create_many(principal, rows)
    return JSON({"created": len(plan.create), "unchanged": plan.unchanged})


@authorized(Role.reader)
async def get_org(request: Request, principal: Principal) -> Response:
    view = await request.app.state.services.orgs.get(principal, request.path_params["org"])
    return JSON({"id": view.id, "parent": view.parent, "ancestors": view.ancestors, "children": view.children})


@authorized(Role.admin)
async def move_org(request: Request, principal: Principal) -> Response:
    org = request.path_params["org"]
    rehearsal = dry_run.requested(request)
    body = await json_object(request)
    require_keys(body, {"parent"})
    parent = _optional_id(body, "parent")
    services = request.app.state.services
    if rehearsal is not None:
        return dry_run.answer(await services.orgs.move(principal, org, parent, dry_run=rehearsal,
                                                       catalog=services.catalog.current))
    await services.orgs.move(principal, org, parent)
    return JSON({"id": org, "parent": parent})
