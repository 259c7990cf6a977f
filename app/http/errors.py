"""Every failure leaves as an RFC 9457 problem document, never a bare 500 page."""

from __future__ import annotations

import math

from loguru import logger
from neo4j.exceptions import DriverError, Neo4jError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from app.errors import Problem, ProblemType
from app.http.responses import problem_response
from app.store.database import DatabaseUnavailable, is_outage


async def on_problem(request: Request, problem: Problem) -> Response:
    return problem_response(problem)


def _allowed_methods(request: Request) -> str:
    """Every method the path answers to. Starlette's 405 names only the first route's, and
    each method of a path is its own route here (GET and PATCH /v1/orgs/{org})."""
    routes = [route for route in request.app.router.routes if isinstance(route, Route)]
    first = next((route for route in routes if route.matches(request.scope)[0] is Match.PARTIAL), None)
    if first is None:
        return ""
    return ", ".join(sorted(set().union(*(route.methods or () for route in routes if route.path == first.path))))


async def on_http_exception(request: Request, error: HTTPException) -> Response:
    # Starlette raises these for unknown routes and wrong methods.
    if error.status_code == 405:
        problem = Problem(
            ProblemType.method_not_allowed,
            f"{request.method} is not allowed on {request.url.path}",
            headers={**(error.headers or {}), "Allow": _allowed_methods(request)},
        )
    elif error.status_code == 404:
        problem = Problem(ProblemType.not_found, f"no route {request.url.path}")
    else:
        problem = Problem(ProblemType.internal, str(error.detail), status=error.status_code)
    return problem_response(problem)


async def on_database_error(request: Request, error: Exception) -> Response:
    if isinstance(error, DatabaseUnavailable):
        return problem_response(
            Problem(
                ProblemType.unavailable, str(error), headers={"Retry-After": str(max(1, math.ceil(error.retry_after)))}
            )
        )
    if is_outage(error):
        logger.bind(error=type(error).__name__).warning(
            "database unavailable on {} {}: {}", request.method, request.url.path, error
        )
        return problem_response(
            Problem(
                ProblemType.unavailable,
                "the database is unavailable or overloaded; retry shortly",
                headers={"Retry-After": "5"},
            )
        )
    return await on_unexpected(request, error)


async def on_unexpected(request: Request, error: Exception) -> Response:
    logger.opt(exception=error).error("unhandled error on {} {}", request.method, request.url.path)
    return problem_response(Problem(ProblemType.internal, "an unexpected error occurred; it has been logged"))


HANDLERS = {
    Problem: on_problem,
    HTTPException: on_http_exception,
    Neo4jError: on_database_error,
    DriverError: on_database_error,
    DatabaseUnavailable: on_database_error,
    Exception: on_unexpected,
}
