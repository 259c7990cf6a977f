"""A region's HTTP gate: writes are refused with `421 read-only-region`, answers say their staleness.

Refused, not forwarded (docs/regions.md): a forwarded write would succeed upstream and
still be invisible here until the feed brings it back, and the region would carry the
upstream's write path (and its failures) on its own. What counts as a write is what the
route table says (`ApiRoute.writes`, app/http/routes.py): reads pass, and so do OFREP
evaluations (POSTs that write nothing) and a catalog reload (local configuration).

Refusing happens at routing, before authentication, like a `405`: it says where to go,
not whether the caller may.
"""

from __future__ import annotations

import orjson
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import Problem, ProblemType
from app.http.api_route import ApiRoute

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class RegionGate:
    def __init__(self, app: ASGIApp, upstream: str) -> None:
        self.app = app
        self.upstream = upstream.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in _READS and self._writes(scope):
            await self._refuse(scope, send)
            return
        status = getattr(scope["app"].state, "region", None)

        async def send_marked(message) -> None:
            if message["type"] == "http.response.start" and status is not None:
                staleness = status.staleness
                if staleness is not None:
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"x-graphflags-staleness", f"{staleness:.1f}".encode()),
                    ]
            await send(message)

        await self.app(scope, receive, send_marked)

    def _writes(self, scope: Scope) -> bool:
        for route in scope["app"].routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                # A route that does not say (the console's static files) is refused, as a write would be.
                return not isinstance(route, ApiRoute) or route.writes
        return False  # no such route: the router answers 404/405 as anywhere

    async def _refuse(self, scope: Scope, send: Send) -> None:
        problem = Problem(
            ProblemType.read_only_region,
            f"this region serves reads only; send writes to the upstream at {self.upstream}",
            upstream=self.upstream,
        )
        body = orjson.dumps(problem.document())
        await send(
            {
                "type": "http.response.start",
                "status": problem.status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
