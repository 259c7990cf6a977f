"""Sealed values (docs/api.md, "Safe changes"): an admin's value that nobody below can override."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.http.app import create_app


@pytest.fixture
async def tree(uid, make_orgs) -> dict[str, str]:
    """root -> a -> a1, a -> a2 -> a21, root -> b; a2 sets dark-mode false itself."""
    names = {name: uid(name) for name in ("root", "a", "a1", "a2", "a21", "b")}
    parent = {"root": None, "a": "root", "a1": "a", "a2": "a", "a21": "a2", "b": "root"}
    await make_orgs([(names[name], names[above] if above else None) for name, above in parent.items()])
    return names


def _put(client, org, flag, body, headers, dry_run=False):
    return client.put(
        f"/v1/orgs/{org}/flags/{flag}", json=body, headers=headers, params={"dry_run": "true"} if dry_run else None
    )


async def _get(client, tokens, org, flag):
    response = await client.get(f"/v1/orgs/{org}/flags/{flag}", headers=tokens.reader())
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_seal_wins_below_and_writes_below_answer_409(client, tokens, tree):
    assert (await _put(client, tree["a2"], "dark-mode", {"value": False}, tokens.writer())).status_code == 200
    sealed = await _put(client, tree["root"], "dark-mode", {"value": True, "sealed": True}, tokens.admin())
    assert sealed.status_code == 200, sealed.text
    assert sealed.json() == {"org": tree["root"], "flag": "dark-mode", "value": True, "previous": None}
    for name in ("root", "a", "a2", "a21", "b"):
        body = await _get(client, tokens, tree[name], "dark-mode")
        assert (body["value"], body["reason"], body["source_org"]) == (True, "sealed", tree["root"]), name
    # Below the seal, nobody may set or clear the flag, admins included; other flags are free.
    for headers in (tokens.writer(), tokens.admin()):
        refused = await _put(client, tree["a21"], "dark-mode", {"value": False}, headers)
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"].endswith("/sealed") and tree["root"] in refused.json()["detail"]
        cleared = await client.delete(f"/v1/orgs/{tree['a2']}/flags/dark-mode", headers=headers)
        assert cleared.status_code == 409
        seed = await client.post(f"/{tree['a']}/dark-mode/false", headers=headers)
        assert seed.status_code == 409
    assert (await _put(client, tree["a21"], "beta", {"value": True}, tokens.writer())).status_code == 200
    # The value set below before the seal is kept, inactive; explain says so.
    explain = (await client.get(f"/v1/orgs/{tree['a21']}/flags/dark-mode/explain", headers=tokens.reader())).json()
    assert (explain["value"], explain["reason"], explain["source_org"]) == (True, "sealed", tree["root"])
    assert explain["chain"] == [
        {"org": tree["a21"], "value": None, "active": False, "sealed": False},
        {"org": tree["a2"], "value": False, "active": False, "sealed": False},
        {"org": tree["a"], "value": None, "active": False, "sealed": False},
        {"org": tree["root"], "value": True, "active": True, "sealed": True},
    ]
    # Unsealed, the value below is in force again.
    unsealed = await _put(client, tree["root"], "dark-mode", {"value": True, "sealed": False}, tokens.admin())
    assert unsealed.status_code == 200, unsealed.text
    body = await _get(client, tokens, tree["a21"], "dark-mode")
    assert (body["value"], body["reason"], body["source_org"]) == (False, "inherited", tree["a2"])
    assert (await _get(client, tokens, tree["a1"], "dark-mode"))["reason"] == "inherited"


async def test_only_an_admin_may_seal_unseal_or_touch_a_sealed_value(client, tokens, tree):
    writer = tokens.writer()
    assert (await _put(client, tree["a"], "theme", {"value": "dark", "sealed": True}, writer)).status_code == 403
    # Refused for the role before the org is even looked up.
    assert (
        await _put(client, f"{tree['a']}-none", "theme", {"value": "dark", "sealed": True}, writer)
    ).status_code == 403
    assert (
        await _put(client, tree["a"], "theme", {"value": "dark", "sealed": True}, tokens.admin())
    ).status_code == 200
    for attempt in (
        _put(client, tree["a"], "theme", {"value": "light"}, writer),
        _put(client, tree["a"], "theme", {"value": "dark", "sealed": False}, writer),
        client.delete(f"/v1/orgs/{tree['a']}/flags/theme", headers=writer),
        client.post(f"/{tree['a']}/theme/light", headers=writer),
    ):
        response = await attempt
        assert response.status_code == 403, response.text
    # An admin's PUT without "sealed" keeps the seal; a clear lifts it.
    assert (await _put(client, tree["a"], "theme", {"value": "light"}, tokens.admin())).status_code == 200
    assert (await _get(client, tokens, tree["a21"], "theme"))["reason"] == "sealed"
    assert (await client.delete(f"/v1/orgs/{tree['a']}/flags/theme", headers=tokens.admin())).status_code == 204
    assert (await _get(client, tokens, tree["a21"], "theme"))["reason"] == "default"
    assert (await _put(client, tree["a21"], "theme", {"value": "dark"}, writer)).status_code == 200
    bad = await _put(client, tree["a"], "theme", {"value": "dark", "sealed": "yes"}, tokens.admin())
    assert bad.status_code == 400


async def test_the_seal_nearest_the_root_wins(client, tokens, tree):
    assert (
        await _put(client, tree["a2"], "theme", {"value": "light", "sealed": True}, tokens.admin())
    ).status_code == 200
    assert (
        await _put(client, tree["root"], "theme", {"value": "dark", "sealed": True}, tokens.admin())
    ).status_code == 200
    body = await _get(client, tokens, tree["a21"], "theme")
    assert (body["value"], body["source_org"]) == ("dark", tree["root"])
    # The seal below, now under another, cannot be changed even by an admin.
    refused = await _put(client, tree["a2"], "theme", {"value": "dark", "sealed": False}, tokens.admin())
    assert refused.status_code == 409


async def test_seals_and_unseals_are_audited(client, tokens, tree):
    admin = tokens.admin()
    await _put(client, tree["b"], "beta", {"value": True}, tokens.writer())
    await _put(client, tree["b"], "beta", {"value": True, "sealed": True}, admin)  # same value, now sealed
    await _put(client, tree["b"], "beta", {"value": True, "sealed": False}, admin)
    response = await client.get("/v1/audit", params={"org": tree["b"], "flag": "beta"}, headers=admin)
    events = response.json()["events"]
    assert [(e["action"], e["old"], e["new"], e.get("sealed")) for e in events] == [
        ("flag.set", True, True, False),
        ("flag.set", True, True, True),
        ("flag.set", None, True, None),
    ]
    changes = await client.get("/v1/changes", params={"after": events[-1]["seq"] - 1}, headers=admin)
    mine = [e for e in changes.json()["events"] if e["org"] == tree["b"]]
    assert [e.get("sealed") for e in mine] == [None, True, False]


async def test_dry_run_of_a_seal_counts_the_orgs_whose_value_changes(client, tokens, tree):
    admin = tokens.admin()
    await _put(client, tree["a2"], "dark-mode", {"value": False}, tokens.writer())
    # Default false everywhere: sealing false changes nobody; sealing true changes all six.
    nobody = await _put(client, tree["root"], "dark-mode", {"value": False, "sealed": True}, admin, dry_run=True)
    assert nobody.json()["affected"] == {"orgs": 0, "exact": True, "sample": []}
    everyone = await _put(client, tree["root"], "dark-mode", {"value": True, "sealed": True}, admin, dry_run=True)
    assert everyone.json()["affected"]["orgs"] == 6
    # a2 (and a21 below it) set true; sealing false on root changes exactly those two.
    await _put(client, tree["a2"], "dark-mode", {"value": True}, tokens.writer())
    two = await _put(client, tree["root"], "dark-mode", {"value": False, "sealed": True}, admin, dry_run=True)
    assert two.json()["affected"]["orgs"] == 2
    assert set(two.json()["affected"]["sample"]) == {tree["a2"], tree["a21"]}
    # Seal for real, then a dry run of the unseal: a2 and a21 get true back.
    assert (await _put(client, tree["root"], "dark-mode", {"value": False, "sealed": True}, admin)).status_code == 200
    unseal = await _put(client, tree["root"], "dark-mode", {"value": False, "sealed": False}, admin, dry_run=True)
    assert unseal.json()["affected"]["orgs"] == 2
    # A dry run of a write under the seal answers what the write answers.
    below = await _put(client, tree["a"], "dark-mode", {"value": True}, tokens.writer(), dry_run=True)
    assert below.status_code == 409
    writer_seal = await _put(client, tree["b"], "beta", {"value": True, "sealed": True}, tokens.writer(), dry_run=True)
    assert writer_seal.status_code == 403


async def test_ofrep_says_sealed_and_its_etag_follows_seal_and_unseal(client, tokens, tree):
    admin, reader = tokens.admin(), tokens.reader()
    await _put(client, tree["a"], "beta", {"value": True}, tokens.writer())
    context = {"context": {"targetingKey": tree["a21"]}}
    first = await client.post("/ofrep/v1/evaluate/flags", json=context, headers=reader)
    # Sealing the value already in force changes no value, yet the answer (metadata) and its ETag change.
    await _put(client, tree["a"], "beta", {"value": True, "sealed": True}, admin)
    sealed = await client.post(
        "/ofrep/v1/evaluate/flags", json=context, headers={**reader, "If-None-Match": first.headers["etag"]}
    )
    assert sealed.status_code == 200 and sealed.headers["etag"] != first.headers["etag"]
    beta = next(flag for flag in sealed.json()["flags"] if flag["key"] == "beta")
    assert beta == {
        "key": "beta",
        "value": True,
        "reason": "TARGETING_MATCH",
        "variant": "sealed",
        "metadata": {"source_org": tree["a"], "depth": 2, "sealed": True},
    }
    single = await client.post("/ofrep/v1/evaluate/flags/beta", json=context, headers=reader)
    assert single.json()["metadata"]["sealed"] is True
    await _put(client, tree["a"], "beta", {"value": True, "sealed": False}, admin)
    unsealed = await client.post(
        "/ofrep/v1/evaluate/flags", json=context, headers={**reader, "If-None-Match": sealed.headers["etag"]}
    )
    assert unsealed.status_code == 200 and unsealed.headers["etag"] == first.headers["etag"]


async def test_another_instance_follows_seals_through_the_change_feed(client, tokens, tree, settings_for):
    """Two instances over one Neo4j: a seal made on one is seen by the other (its cache follows the feed)."""
    second = create_app(settings_for())
    async with LifespanManager(second, startup_timeout=60):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://two.test") as other:

            async def reason() -> str:
                return (await _get(other, tokens, tree["a21"], "theme"))["reason"]

            async def until(expected: str) -> None:
                async with asyncio.timeout(30):
                    while await reason() != expected:
                        await asyncio.sleep(0.05)

            assert await reason() == "default"  # now cached on the second instance
            await _put(client, tree["a"], "theme", {"value": "dark", "sealed": True}, tokens.admin())
            await until("sealed")
            await _put(client, tree["a"], "theme", {"value": "dark", "sealed": False}, tokens.admin())
            await until("inherited")
