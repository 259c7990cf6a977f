"""Rollouts along the tree (docs/api.md, "Rollouts along the tree"; docs/rollouts.md)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from app.domain import rollouts
from app.domain.catalog import FlagDefinition
from app.domain.resolution import Link, resolve
from app.domain.rollouts import Rollout
from app.domain.value_codec import from_graph, to_graph
from app.errors import Problem

# The contract's test vectors (docs/rollouts.md): flag, unit id, bucket. Cross-checked by hand
# with `printf 'new-checkout/acme' | sha256sum`: the first 16 hex digits, as an integer, mod 10,000, / 100.
VECTORS = [
    ("new-checkout", "acme", 54.32),
    ("new-checkout", "acme-eu", 86.67),
    ("theme", "globex", 84.12),
    ("dark-mode", "customer-42", 11.58),
    ("new-checkout", "initech", 72.28),
]


@pytest.mark.parametrize(("flag", "unit", "expected"), VECTORS)
def test_bucket_vectors(flag, unit, expected):
    assert rollouts.bucket(flag, unit) == expected
    # The definition, spelt out independently of the module.
    first8 = hashlib.sha256(f"{flag}/{unit}".encode()).digest()[:8]
    assert int.from_bytes(first8, "big") % 10_000 / 100 == expected


def test_buckets_spread_evenly_and_a_higher_percent_only_adds_units():
    """The split's two promises, on the bucket function alone, over 100,000 unit ids: the share in a
    rollout is its percent (within half a point), and raising the percent keeps everyone who was in.
    (tests/test_openfeature_sdk.py checks the same through the SDK, unit by unit, over 10,000.)"""
    units = [f"customer-{n}" for n in range(100_000)]
    buckets = [rollouts.bucket("new-checkout", unit) for unit in units]
    inside_before: set[int] = set()
    for percent in (0.01, 1, 20, 35.5, 50, 99.99):
        inside = {n for n, bucket in enumerate(buckets) if bucket < percent}
        assert abs(100 * len(inside) / len(units) - percent) <= 0.5, (percent, len(inside))
        assert inside_before <= inside
        inside_before = inside
    assert all(0 <= bucket < 100 and round(bucket, 2) == bucket for bucket in buckets)


@pytest.mark.parametrize(
    "document",
    [
        {"percent": 100.01, "value": True},
        {"percent": -0.01, "value": True},
        {"percent": 12.345, "value": True},
        {"percent": "20", "value": True},
        {"percent": True, "value": True},
        {"percent": 20, "value": True, "unit_depth": 0},
        {"percent": 20, "value": True, "unit_depth": 1.5},
        {"percent": 20},
        {"value": True},
        {"percent": 20, "value": True, "extra": 1},
        {"percent": 20, "value": None},
        [20, True],
    ],
)
def test_malformed_rollouts_are_invalid_values(document):
    with pytest.raises(Problem) as refused:
        rollouts.parse(document)
    assert refused.value.slug == "invalid-value"


def test_well_formed_rollouts():
    assert rollouts.parse({"percent": 0, "value": 1}) == Rollout.of(0.0, 1, 1)
    assert rollouts.parse({"percent": 100, "value": "x", "unit_depth": 3}) == Rollout.of(100.0, 3, "x")
    assert rollouts.parse({"percent": 12.34, "value": True}).percent == 12.34


def test_resolution_uses_the_unit_at_the_setters_depth_plus_unit_depth():
    flag = FlagDefinition(name="dark-mode", type="boolean", default=False)
    everyone = flag.to_graph(flag.check(Rollout.of(100, 2, True)))
    # Chain: org first. The setter is 3 levels up; unit_depth 2: the unit is 1 level above the org.
    chain = [Link("o", None), Link("u", None), Link("m", None), Link("s", everyone), Link("r", None)]
    found = resolve(flag, chain)
    assert (found.value, found.reason, found.source_org, found.unit) == (True, "split", "s", "u")
    assert found.bucket == rollouts.bucket("dark-mode", "u")
    # The org one level below the setter is above the unit depth: as if nothing were set there,
    # so the value above the setter applies.
    assert resolve(flag, [Link("m", None), Link("s", everyone), Link("r", False)]).reason == "inherited"
    assert resolve(flag, [Link("m", None), Link("s", everyone), Link("r", False)]).source_org == "r"
    # Nobody is in a 0% rollout.
    nobody = flag.to_graph(flag.check(Rollout.of(0, 1, True)))
    assert resolve(flag, [Link("u", None), Link("s", nobody)]).reason == "default"


def test_an_object_value_may_not_take_a_rollouts_shape():
    flag = FlagDefinition(name="limits", type="object", default={})
    with pytest.raises(Problem):
        flag.check({"rollout": {"percent": 1, "unit_depth": 1, "value": {}}})
    assert flag.check({"rollout": {"percent": 1}}) == {"rollout": {"percent": 1}}


def test_a_region_applies_the_change_feeds_rollout_as_the_graph_keeps_it():
    rollout = Rollout.of(20, 1, True)
    public = {"rollout": {"percent": 20.0, "unit_depth": 1, "value": True}}
    # A region's copy has no flag types: the value's shape decides (app/domain/value_codec.py).
    assert to_graph(public) == rollouts.encode(rollout)
    assert from_graph(rollouts.encode(rollout), "boolean") == public
    assert to_graph({"seats": 1}) == '{"seats":1}'


# --- through the API, against Neo4j ------------------------------------------------------


@pytest.fixture
async def forest(uid, make_orgs) -> dict[str, list[str]]:
    """root -> 24 customers -> 2 users each."""
    root = uid("root")
    customers = [uid(f"c{i}") for i in range(24)]
    users = {customer: [f"{customer}-u{j}" for j in range(2)] for customer in customers}
    await make_orgs([(root, None)] + [(c, root) for c in customers] + [(u, c) for c in customers for u in users[c]])
    return {"root": [root], "customers": customers, **users}


def _rollout(percent, value=True, unit_depth=1) -> dict:
    return {"rollout": {"percent": percent, "value": value, "unit_depth": unit_depth}}


async def _get(client, tokens, org, flag="dark-mode") -> dict:
    response = await client.get(f"/v1/orgs/{org}/flags/{flag}", headers=tokens.reader())
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_rollout_switches_whole_customers_together(client, tokens, forest):
    root = forest["root"][0]
    put = await client.put(f"/v1/orgs/{root}/flags/dark-mode", json=_rollout(50), headers=tokens.writer())
    assert put.status_code == 200, put.text
    assert put.json() == {
        "org": root,
        "flag": "dark-mode",
        "previous": None,
        "value": {"rollout": {"percent": 50.0, "unit_depth": 1, "value": True}},
    }
    # The root is above the unit depth: as if nothing were set.
    assert (await _get(client, tokens, root))["reason"] == "default"
    inside = 0
    for customer in forest["customers"]:
        expected_in = rollouts.bucket("dark-mode", customer) < 50
        inside += expected_in
        for org in [customer, *forest[customer]]:
            body = await _get(client, tokens, org)
            if expected_in:
                assert body == {
                    "org": org,
                    "flag": "dark-mode",
                    "value": True,
                    "reason": "split",
                    "source_org": root,
                    "unit": customer,
                }
            else:
                assert (body["value"], body["reason"]) == (False, "default")
    assert 0 < inside < len(forest["customers"])  # both sides exercised


async def test_a_nearer_value_wins_and_values_above_still_apply(client, tokens, forest):
    root, customer = forest["root"][0], next(c for c in forest["customers"] if rollouts.bucket("theme", c) < 100)
    assert (
        await client.put(f"/v1/orgs/{root}/flags/theme", json={"value": "dark"}, headers=tokens.writer())
    ).status_code == 200
    out = next(c for c in forest["customers"] if rollouts.bucket("theme", c) >= 30)
    user = forest[customer][0]
    # A rollout on a customer, by user: its users split; the customer itself keeps the root's value.
    put = await client.put(f"/v1/orgs/{customer}/flags/theme", json=_rollout(100, "light"), headers=tokens.writer())
    assert put.status_code == 200, put.text
    assert (await _get(client, tokens, user, "theme"))["reason"] == "split"
    assert (await _get(client, tokens, customer, "theme"))["value"] == "dark"
    assert (
        await client.put(f"/v1/orgs/{user}/flags/theme", json={"value": "dark"}, headers=tokens.writer())
    ).status_code == 200
    assert (await _get(client, tokens, user, "theme"))["reason"] == "own"
    # A rollout on the root that leaves `out` out: `out` still gets nothing but the default.
    assert (
        await client.put(f"/v1/orgs/{root}/flags/theme", json=_rollout(30, "dark"), headers=tokens.writer())
    ).status_code == 200
    assert (await _get(client, tokens, out, "theme"))["reason"] == "default"


async def test_explain_shows_the_unit_and_its_bucket(client, tokens, forest):
    root = forest["root"][0]
    customer = next(c for c in forest["customers"] if rollouts.bucket("dark-mode", c) < 50)
    user = forest[customer][1]
    await client.put(f"/v1/orgs/{root}/flags/dark-mode", json=_rollout(50), headers=tokens.writer())
    explained = (await client.get(f"/v1/orgs/{user}/flags/dark-mode/explain", headers=tokens.reader())).json()
    assert (explained["reason"], explained["unit"], explained["bucket"]) == (
        "split",
        customer,
        rollouts.bucket("dark-mode", customer),
    )
    setter = explained["chain"][-1]
    assert setter["org"] == root
    assert setter["value"] == {"rollout": {"percent": 50.0, "unit_depth": 1, "value": True}}
    assert (setter["unit"], setter["bucket"]) == (customer, rollouts.bucket("dark-mode", customer))
    at_root = (await client.get(f"/v1/orgs/{root}/flags/dark-mode/explain", headers=tokens.reader())).json()
    assert (at_root["reason"], at_root["chain"][0]["unit"], at_root["chain"][0]["bucket"]) == ("default", None, None)


async def test_ofrep_answers_split_with_the_unit(client, tokens, forest):
    root = forest["root"][0]
    customer = next(c for c in forest["customers"] if rollouts.bucket("dark-mode", c) < 50)
    await client.put(f"/v1/orgs/{root}/flags/dark-mode", json=_rollout(50), headers=tokens.writer())
    answer = await client.post(
        "/ofrep/v1/evaluate/flags/dark-mode",
        headers=tokens.reader(),
        json={"context": {"targetingKey": forest[customer][0]}},
    )
    assert answer.json() == {
        "key": "dark-mode",
        "value": True,
        "reason": "SPLIT",
        "variant": "split",
        "metadata": {"source_org": root, "depth": 2, "unit": customer},
    }


@pytest.mark.parametrize(
    "body",
    [
        _rollout(100.5),
        _rollout(-1),
        _rollout(33.333),
        _rollout(20, unit_depth=0),
        _rollout(20, value="yes"),
        # Both a value and a rollout: an unknown field beside the rollout, as any PUT's (400 invalid-body).
        {"rollout": {"percent": 20, "value": True}, "value": True},
    ],
)
async def test_bad_rollouts_are_refused_and_write_nothing(client, tokens, forest, body):
    root = forest["root"][0]
    response = await client.put(f"/v1/orgs/{root}/flags/dark-mode", json=body, headers=tokens.writer())
    assert response.status_code == (400 if "value" in body else 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    events = await client.get("/v1/audit", params={"org": root, "flag": "dark-mode"}, headers=tokens.admin())
    assert events.json()["events"] == []


async def test_a_rollout_cannot_be_sealed(client, tokens, forest):
    root = forest["root"][0]
    sealed = await client.put(
        f"/v1/orgs/{root}/flags/dark-mode", json={**_rollout(20), "sealed": True}, headers=tokens.admin()
    )
    assert sealed.status_code == 422, sealed.text
    # Nor may a rollout replace a sealed value that keeps its seal.
    assert (
        await client.put(
            f"/v1/orgs/{root}/flags/dark-mode", json={"value": True, "sealed": True}, headers=tokens.admin()
        )
    ).status_code == 200
    kept = await client.put(f"/v1/orgs/{root}/flags/dark-mode", json=_rollout(20), headers=tokens.admin())
    assert kept.status_code == 422, kept.text
    assert (await _get(client, tokens, root))["reason"] == "sealed"


async def test_audit_and_change_feed_record_the_rollout_as_one_value_and_delete_clears_it(client, tokens, forest):
    root = forest["root"][0]
    public = {"rollout": {"percent": 25.5, "unit_depth": 2, "value": True}}
    await client.put(f"/v1/orgs/{root}/flags/dark-mode", json=_rollout(25.5, unit_depth=2), headers=tokens.writer())
    again = await client.put(
        f"/v1/orgs/{root}/flags/dark-mode", json=_rollout(25.5, unit_depth=2), headers=tokens.writer()
    )
    assert again.json()["previous"] == public  # the same rollout again changes nothing
    assert (await client.delete(f"/v1/orgs/{root}/flags/dark-mode", headers=tokens.writer())).status_code == 204
    events = (await client.get("/v1/audit", params={"org": root, "flag": "dark-mode"}, headers=tokens.admin())).json()[
        "events"
    ]
    assert [(e["action"], e["old"], e["new"]) for e in events] == [
        ("flag.clear", public, None),
        ("flag.set", None, public),
    ]
    feed = (await client.get("/v1/changes", params={"after": events[-1]["seq"] - 1}, headers=tokens.admin())).json()
    assert feed["events"][0]["new"] == public
    user = forest[forest["customers"][0]][0]
    assert (await _get(client, tokens, user))["reason"] == "default"


async def _answers(client, tokens, orgs, flag="dark-mode") -> dict:
    return {org: (await _get(client, tokens, org, flag))["value"] for org in orgs}


@pytest.mark.parametrize(
    "steps",
    [
        # (body at the root before, body of the dry-run request)
        (None, _rollout(40)),
        ({"value": True}, _rollout(40, value=False)),
        (_rollout(40), _rollout(70)),
        (_rollout(40), None),
        (_rollout(40, unit_depth=2), {"value": False}),
    ],
)
async def test_dry_runs_count_exactly_the_orgs_whose_answer_changes(client, tokens, forest, steps):
    root = forest["root"][0]
    everyone = [root, *forest["customers"], *(u for c in forest["customers"] for u in forest[c])]
    # A customer that sets its own value shields its users, a rollout below shields only part.
    await client.put(
        f"/v1/orgs/{forest['customers'][0]}/flags/dark-mode", json={"value": False}, headers=tokens.writer()
    )
    await client.put(
        f"/v1/orgs/{forest['customers'][1]}/flags/dark-mode", json=_rollout(50, value=False), headers=tokens.writer()
    )
    before_body, change = steps
    if before_body is not None:
        assert (
            await client.put(f"/v1/orgs/{root}/flags/dark-mode", json=before_body, headers=tokens.writer())
        ).status_code == 200
    before = await _answers(client, tokens, everyone)
    path = f"/v1/orgs/{root}/flags/dark-mode"
    if change is None:
        rehearsed = await client.delete(path, params={"dry_run": "true"}, headers=tokens.writer())
    else:
        rehearsed = await client.put(path, json=change, params={"dry_run": "true"}, headers=tokens.writer())
    assert rehearsed.status_code == 200, rehearsed.text
    affected = rehearsed.json()["affected"]
    assert await _answers(client, tokens, everyone) == before  # nothing written
    if change is None:
        await client.delete(path, headers=tokens.writer())
    else:
        await client.put(path, json=change, headers=tokens.writer())
    after = await _answers(client, tokens, everyone)
    changed = {org for org in everyone if before[org] != after[org]}
    assert changed  # every case changes someone
    assert affected["exact"] is True
    assert affected["orgs"] == len(changed)
    assert set(affected["sample"]) <= changed


async def test_a_rollout_is_scheduled_like_a_value(client, tokens, forest):
    root = forest["root"][0]
    at = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat().replace("+00:00", "Z")
    taken = await client.put(
        f"/v1/orgs/{root}/flags/dark-mode", json={**_rollout(100), "at": at}, headers=tokens.writer()
    )
    assert taken.status_code == 202, taken.text
    assert taken.json()["value"] == {"rollout": {"percent": 100.0, "unit_depth": 1, "value": True}}
    customer = forest["customers"][0]
    async with asyncio.timeout(20):
        while (await _get(client, tokens, customer))["reason"] != "split":
            await asyncio.sleep(0.1)
    events = (await client.get("/v1/audit", params={"org": root, "flag": "dark-mode"}, headers=tokens.admin())).json()[
        "events"
    ]
    applied = [(e["new"], e.get("schedule")) for e in events if e["action"] == "flag.set"]
    assert applied == [(taken.json()["value"], taken.json()["schedule"])]


def test_offline_backups_write_a_rollout_as_a_one_element_string_array(tmp_path):
    from loaders.admin_csv import AdminCsvWriter

    # A string value holding ';' (neo4j-admin's array delimiter) must stay one element.
    flag = FlagDefinition(name="banner", type="string", default="")
    stored = flag.to_graph(flag.check(Rollout.of(5, 1, "a;b")))
    assert ";" not in stored[0] and rollouts.decode(stored).value == "a;b"
    writer = AdminCsvWriter(tmp_path, "test")
    writer.value("acme", "banner", stored, "2026-01-01T00:00:00Z", "dev")
    writer.close()
    assert (tmp_path / "set_rollout.header.csv").read_text().split(",")[2] == "value:string[]"
    line = (tmp_path / "set_rollout.csv").read_text().strip()
    assert line.startswith('acme,banner,"') and line.count(";") == 0
