"""Handlers for the org hierarchy (docs/api.md, "Organizations")."""

from __future__ import annotations

import base64
import re

from starlette.requests import Request
from starlette.responses import Response

from app.domain import ids
from app.domain.access import Principal, Role
from app.domain.hierarchy import invalid_rows
from app.domain.ids import is_org_id
from app.domain.org_rows import RowParser
from app.errors import Problem, ProblemType
from app.http import dry_run
from app.http.auth import authorized
from app.http.bodies import json_object, media_type, require_keys, slices, stream_body
from app.http.responses import JSON


def _optional_id(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise Problem(ProblemType.invalid_id, f"{key} must be a string or null")
    return value


@authorized(Role.admin)
async def create_org(request: Request, principal: Principal) -> Response:
    body = await json_object(request)
    require_keys(body, {"id"}, {"parent"})
    if not isinstance(body["id"], str):
        raise Problem(ProblemType.invalid_id, "id must be a string")
    org, parent = body["id"], _optional_id(body, "parent")
    created = await request.app.state.services.orgs.create(principal, org, parent)
    return JSON({"id": org, "parent": parent}, status_code=201 if created else 200)


@authorized(Role.admin)
async def create_orgs_bulk(request: Request, principal: Principal) -> Response:
    # Parsed as it arrives, a bounded slice at a time: the raw body is never held next to its
    # rows, and no other request waits long on this one's parsing.
    parser = RowParser(media_type(request))
    async for chunk in slices(stream_body(request)):
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
        return dry_run.answer(
            await services.orgs.move(principal, org, parent, dry_run=rehearsal, catalog=services.catalog.current)
        )
    await services.orgs.move(principal, org, parent)
    return JSON({"id": org, "parent": parent})


CHILDREN_LIMIT, CHILDREN_MAX = 100, 1000
FIND_LIMIT, FIND_MAX = 20, 100
_PREFIX = re.compile(ids.ORG_ID_PREFIX_PATTERN)


def _query(request: Request, allowed: set[str]) -> dict[str, str]:
    params = request.query_params
    unknown = set(params) - allowed
    if unknown:
        raise Problem(ProblemType.invalid_query, f"unknown query parameter(s): {sorted(unknown)}")
    repeated = [name for name in allowed if len(params.getlist(name)) > 1]
    if repeated:
        raise Problem(ProblemType.invalid_query, f"{repeated[0]} given more than once")
    return dict(params)


def _limit(params: dict[str, str], default: int, most: int) -> int:
    text = params.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise Problem(ProblemType.invalid_query, f"limit must be an integer from 1 to {most}")
    return int(text)


# A cursor is the last id of the page, base64url: opaque to clients, so its form may change.
def _cursor(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode().rstrip("=")


def _after(cursor: str | None) -> str:
    if cursor is None:
        return ""
    try:
        last = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        last = None
    if not is_org_id(last):
        raise Problem(ProblemType.invalid_query, "cursor is not one this service gave out")
    return last


@authorized(Role.reader)
async def list_children(request: Request, principal: Principal) -> Response:
    org = request.path_params["org"]
    params = _query(request, {"limit", "cursor"})
    limit = _limit(params, CHILDREN_LIMIT, CHILDREN_MAX)
    after = _after(params.get("cursor"))
    page, more = await request.app.state.services.orgs.children(principal, org, limit, after)
    return JSON(
        {
            "children": [{"id": child, "children": count} for child, count in page],
            "next": _cursor(page[-1][0]) if more else None,
        }
    )


@authorized(Role.reader)
async def find_orgs(request: Request, principal: Principal) -> Response:
    params = _query(request, {"prefix", "limit"})
    prefix = params.get("prefix", "")
    if _PREFIX.fullmatch(prefix) is None:
        raise Problem(ProblemType.invalid_query, "prefix must be at most 128 characters of A-Z a-z 0-9 . _ : -")
    limit = _limit(params, FIND_LIMIT, FIND_MAX)
    ids, truncated = await request.app.state.services.orgs.find(principal, prefix, limit)
    return JSON({"orgs": ids, "truncated": truncated})
