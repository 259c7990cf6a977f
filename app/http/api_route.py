"""A route that says what it is: its OpenAPI operation and whether it writes.

The route table (app/http/routes.py) is then the one list of what the service answers:
/openapi.json is generated from it (app/http/openapi.py), and a region's gate reads
`writes` from it (app/http/region_gate.py) instead of guessing from a handler's name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import Match, Route
from starlette.types import Scope

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiRoute(Route):
    """One method on one path.

    `operation` is its OpenAPI operation object (None: left out of /openapi.json, like
    Starlette's include_in_schema=False). `writes` defaults to "any method but a read";
    a POST that changes nothing in the graph (an OFREP evaluation) says `writes=False`.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        method: str,
        *,
        operation: dict[str, Any] | None,
        writes: bool | None = None,
    ) -> None:
        super().__init__(path, endpoint, methods=[method], include_in_schema=operation is not None)
        self.method = method
        self.operation = operation
        self.writes = method not in _READS if writes is None else writes


# The API's own namespaces: every versioned path and OFREP's live under these.
API_PREFIXES = ("/v1/", "/ofrep/")


class SeedAlias(ApiRoute):
    """A seed path (`/{org}/{flag}`, `/{org}/{flag}/{val}`), kept unversioned for its users.

    Its parameters would match any path of the API too (`POST /v1/orgs/x/children` reads as
    org `v1`, flag `orgs`), so it leaves the API's namespaces alone: a wrong method there is a
    405 naming the allowed ones, not a seed toggle of an org called `v1`.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("type") == "http" and str(scope.get("path", "")).startswith(API_PREFIXES):
            return Match.NONE, {}
        return super().matches(scope)
