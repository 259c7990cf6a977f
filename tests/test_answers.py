"""Encoded single-flag answers (app/http/answers.py): served again only while they are right.

Each test first makes sure the answer in question is held (`answers.holds`), so that what
follows is answered from the encoded cache, not by a fresh lookup.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.http.app import create_app

OFREP = "/ofrep/v1/evaluate/flags/{}"


async def rest(client, headers, org, flag):
    return await client.get(f"/v1/orgs/{org}/flags/{flag}", headers=headers)


async def seed(client, headers, org, flag):
    return await client.get(f"/{org}/{flag}", headers=headers)


async def ofrep(client, headers, org, flag):
    return await client.post(OFREP.format(flag), json={"context": {"targetingKey": org}}, headers=headers)


KINDS = {"value": [rest, seed], "ofrep": [ofrep]}


def value_of(response: httpx.Response):
    assert response.status_code == 200, response.text
    return response.json()["value"]


async def held_value(app, client, headers, org, flag):
    """Every kind of lookup answers the same value, from the encoded cache the second time."""
    seen = set()
    for kind, askers in KINDS.items():
        for ask in askers:
            first = value_of(await ask(client, headers, org, flag))
            # The change feed may still bring this instance's own recent changes back, and
            # each one it applies makes earlier answers void: ask until one is held.
            for _ in range(100):
                if app.state.answers.holds(kind, org, flag):
                    break
                await asyncio.sleep(0.05)
                first = value_of(await ask(client, headers, org, flag))
            assert app.state.answers.holds(kind, org, flag)
            assert value_of(await ask(client, headers, org, flag)) == first
            seen.add(json.dumps(first))
    assert len(seen) == 1, seen
    return json.loads(seen.pop())


async def test_a_write_here_is_seen_by_the_next_lookup(app, client, tokens, chain6):
    root, leaf = chain6[0], chain6[-1]
    reader, writer = tokens.reader(), tokens.writer()
    assert await held_value(app, client, reader, leaf, "retention-days") == 30
    assert (
        await client.put(f"/v1/orgs/{root}/flags/retention-days", json={"value": 90}, headers=writer)
    ).status_code == 200
    assert not app.state.answers.holds("value", leaf, "retention-days")
    assert await held_value(app, client, reader, leaf, "retention-days") == 90
    # The seed's toggle, then a clear: each seen by the lookup right after it.
    assert (await client.post(f"/{leaf}/retention-days/7", headers=writer)).status_code == 200
    assert await held_value(app, client, reader, leaf, "retention-days") == 7
    assert (await client.delete(f"/v1/orgs/{leaf}/flags/retention-days", headers=writer)).status_code == 204
    assert await held_value(app, client, reader, leaf, "retention-days") == 90


async def test_a_move_is_seen_by_the_next_lookup(app, client, tokens, uid, make_orgs):
    a, b, child = uid("a"), uid("b"), uid("child")
    await make_orgs([(a, None), (b, None), (child, a)])
    await client.put(f"/v1/orgs/{b}/flags/theme", json={"value": "dark"}, headers=tokens.writer())
    assert await held_value(app, client, tokens.reader(), child, "theme") == "light"
    assert (await client.patch(f"/v1/orgs/{child}", json={"parent": b}, headers=tokens.admin())).status_code == 200
    assert await held_value(app, client, tokens.reader(), child, "theme") == "dark"
    moved = (await rest(client, tokens.reader(), child, "theme")).json()
    assert moved["source_org"] == b


@pytest.mark.parametrize("ask", [rest, seed, ofrep])
async def test_a_token_outside_the_scope_never_gets_a_held_answer(app, client, tokens, uid, make_orgs, ask):
    tenant, leaf, other = uid("tenant"), uid("leaf"), uid("other")
    await make_orgs([(tenant, None), (leaf, tenant), (other, None)])
    assert await held_value(app, client, tokens.reader(tenant), leaf, "beta") is False
    for outsider in (tokens.reader(other), tokens.reader(uid("nowhere"))):
        refused = await ask(client, outsider, leaf, "beta")
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/forbidden")
    # Scoped to the leaf: the leaf's answer, but not its parent's, although that is held too.
    assert await held_value(app, client, tokens.reader(tenant), tenant, "beta") is False
    assert value_of(await ask(client, tokens.reader(leaf), leaf, "beta")) is False
    assert (await ask(client, tokens.reader(leaf), tenant, "beta")).status_code == 403
    # Authentication and the role come first, held answer or not.
    assert (await ask(client, {}, leaf, "beta")).status_code == 401
    assert (await ask(client, tokens.headers(None, tenant), leaf, "beta")).status_code == 403


@asynccontextmanager
async def instance(settings):
    app = create_app(settings)
    async with (
        LifespanManager(app, startup_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://answers") as http,
    ):
        yield app, http


async def test_a_catalog_reload_is_seen_by_the_next_lookup(settings_for, tokens, uid, make_orgs):
    settings = settings_for()
    org = uid("org")
    await make_orgs([(org, None)])
    async with instance(settings) as (app, http):
        assert await held_value(app, http, tokens.reader(), org, "retention-days") == 30
        catalog = json.loads(settings.flags_file.read_text())
        catalog["flags"]["retention-days"]["default"] = 45
        settings.flags_file.write_text(json.dumps(catalog))
        assert (await http.post("/v1/catalog/reload", headers=tokens.admin())).status_code == 200
        assert await held_value(app, http, tokens.reader(), org, "retention-days") == 45


async def test_held_answers_still_count_against_rate_limits(settings_for, tokens, uid, make_orgs):
    org = uid("org")
    await make_orgs([(org, None)])
    async with instance(settings_for(rate_limit_token="3/hour")) as (app, http):
        reader = tokens.reader(org, sub=uid("reader"))
        for _ in range(3):
            assert value_of(await ofrep(http, reader, org, "beta")) is False
        assert app.state.answers.holds("ofrep", org, "beta")
        refused = await ofrep(http, reader, org, "beta")
        assert refused.status_code == 429 and "retry-after" in refused.headers


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/orgs/acme/flags/beta"),
        ("GET", "/v1/orgs/acme/flags"),
        ("GET", "/acme/beta"),
        ("POST", "/ofrep/v1/evaluate/flags/beta"),
        ("POST", "/ofrep/v1/evaluate/flags"),
        # Earlier routes that the seed's /{org}/{flag} would also match: theirs, as the router decides.
        ("GET", "/v1/flags"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/changes"),
        ("GET", "/v1/snapshot"),
        ("GET", "/v1/orgs"),
        ("GET", "/v1/orgs/acme"),
        ("GET", "/v1/flags/beta"),
        ("GET", "/v1/orgs/acme/flags/beta/explain"),
        ("PUT", "/v1/orgs/acme/flags/beta"),
        ("HEAD", "/acme/beta"),
        ("POST", "/acme/beta/true"),
        ("GET", "/healthz"),
        ("GET", "/a/b/c"),
        ("GET", "/acme/beta/"),
    ],
)
async def test_hot_routes_go_where_the_router_sends_them(app, method, path):
    """The direct dispatch of lookups (app/http/hot.py) picks the route Starlette's router would pick."""
    from starlette.routing import Match

    from app.http.hot import HotRoutes

    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    router_choice = next((route for route in app.routes if route.matches(scope)[0] is Match.FULL), None)
    hot = app.middleware_stack
    while not isinstance(hot, HotRoutes):
        hot = hot.app
    found = hot.route_for(scope)
    if found is None:
        assert (
            router_choice is None
            or router_choice.endpoint.__name__ not in {"get_value", "list_values", "evaluate_flag", "evaluate_flags"}
            or method == "HEAD"
        )
    else:
        assert found[0] is router_choice
