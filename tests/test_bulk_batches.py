"""Bulk requests larger than one batch: judged whole, written parents-first in batches."""

from __future__ import annotations

from app.domain.hierarchy import parents_first, path_of


def test_parents_first_orders_any_input():
    created = [("c", "b"), ("d", "graph-org"), ("b", "a"), ("a", None), ("e", "d")]
    ordered = parents_first(created)
    assert sorted(ordered) == sorted(created)
    position = {org: index for index, (org, _) in enumerate(ordered)}
    for org, parent in created:
        if parent in position:
            assert position[parent] < position[org]


def test_path_of_joins_request_and_graph():
    parent_of = {"c": "b", "b": "a", "a": "graph-1"}
    chains = {"graph-1": ["graph-1", "graph-root"]}
    assert path_of("c", parent_of, chains) == ["c", "b", "a", "graph-1", "graph-root"]
    assert path_of("r", {"r": None}, chains) == ["r"]


async def test_a_request_of_several_batches(client, tokens, uid, migrated):
    """The test app writes 500 rows a batch; 1,300 rows listed leaves first take three batches."""
    assert migrated.bulk_batch_size == 500
    root = uid("root")
    rows = [{"id": root, "parent": None}]
    for i in range(36):  # 36 groups of 1 + 35 members: 1,297 orgs below the root
        group = uid(f"g{i}")
        rows.append({"id": group, "parent": root})
        rows.extend({"id": uid(f"g{i}-m{j}"), "parent": group} for j in range(35))
    rows.reverse()  # children before their parents
    response = await client.post("/v1/orgs/bulk", json=rows, headers=tokens.admin())
    assert response.status_code == 200, response.text
    assert response.json() == {"created": len(rows), "unchanged": 0}

    leaf = uid("g35-m34")
    org = (await client.get(f"/v1/orgs/{leaf}", headers=tokens.reader())).json()
    assert org["ancestors"] == [uid("g35"), root]
    # Every org has its org.create event, and the subtree filter finds them all through their paths.
    seen, cursor = 0, None
    while True:
        params = {"org": root, "subtree": "true", "limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/audit", params=params, headers=tokens.admin())).json()
        seen += sum(1 for event in page["events"] if event["action"] == "org.create")
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == len(rows)

    again = await client.post("/v1/orgs/bulk", json=rows, headers=tokens.admin())
    assert again.json() == {"created": 0, "unchanged": len(rows)}


async def test_a_bad_row_in_a_large_request_writes_nothing(client, tokens, uid):
    root = uid("root")
    rows = [{"id": root, "parent": None}, *({"id": uid(f"m{i}"), "parent": root} for i in range(1200))]
    rows.append({"id": uid("orphan"), "parent": uid("missing")})
    response = await client.post("/v1/orgs/bulk", json=rows, headers=tokens.admin())
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "row": len(rows),
            "id": uid("orphan"),
            "type": "parent-not-found",
            "detail": f"no organization {uid('missing')!r}",
        }
    ]
    assert (await client.get(f"/v1/orgs/{root}", headers=tokens.reader())).status_code == 404
