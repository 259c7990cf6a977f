"""Bulk value writes (docs/api.md, "Safe changes"): one flag on many orgs, judged whole, all or nothing."""

from __future__ import annotations

import orjson
import pytest


@pytest.fixture
async def tree(uid, make_orgs) -> dict[str, str]:
    """root -> a -> a1, root -> b -> b1; other (another root)."""
    names = {name: uid(name) for name in ("root", "a", "a1", "b", "b1", "other")}
    parent = {"root": None, "a": "root", "a1": "a", "b": "root", "b1": "b", "other": None}
    await make_orgs([(names[name], names[above] if above else None) for name, above in parent.items()])
    return names


async def _value(client, tokens, org, flag):
    response = await client.get(f"/v1/orgs/{org}/flags/{flag}", headers=tokens.reader())
    assert response.status_code == 200, response.text
    return response.json()


async def _events(client, tokens, org) -> list:
    response = await client.get("/v1/audit", params={"org": org, "subtree": "true"}, headers=tokens.admin())
    return response.json()["events"]


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@pytest.mark.parametrize("form", ["json", "ndjson", "csv"])
async def test_rows_in_each_format_are_written_with_one_event_per_changed_org(client, tokens, tree, form):
    await client.put(f"/v1/orgs/{tree['b']}/flags/theme", json={"value": "dark"}, headers=tokens.writer())
    rows = [
        {"org": tree["a"], "value": "dark"},
        {"org": tree["b"], "value": "dark"},  # b: unchanged
        {"org": tree["b1"], "value": "light"},
    ]
    if form == "json":
        body, kind = orjson.dumps(rows), "application/json"
    elif form == "ndjson":
        body, kind = b"\n".join(orjson.dumps(row) for row in rows) + b"\n", "application/x-ndjson"
    else:
        lines = ["org,value"] + [f"{row['org']},{_csv_field(orjson.dumps(row['value']).decode())}" for row in rows]
        body, kind = ("\r\n".join(lines) + "\r\n").encode(), "text/csv"
    response = await client.put(
        "/v1/flags/theme/values", content=body, headers={**tokens.writer(), "content-type": kind}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"changed": 2, "unchanged": 1}
    assert (await _value(client, tokens, tree["a1"], "theme"))["value"] == "dark"
    assert (await _value(client, tokens, tree["b1"], "theme"))["value"] == "light"
    events = [e for e in await _events(client, tokens, tree["root"]) if e["flag"] == "theme"]
    assert sorted((e["org"], e["new"]) for e in events[:2]) == sorted([(tree["a"], "dark"), (tree["b1"], "light")])


async def test_null_clears_and_typed_values_round_trip(client, tokens, tree):
    await client.put(f"/v1/orgs/{tree['a']}/flags/limits", json={"value": {"seats": 9}}, headers=tokens.writer())
    rows = [{"org": tree["a"], "value": None}, {"org": tree["b"], "value": {"seats": 3}}]
    response = await client.put("/v1/flags/limits/values", json=rows, headers=tokens.writer())
    assert response.json() == {"changed": 2, "unchanged": 0}
    assert (await _value(client, tokens, tree["a1"], "limits"))["reason"] == "default"
    assert (await _value(client, tokens, tree["b1"], "limits"))["value"] == {"seats": 3}
    csv_body = f"value,org\nnull,{tree['b']}\n".encode()
    cleared = await client.put(
        "/v1/flags/limits/values", content=csv_body, headers={**tokens.writer(), "content-type": "text/csv"}
    )
    assert cleared.json() == {"changed": 1, "unchanged": 0}


async def test_bad_rows_are_all_reported_and_nothing_is_written(client, tokens, tree, uid):
    before = await _events(client, tokens, tree["root"])
    rows = [
        {"org": tree["a"], "value": 5},  # row 1: not a boolean
        {"org": tree["b"], "value": True},  # row 2: fine
        {"org": uid("missing"), "value": True},  # row 3: org-not-found
        {"org": "bad id", "value": True},  # row 4: invalid-id
        {"org": tree["b"], "value": False},  # row 5: repeated org
        {"org": tree["b1"]},
    ]  # row 6: no value
    response = await client.put("/v1/flags/beta/values", json=rows, headers=tokens.writer())
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("invalid-rows")
    # Every malformed row at once; rows are judged against the graph once all are well formed.
    assert [(e["row"], e["type"]) for e in response.json()["errors"]] == [
        (1, "invalid-value"),
        (4, "invalid-id"),
        (5, "invalid-body"),
        (6, "invalid-body"),
    ]
    response = await client.put("/v1/flags/beta/values", json=rows[1:3], headers=tokens.writer())
    assert [(e["row"], e["type"]) for e in response.json()["errors"]] == [(2, "org-not-found")]
    assert (await _value(client, tokens, tree["b"], "beta"))["value"] is False
    assert await _events(client, tokens, tree["root"]) == before


async def test_a_row_outside_the_callers_scope_refuses_the_whole_request(client, tokens, tree, uid):
    rows = [{"org": tree["a"], "value": True}, {"org": tree["other"], "value": True}]
    response = await client.put("/v1/flags/beta/values", json=rows, headers=tokens.writer(tree["root"]))
    assert response.status_code == 403, response.text
    # Also for an org that does not exist: a scoped token cannot probe ids.
    missing = [{"org": tree["a"], "value": True}, {"org": uid("nowhere"), "value": True}]
    response = await client.put("/v1/flags/beta/values", json=missing, headers=tokens.writer(tree["root"]))
    assert response.status_code == 403
    assert (await _value(client, tokens, tree["a"], "beta"))["value"] is False
    inside = await client.put("/v1/flags/beta/values", json=rows[:1], headers=tokens.writer(tree["root"]))
    assert inside.json() == {"changed": 1, "unchanged": 0}


async def test_rows_under_a_seal_are_row_errors(client, tokens, tree):
    sealed = await client.put(
        f"/v1/orgs/{tree['a']}/flags/beta", json={"value": True, "sealed": True}, headers=tokens.admin()
    )
    assert sealed.status_code == 200
    rows = [{"org": tree["b"], "value": True}, {"org": tree["a1"], "value": False}, {"org": tree["a"], "value": False}]
    response = await client.put("/v1/flags/beta/values", json=rows, headers=tokens.writer())
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["row"], e["type"]) for e in errors] == [(2, "sealed"), (3, "sealed")]
    assert tree["a"] in errors[0]["detail"]


async def test_unknown_flag_role_and_formats(client, tokens, tree):
    rows = [{"org": tree["a"], "value": True}]
    assert (await client.put("/v1/flags/no-such-flag/values", json=rows, headers=tokens.writer())).status_code == 404
    assert (await client.put("/v1/flags/beta/values", json=rows, headers=tokens.reader())).status_code == 403
    wrong = await client.put(
        "/v1/flags/beta/values", content=b"<rows/>", headers={**tokens.writer(), "content-type": "application/xml"}
    )
    assert wrong.status_code == 415
    header = await client.put(
        "/v1/flags/beta/values", content=b"id,parent\n", headers={**tokens.writer(), "content-type": "text/csv"}
    )
    assert header.status_code == 400
    not_json = await client.put(
        "/v1/flags/beta/values",
        content=f"org,value\n{tree['a']},yes\n".encode(),
        headers={**tokens.writer(), "content-type": "text/csv"},
    )
    assert [e["type"] for e in not_json.json()["errors"]] == ["invalid-value"]


async def test_dry_run_of_a_bulk_write(client, tokens, tree):
    # a1 is in the request too: a's region stops there; b already has true.
    await client.put(f"/v1/orgs/{tree['b']}/flags/beta", json={"value": True}, headers=tokens.writer())
    before = await _events(client, tokens, tree["root"])
    rows = [
        {"org": tree["root"], "value": True},
        {"org": tree["a1"], "value": False},
        {"org": tree["b"], "value": True},
    ]
    response = await client.put("/v1/flags/beta/values?dry_run=true", json=rows, headers=tokens.writer())
    assert response.status_code == 200, response.text
    # root and a go false -> true; a1 stays false (its own false now); b, b1 already true.
    assert response.json() == {
        "dry_run": True,
        "affected": {"orgs": 2, "exact": True, "sample": response.json()["affected"]["sample"]},
    }
    assert set(response.json()["affected"]["sample"]) == {tree["root"], tree["a"]}
    assert await _events(client, tokens, tree["root"]) == before
    bad = await client.put(
        "/v1/flags/beta/values?dry_run=true", json=[{"org": tree["a"], "value": 1}], headers=tokens.writer()
    )
    assert bad.status_code == 422


async def test_a_bulk_write_goes_through_to_this_instances_cache(app, client, tokens, tree):
    """As an immediate write: the new values are the cache's entries (a hit, not a miss), and the
    last-known values should the database go away, not the old ones."""
    url = f"/v1/orgs/{tree['a1']}/flags/beta"
    cache = app.state.services.cache
    assert (await client.get(url, headers=tokens.reader())).json()["value"] is False
    rows = [{"org": tree["a1"], "value": True}, {"org": tree["a"], "value": True}]
    assert (await client.put("/v1/flags/beta/values", json=rows, headers=tokens.writer())).status_code == 200
    assert cache.flag_chain(tree["a1"], "beta", stale_ok=True)[:2] == [(tree["a1"], True), (tree["a"], True)]
    hits = cache.hits
    assert (await client.get(url, headers=tokens.reader())).json()["value"] is True
    assert cache.hits == hits + 1
