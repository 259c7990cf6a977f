"""GET /v1/snapshot: what a region bootstraps from."""

from __future__ import annotations

import orjson


def _lines(response) -> list[dict]:
    return [orjson.loads(line) for line in response.content.splitlines() if line]


async def test_snapshot_lists_orgs_parents_and_values_with_the_seq_to_follow(client, tokens, uid, make_orgs):
    root, child = uid("root"), uid("child")
    await make_orgs([(root, None), (child, root)])
    put = await client.put(f"/v1/orgs/{child}/flags/dark-mode", json={"value": True}, headers=tokens.writer())
    assert put.status_code == 200, put.text
    last = (await client.get("/v1/changes", params={"after": 2**40}, headers=tokens.admin())).json()["last"]

    response = await client.get("/v1/snapshot", headers=tokens.admin())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = _lines(response)
    header, orgs, end = lines[0]["snapshot"], lines[1:-1], lines[-1]["end"]
    assert header["seq"] >= last
    assert int(response.headers["x-graphflags-snapshot-seq"]) == header["seq"]
    assert end == {"orgs": len(orgs), "seq": header["seq"]}
    ids = [row["id"] for row in orgs]
    assert ids == sorted(ids)
    rows = {row["id"]: row for row in orgs}
    assert rows[root]["parent"] is None and rows[root]["values"] == []
    assert rows[child]["parent"] == root
    [(flag, value, kind, updated_at, updated_by, sealed)] = rows[child]["values"]
    assert (flag, value, kind, updated_by, sealed) == ("dark-mode", True, "boolean", "tester", None)
    assert updated_at


async def test_snapshot_needs_an_admin_of_every_org(client, tokens, uid):
    assert (await client.get("/v1/snapshot")).status_code == 401
    assert (await client.get("/v1/snapshot", headers=tokens.writer())).status_code == 403
    scoped = await client.get("/v1/snapshot", headers=tokens.admin(uid("tenant")))
    assert scoped.status_code == 403
    assert scoped.json()["type"].endswith("/forbidden")
    odd = await client.get("/v1/snapshot", params={"after": "x"}, headers=tokens.admin())
    assert odd.status_code == 422
