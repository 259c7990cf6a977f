"""Liveness and readiness: open to anyone, as orchestrators need."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.http.responses import JSON


async def healthz(request: Request) -> Response:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = request.app.state.services
    problems = []
    try:
        await services.db.ping()
    except Exception as error:  # any failure to reach the database means not ready
        problems.append(f"database unreachable: {type(error).__name__}")
    if not services.catalog.loaded:
        problems.append("catalog not loaded")
    if problems:
        return JSON({"status": "unavailable", "problems": problems}, status_code=503, headers={"Retry-After": "5"})
    return JSON({"status": "ready", "flags": len(services.catalog.current)})
