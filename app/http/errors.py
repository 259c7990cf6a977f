"""Every failure leaves as an RFC 9457 problem document, never a bare 500 page."""

from __future__ import annotations

from loguru import logger
from neo4j.exceptions import DriverError, Neo4jError, ServiceUnavailable, SessionExpired, TransientError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.errors import Problem
from app.http.responses import problem_response


async def on_problem(request: Request, problem: Problem) -> Response:
    return problem_response(problem)


async def on_http_exception(request: Request, error: HTTPException) -> Response:
    # Starlette raises these for unknown routes and wrong methods.
    if error.status_code == 405:
        problem = Problem("method-not-allowed", f"{request.method} is not allowed on {request.url.path}",
                          headers=dict(error.headers or {}))
    elif error.status_code == 404:
        problem = Problem("not-found", f"no route {request.url.path}")
    else:
        problem = Problem("internal", str(error.detail), status=error.status_code)
    return problem_response(problem)


def _database_unavailable(error: Exception) -> bool:
    """Failures a client should retry: the database away, overloaded, or too slow this time."""
    if isinstance(error, ServiceUnavailable | SessionExpired | TransientError):
        return True
    code = getattr(error, "code", None) or ""
    return "TransactionTimedOut" in code or code.startswith("Neo.TransientError")


async def on_database_error(request: Request, error: Exception) -> Response:
    if _database_unavailable(error):
        logger.bind(error=type(error).__name__).warning("database unavailable on {} {}: {}", request.method,
                                                        request.url.path, error)
        return problem_response(Problem("unavailable", "the database is unavailable or overloaded; retry shortly",
                                        headers={"Retry-After": "5"}))
    return await on_unexpected(request, error)


async def on_unexpected(request: Request, error: Exception) -> Response:
    logger.opt(exception=error).error("unhandled error on {} {}", request.method, request.url.path)
    return problem_response(Problem("internal", "an unexpected error occurred; it has been logged"))


HANDLERS = {
    Problem: on_problem,
    HTTPException: on_http_exception,
    Neo4jError: on_database_error,
    DriverError: on_database_error,
    Exception: on_unexpected,
}
