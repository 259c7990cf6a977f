"""`GET /metrics`: the Prometheus text of the whole service, for admins of '*' on the public listener.

A scoped admin gets 403: the text names the actors and flags of every tenant.

Prometheus itself is better pointed at the separate listener (GRAPHFLAGS_METRICS_PORT),
which needs no token; this route serves the same text to an operator holding one.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.domain.access import Principal, Role
from app.errors import Problem, ProblemType
from app.http.auth import authorized
from app.observability import metrics


@authorized(Role.admin)
async def metrics_text(request: Request, principal: Principal) -> Response:
    if not principal.unscoped:
        raise Problem(ProblemType.forbidden, "metrics cover every tenant: they need an admin token for '*'")
    if not metrics.enabled():
        raise Problem(ProblemType.not_found, "metrics are switched off (GRAPHFLAGS_METRICS=false)")
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
