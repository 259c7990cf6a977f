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
        await services.ping_database()
    except Exception as error:  # any failure to reach the database means not ready
        problems.append(f"database unreachable: {type(error).__name__}")
    open_for = services.database_circuit_open_for
    if open_for is not None:
        problems.append(f"database circuit breaker open: calls refused for {open_for:.1f} s more")
    if not services.catalog.loaded:
        problems.append("catalog not loaded")
    # How long since this instance last confirmed its cache against the change feed.
    lag = round(services.cache.lag, 3)
    # A region stays ready while its upstream is away: it serves its copy, and says how old.
    region = getattr(request.app.state, "region", None)
    extra = {"region": region.describe()} if region is not None else {}
    if problems:
        body = {
            **extra,
            "status": "unavailable",
            "problems": problems,
            "cache_lag_seconds": lag,
            "serving": "lookups from last known values in the cache; writes refused",
        }
        return JSON(body, status_code=503, headers={"Retry-After": "5"})
    return JSON({"status": "ready", "flags": len(services.catalog.current), "cache_lag_seconds": lag, **extra})
