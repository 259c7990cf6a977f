"""Handler for the audit log (docs/api.md, "Audit")."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.domain.access import Principal, Role
from app.http.auth import authorized
from app.http.responses import JSON
from app.services.audit import AuditFilter


@authorized(Role.admin)
async def list_audit(request: Request, principal: Principal) -> Response:
    wanted = AuditFilter.from_query(dict(request.query_params))
    events, following = await request.app.state.services.audit.page(principal, wanted)
    return JSON({"events": events, "next": following})
