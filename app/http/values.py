"""Handlers for flag values on orgs (docs/api.md, "Flag values")."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from app.domain import rollouts
from app.domain.access import Principal, Role
from app.domain.resolution import Resolution
from app.domain.rollouts import Rollout
from app.errors import Problem, ProblemType
from app.http import dry_run, schedules
from app.http.auth import authorized
from app.http.bodies import json_object, require_keys
from app.http.responses import JSON, EncodedJSON
from app.observability import metrics
from app.services.schedules import parse_at


def _services(request: Request):
    return request.app.state.services


def _effective(resolution: Resolution) -> dict:
    effective = {"value": resolution.value, "reason": resolution.reason, "source_org": resolution.source_org}
    if resolution.unit is not None:  # reason "split": which unit put the org in the rollout
        effective["unit"] = resolution.unit
    return effective


@authorized(Role.reader)
async def get_value(request: Request, principal: Principal) -> Response:
    org, flag = request.path_params["org"], request.path_params["flag"]
    body, reason = await request.app.state.answers.answer(
        principal,
        "value",
        org,
        flag,
        lambda found: orjson.dumps({"org": org, "flag": flag, **_effective(found.resolution)}),
    )
    metrics.flag_evaluated(flag, reason)
    return EncodedJSON(body)


@authorized(Role.reader)
async def explain_value(request: Request, principal: Principal) -> Response:
    org, flag = request.path_params["org"], request.path_params["flag"]
    found = await _services(request).values.lookup(principal, org, flag)
    explained = {"org": org, "flag": flag, **_effective(found.resolution)}
    if found.resolution.unit is not None:
        explained["bucket"] = found.resolution.bucket
    return JSON({**explained, "chain": found.explanation()})


def requested_sets(request: Request) -> frozenset[str] | None:
    """`X-Flag-Set: a,b` or `?set=a,b`: answer only those sets (None: every flag)."""
    text = request.headers.get("x-flag-set") or request.query_params.get("set")
    if not text:
        return None
    return frozenset(name.strip() for name in text.split(",") if name.strip())


@authorized(Role.reader)
async def list_values(request: Request, principal: Principal) -> Response:
    org = request.path_params["org"]
    resolutions = await _services(request).values.lookup_all(principal, org, requested_sets(request))
    metrics.flags_evaluated_in_bulk(len(resolutions))
    return JSON({"org": org, "flags": {name: _effective(r) for name, r in resolutions.items()}})


@authorized(Role.writer)
async def put_value(request: Request, principal: Principal) -> Response:
    org, flag = request.path_params["org"], request.path_params["flag"]
    rehearsal = dry_run.requested(request)
    body = await json_object(request)
    value = _value_or_rollout(body)
    sealed = body.get("sealed")
    if sealed is not None and not isinstance(sealed, bool):
        raise Problem(ProblemType.invalid_body, "sealed must be true or false")
    if sealed:
        principal.require(Role.admin)  # only an admin seals
        if type(value) is Rollout:
            raise Problem(ProblemType.invalid_value, "a rollout cannot be sealed")
    if "at" in body:
        if rehearsal is None:
            return await schedules.take(request, principal, org, flag, value, body["at"], sealed)
        parse_at(body["at"])  # a dry run of a scheduled change: the immediate change's count
    written = await _services(request).values.set(principal, org, flag, value, dry_run=rehearsal, sealed=sealed)
    if rehearsal is not None:
        return dry_run.answer(written)
    return JSON({"org": org, "flag": flag, "value": written.value, "previous": written.previous})


def _value_or_rollout(body: dict) -> object:
    """A PUT body's `value`, or its `rollout` (docs/api.md, "Rollouts along the tree") as a Rollout
    whose percent and depth are checked (its value is checked against the flag with any value's)."""
    if "rollout" in body:
        require_keys(body, {"rollout"}, {"sealed", "at"})
        return rollouts.parse(body["rollout"])
    require_keys(body, {"value"}, {"sealed", "at"})
    return body["value"]


@authorized(Role.writer)
async def post_seed_value(request: Request, principal: Principal) -> Response:
    """`POST /{org}/{flag}/{val}`: the seed's toggle, kept as written."""
    org, flag = request.path_params["org"], request.path_params["flag"]
    rehearsal = dry_run.requested(request)
    written = await _services(request).values.set(
        principal, org, flag, path_value=request.path_params["val"], dry_run=rehearsal
    )
    if rehearsal is not None:
        return dry_run.answer(written)
    return JSON({"org": org, "flag": flag, "value": written.value, "previous": written.previous})


@authorized(Role.writer)
async def delete_value(request: Request, principal: Principal) -> Response:
    rehearsal = dry_run.requested(request)
    at = request.query_params.get("at")
    if at is not None:
        if rehearsal is None:
            return await schedules.take(
                request, principal, request.path_params["org"], request.path_params["flag"], None, at, clear=True
            )
        parse_at(at)
    cleared = await _services(request).values.clear(
        principal, request.path_params["org"], request.path_params["flag"], dry_run=rehearsal
    )
    if rehearsal is not None:
        return dry_run.answer(cleared)
    return Response(status_code=204)
