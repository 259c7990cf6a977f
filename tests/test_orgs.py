"""Organizations against the real graph: create, read, move, bulk loads (docs/api.md, "Organizations")."""

from __future__ import annotations

import orjson
import pytest

PROBLEM = "application/problem+json"


async def create(client, tokens, org, parent=None, *, omit_parent=False, headers=None):
    body = {"id": org} if omit_parent else {"id": org, "parent": parent}
    return await client.post("/v1/orgs", json=body, headers=headers or tokens.admin())


async def get_org(client, tokens, org):
    return await client.get(f"/v1/orgs/{org}", headers=tokens.reader())


async def exists(client, tokens, org) -> bool:
    response = await get_org(client, tokens, org)
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


async def bulk(client, tokens, content: bytes | str, content_type: str, headers=None):
    return await client.post(
        "/v1/orgs/bulk", content=content, headers={**(headers or tokens.admin()), "Content-Type": content_type}
    )


def slug(response) -> str:
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    return response.json()["type"].rsplit("/", 1)[-1]


def as_json(pairs) -> bytes:
    return orjson.dumps([{"id": org, "parent": parent} for org, parent in pairs])


def as_ndjson(pairs) -> bytes:
    return b"\n".join(orjson.dumps({"id": org, "parent": parent}) for org, parent in pairs) + b"\n"


def as_csv(pairs) -> bytes:
    return ("id,parent\n" + "".join(f"{org},{parent or ''}\n" for org, parent in pairs)).encode()


FORMATS = {
    "json": (as_json, "application/json"),
    "ndjson": (as_ndjson, "application/x-ndjson"),
    "csv": (as_csv, "text/csv"),
}


# --------------------------------------------------------------------------- POST /v1/orgs


async def test_create_answers_201_then_200_for_the_same_again(client, tokens, uid):
    root, child = uid("root"), uid("child")
    first = await create(client, tokens, root, omit_parent=True)
    assert first.status_code == 201, first.text
    assert first.json() == {"id": root, "parent": None}
    made = await create(client, tokens, child, root)
    assert made.status_code == 201
    assert made.json() == {"id": child, "parent": root}

    again = await create(client, tokens, child, root)
    assert again.status_code == 200
    assert again.json() == {"id": child, "parent": root}
    root_again = await create(client, tokens, root, None)  # parent null is the same as absent
    assert root_again.status_code == 200
    assert (await get_org(client, tokens, child)).json()["parent"] == root


async def test_create_under_another_parent_is_an_org_conflict(client, tokens, uid):
    a, b, x = uid("a"), uid("b"), uid("x")
    for org in (a, b):
        assert (await create(client, tokens, org)).status_code == 201
    assert (await create(client, tokens, x, a)).status_code == 201
    conflict = await create(client, tokens, x, b)
    assert conflict.status_code == 409
    assert slug(conflict) == "org-conflict"
    as_root = await create(client, tokens, x, None)
    assert as_root.status_code == 409 and slug(as_root) == "org-conflict"
    root_under_parent = await create(client, tokens, a, b)
    assert root_under_parent.status_code == 409 and slug(root_under_parent) == "org-conflict"
    # nothing moved
    assert (await get_org(client, tokens, x)).json()["parent"] == a
    assert (await get_org(client, tokens, a)).json()["parent"] is None


async def test_create_under_a_missing_parent_is_parent_not_found(client, tokens, uid):
    org = uid("orphan")
    response = await create(client, tokens, org, uid("ghost"))
    assert response.status_code == 422
    assert slug(response) == "parent-not-found"
    assert not await exists(client, tokens, org)


async def test_create_under_itself_is_refused(client, tokens, uid):
    org = uid("self")
    response = await create(client, tokens, org, org)
    assert response.status_code in (409, 422), response.text
    assert slug(response) in ("cycle", "parent-not-found")
    assert not await exists(client, tokens, org)


@pytest.mark.parametrize(
    "bad", [".", "..", "x" * 129, "a b", "", "a/b", "caf\u00e9", "tab\there", 5, True, ["a"], {"id": "a"}, None]
)
async def test_create_with_an_invalid_id_is_invalid_id(client, tokens, bad):
    response = await client.post("/v1/orgs", json={"id": bad}, headers=tokens.admin())
    assert response.status_code == 422, response.text
    assert slug(response) == "invalid-id"


@pytest.mark.parametrize("bad", [".", "..", "x" * 129, "a b", "", 7, ["a"]])
async def test_create_with_an_invalid_parent_is_invalid_id(client, tokens, uid, bad):
    org = uid("child")
    response = await client.post("/v1/orgs", json={"id": org, "parent": bad}, headers=tokens.admin())
    assert response.status_code == 422, response.text
    assert slug(response) == "invalid-id"
    assert not await exists(client, tokens, org)


async def test_longest_valid_id_is_accepted(client, tokens, uid):
    org = uid("long")
    org = org + "x" * (128 - len(org))
    assert len(org) == 128
    assert (await create(client, tokens, org)).status_code == 201
    assert (await get_org(client, tokens, org)).json()["id"] == org
    dotted = uid("a.b_c:d-e")
    assert (await create(client, tokens, dotted, org)).status_code == 201
    assert (await get_org(client, tokens, dotted)).json()["ancestors"] == [org]


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'"acme"', b'{"parent": null}', b'{"id": "a", "colour": 1}'])
async def test_create_with_an_unreadable_body_is_invalid_body(client, tokens, body):
    response = await client.post(
        "/v1/orgs", content=body, headers={**tokens.admin(), "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert slug(response) == "invalid-body"


# --------------------------------------------------------------------------- GET /v1/orgs/{org}


async def test_get_shows_parent_ancestors_nearest_first_and_children(client, tokens, uid, chain6, make_orgs):
    extra = [uid("side1"), uid("side2")]
    await make_orgs([(org, chain6[3]) for org in extra])
    middle = (await get_org(client, tokens, chain6[3])).json()
    assert middle == {
        "id": chain6[3],
        "parent": chain6[2],
        "ancestors": [chain6[2], chain6[1], chain6[0]],
        "children": 3,
    }
    root = (await get_org(client, tokens, chain6[0])).json()
    assert root == {"id": chain6[0], "parent": None, "ancestors": [], "children": 1}
    leaf = (await get_org(client, tokens, chain6[6])).json()
    assert leaf["ancestors"] == list(reversed(chain6[:6]))
    assert leaf["children"] == 0
    side = (await get_org(client, tokens, extra[0])).json()
    assert side["ancestors"] == [chain6[3], chain6[2], chain6[1], chain6[0]]


async def test_get_missing_org_is_org_not_found(client, tokens, uid):
    response = await client.get(f"/v1/orgs/{uid('ghost')}", headers=tokens.admin())
    assert response.status_code == 404
    assert slug(response) == "org-not-found"


@pytest.mark.parametrize("path", ["x" * 129, "a%20b", "%C3%A9", "a%3Fb"])
async def test_get_invalid_id_is_invalid_id(client, tokens, path):
    response = await client.get(f"/v1/orgs/{path}", headers=tokens.reader())
    assert response.status_code == 422, response.text
    assert slug(response) == "invalid-id"


# --------------------------------------------------------------------------- PATCH /v1/orgs/{org}


async def move(client, tokens, org, parent, headers=None):
    return await client.patch(f"/v1/orgs/{org}", json={"parent": parent}, headers=headers or tokens.admin())


async def value_of(client, tokens, org, flag):
    response = await client.get(f"/v1/orgs/{org}/flags/{flag}", headers=tokens.reader())
    assert response.status_code == 200, response.text
    return response.json()


async def test_move_takes_the_whole_subtree_and_its_inheritance(client, tokens, uid, make_orgs):
    a, a1 = uid("a"), uid("a1")
    b, b1, b2, b3, b3x = uid("b"), uid("b1"), uid("b2"), uid("b3"), uid("b3x")
    await make_orgs([(a, None), (a1, a), (b, None), (b1, b), (b2, b1), (b3, b2), (b3x, b2)])
    await client.put(f"/v1/orgs/{a}/flags/theme", json={"value": "dark"}, headers=tokens.writer())
    await client.put(f"/v1/orgs/{b}/flags/retention-days", json={"value": 99}, headers=tokens.writer())
    await client.put(f"/v1/orgs/{b2}/flags/banner", json={"value": "kept"}, headers=tokens.writer())
    before = await value_of(client, tokens, b3, "theme")
    assert before["reason"] == "default"
    assert (await value_of(client, tokens, b3, "retention-days"))["value"] == 99

    moved = await move(client, tokens, b1, a1)
    assert moved.status_code == 200, moved.text
    assert moved.json() == {"id": b1, "parent": a1}

    for leaf in (b3, b3x):
        after = await value_of(client, tokens, leaf, "theme")
        assert (after["value"], after["reason"], after["source_org"]) == ("dark", "inherited", a)
        # the old root's setting no longer applies, the subtree's own settings travel with it
        assert (await value_of(client, tokens, leaf, "retention-days"))["reason"] == "default"
        assert (await value_of(client, tokens, leaf, "banner"))["source_org"] == b2
    assert (await get_org(client, tokens, b3)).json()["ancestors"] == [b2, b1, a1, a]
    assert (await get_org(client, tokens, b1)).json()["parent"] == a1
    assert (await get_org(client, tokens, b)).json()["children"] == 0
    assert (await get_org(client, tokens, a1)).json()["children"] == 1

    same_again = await move(client, tokens, b1, a1)
    assert same_again.status_code == 200
    assert same_again.json() == {"id": b1, "parent": a1}
    assert (await get_org(client, tokens, b3)).json()["ancestors"] == [b2, b1, a1, a]


async def test_move_under_itself_or_a_descendant_is_a_cycle(client, tokens, chain6):
    for target in (chain6[2], chain6[3], chain6[6]):
        response = await move(client, tokens, chain6[2], target)
        assert response.status_code == 409, response.text
        assert slug(response) == "cycle"
    assert (await get_org(client, tokens, chain6[6])).json()["ancestors"] == list(reversed(chain6[:6]))
    assert (await get_org(client, tokens, chain6[2])).json()["parent"] == chain6[1]


async def test_move_under_a_missing_parent_is_parent_not_found(client, tokens, chain6, uid):
    response = await move(client, tokens, chain6[3], uid("ghost"))
    assert response.status_code == 422
    assert slug(response) == "parent-not-found"
    assert (await get_org(client, tokens, chain6[3])).json()["parent"] == chain6[2]


async def test_move_of_a_missing_org_is_org_not_found_for_a_star_admin(client, tokens, chain6, uid):
    response = await move(client, tokens, uid("ghost"), chain6[0])
    assert response.status_code == 404
    assert slug(response) == "org-not-found"


async def test_parent_null_makes_a_root_for_a_star_admin(client, tokens, chain6):
    response = await move(client, tokens, chain6[3], None)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": chain6[3], "parent": None}
    assert (await get_org(client, tokens, chain6[3])).json()["ancestors"] == []
    assert (await get_org(client, tokens, chain6[6])).json()["ancestors"] == [chain6[5], chain6[4], chain6[3]]
    assert (await get_org(client, tokens, chain6[2])).json()["children"] == 0


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (b"{}", 400, "invalid-body"),
        (b"not json", 400, "invalid-body"),
        (b'{"parent": "a", "id": "b"}', 400, "invalid-body"),
        (b'{"parent": 5}', 422, "invalid-id"),
        (b'{"parent": "a b"}', 422, "invalid-id"),
        (b'{"parent": ".."}', 422, "invalid-id"),
    ],
)
async def test_move_with_a_bad_body(client, tokens, chain6, body, status, expected):
    response = await client.patch(
        f"/v1/orgs/{chain6[3]}", content=body, headers={**tokens.admin(), "Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert slug(response) == expected
    assert (await get_org(client, tokens, chain6[3])).json()["parent"] == chain6[2]


# --------------------------------------------------------------------------- POST /v1/orgs/bulk


def tree(uid):
    """Children listed before their parents: leaf, mid, root, plus a second branch."""
    root, mid, leaf, other = uid("root"), uid("mid"), uid("leaf"), uid("other")
    return [(leaf, mid), (other, root), (mid, root), (root, None)], (root, mid, leaf, other)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_bulk_children_before_parents_and_resending_is_idempotent(client, tokens, uid, fmt):
    encode, content_type = FORMATS[fmt]
    pairs, (root, mid, leaf, _) = tree(uid)
    response = await bulk(client, tokens, encode(pairs), content_type)
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 4, "unchanged": 0}
    assert (await get_org(client, tokens, leaf)).json()["ancestors"] == [mid, root]
    assert (await get_org(client, tokens, root)).json() == {"id": root, "parent": None, "ancestors": [], "children": 2}
    again = await bulk(client, tokens, encode(pairs), content_type)
    assert again.status_code == 200, again.text
    assert again.json() == {"created": 0, "unchanged": 4}
    # partly known, partly new
    extra = uid("extra")
    mixed = await bulk(client, tokens, encode([*pairs, (extra, leaf)]), content_type)
    assert mixed.json() == {"created": 1, "unchanged": 4}
    assert (await get_org(client, tokens, extra)).json()["ancestors"] == [leaf, mid, root]


async def test_bulk_json_accepts_a_charset_and_absent_parents(client, tokens, uid):
    root, child = uid("root"), uid("child")
    body = orjson.dumps([{"id": child, "parent": root}, {"id": root}])
    response = await bulk(client, tokens, body, "application/json; charset=utf-8")
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 2, "unchanged": 0}


async def test_bulk_empty_array_creates_nothing(client, tokens):
    response = await bulk(client, tokens, b"[]", "application/json")
    assert response.status_code == 200
    assert response.json() == {"created": 0, "unchanged": 0}


async def test_bulk_spanning_several_write_batches(client, tokens, uid):
    """More rows than the test app's batch size (500), every child listed before its parent."""
    root = uid("root")
    branches = [uid(f"b{i}") for i in range(30)]
    leaves = [(uid(f"b{i}-l{j}"), branches[i]) for i in range(30) for j in range(40)]
    pairs = [*leaves, *((branch, root) for branch in branches), (root, None)]
    response = await bulk(client, tokens, as_ndjson(pairs), "application/x-ndjson")
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 1231, "unchanged": 0}
    assert (await get_org(client, tokens, root)).json()["children"] == 30
    assert (await get_org(client, tokens, branches[7])).json()["children"] == 40
    assert (await get_org(client, tokens, leaves[-1][0])).json()["ancestors"] == [branches[29], root]


@pytest.mark.parametrize(("fmt", "bad_row"), [("json", 3), ("ndjson", 2), ("csv", 1), ("csv", 4)])
async def test_bulk_one_bad_row_writes_nothing(client, tokens, uid, fmt, bad_row):
    encode, content_type = FORMATS[fmt]
    pairs, ids = tree(uid)
    pairs.insert(bad_row - 1, ("bad id!", None))
    response = await bulk(client, tokens, encode(pairs), content_type)
    assert response.status_code == 422, response.text
    assert slug(response) == "invalid-rows"
    body = response.json()
    assert body["status"] == 422 and body["title"] and body["detail"]
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert set(error) == {"row", "id", "type", "detail"}
    assert (error["row"], error["id"], error["type"]) == (bad_row, "bad id!", "invalid-id")
    assert error["detail"]
    for org in ids:
        assert not await exists(client, tokens, org)


async def test_bulk_reports_every_bad_row_with_its_number(client, tokens, uid):
    pairs, ids = tree(uid)
    rows = [{"id": org, "parent": parent} for org, parent in pairs]
    rows[1:1] = [{"id": ".."}, "not an object", {"id": uid("q"), "parent": "x" * 129}, {"id": 12}]
    response = await bulk(client, tokens, orjson.dumps(rows), "application/json")
    assert response.status_code == 422
    found = [(e["row"], e["type"]) for e in response.json()["errors"]]
    assert found == [(2, "invalid-id"), (3, "invalid-body"), (4, "invalid-id"), (5, "invalid-id")]
    for org in ids:
        assert not await exists(client, tokens, org)


async def test_bulk_parent_missing_everywhere(client, tokens, uid):
    pairs, ids = tree(uid)
    orphan = uid("orphan")
    response = await bulk(client, tokens, as_json([*pairs, (orphan, uid("ghost"))]), "application/json")
    assert response.status_code == 422
    assert [(e["row"], e["id"], e["type"]) for e in response.json()["errors"]] == [(5, orphan, "parent-not-found")]
    for org in (*ids, orphan):
        assert not await exists(client, tokens, org)


async def test_bulk_cycle_inside_the_request(client, tokens, uid):
    a, b, c, fine = uid("a"), uid("b"), uid("c"), uid("fine")
    response = await bulk(client, tokens, as_csv([(fine, None), (a, b), (b, c), (c, a)]), "text/csv")
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["row"], e["id"], e["type"]) for e in errors] == [(2, a, "cycle"), (3, b, "cycle"), (4, c, "cycle")]
    for org in (a, b, c, fine):
        assert not await exists(client, tokens, org)


async def test_bulk_duplicate_id_with_two_parents(client, tokens, uid):
    p, q, x = uid("p"), uid("q"), uid("x")
    response = await bulk(client, tokens, as_ndjson([(p, None), (x, p), (q, None), (x, q)]), "application/x-ndjson")
    assert response.status_code == 422
    assert [(e["row"], e["id"], e["type"]) for e in response.json()["errors"]] == [(4, x, "org-conflict")]
    for org in (p, q, x):
        assert not await exists(client, tokens, org)


async def test_bulk_existing_org_under_another_parent(client, tokens, uid, make_orgs):
    p, q, x, new = uid("p"), uid("q"), uid("x"), uid("new")
    await make_orgs([(p, None), (q, None), (x, p)])
    response = await bulk(client, tokens, as_json([(new, q), (x, q)]), "application/json")
    assert response.status_code == 422
    assert [(e["row"], e["id"], e["type"]) for e in response.json()["errors"]] == [(2, x, "org-conflict")]
    assert not await exists(client, tokens, new)
    assert (await get_org(client, tokens, x)).json()["parent"] == p


@pytest.mark.parametrize(
    "csv", [b"id\nsome-org\n", b"parent\nsome-org\n", b"org,parent\na,b\n", b"", b"id,parent,extra\na,,\n"]
)
async def test_bulk_csv_without_the_id_parent_header_is_invalid_body(client, tokens, csv):
    response = await bulk(client, tokens, csv, "text/csv")
    assert response.status_code == 400, response.text
    assert slug(response) == "invalid-body"


async def test_bulk_csv_with_a_wrong_field_count(client, tokens, uid):
    root, child = uid("root"), uid("child")
    body = f"id,parent\n{root},\n{child},{root},surplus\n{uid('alone')}\n".encode()
    response = await bulk(client, tokens, body, "text/csv")
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["row"], e["type"]) for e in errors] == [(2, "invalid-body"), (3, "invalid-body")]
    assert not await exists(client, tokens, root)


async def test_bulk_ndjson_with_an_unreadable_line(client, tokens, uid):
    root = uid("root")
    body = orjson.dumps({"id": root}) + b"\n{oops\n"
    response = await bulk(client, tokens, body, "application/x-ndjson")
    assert response.status_code == 422
    assert [(e["row"], e["type"]) for e in response.json()["errors"]] == [(2, "invalid-body")]
    assert not await exists(client, tokens, root)


@pytest.mark.parametrize("body", [b"[{", b'{"id": "a"}', b"nope", b""])
async def test_bulk_malformed_json_is_invalid_body(client, tokens, body):
    response = await bulk(client, tokens, body, "application/json")
    assert response.status_code == 400, response.text
    assert slug(response) == "invalid-body"


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain", "application/x-www-form-urlencoded"])
async def test_bulk_unsupported_content_type_is_415(client, tokens, uid, content_type):
    root = uid("root")
    response = await bulk(client, tokens, as_json([(root, None)]), content_type)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["status"] == 415
    assert not await exists(client, tokens, root)


async def test_bulk_body_over_the_limit_is_413(client, tokens, uid):
    root = uid("root")
    limit = 4 * 1024 * 1024
    body = b'[{"id": "' + root.encode() + b'"}' + b" " * limit + b"]"
    response = await bulk(client, tokens, body, "application/json")
    assert response.status_code == 413, response.text
    assert slug(response) == "payload-too-large"
    assert not await exists(client, tokens, root)


async def test_bulk_streamed_body_over_the_limit_is_413(client, tokens, uid):
    """No Content-Length (chunked): the limit holds while the body is read."""
    root = uid("root")

    async def chunks():
        yield b'[{"id": "' + root.encode() + b'"}'
        for _ in range(5):
            yield b" " * (1024 * 1024)
        yield b"]"

    response = await client.post(
        "/v1/orgs/bulk", content=chunks(), headers={**tokens.admin(), "Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert slug(response) == "payload-too-large"
    assert not await exists(client, tokens, root)


async def test_bulk_body_just_under_the_limit_is_read(client, tokens, uid):
    root = uid("root")
    head = b'[{"id": "' + root.encode() + b'"}'
    body = head + b" " * (4 * 1024 * 1024 - len(head) - 1) + b"]"
    assert len(body) == 4 * 1024 * 1024
    response = await bulk(client, tokens, body, "application/json")
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 1, "unchanged": 0}


async def test_bulk_lists_at_most_100_errors(client, tokens, uid):
    good = uid("good")
    rows = [{"id": good}] + [{"id": f"bad id {n}"} for n in range(150)]
    response = await bulk(client, tokens, orjson.dumps(rows), "application/json")
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert len(errors) == 100
    assert [e["row"] for e in errors] == list(range(2, 102))
    assert "150" in response.json()["detail"]
    assert not await exists(client, tokens, good)


async def test_bulk_more_than_100_graph_errors_lists_100(client, tokens, uid):
    ghost = uid("ghost")
    rows = [(uid(f"o{n}"), ghost) for n in range(120)]
    response = await bulk(client, tokens, as_csv(rows), "text/csv")
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert len(errors) == 100
    assert {e["type"] for e in errors} == {"parent-not-found"}
    assert [e["row"] for e in errors] == list(range(1, 101))
