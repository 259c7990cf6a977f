"""A route that says what it is: its OpenAPI operation and whether it writes.

The route table (app/http/routes.py) is then the one list of what the service answers:
/openapi.json is generated from it (app/http/openapi.py), and a region's gate reads
`writes` from it (app/http/region_gate.py) instead of guessing from a handler's name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import Route

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
