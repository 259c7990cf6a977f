"""Authentication, roles, tenant scoping and the order of checks (docs/api.md, "Authentication and authorization")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import multiprocessing
import time
from pathlib import Path

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from app.auth.tokens import load_dev_key
from app.http.app import create_app

PROBLEM = "application/problem+json"


def expect_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"].endswith(f"/{slug}"), body
    assert body["status"] == status
    return body


def expect_401(response) -> None:
    expect_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer"), response.headers


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else orjson.dumps(data)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_for(settings, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "mallory",
        "iat": now,
        "exp": now + 600,
        "roles": ["admin"],
        "orgs": ["*"],
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- 401


def bad_tokens(tokens) -> dict[str, dict[str, str]]:
    settings = tokens.settings
    dev_key = load_dev_key(settings.jwt_dev_key_file)
    other_key = OctKey.generate_key(256)
    return {
        "missing header": {},
        "empty header": {"Authorization": ""},
        "non-bearer scheme": {"Authorization": f"Basic {base64.b64encode(b'admin:admin').decode()}"},
        "token scheme": {"Authorization": f"Token {tokens.mint('admin')}"},
        "bearer without token": {"Authorization": "Bearer "},
        "garbage": bearer("not-a-jwt"),
        "garbage with dots": bearer("a.b.c"),
        "truncated": bearer(tokens.mint("admin").rsplit(".", 1)[0]),
        "expired": bearer(tokens.mint("admin", ttl=-1)),
        "expires now": bearer(tokens.mint("admin", ttl=0)),
        "wrong signature": bearer(jwt.encode({"alg": "HS256"}, claims_for(settings), other_key)),
        "tampered claims": bearer(
            ".".join(
                [tokens.mint("reader").split(".")[0], b64(claims_for(settings)), tokens.mint("reader").split(".")[2]]
            )
        ),
        "alg none": bearer(f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims_for(settings))}."),
        "alg None": bearer(f"{b64({'alg': 'None'})}.{b64(claims_for(settings))}."),
        "wrong issuer": bearer(tokens.mint("admin", iss="https://evil.example")),
        "wrong audience": bearer(tokens.mint("admin", aud="someone-else")),
        "missing sub": bearer(jwt.encode({"alg": "HS256"}, claims_for(settings, sub=None), dev_key)),
        "missing exp": bearer(jwt.encode({"alg": "HS256"}, claims_for(settings, exp=None), dev_key)),
        "missing iss": bearer(jwt.encode({"alg": "HS256"}, claims_for(settings, iss=None), dev_key)),
        "missing aud": bearer(jwt.encode({"alg": "HS256"}, claims_for(settings, aud=None), dev_key)),
        "asymmetric alg on the dev instance": bearer(
            jwt.encode({"alg": "RS256"}, claims_for(settings), RSAKey.generate_key(2048))
        ),
    }


BAD_TOKEN_CASES = [
    "missing header",
    "empty header",
    "non-bearer scheme",
    "token scheme",
    "bearer without token",
    "garbage",
    "garbage with dots",
    "truncated",
    "expired",
    "expires now",
    "wrong signature",
    "tampered claims",
    "alg none",
    "alg None",
    "wrong issuer",
    "wrong audience",
    "missing sub",
    "missing exp",
    "missing iss",
    "missing aud",
    "asymmetric alg on the dev instance",
]


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
async def test_bad_tokens_get_401_with_a_bearer_challenge(client, tokens, case):
    headers = bad_tokens(tokens)[case]
    expect_401(await client.get("/v1/flags", headers=headers))


@pytest.mark.parametrize("case", ["missing header", "expired", "alg none", "wrong signature"])
async def test_bad_tokens_cannot_write(client, tokens, chain6, case):
    headers = bad_tokens(tokens)[case]
    expect_401(await client.put(f"/v1/orgs/{chain6[2]}/flags/beta", json={"value": True}, headers=headers))
    expect_401(await client.post(f"/{chain6[2]}/beta/true", headers=headers))
    expect_401(await client.post("/v1/orgs", json={"id": chain6[2] + "-x", "parent": chain6[2]}, headers=headers))
    value = await client.get(f"/v1/orgs/{chain6[2]}/flags/beta", headers=tokens.reader())
    assert value.json()["reason"] == "default"
    assert (await client.get(f"/v1/orgs/{chain6[2]}-x", headers=tokens.admin())).status_code == 404


async def test_a_valid_token_is_accepted_and_the_scheme_is_case_insensitive(client, tokens):
    token = tokens.mint("reader")
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = await client.get("/v1/flags", headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == 200, response.text


async def test_the_challenge_marks_invalid_tokens(client, tokens):
    missing = await client.get("/v1/flags")
    expired = await client.get("/v1/flags", headers=bearer(tokens.mint("admin", ttl=-1)))
    expect_401(missing)
    expect_401(expired)
    assert "invalid_token" in expired.headers["www-authenticate"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/docs"])
async def test_open_endpoints_need_no_token(client, path):
    response = await client.get(path)
    assert response.status_code == 200, response.text
    if path == "/openapi.json":
        document = response.json()
        assert document["openapi"].startswith("3.")
        assert "/v1/orgs/{org}/flags/{flag}" in document["paths"]
    if path == "/docs":
        assert response.headers["content-type"].startswith("text/html")


# --------------------------------------------------------------------------- roles


async def test_reader_cannot_write(client, tokens, chain6):
    org = chain6[3]
    reader = tokens.reader()
    expect_problem(
        await client.put(f"/v1/orgs/{org}/flags/beta", json={"value": True}, headers=reader), 403, "forbidden"
    )
    expect_problem(await client.delete(f"/v1/orgs/{org}/flags/beta", headers=reader), 403, "forbidden")
    expect_problem(await client.post(f"/{org}/beta/true", headers=reader), 403, "forbidden")
    assert (await client.get(f"/v1/orgs/{org}/flags/beta", headers=reader)).json()["reason"] == "default"
    # what a reader may do
    for path in (
        f"/v1/orgs/{org}/flags/beta",
        f"/{org}/beta",
        f"/v1/orgs/{org}/flags/beta/explain",
        f"/v1/orgs/{org}/flags",
        f"/v1/orgs/{org}",
        "/v1/flags",
        "/v1/flags/beta",
    ):
        assert (await client.get(path, headers=reader)).status_code == 200, path


async def test_reader_clear_is_refused_and_keeps_the_value(client, tokens, chain6):
    org = chain6[3]
    await client.put(f"/v1/orgs/{org}/flags/beta", json={"value": True}, headers=tokens.writer())
    expect_problem(await client.delete(f"/v1/orgs/{org}/flags/beta", headers=tokens.reader()), 403, "forbidden")
    assert (await client.get(f"/v1/orgs/{org}/flags/beta", headers=tokens.reader())).json()["value"] is True


async def test_writer_cannot_administer(client, tokens, chain6, uid, settings_for):
    writer = tokens.writer()
    new = uid("new")
    expect_problem(
        await client.post("/v1/orgs", json={"id": new, "parent": chain6[0]}, headers=writer), 403, "forbidden"
    )
    expect_problem(
        await client.post("/v1/orgs/bulk", json=[{"id": new, "parent": chain6[0]}], headers=writer), 403, "forbidden"
    )
    expect_problem(
        await client.patch(f"/v1/orgs/{chain6[3]}", json={"parent": chain6[0]}, headers=writer), 403, "forbidden"
    )
    expect_problem(await client.get("/v1/audit", headers=writer), 403, "forbidden")
    expect_problem(await client.post("/v1/catalog/reload", headers=writer), 403, "forbidden")
    assert (await client.get(f"/v1/orgs/{new}", headers=tokens.admin())).status_code == 404
    assert (await client.get(f"/v1/orgs/{chain6[3]}", headers=writer)).json()["parent"] == chain6[2]
    # but writes values
    ok = await client.put(f"/v1/orgs/{chain6[3]}/flags/beta", json={"value": True}, headers=writer)
    assert ok.status_code == 200


async def test_reader_gets_403_on_admin_endpoints(client, tokens):
    expect_problem(await client.get("/v1/audit", headers=tokens.reader()), 403, "forbidden")
    expect_problem(await client.post("/v1/catalog/reload", headers=tokens.reader()), 403, "forbidden")


@pytest.mark.parametrize("roles", [[], ["superuser"], ["Admin"], "root", [None, 3]])
async def test_a_token_without_a_known_role_is_forbidden(client, tokens, chain6, roles):
    token = tokens.mint(None, roles=roles)
    for method, path in [
        ("GET", "/v1/flags"),
        ("GET", f"/v1/orgs/{chain6[1]}/flags/beta"),
        ("GET", f"/v1/orgs/{chain6[1]}"),
    ]:
        expect_problem(await client.request(method, path, headers=bearer(token)), 403, "forbidden")


async def test_roles_include_the_ones_before(client, tokens, chain6):
    admin = bearer(tokens.mint(None, roles=["admin"]))
    assert (await client.get(f"/v1/orgs/{chain6[1]}/flags/beta", headers=admin)).status_code == 200
    assert (
        await client.put(f"/v1/orgs/{chain6[1]}/flags/beta", json={"value": True}, headers=admin)
    ).status_code == 200
    several = bearer(tokens.mint(None, roles=["reader", "writer"]))
    assert (await client.delete(f"/v1/orgs/{chain6[1]}/flags/beta", headers=several)).status_code == 204


# --------------------------------------------------------------------------- tenant scoping


@pytest.fixture
async def tenants(uid, make_orgs):
    """top -> A -> a1 -> a2 -> a3 and top -> B -> b1: tokens scoped to A act below A only."""
    ids = {name: uid(name) for name in ("top", "A", "a1", "a2", "a3", "B", "b1")}
    await make_orgs(
        [
            (ids["top"], None),
            (ids["A"], ids["top"]),
            (ids["a1"], ids["A"]),
            (ids["a2"], ids["a1"]),
            (ids["a3"], ids["a2"]),
            (ids["B"], ids["top"]),
            (ids["b1"], ids["B"]),
        ]
    )
    ids["ghost"] = uid("ghost")  # well-formed, exists nowhere
    return ids


async def test_scoped_tokens_act_inside_their_subtree_at_depth(client, tokens, tenants):
    a3, A = tenants["a3"], tenants["A"]
    writer, reader = tokens.writer(A), tokens.reader(A)
    put = await client.put(f"/v1/orgs/{a3}/flags/retention-days", json={"value": 45}, headers=writer)
    assert put.status_code == 200, put.text
    seed = await client.post(f"/{tenants['a2']}/beta/true", headers=writer)
    assert seed.status_code == 200, seed.text
    got = await client.get(f"/v1/orgs/{a3}/flags/retention-days", headers=reader)
    assert got.json()["value"] == 45
    assert (await client.get(f"/{a3}/beta", headers=reader)).json()["source_org"] == tenants["a2"]
    explain = await client.get(f"/v1/orgs/{a3}/flags/beta/explain", headers=reader)
    assert explain.status_code == 200
    # the chain shows the ancestors outside the subtree too: that is how values reach it
    assert [link["org"] for link in explain.json()["chain"]] == [a3, tenants["a2"], tenants["a1"], A, tenants["top"]]
    assert (await client.get(f"/v1/orgs/{a3}/flags", headers=reader)).status_code == 200
    org = await client.get(f"/v1/orgs/{a3}", headers=reader)
    assert org.json()["ancestors"] == [tenants["a2"], tenants["a1"], A, tenants["top"]]
    assert (await client.get(f"/v1/orgs/{A}", headers=reader)).status_code == 200
    deleted = await client.delete(f"/v1/orgs/{a3}/flags/retention-days", headers=writer)
    assert deleted.status_code == 204


def scoped_requests(org: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", f"/v1/orgs/{org}/flags/beta", None),
        ("GET", f"/{org}/beta", None),
        ("PUT", f"/v1/orgs/{org}/flags/beta", {"value": True}),
        ("POST", f"/{org}/beta/true", None),
        ("DELETE", f"/v1/orgs/{org}/flags/beta", None),
        ("GET", f"/v1/orgs/{org}/flags/beta/explain", None),
        ("GET", f"/v1/orgs/{org}/flags", None),
        ("GET", f"/v1/orgs/{org}", None),
    ]


@pytest.mark.parametrize("index", range(8))
async def test_outside_the_subtree_is_403_whether_or_not_the_org_exists(client, tokens, tenants, index):
    A = tenants["A"]
    admin = tokens.admin(A)  # admin includes reader and writer: scope is the only obstacle
    answers = []
    for target in ("b1", "B", "top", "ghost"):
        method, path, body = scoped_requests(tenants[target])[index]
        response = await client.request(method, path, json=body, headers=admin)
        answers.append(expect_problem(response, 403, "forbidden"))
    # identical documents: a tenant cannot tell a foreign org from a missing one
    assert all(answer == answers[0] for answer in answers), answers
    for target in ("b1", "B", "top"):
        assert tenants[target] not in orjson.dumps(answers[0]).decode()
    assert (await client.get(f"/v1/orgs/{tenants['b1']}/flags/beta", headers=tokens.reader())).json()[
        "reason"
    ] == "default"


async def test_patch_outside_the_subtree_is_403_whether_or_not_the_org_exists(client, tokens, tenants):
    admin = tokens.admin(tenants["A"])
    cases = [
        (tenants["b1"], tenants["a1"]),  # foreign org into the subtree
        (tenants["ghost"], tenants["a1"]),  # missing org
        (tenants["a3"], tenants["b1"]),  # own org under a foreign parent
        (tenants["a3"], tenants["ghost"]),  # own org under a missing parent
        (tenants["a3"], tenants["top"]),  # own org above its subtree
    ]
    answers = []
    for org, parent in cases:
        response = await client.patch(f"/v1/orgs/{org}", json={"parent": parent}, headers=admin)
        answers.append(expect_problem(response, 403, "forbidden")["detail"])
    assert answers[0] == answers[1]
    assert answers[2] == answers[3] == answers[4]
    root = await client.patch(f"/v1/orgs/{tenants['a3']}", json={"parent": None}, headers=admin)
    expect_problem(root, 403, "forbidden")
    assert (await client.get(f"/v1/orgs/{tenants['a3']}", headers=tokens.admin())).json()["parent"] == tenants["a2"]
    assert (await client.get(f"/v1/orgs/{tenants['b1']}", headers=tokens.admin())).json()["parent"] == tenants["B"]
    # inside the subtree a scoped admin moves freely
    inside = await client.patch(f"/v1/orgs/{tenants['a3']}", json={"parent": tenants["A"]}, headers=admin)
    assert inside.status_code == 200, inside.text
    assert (await client.get(f"/v1/orgs/{tenants['a3']}", headers=admin)).json()["parent"] == tenants["A"]


async def test_scoped_admin_creates_inside_its_subtree_only(client, tokens, tenants, uid):
    admin = tokens.admin(tenants["A"])
    root, outside, ghostly, inside = uid("root"), uid("outside"), uid("ghostly"), uid("inside")
    expect_problem(await client.post("/v1/orgs", json={"id": root}, headers=admin), 403, "forbidden")
    expect_problem(
        await client.post("/v1/orgs", json={"id": outside, "parent": tenants["b1"]}, headers=admin), 403, "forbidden"
    )
    expect_problem(
        await client.post("/v1/orgs", json={"id": outside, "parent": tenants["top"]}, headers=admin), 403, "forbidden"
    )
    expect_problem(
        await client.post("/v1/orgs", json={"id": ghostly, "parent": tenants["ghost"]}, headers=admin), 403, "forbidden"
    )
    created = await client.post("/v1/orgs", json={"id": inside, "parent": tenants["a3"]}, headers=admin)
    assert created.status_code == 201, created.text
    for org in (root, outside, ghostly):
        assert (await client.get(f"/v1/orgs/{org}", headers=tokens.admin())).status_code == 404
    assert (await client.get(f"/v1/orgs/{inside}", headers=admin)).json()["parent"] == tenants["a3"]


async def test_scoped_bulk_with_one_row_outside_is_refused_whole(client, tokens, tenants, uid):
    admin = tokens.admin(tenants["A"])
    good1, good2, bad = uid("good1"), uid("good2"), uid("bad")
    rows = [
        {"id": good2, "parent": good1},
        {"id": good1, "parent": tenants["a1"]},
        {"id": bad, "parent": tenants["b1"]},
    ]
    expect_problem(await client.post("/v1/orgs/bulk", json=rows, headers=admin), 403, "forbidden")
    as_root = [{"id": good1, "parent": tenants["a1"]}, {"id": bad}]
    expect_problem(await client.post("/v1/orgs/bulk", json=as_root, headers=admin), 403, "forbidden")
    for org in (good1, good2, bad):
        assert (await client.get(f"/v1/orgs/{org}", headers=tokens.admin())).status_code == 404
    ok = await client.post("/v1/orgs/bulk", json=rows[:2], headers=admin)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"created": 2, "unchanged": 0}
    assert (await client.get(f"/v1/orgs/{good2}", headers=admin)).json()["ancestors"][:2] == [good1, tenants["a1"]]


async def test_creating_an_id_of_another_tenant_is_only_a_conflict(client, tokens, tenants):
    admin = tokens.admin(tenants["A"])
    single = await client.post("/v1/orgs", json={"id": tenants["b1"], "parent": tenants["a1"]}, headers=admin)
    body = expect_problem(single, 409, "org-conflict")
    assert tenants["B"] not in single.text and tenants["top"] not in single.text
    assert set(body) == {"type", "title", "status", "detail"}
    in_bulk = await client.post("/v1/orgs/bulk", json=[{"id": tenants["b1"], "parent": tenants["a2"]}], headers=admin)
    expect_problem(in_bulk, 422, "invalid-rows")
    assert [(e["row"], e["type"]) for e in in_bulk.json()["errors"]] == [(1, "org-conflict")]
    assert tenants["B"] not in in_bulk.text
    assert (await client.get(f"/v1/orgs/{tenants['b1']}", headers=tokens.admin())).json()["parent"] == tenants["B"]


async def test_a_token_for_several_subtrees(client, tokens, tenants):
    both = tokens.writer(tenants["a2"], tenants["b1"])
    for org in ("a3", "b1"):
        response = await client.put(f"/v1/orgs/{tenants[org]}/flags/beta", json={"value": True}, headers=both)
        assert response.status_code == 200, response.text
    expect_problem(await client.get(f"/v1/orgs/{tenants['a1']}/flags/beta", headers=both), 403, "forbidden")


async def test_a_token_without_orgs_reaches_nothing(client, tokens, tenants):
    token = tokens.mint("admin", orgs=[])
    expect_problem(await client.get(f"/v1/orgs/{tenants['a1']}", headers=bearer(token)), 403, "forbidden")


# --------------------------------------------------------------------------- order of checks


async def test_check_order(client, tokens, tenants, chain6):
    A, b1, ghost, a3 = tenants["A"], tenants["b1"], tenants["ghost"], tenants["a3"]
    bad_id = "bad%20id"
    # 401 before everything
    expect_401(await client.put(f"/v1/orgs/{bad_id}/flags/beta", json={"value": True}))
    # 403 role before 422 validation
    expect_problem(
        await client.put(f"/v1/orgs/{bad_id}/flags/beta", json={"value": True}, headers=tokens.reader()),
        403,
        "forbidden",
    )
    expect_problem(await client.post("/v1/orgs", json={"id": "bad id"}, headers=tokens.writer()), 403, "forbidden")
    # 422 validation before 403 scope
    expect_problem(
        await client.put(f"/v1/orgs/{bad_id}/flags/beta", json={"value": True}, headers=tokens.writer(A)),
        422,
        "invalid-id",
    )
    expect_problem(
        await client.put(f"/v1/orgs/{b1}/flags/Bad_Flag", json={"value": True}, headers=tokens.writer(A)),
        422,
        "invalid-id",
    )
    expect_problem(
        await client.put(f"/v1/orgs/{b1}/flags/beta", json={"value": "yes"}, headers=tokens.writer(A)),
        422,
        "invalid-value",
    )
    expect_problem(
        await client.put(f"/v1/orgs/{b1}/flags/beta", content=b"{oops", headers=tokens.writer(A)), 400, "invalid-body"
    )
    expect_problem(
        await client.post("/v1/orgs", json={"id": "bad id", "parent": b1}, headers=tokens.admin(A)), 422, "invalid-id"
    )
    expect_problem(await client.get(f"/v1/orgs/{bad_id}", headers=tokens.reader(A)), 422, "invalid-id")
    # 403 scope before 404 existence, for an org that exists elsewhere and one that exists nowhere
    for org in (b1, ghost):
        expect_problem(
            await client.put(f"/v1/orgs/{org}/flags/no-such-flag", json={"value": True}, headers=tokens.writer(A)),
            403,
            "forbidden",
        )
        expect_problem(
            await client.get(f"/v1/orgs/{org}/flags/no-such-flag", headers=tokens.reader(A)), 403, "forbidden"
        )
        expect_problem(
            await client.delete(f"/v1/orgs/{org}/flags/no-such-flag", headers=tokens.writer(A)), 403, "forbidden"
        )
    # 404 existence for a '*' token, and for an org inside the scope
    expect_problem(
        await client.put(f"/v1/orgs/{ghost}/flags/beta", json={"value": True}, headers=tokens.writer()),
        404,
        "org-not-found",
    )
    expect_problem(await client.get(f"/v1/orgs/{ghost}/flags/beta", headers=tokens.reader()), 404, "org-not-found")
    expect_problem(
        await client.put(f"/v1/orgs/{a3}/flags/no-such-flag", json={"value": True}, headers=tokens.writer(A)),
        404,
        "flag-not-found",
    )
    expect_problem(
        await client.get(f"/v1/orgs/{chain6[1]}/flags/no-such-flag", headers=tokens.reader()), 404, "flag-not-found"
    )
    # 409 last
    expect_problem(await client.patch(f"/v1/orgs/{A}", json={"parent": a3}, headers=tokens.admin(A)), 409, "cycle")
    expect_problem(
        await client.post("/v1/orgs", json={"id": b1, "parent": a3}, headers=tokens.admin(A)), 409, "org-conflict"
    )


async def test_body_size_is_checked_before_scope_and_after_role(client, tokens, tenants):
    huge = b'{"value": true' + b" " * (4 * 1024 * 1024) + b"}"
    headers = {"Content-Type": "application/json"}
    b1 = tenants["b1"]
    expect_401(await client.put(f"/v1/orgs/{b1}/flags/beta", content=huge, headers=headers))
    expect_problem(
        await client.put(f"/v1/orgs/{b1}/flags/beta", content=huge, headers={**headers, **tokens.reader()}),
        403,
        "forbidden",
    )
    expect_problem(
        await client.put(f"/v1/orgs/{b1}/flags/beta", content=huge, headers={**headers, **tokens.writer(tenants["A"])}),
        413,
        "payload-too-large",
    )


# --------------------------------------------------------------------------- JWKS (RS256 / ES256)


async def test_jwks_instance_accepts_rs256_and_es256_and_refuses_dev_tokens(
    client, tokens, settings_for, tmp_path, uid
):
    issuer, audience = "https://idp.example.test/", "graphflags-prod"
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(orjson.dumps({"keys": [rsa.as_dict(private=False), ec.as_dict(private=False)]}))
    assert "d" not in orjson.loads(jwks.read_bytes())["keys"][0]  # public keys only
    settings = settings_for(jwt_jwks_file=jwks, jwt_issuer=issuer, jwt_audience=audience)

    def signed(alg: str, kid: str, key, sub: str, **overrides) -> dict[str, str]:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            "roles": ["admin"],
            "orgs": ["*"],
            **overrides,
        }
        return bearer(jwt.encode({"alg": alg, "kid": kid}, claims, key, algorithms=[alg]))

    org = uid("jwks")
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://jwks.test") as other:
            rs = await other.get("/v1/flags", headers=signed("RS256", "rsa-1", rsa, "rs-reader"))
            assert rs.status_code == 200, rs.text
            created = await other.post("/v1/orgs", json={"id": org}, headers=signed("ES256", "ec-1", ec, "es-admin"))
            assert created.status_code == 201, created.text
            # refused: the development HS256 token, wrong issuer or audience, an unknown key, expiry
            expect_401(await other.get("/v1/flags", headers=tokens.admin()))
            expect_401(await other.get("/v1/flags", headers=signed("RS256", "rsa-1", rsa, "x", iss="graphflags-dev")))
            expect_401(await other.get("/v1/flags", headers=signed("ES256", "ec-1", ec, "x", aud="graphflags")))
            stranger = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
            expect_401(await other.get("/v1/flags", headers=signed("RS256", "rsa-1", stranger, "x")))
            expect_401(await other.get("/v1/flags", headers=signed("ES256", "ec-1", ec, "x", exp=int(time.time()) - 1)))
            unsigned = f"{b64({'alg': 'none', 'kid': 'rsa-1'})}.{b64({'iss': issuer, 'aud': audience, 'sub': 'x'})}."
            expect_401(await other.get("/v1/flags", headers=bearer(unsigned)))
            # an HS256 token whose secret is the RSA public key (algorithm confusion)
            # (built by hand: joserfc itself refuses to use a public key as an HMAC secret)
            signing_input = ".".join(
                [
                    b64({"alg": "HS256", "kid": "rsa-1"}),
                    b64(
                        {
                            "iss": issuer,
                            "aud": audience,
                            "sub": "x",
                            "exp": int(time.time()) + 60,
                            "roles": ["admin"],
                            "orgs": ["*"],
                        }
                    ),
                ]
            )
            mac = hmac.new(rsa.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
            confused = f"{signing_input}.{b64(mac)}"
            expect_401(await other.get("/v1/flags", headers=bearer(confused)))
    # the instance shared the database: the org exists, and its creator is the ES256 token's subject
    assert (await client.get(f"/v1/orgs/{org}", headers=tokens.reader())).status_code == 200
    events = (await client.get(f"/v1/audit?org={org}", headers=tokens.admin())).json()["events"]
    assert [(e["action"], e["actor"]) for e in events] == [("org.create", "es-admin")]


def _first_use_of_dev_key(path: Path, start, results) -> None:
    start.wait()
    try:
        results.put(load_dev_key(path).as_dict()["k"])
    except Exception as error:  # reported to the test, which names it
        results.put(f"failed: {error!r}")


def test_workers_starting_at_once_share_one_whole_dev_key(tmp_path):
    """`serve` with several workers: each creates the dev key if missing, all at the same moment.

    Every one must end with the same, complete key (a worker that read the file before the
    first had written it failed its startup, and uvicorn then stopped every worker).
    """
    context = multiprocessing.get_context("fork")
    for round_ in range(10):
        path = tmp_path / f"round-{round_}" / "dev-jwt.key"
        start, results = context.Barrier(6), context.Queue()
        workers = [context.Process(target=_first_use_of_dev_key, args=(path, start, results)) for _ in range(6)]
        for worker in workers:
            worker.start()
        keys = [results.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        assert len(set(keys)) == 1, keys
        assert keys[0] == load_dev_key(path).as_dict()["k"]
        assert path.stat().st_mode & 0o777 == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["dev-jwt.key"]  # no drafts left behind
