"""The console's two reads against the real graph: an org's children page by page, and ids by prefix
(docs/api.md, "Organizations")."""

from __future__ import annotations

import pytest

from app.services import orgs as org_service

PROBLEM = "application/problem+json"


def slug(response) -> str:
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    return response.json()["type"].rsplit("/", 1)[-1]


async def children(client, headers, org, **query):
    return await client.get(f"/v1/orgs/{org}/children", params=query, headers=headers)


async def all_pages(client, headers, org, limit):
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}
        response = await children(client, headers, org, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["children"]) <= limit
        seen.extend(body["children"])
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return seen, pages


# --------------------------------------------------------------------------- children


async def test_children_come_sorted_by_id_with_their_own_child_counts(client, tokens, uid, make_orgs):
    root = uid("root")
    # Created out of order, with grandchildren under two of them.
    kids = [uid(name) for name in ("c", "a", "e", "b", "d")]
    await make_orgs(
        [(root, None), *((kid, root) for kid in kids), (uid("a1"), kids[1]), (uid("a2"), kids[1]), (uid("d1"), kids[4])]
    )
    response = await children(client, tokens.reader(), root)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "children": [
            {"id": uid("a"), "children": 2},
            {"id": uid("b"), "children": 0},
            {"id": uid("c"), "children": 0},
            {"id": uid("d"), "children": 1},
            {"id": uid("e"), "children": 0},
        ],
        "next": None,
    }
    leaf = await children(client, tokens.reader(), uid("a1"))
    assert leaf.json() == {"children": [], "next": None}


async def test_children_pages_cover_every_child_once_in_order(client, tokens, uid, make_orgs):
    root = uid("root")
    kids = [uid(f"k{n:02d}") for n in range(23)]
    await make_orgs([(root, None), *((kid, root) for kid in reversed(kids))])
    seen, pages = await all_pages(client, tokens.reader(root), root, limit=5)
    assert [child["id"] for child in seen] == kids
    assert pages == 5
    # A limit that divides the count exactly: the last full page says there is no next.
    exact, pages = await all_pages(client, tokens.reader(root), root, limit=23)
    assert len(exact) == 23 and pages == 1


async def test_children_default_limit_is_100(client, tokens, uid, make_orgs):
    root = uid("root")
    await make_orgs([(root, None), *((uid(f"k{n:03d}"), root) for n in range(101))])
    first = (await children(client, tokens.reader(), root)).json()
    assert len(first["children"]) == 100 and first["next"] is not None
    rest = (await children(client, tokens.reader(), root, cursor=first["next"])).json()
    assert rest == {"children": [{"id": uid("k100"), "children": 0}], "next": None}


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"limit": "-1"},
        {"cursor": "!!"},
        {"cursor": "Li4"},  # base64 of "..": no org id
        {"colour": "red"},
    ],
)
async def test_children_bad_queries_are_422(client, tokens, chain6, query):
    response = await children(client, tokens.reader(), chain6[0], **query)
    assert response.status_code == 422, response.text
    assert slug(response) == "invalid-query"


async def test_children_limit_1000_is_accepted(client, tokens, chain6):
    response = await children(client, tokens.reader(), chain6[0], limit="1000")
    assert response.status_code == 200
    assert response.json() == {"children": [{"id": chain6[1], "children": 1}], "next": None}


async def test_children_out_of_scope_is_403_whether_or_not_it_exists(client, tokens, uid, make_orgs):
    a, b = uid("a"), uid("b")
    await make_orgs([(a, None), (b, None), (uid("b1"), b)])
    scoped = tokens.reader(a)
    for org in (b, uid("missing")):
        response = await children(client, scoped, org)
        assert response.status_code == 403, response.text
        assert slug(response) == "forbidden"
    # Inside its scope, a missing org is a plain 404; a malformed id is a 422.
    assert slug(await children(client, tokens.reader(), uid("missing"))) == "org-not-found"
    assert slug(await children(client, tokens.reader(), "bad%20id")) == "invalid-id"
    assert (await children(client, scoped, a)).status_code == 200


async def test_children_need_a_token(client, chain6):
    response = await client.get(f"/v1/orgs/{chain6[0]}/children")
    assert response.status_code == 401


# --------------------------------------------------------------------------- prefix search


async def find(client, headers, **query):
    return await client.get("/v1/orgs", params=query, headers=headers)


async def test_prefix_search_answers_ids_in_order_up_to_the_limit(client, tokens, uid, make_orgs):
    root = uid("root")
    await make_orgs(
        [
            (root, None),
            (uid("shop-b"), root),
            (uid("shop-a"), root),
            (uid("shopper"), uid("shop-a")),
            (uid("store"), root),
        ]
    )
    response = await find(client, tokens.reader(), prefix=uid("shop"))
    assert response.status_code == 200, response.text
    assert response.json() == {"orgs": [uid("shop-a"), uid("shop-b"), uid("shopper")], "truncated": False}
    limited = (await find(client, tokens.reader(), prefix=uid("shop"), limit="2")).json()
    assert limited == {"orgs": [uid("shop-a"), uid("shop-b")], "truncated": True}
    assert (await find(client, tokens.reader(), prefix=uid("nothing"))).json() == {"orgs": [], "truncated": False}


async def test_prefix_search_default_limit_is_20(client, tokens, uid, make_orgs):
    root = uid("root")
    await make_orgs([(root, None), *((uid(f"k{n:02d}"), root) for n in range(25))])
    body = (await find(client, tokens.reader(), prefix=uid("k"))).json()
    assert body["orgs"] == [uid(f"k{n:02d}") for n in range(20)] and body["truncated"] is True
    everything = (await find(client, tokens.reader(), prefix=uid("k"), limit="100")).json()
    assert len(everything["orgs"]) == 25 and everything["truncated"] is False


async def test_prefix_search_keeps_to_the_callers_subtrees(client, tokens, uid, make_orgs):
    mine, theirs, other = uid("mine"), uid("theirs"), uid("other")
    await make_orgs(
        [
            (mine, None),
            (theirs, None),
            (other, None),
            (uid("x-1"), mine),
            (uid("x-2"), theirs),
            (uid("x-3"), mine),
            (uid("x-4"), uid("x-3")),
            (uid("x-5"), other),
        ]
    )
    scoped = (await find(client, tokens.reader(mine), prefix=uid("x"))).json()
    assert scoped == {"orgs": [uid("x-1"), uid("x-3"), uid("x-4")], "truncated": False}
    # A token for two subtrees sees both; a subtree root deep in the tree keeps only what is below it.
    two = (await find(client, tokens.reader(uid("x-3"), other), prefix=uid("x"))).json()
    assert two["orgs"] == [uid("x-3"), uid("x-4"), uid("x-5")]
    assert (await find(client, tokens.reader(mine), prefix=theirs)).json()["orgs"] == []
    unscoped = (await find(client, tokens.reader(), prefix=uid("x"))).json()
    assert unscoped["orgs"] == [uid(f"x-{n}") for n in range(1, 6)]


async def test_prefix_search_of_a_scoped_caller_fills_its_limit_across_scan_pages(
    client, tokens, uid, make_orgs, monkeypatch
):
    mine, theirs = uid("mine"), uid("theirs")
    # Other tenants' matches sort first and fill several scan pages before any of the caller's.
    await make_orgs(
        [
            (mine, None),
            (theirs, None),
            *((uid(f"p-a{n:02d}"), theirs) for n in range(12)),
            *((uid(f"p-b{n}"), mine) for n in range(3)),
        ]
    )
    monkeypatch.setattr(org_service, "FIND_PAGE", 5)
    body = (await find(client, tokens.reader(mine), prefix=uid("p-"), limit="2")).json()
    assert body == {"orgs": [uid("p-b0"), uid("p-b1")], "truncated": True}
    # The scan bound stops the search with what it has, and says so.
    monkeypatch.setattr(org_service, "FIND_SCAN", 10)
    bounded = (await find(client, tokens.reader(mine), prefix=uid("p-"), limit="2")).json()
    assert bounded == {"orgs": [], "truncated": True}


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "x"},
        {"prefix": "a b"},
        {"prefix": "x" * 129},
        {"prefix": "é"},
        {"org": "acme"},
    ],
)
async def test_prefix_search_bad_queries_are_422(client, tokens, query):
    response = await find(client, tokens.reader(), **query)
    assert response.status_code == 422, response.text
    assert slug(response) == "invalid-query"


async def test_prefix_search_needs_the_reader_role(client, tokens):
    assert (await find(client, {}, prefix="a")).status_code == 401
    response = await find(client, tokens.headers(None), prefix="a")
    assert response.status_code == 403 and slug(response) == "forbidden"


async def test_the_queries_seek_the_id_index(app, uid, make_orgs):
    """Bounded: the prefix search is a range seek on the unique id index, the children page starts from
    one index lookup and expands only that org's relationships (no label scan of all orgs)."""
    from app.store.cypher import cypher

    root = uid("root")
    await make_orgs([(root, None), (uid("k"), root)])
    db = app.state.services.db

    async def plan(statement: str, **params) -> str:
        async def explain(tx):
            result = await tx.run("EXPLAIN " + cypher(statement), params)
            summary = await result.consume()
            return str(summary.plan)

        return await db.read(explain)

    prefix_plan = await plan("orgs_by_prefix", low=root, high=root + "\x7f", scan=10, roots=[root])
    assert "NodeUniqueIndexSeekByRange" in prefix_plan, prefix_plan
    children_plan = await plan("org_children_page", org=root, after="", limit=10)
    assert "NodeUniqueIndexSeek" in children_plan, children_plan
    for text in (prefix_plan, children_plan):
        assert "NodeByLabelScan" not in text and "AllNodesScan" not in text
