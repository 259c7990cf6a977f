"""`GET /v1/snapshot` (admin on every org): what a region bootstraps from, as NDJSON."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app.domain.access import Principal, Role
from app.errors import Problem, ProblemType
from app.http.auth import authorized
from app.services.snapshot import Snapshot


@authorized(Role.admin)
async def get_snapshot(request: Request, principal: Principal) -> Response:
    if not principal.unscoped:
        # A copy of a few subtrees could not follow the whole change feed consistently.
        raise Problem(ProblemType.forbidden, "a snapshot needs an admin token for every org ('*')")
    if request.query_params:
        raise Problem(ProblemType.invalid_query, f"unknown query parameter(s): {sorted(request.query_params)}")
    snapshot: Snapshot = request.app.state.services.snapshot()
    # Read before the answer starts, so a database failure is a 503 rather than a cut stream.
    seq = await snapshot.start()
    return StreamingResponse(
        snapshot.lines(),
        media_type="application/x-ndjson",
        headers={"Cache-Control": "no-store", "X-Graphflags-Snapshot-Seq": str(seq)},
    )
