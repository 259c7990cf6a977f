"""JSON responses (orjson) and problem documents."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse, Response

from app.errors import Problem
from app.observability.tracing import current_trace_id


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class EncodedJSON(Response):
    """A 200 whose JSON body is already encoded (app/http/answers.py): no rendering, two headers."""

    media_type = "application/json"

    def __init__(self, body: bytes) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]


def problem_response(problem: Problem) -> Response:
    document = problem.document()
    # A server-side failure names its trace, so whoever got it can have its log lines and
    # spans found. A 4xx explains itself and keeps its documented shape.
    if problem.status >= 500:
        trace_id = current_trace_id()
        if trace_id is not None:
            document["trace_id"] = trace_id
    return Response(
        orjson.dumps(document),
        status_code=problem.status,
        headers=problem.headers,
        media_type="application/problem+json",
    )
