"""The read routes clients call most, dispatched straight to their handlers.

A cached lookup through the whole Starlette stack spent more in the framework than in its
handler (bench/RESULTS.md, "Cached path"): the exception middleware's wrappers, the
router's regular expressions tried route by route (the seed's `/{org}/{flag}` is last of
about thirty), and the per-route exception wrapper. This middleware, the innermost one,
recognises the hot routes by the routing table's own patterns and calls their handler as
Starlette's `request_response` would, with the same `Request`, the same `scope` entries
(`route`, `endpoint`, `path_params`, which the instrumentation labels requests by) and
the same exception handlers. Every other request goes on through the router unchanged.

It stays exact: a hot route is taken only when no route listed before it in the table
matches the request fully, as the router would decide.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send


def _segments(path: str) -> int:
    return path.count("/")


class HotRoutes:
    def __init__(
        self,
        app: ASGIApp,
        routes: Sequence[BaseRoute],
        endpoints: Collection[Callable],
        handlers: Mapping[Any, Callable],
    ) -> None:
        self.app = app
        # The router's own handlers, minus the catch-all: an unexpected error goes on up to
        # Starlette's ServerErrorMiddleware, as from any route.
        self._handlers = {
            kind: handler for kind, handler in handlers.items() if isinstance(kind, type) and kind is not Exception
        }
        # (method, number of "/") -> [(route, the earlier routes that could match such a request fully)]
        self._table: dict[tuple[str, int], list[tuple[Route, tuple[BaseRoute, ...]]]] = {}
        for index, route in enumerate(routes):
            if not (isinstance(route, Route) and route.endpoint in endpoints):
                continue
            segments = _segments(route.path)
            for method in route.methods or ():
                if method == "HEAD":
                    continue  # rare: left to the router
                earlier = tuple(
                    other
                    for other in routes[:index]
                    if not isinstance(other, Route)
                    or (
                        (other.methods is None or method in other.methods)
                        and (":path}" in other.path or _segments(other.path) == segments)
                    )
                )
                self._table.setdefault((method, segments), []).append((route, earlier))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.route_for(scope)
        if found is None:
            await self.app(scope, receive, send)
        else:
            await self._handle(*found, scope, receive, send)

    def route_for(self, scope: Scope) -> tuple[Route, dict[str, str]] | None:
        """The hot route the router would choose for this request and its raw path parameters, or None."""
        # With a root_path the router would match a shortened path: left to it.
        if scope["type"] != "http" or scope.get("root_path"):
            return None
        path = scope["path"]
        for route, earlier in self._table.get((scope["method"], _segments(path)), ()):
            match = route.path_regex.match(path)
            if match is None:
                continue
            if any(self._shadows(other, path, scope) for other in earlier):
                return None
            return route, match.groupdict()
        return None

    async def _handle(self, route: Route, params: dict[str, str], scope: Scope, receive: Receive, send: Send) -> None:
        convertors = route.param_convertors
        for name, value in params.items():
            params[name] = convertors[name].convert(value)
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = params
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as error:
            handler = self._handler_for(error)
            if handler is None:
                raise
            response = await handler(request, error)
        await response(scope, receive, send)

    @staticmethod
    def _shadows(route: BaseRoute, path: str, scope: Scope) -> bool:
        """Whether a route listed earlier matches fully (its methods were checked when the table was built)."""
        if isinstance(route, Route):
            return route.path_regex.match(path) is not None
        return route.matches(scope)[0] is Match.FULL

    def _handler_for(self, error: Exception) -> Callable | None:
        for kind in type(error).__mro__:
            handler = self._handlers.get(kind)
            if handler is not None:
                return handler
        return None
