"""Authentication and role checks for handlers: `@authorized(Role.writer)`.

The decorated handler receives the verified principal as its second argument, after
the token (401), the rate limits (429) and the role (403) have been checked, before
anything else is read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from loguru import logger
from starlette.requests import Request
from starlette.responses import Response

from app.auth.tokens import KeysMayHaveRotated
from app.domain.access import Principal, Role
from app.errors import Problem, ProblemType

Handler = Callable[[Request, Principal], Awaitable[Response]]


def authorized(role: Role) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            tokens = request.app.state.services.tokens
            try:
                try:
                    principal = tokens.authenticate(request.headers)
                except KeysMayHaveRotated:
                    # A key not held here: the provider may have rotated (fetches are rate-limited).
                    await tokens.refresh_keys()
                    principal = tokens.authenticate(request.headers, may_refetch=False)
            except Problem as problem:
                # The reason only: the detail never carries the token or any part of it.
                logger.bind(path=request.url.path, method=request.method).warning("unauthorized: {}", problem.detail)
                raise
            try:
                # Before anything else is read: a client over its limit costs nothing more.
                request.app.state.rate_limits.check(principal)
                principal.require(role)
                return await handler(request, principal)
            except Problem as problem:
                if problem.type is ProblemType.forbidden:
                    logger.bind(actor=principal.subject, path=request.url.path, method=request.method).warning(
                        "forbidden: {}", problem.detail
                    )
                raise

        return endpoint

    return decorate
