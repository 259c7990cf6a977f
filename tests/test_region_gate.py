"""A region's gate refuses what the route table declares a write, and nothing else (no database)."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Mount

from app.http.api_route import ApiRoute
from app.http.region_gate import RegionGate


async def answered(request) -> PlainTextResponse:
    return PlainTextResponse("answered")


# Endpoint names that the old name-based gate let through, on routes that do write: the
# table, not the name, must decide.
async def evaluate_flag(request) -> PlainTextResponse:
    return PlainTextResponse("wrote")


ROUTES = [
    ApiRoute("/things/{id}", answered, "GET", operation=None),
    ApiRoute("/things/{id}", answered, "PUT", operation=None),
    ApiRoute("/evaluate", answered, "POST", operation=None, writes=False),
    ApiRoute("/named-like-a-read", evaluate_flag, "POST", operation=None),
    Mount("/files", app=answered),
]


@pytest.fixture
async def region():
    app = Starlette(routes=ROUTES, middleware=[Middleware(RegionGate, upstream="https://upstream.example/")])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://region") as http:
        yield http


@pytest.mark.parametrize(
    ("method", "path"), [("PUT", "/things/1"), ("POST", "/named-like-a-read"), ("POST", "/files/x")]
)
async def test_a_write_is_refused_naming_the_upstream(region, method, path) -> None:
    response = await region.request(method, path)
    assert response.status_code == 421
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/read-only-region")
    assert response.json()["upstream"] == "https://upstream.example"


@pytest.mark.parametrize(("method", "path"), [("GET", "/things/1"), ("POST", "/evaluate")])
async def test_reads_and_declared_non_writes_pass(region, method, path) -> None:
    response = await region.request(method, path)
    assert (response.status_code, response.text) == (200, "answered")


async def test_an_unknown_path_is_left_to_the_router(region) -> None:
    assert (await region.post("/nowhere")).status_code == 404
