"""`PUT /v1/flags/{flag}/values` (docs/api.md, "Safe changes"): one flag on many orgs, all or nothing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.domain.access import Principal, Role
from app.domain.value_rows import ValueRowParser
from app.http import dry_run
from app.http.auth import authorized
from app.http.bodies import media_type, stream_body
from app.http.responses import JSON


@authorized(Role.writer)
async def put_values(request: Request, principal: Principal) -> Response:
    rehearsal = dry_run.requested(request)
    # Parsed as it arrives: the raw body is never held next to its rows.
    parser = ValueRowParser(media_type(request))
    async for chunk in stream_body(request):
        parser.feed(chunk)
    rows, errors = parser.close()
    services, settings = request.app.state.services, request.app.state.settings
    bulk = services.bulk_values(settings.bulk_batch_size, settings.bulk_values_timeout)
    written = await bulk.write(principal, request.path_params["flag"], rows, errors, dry_run=rehearsal)
    if rehearsal is not None:
        return dry_run.answer(written)
    return JSON({"changed": written.changed, "unchanged": written.unchanged})
