"""JSON responses (orjson) and problem documents."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse, Response

from app.errors import Problem


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem_response(problem: Problem) -> Response:
    return Response(
        orjson.dumps(problem.document()),
        status_code=problem.status,
        headers=problem.headers,
        media_type="application/problem+json",
    )
