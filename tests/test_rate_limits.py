"""Rate limits per token and per tenant: 429 with Retry-After, others unaffected, reloadable.

Each test runs its own app instance (its own in-memory counters) over the shared Neo4j,
with limits large enough that nothing in the test outruns a window by accident: the
window of a limit "N/hour" cannot roll over while a test runs.
"""

from __future__ import annotations

import json
import os
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager

from app.http.app import create_app
from app.http.rate_limits import RateLimits, Rules, parse_limits

PROBLEM = "application/problem+json"


@asynccontextmanager
async def instance(settings):
    app = create_app(settings)
    async with (
        LifespanManager(app, startup_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://limited") as http,
    ):
        yield http


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith("/rate-limited")
    assert response.json()["status"] == 429
    assert int(response.headers["Retry-After"]) >= 1


async def test_a_token_over_its_limit_gets_429_and_another_token_does_not(settings_for, tokens, uid, make_orgs):
    org = uid("root")
    await make_orgs([(org, None)])
    async with instance(settings_for(rate_limit_token="3/hour")) as http:
        alice = tokens.reader(org, sub=uid("alice"))
        for _ in range(3):
            assert (await http.get(f"/v1/orgs/{org}/flags/beta", headers=alice)).status_code == 200
        refused = await http.get(f"/v1/orgs/{org}/flags/beta", headers=alice)
        assert_rate_limited(refused)
        assert "token" in refused.json()["detail"]
        bob = tokens.reader(org, sub=uid("bob"))
        assert (await http.get(f"/v1/orgs/{org}/flags/beta", headers=bob)).status_code == 200


async def test_the_limit_counts_the_sub_not_the_token_string(settings_for, tokens, uid, make_orgs):
    org = uid("root")
    await make_orgs([(org, None)])
    sub = uid("carol")
    async with instance(settings_for(rate_limit_token="2/hour")) as http:
        for _ in range(2):
            fresh = {"Authorization": f"Bearer {tokens.mint('reader', org, sub=sub, ttl=600 + _)}"}
            assert (await http.get(f"/v1/orgs/{org}", headers=fresh)).status_code == 200
        another = {"Authorization": f"Bearer {tokens.mint('reader', org, sub=sub, ttl=900)}"}
        assert_rate_limited(await http.get(f"/v1/orgs/{org}", headers=another))


async def test_a_tenant_over_its_limit_gets_429_and_another_tenant_does_not(settings_for, tokens, uid, make_orgs):
    acme, globex = uid("acme"), uid("globex")
    await make_orgs([(acme, None), (globex, None)])
    async with instance(settings_for(rate_limit_tenant="4/hour")) as http:
        # Two actors of one tenant share its budget.
        first, second = tokens.reader(acme, sub=uid("a1")), tokens.writer(acme, sub=uid("a2"))
        for headers in (first, second, first, second):
            assert (await http.get(f"/v1/orgs/{acme}/flags", headers=headers)).status_code == 200
        refused = await http.get(f"/v1/orgs/{acme}/flags", headers=first)
        assert_rate_limited(refused)
        assert acme in refused.json()["detail"]
        # Refused before the handler ran: nothing is written.
        put = await http.put(f"/v1/orgs/{acme}/flags/beta", json={"value": True}, headers=second)
        assert_rate_limited(put)
        other = tokens.reader(globex, sub=uid("g1"))
        assert (await http.get(f"/v1/orgs/{globex}/flags/beta", headers=other)).status_code == 200
        assert (await http.get(f"/v1/orgs/{acme}/flags/beta", headers=tokens.reader())).status_code == 200
    # The refused write did not happen.
    async with instance(settings_for()) as http:
        value = await http.get(f"/v1/orgs/{acme}/flags/beta", headers=tokens.reader())
        assert value.json()["reason"] == "default"


async def test_without_limits_nothing_is_refused(settings_for, tokens, uid, make_orgs):
    org = uid("root")
    await make_orgs([(org, None)])
    async with instance(settings_for()) as http:
        headers = tokens.reader(org)
        statuses = {(await http.get(f"/v1/orgs/{org}", headers=headers)).status_code for _ in range(30)}
        assert statuses == {200}


async def test_a_changed_limits_file_applies_without_a_restart(settings_for, tokens, uid, make_orgs, tmp_path):
    org = uid("root")
    await make_orgs([(org, None)])
    limits_file = tmp_path / "limits.json"
    limits_file.write_text(json.dumps({"token": "2/hour"}))
    settings = settings_for(rate_limits_file=limits_file, rate_limits_reload_interval=0)
    async with instance(settings) as http:
        headers = tokens.reader(org, sub=uid("dave"))
        for _ in range(2):
            assert (await http.get(f"/v1/orgs/{org}", headers=headers)).status_code == 200
        assert_rate_limited(await http.get(f"/v1/orgs/{org}", headers=headers))

        limits_file.write_text(json.dumps({"token": "5/hour", "tenant": None}))
        # A new limit counts afresh: five more for the same token.
        for _ in range(5):
            assert (await http.get(f"/v1/orgs/{org}", headers=headers)).status_code == 200
        assert_rate_limited(await http.get(f"/v1/orgs/{org}", headers=headers))

        # A broken file is refused whole; the limits in force stay.
        limits_file.write_text('{"token": "lots"}')
        assert_rate_limited(await http.get(f"/v1/orgs/{org}", headers=headers))

        # Off: an empty limit.
        limits_file.write_text(json.dumps({"token": ""}))
        assert (await http.get(f"/v1/orgs/{org}", headers=headers)).status_code == 200


async def test_the_file_overrides_one_tenant_and_keeps_the_environment_for_the_rest(
    settings_for, tokens, uid, make_orgs, tmp_path
):
    vip, plain = uid("vip"), uid("plain")
    await make_orgs([(vip, None), (plain, None)])
    limits_file = tmp_path / "limits.json"
    limits_file.write_text(json.dumps({"tenants": {vip: "3/hour"}}))
    settings = settings_for(rate_limit_tenant="1/hour", rate_limits_file=limits_file, rate_limits_reload_interval=0)
    async with instance(settings) as http:
        for _ in range(3):
            assert (await http.get(f"/v1/orgs/{vip}", headers=tokens.reader(vip))).status_code == 200
        assert_rate_limited(await http.get(f"/v1/orgs/{vip}", headers=tokens.reader(vip)))
        assert (await http.get(f"/v1/orgs/{plain}", headers=tokens.reader(plain))).status_code == 200
        assert_rate_limited(await http.get(f"/v1/orgs/{plain}", headers=tokens.reader(plain)))
        # Removing the file returns to the environment's limits (a changed limit counts afresh).
        os.remove(limits_file)
        assert (await http.get(f"/v1/orgs/{vip}", headers=tokens.reader(vip))).status_code == 200
        assert_rate_limited(await http.get(f"/v1/orgs/{vip}", headers=tokens.reader(vip)))


def test_limit_strings_are_parsed_or_refused():
    assert [str(item) for item in parse_limits("10/second;500/minute")] == ["10 per 1 second", "500 per 1 minute"]
    assert parse_limits("") == () and parse_limits(None) == ()
    for bad in ({"token": "often"}, {"token": 5}, {"tenants": ["acme"]}, {"tokens": "1/second"}, ["1/second"]):
        try:
            Rules().with_file(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")
    try:
        RateLimits("10/fortnight", "")
    except ValueError:
        pass
    else:
        raise AssertionError("accepted an unknown granularity")
