"""Handlers for the flag catalog (docs/api.md, "Catalog")."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.domain.access import Principal, Role
from app.domain.ids import check_flag_name
from app.http.auth import authorized
from app.http.responses import JSON


@authorized(Role.reader)
async def list_flags(request: Request, principal: Principal) -> Response:
    catalog = request.app.state.services.catalog.current
    return JSON({"flags": [flag.public() for flag in catalog]})


@authorized(Role.reader)
async def get_flag(request: Request, principal: Principal) -> Response:
    name = check_flag_name(request.path_params["flag"])
    return JSON(request.app.state.services.catalog.current.require(name).public())


@authorized(Role.admin)
async def reload_catalog(request: Request, principal: Principal) -> Response:
    catalog = await request.app.state.services.catalog.reload()
    return JSON({"flags": len(catalog)})
