"""Seals through the paths issue 13 did not write itself: the group commit of value writes
(app/services/group_commit.py), the write-through cache and its last-known values, the
batched cold reads (cypher/lookup_chains.cypher) and the encoded answers of the hot path."""

from __future__ import annotations

import pytest

from app.domain.access import ALL_ORGS, Principal, Role
from app.domain.resolution import Sealed
from app.errors import Problem
from app.services.values import Written, _WriteRequest


@pytest.fixture
async def tree(uid, make_orgs) -> dict[str, str]:
    """root -> a -> a1"""
    names = {name: uid(name) for name in ("root", "a", "a1")}
    await make_orgs([(names["root"], None), (names["a"], names["root"]), (names["a1"], names["a"])])
    return names


async def _effective(client, tokens, org: str, flag: str) -> tuple:
    response = await client.get(f"/v1/orgs/{org}/flags/{flag}", headers=tokens.reader())
    assert response.status_code == 200, response.text
    body = response.json()
    return body["value"], body["reason"], body["source_org"]


async def test_a_seal_is_written_through_to_this_instances_cache(app, client, tokens, tree):
    cache = app.state.services.cache
    assert (await _effective(client, tokens, tree["a1"], "dark-mode"))[1] == "default"  # chain now cached
    sealed = await client.put(
        f"/v1/orgs/{tree['root']}/flags/dark-mode", json={"value": True, "sealed": True}, headers=tokens.admin()
    )
    assert sealed.status_code == 200, sealed.text
    # The committed value is the entry, seal and all (also what an outage would serve as last-known).
    assert cache.flag_chain(tree["root"], "dark-mode", stale_ok=True) == [(tree["root"], Sealed(True))]
    assert await _effective(client, tokens, tree["a1"], "dark-mode") == (True, "sealed", tree["root"])
    unsealed = await client.put(
        f"/v1/orgs/{tree['root']}/flags/dark-mode", json={"value": True, "sealed": False}, headers=tokens.admin()
    )
    assert unsealed.status_code == 200, unsealed.text
    assert cache.flag_chain(tree["root"], "dark-mode", stale_ok=True) == [(tree["root"], True)]
    assert await _effective(client, tokens, tree["a1"], "dark-mode") == (True, "inherited", tree["root"])


async def test_batched_cold_reads_carry_the_seal(app, client, tokens, tree):
    services = app.state.services
    own = await client.put(f"/v1/orgs/{tree['a1']}/flags/dark-mode", json={"value": False}, headers=tokens.writer())
    assert own.status_code == 200
    sealed = await client.put(
        f"/v1/orgs/{tree['a']}/flags/dark-mode", json={"value": True, "sealed": True}, headers=tokens.admin()
    )
    assert sealed.status_code == 200, sealed.text
    services.cache.clear()  # every read below is a miss, read by lookup_chains
    assert await _effective(client, tokens, tree["a1"], "dark-mode") == (True, "sealed", tree["a"])
    assert services.cache.flag_chain(tree["a1"], "dark-mode", stale_ok=True) == [
        (tree["a1"], False),
        (tree["a"], Sealed(True)),
        (tree["root"], None),
    ]
    # Every flag at once (lookup_chains with no flag): the seal is kept beside the org's other values.
    services.cache.clear()
    listed = await client.get(f"/v1/orgs/{tree['a1']}/flags", headers=tokens.reader())
    assert listed.status_code == 200, listed.text
    assert listed.json()["flags"]["dark-mode"] == {"value": True, "reason": "sealed", "source_org": tree["a"]}
    chain = services.cache.flags_chain(tree["a1"], stale_ok=True)
    assert [values.get("dark-mode") for _, values in chain] == [False, Sealed(True), None]
    # And from the cache filled by those reads, with OFREP saying so.
    ofrep = await client.post(
        "/ofrep/v1/evaluate/flags/dark-mode", json={"context": {"targetingKey": tree["a1"]}}, headers=tokens.reader()
    )
    assert ofrep.status_code == 200, ofrep.text
    assert ofrep.json()["metadata"] == {"source_org": tree["a"], "depth": 1, "sealed": True}


async def test_the_encoded_answer_follows_a_seal(client, tokens, tree):
    set_above = await client.put(
        f"/v1/orgs/{tree['root']}/flags/dark-mode", json={"value": True}, headers=tokens.admin()
    )
    assert set_above.status_code == 200
    own = await client.put(f"/v1/orgs/{tree['a1']}/flags/dark-mode", json={"value": False}, headers=tokens.writer())
    assert own.status_code == 200
    for _ in range(2):  # the second answer is the encoded one
        assert await _effective(client, tokens, tree["a1"], "dark-mode") == (False, "own", tree["a1"])
    sealed = await client.put(
        f"/v1/orgs/{tree['root']}/flags/dark-mode", json={"value": True, "sealed": True}, headers=tokens.admin()
    )
    assert sealed.status_code == 200
    for _ in range(2):
        assert await _effective(client, tokens, tree["a1"], "dark-mode") == (True, "sealed", tree["root"])


async def test_a_seal_earlier_in_a_group_commit_refuses_the_writes_below_it_in_the_same_batch(
    app, client, tokens, tree
):
    values = app.state.services.values
    flag = app.state.services.catalog.current.get("dark-mode")
    admin = Principal("test-admin", Role.admin, frozenset({ALL_ORGS}))
    writer = Principal("test-writer", Role.writer, frozenset({ALL_ORGS}))
    outcomes = await values._write_batch(
        [
            _WriteRequest(writer, tree["a1"], "dark-mode", flag, False),
            _WriteRequest(admin, tree["a"], "dark-mode", flag, True, True),
            _WriteRequest(writer, tree["a1"], "dark-mode", flag, True),
            _WriteRequest(admin, tree["a"], "dark-mode", flag, False),  # keeps the seal: sealed None
            _WriteRequest(writer, tree["a"], "dark-mode", flag, True),  # a writer on a sealed value
        ]
    )
    assert isinstance(outcomes[0], Written) and outcomes[0].changed and not outcomes[0].sealed
    assert isinstance(outcomes[1], Written) and outcomes[1].changed and outcomes[1].sealed
    assert isinstance(outcomes[2], Problem) and outcomes[2].slug == "sealed"
    assert isinstance(outcomes[3], Written) and outcomes[3].sealed and outcomes[3].previous is True
    assert isinstance(outcomes[4], Problem) and outcomes[4].slug == "forbidden"
    assert await _effective(client, tokens, tree["a1"], "dark-mode") == (False, "sealed", tree["a"])
    explain = await client.get(f"/v1/orgs/{tree['a1']}/flags/dark-mode/explain", headers=tokens.reader())
    assert [(entry["value"], entry["active"], entry["sealed"]) for entry in explain.json()["chain"]] == [
        (False, False, False),
        (False, True, True),
        (None, False, False),
    ]
    audit = await client.get("/v1/audit", params={"org": tree["a"]}, headers=tokens.admin())
    assert audit.status_code == 200, audit.text
    events = [(event["new"], event.get("sealed")) for event in audit.json()["events"] if event["flag"] == "dark-mode"]
    assert events == [(False, True), (True, True)]  # newest first
