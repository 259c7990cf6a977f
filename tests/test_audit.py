"""The audit log (docs/api.md, "Audit"): one event per change, none for no-ops, filters, pages, scope."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

PROBLEM = "application/problem+json"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
EVENT_KEYS = {"seq", "at", "actor", "action", "org", "flag", "old", "new"}


async def audit(client, tokens, headers=None, **params) -> dict:
    response = await client.get("/v1/audit", params=params, headers=headers or tokens.admin())
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"events", "next"}
    return body


async def events_of(client, tokens, **params) -> list[dict]:
    return (await audit(client, tokens, limit=1000, **params))["events"]


def summary(events) -> list[tuple]:
    return [(e["action"], e["org"], e["flag"], e["old"], e["new"], e["actor"]) for e in events]


async def test_every_change_writes_one_event_and_no_ops_write_none(client, tokens, uid):
    root, other, child = uid("root"), uid("other"), uid("child")
    alice, bob, carol = tokens.admin(sub="alice"), tokens.writer(sub="bob"), tokens.writer(sub="carol")
    started = datetime.now(UTC)

    assert (await client.post("/v1/orgs", json={"id": root}, headers=alice)).status_code == 201
    assert (await client.post("/v1/orgs", json={"id": other}, headers=alice)).status_code == 201
    assert (await client.post("/v1/orgs", json={"id": child, "parent": root}, headers=alice)).status_code == 201
    # no-op: the same org again, one by one and in bulk
    assert (await client.post("/v1/orgs", json={"id": child, "parent": root}, headers=alice)).status_code == 200
    bulk = await client.post("/v1/orgs/bulk", json=[{"id": child, "parent": root}], headers=alice)
    assert bulk.json() == {"created": 0, "unchanged": 1}

    put = f"/v1/orgs/{child}/flags/theme"
    assert (await client.put(put, json={"value": "dark"}, headers=bob)).status_code == 200
    assert (await client.put(put, json={"value": "dark"}, headers=bob)).status_code == 200  # no-op
    assert (await client.put(put, json={"value": "light"}, headers=carol)).status_code == 200
    assert (await client.delete(put, headers=carol)).status_code == 204
    assert (await client.delete(put, headers=carol)).status_code == 204  # no-op: nothing set
    assert (await client.post(f"/{child}/limits/%7B%22seats%22%3A3%7D", headers=bob)).status_code == 200
    assert (await client.post(f"/{child}/limits/%7B%22seats%22%3A3%7D", headers=bob)).status_code == 200  # no-op
    assert (
        await client.put(f"/v1/orgs/{child}/flags/limits", json={"value": {"seats": 3}}, headers=bob)
    ).status_code == 200  # no-op
    # failed requests write nothing either
    assert (await client.put(put, json={"value": "blue"}, headers=bob)).status_code == 422
    assert (await client.put(put, content=b"{}", headers=bob)).status_code == 400
    assert (await client.put(put, json={"value": "dark"}, headers=tokens.reader(sub="bob"))).status_code == 403
    assert (await client.patch(f"/v1/orgs/{root}", json={"parent": child}, headers=alice)).status_code == 409

    assert (await client.patch(f"/v1/orgs/{child}", json={"parent": other}, headers=alice)).status_code == 200
    assert (await client.patch(f"/v1/orgs/{child}", json={"parent": other}, headers=alice)).status_code == 200
    assert (await client.patch(f"/v1/orgs/{child}", json={"parent": None}, headers=alice)).status_code == 200

    events = await events_of(client, tokens, org=child)
    assert summary(events) == [
        ("org.move", child, None, {"parent": other}, {"parent": None}, "alice"),
        ("org.move", child, None, {"parent": root}, {"parent": other}, "alice"),
        ("flag.set", child, "limits", None, {"seats": 3}, "bob"),
        ("flag.clear", child, "theme", "light", None, "carol"),
        ("flag.set", child, "theme", "dark", "light", "carol"),
        ("flag.set", child, "theme", None, "dark", "bob"),
        ("org.create", child, None, None, {"parent": root}, "alice"),
    ]
    seqs = [e["seq"] for e in events]
    assert all(isinstance(seq, int) for seq in seqs)
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
    for event in events:
        assert set(event) == EVENT_KEYS
        assert RFC3339.match(event["at"]), event["at"]
        moment = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
        assert moment.tzinfo is not None
        # a sanity window, not a timing assertion: the clock of the event is today's
        assert started - timedelta(days=1) < moment < started + timedelta(days=1)
    ats = [datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in events]
    assert ats == sorted(ats, reverse=True)

    roots = await events_of(client, tokens, org=root)
    assert summary(roots) == [("org.create", root, None, None, {"parent": None}, "alice")]


async def test_bulk_create_writes_one_event_per_new_org(client, tokens, uid):
    root = uid("root")
    kids = [uid(f"k{i}") for i in range(5)]
    rows = [{"id": kid, "parent": root} for kid in kids] + [{"id": root}]
    first = await client.post("/v1/orgs/bulk", json=rows, headers=tokens.admin(sub="loader"))
    assert first.json() == {"created": 6, "unchanged": 0}
    again = await client.post("/v1/orgs/bulk", json=rows, headers=tokens.admin(sub="loader"))
    assert again.json() == {"created": 0, "unchanged": 6}
    events = await events_of(client, tokens, org=root, subtree="true")
    assert sorted((e["action"], e["org"], e["actor"]) for e in events) == sorted(
        [("org.create", kid, "loader") for kid in kids] + [("org.create", root, "loader")]
    )
    assert all(e["new"] == {"parent": root} for e in events if e["org"] != root)


@pytest.fixture
async def history(client, tokens, uid, make_orgs):
    """root -> mid -> leaf, plus side: flag changes by two actors on each."""
    ids = {name: uid(name) for name in ("root", "mid", "leaf", "side")}
    await make_orgs(
        [(ids["root"], None), (ids["mid"], ids["root"]), (ids["leaf"], ids["mid"]), (ids["side"], ids["root"])]
    )
    for org, flag, value, actor in [
        ("root", "beta", True, "ann"),
        ("mid", "retention-days", 10, "ben"),
        ("leaf", "beta", False, "ann"),
        ("leaf", "retention-days", 20, "ben"),
        ("side", "beta", True, "ben"),
        ("mid", "beta", True, "ann"),
    ]:
        response = await client.put(
            f"/v1/orgs/{ids[org]}/flags/{flag}", json={"value": value}, headers=tokens.writer(sub=actor)
        )
        assert response.status_code == 200
    return ids


def flag_events(events):
    return [e for e in events if e["action"].startswith("flag.")]


async def test_filter_by_org_alone_and_with_subtree(client, tokens, history):
    mid = flag_events(await events_of(client, tokens, org=history["mid"]))
    assert [(e["org"], e["flag"]) for e in mid] == [(history["mid"], "beta"), (history["mid"], "retention-days")]
    explicit = flag_events(await events_of(client, tokens, org=history["mid"], subtree="false"))
    assert explicit == mid

    below_mid = flag_events(await events_of(client, tokens, org=history["mid"], subtree="true"))
    assert [(e["org"], e["flag"]) for e in below_mid] == [
        (history["mid"], "beta"),
        (history["leaf"], "retention-days"),
        (history["leaf"], "beta"),
        (history["mid"], "retention-days"),
    ]
    everything = await events_of(client, tokens, org=history["root"], subtree="true")
    assert len(flag_events(everything)) == 6
    assert {e["org"] for e in everything} == set(history.values())
    assert len([e for e in everything if e["action"] == "org.create"]) == 4


async def test_filter_by_flag_and_actor(client, tokens, history):
    root = history["root"]
    beta = await events_of(client, tokens, org=root, subtree="true", flag="beta")
    assert [e["org"] for e in beta] == [history["mid"], history["side"], history["leaf"], root]
    assert {e["flag"] for e in beta} == {"beta"}
    ben = await events_of(client, tokens, org=root, subtree="true", actor="ben")
    assert [(e["org"], e["flag"]) for e in ben] == [
        (history["side"], "beta"),
        (history["leaf"], "retention-days"),
        (history["mid"], "retention-days"),
    ]
    both = await events_of(client, tokens, org=root, subtree="true", actor="ann", flag="retention-days")
    assert both == []
    assert await events_of(client, tokens, org=root, subtree="true", actor="nobody-at-all") == []
    # without an org filter the actor and flag filters still hold
    anns = await events_of(client, tokens, actor="ann", flag="beta")
    assert anns and all(e["actor"] == "ann" and e["flag"] == "beta" for e in anns)
    assert {history["root"], history["leaf"], history["mid"]} <= {e["org"] for e in anns}


async def test_filter_since(client, tokens, uid, make_orgs):
    org = uid("org")
    await make_orgs([(org, None)])
    await client.put(f"/v1/orgs/{org}/flags/retention-days", json={"value": 1}, headers=tokens.writer())
    await asyncio.sleep(1.2)  # so that the two groups of events fall in different seconds
    await client.put(f"/v1/orgs/{org}/flags/retention-days", json={"value": 2}, headers=tokens.writer())
    await client.put(f"/v1/orgs/{org}/flags/retention-days", json={"value": 3}, headers=tokens.writer())
    every = await events_of(client, tokens, org=org)
    assert [e["new"] for e in every] == [3, 2, 1, {"parent": None}]
    second = every[1]["at"][:19]  # the whole second of the value-2 event
    later = await events_of(client, tokens, org=org, since=second + "Z")
    assert [e["new"] for e in later] == [3, 2]
    # the same instant written with another offset
    moment = datetime.fromisoformat(second + "+00:00").astimezone(timezone(timedelta(hours=2)))
    shifted = await events_of(client, tokens, org=org, since=moment.isoformat())
    assert [e["new"] for e in shifted] == [3, 2]
    assert [e["new"] for e in await events_of(client, tokens, org=org, since="2000-01-01T00:00:00Z")] == [
        3,
        2,
        1,
        {"parent": None},
    ]
    assert await events_of(client, tokens, org=org, since="2999-01-01T00:00:00+00:00") == []


async def test_limit_and_next_cursor_page_through_everything_once(client, tokens, history):
    root = history["root"]
    whole = await events_of(client, tokens, org=root, subtree="true")
    assert len(whole) == 10
    seen, cursor, pages = [], None, 0
    while True:
        params = {"org": root, "subtree": "true", "limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = await audit(client, tokens, **params)
        assert len(page["events"]) <= 3
        seen.extend(page["events"])
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and page["events"], page
        assert pages < 20
    assert seen == whole
    assert len({e["seq"] for e in seen}) == len(seen)
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(seqs, reverse=True)

    one = await audit(client, tokens, org=root, subtree="true", limit=1)
    assert one["events"] == whole[:1]
    assert one["next"] is not None
    following = await audit(client, tokens, org=root, subtree="true", limit=1, cursor=one["next"])
    assert following["events"] == whole[1:2]


async def test_limit_defaults_to_100_and_allows_1000(client, tokens, uid, make_orgs):
    root = uid("root")
    await make_orgs([(root, None), *((uid(f"k{i}"), root) for i in range(104))])
    default = await audit(client, tokens, org=root, subtree="true")
    assert len(default["events"]) == 100
    assert default["next"] is not None
    rest = await audit(client, tokens, org=root, subtree="true", cursor=default["next"])
    assert len(rest["events"]) == 5 and rest["next"] is None
    big = await audit(client, tokens, org=root, subtree="true", limit=1000)
    assert len(big["events"]) == 105 and big["next"] is None
    assert {e["seq"] for e in big["events"]} == {e["seq"] for e in default["events"] + rest["events"]}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"limit": ""},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},
        {"since": "2026-13-01T00:00:00Z"},
        {"subtree": "maybe"},
        {"cursor": "abc"},
        {"cursor": "-5"},
        {"org": "bad id"},
        {"org": "x" * 129},
        {"flag": "Bad_Flag"},
    ],
)
async def test_malformed_query_is_422(client, tokens, params):
    response = await client.get("/v1/audit", params=params, headers=tokens.admin())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 422 and body["detail"]


async def test_scoped_admin_sees_only_its_subtree(client, tokens, uid, make_orgs):
    ids = {name: uid(name) for name in ("top", "A", "a1", "B", "b1", "wanderer")}
    await make_orgs(
        [
            (ids["top"], None),
            (ids["A"], ids["top"]),
            (ids["a1"], ids["A"]),
            (ids["B"], ids["top"]),
            (ids["b1"], ids["B"]),
            (ids["wanderer"], ids["b1"]),
        ]
    )
    for org in ("top", "A", "a1", "B", "b1"):
        await client.put(f"/v1/orgs/{ids[org]}/flags/beta", json={"value": True}, headers=tokens.writer())
    # a move from B's subtree into A's: both sides see it
    moved = await client.patch(f"/v1/orgs/{ids['wanderer']}", json={"parent": ids["a1"]}, headers=tokens.admin())
    assert moved.status_code == 200

    scoped_a = tokens.admin(ids["A"])
    seen = (await audit(client, tokens, headers=scoped_a, limit=1000))["events"]
    assert {e["org"] for e in seen} == {ids["A"], ids["a1"], ids["wanderer"]}
    assert ("org.move", ids["wanderer"]) in {(e["action"], e["org"]) for e in seen}
    assert {(e["action"], e["org"]) for e in seen if e["action"] == "flag.set"} == {
        ("flag.set", ids["A"]),
        ("flag.set", ids["a1"]),
    }
    # wanderer's creation happened under B: not A's business
    assert ("org.create", ids["wanderer"]) not in {(e["action"], e["org"]) for e in seen}

    seen_b = (await audit(client, tokens, headers=tokens.admin(ids["B"]), limit=1000))["events"]
    assert {e["org"] for e in seen_b} == {ids["B"], ids["b1"], ids["wanderer"]}
    assert ("org.move", ids["wanderer"]) in {(e["action"], e["org"]) for e in seen_b}

    # a filter naming a foreign org reveals nothing about it
    foreign = await client.get("/v1/audit", params={"org": ids["b1"]}, headers=scoped_a)
    assert foreign.status_code in (200, 403), foreign.text
    if foreign.status_code == 200:
        assert foreign.json()["events"] == []
    subtree_top = (await audit(client, tokens, headers=scoped_a, org=ids["top"], subtree="true", limit=1000))["events"]
    assert {e["org"] for e in subtree_top} <= {ids["A"], ids["a1"], ids["wanderer"]}
    assert ids["top"] not in {e["org"] for e in subtree_top}
    # the unscoped admin sees all of it
    everything = await events_of(client, tokens, org=ids["top"], subtree="true")
    assert {e["org"] for e in everything} == set(ids.values())


async def test_reader_and_writer_cannot_read_the_audit_log(client, tokens):
    for headers in (tokens.reader(), tokens.writer()):
        response = await client.get("/v1/audit", headers=headers)
        assert response.status_code == 403
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.json()["type"].endswith("/forbidden")
    assert (await client.get("/v1/audit")).status_code == 401
