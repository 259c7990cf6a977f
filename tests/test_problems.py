"""Every problem type this service can answer here, as an RFC 9457 document (docs/api.md, "Problem types")."""

from __future__ import annotations

import httpx
import orjson
from asgi_lifespan import LifespanManager

from app.http.app import create_app


def check(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert isinstance(body["type"], str) and body["type"].endswith(f"/{slug}"), body["type"]
    assert body["type"].rsplit("/", 1)[-1] == slug
    assert isinstance(body["title"], str) and body["title"]
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def test_invalid_id(client, tokens):
    check(await client.get("/v1/orgs/not%20an%20id/flags/beta", headers=tokens.reader()), 422, "invalid-id")
    check(await client.get("/v1/orgs/acme/flags/NotAFlag", headers=tokens.reader()), 422, "invalid-id")


async def test_invalid_value(client, tokens, chain6):
    check(
        await client.put(f"/v1/orgs/{chain6[1]}/flags/retention-days", json={"value": 99999}, headers=tokens.writer()),
        422,
        "invalid-value",
    )


async def test_invalid_body(client, tokens, chain6):
    check(
        await client.put(f"/v1/orgs/{chain6[1]}/flags/beta", content=b"value=true", headers=tokens.writer()),
        400,
        "invalid-body",
    )
    check(
        await client.put(f"/v1/orgs/{chain6[1]}/flags/beta", json={"val": True}, headers=tokens.writer()),
        400,
        "invalid-body",
    )


async def test_org_not_found(client, tokens, uid):
    check(await client.get(f"/v1/orgs/{uid('ghost')}", headers=tokens.reader()), 404, "org-not-found")


async def test_flag_not_found(client, tokens, chain6):
    check(await client.get("/v1/flags/no-such-flag", headers=tokens.reader()), 404, "flag-not-found")
    check(await client.get(f"/v1/orgs/{chain6[0]}/flags/no-such-flag", headers=tokens.reader()), 404, "flag-not-found")


async def test_parent_not_found(client, tokens, uid):
    check(
        await client.post("/v1/orgs", json={"id": uid("child"), "parent": uid("ghost")}, headers=tokens.admin()),
        422,
        "parent-not-found",
    )


async def test_org_conflict(client, tokens, chain6):
    check(
        await client.post("/v1/orgs", json={"id": chain6[3], "parent": chain6[0]}, headers=tokens.admin()),
        409,
        "org-conflict",
    )


async def test_cycle(client, tokens, chain6):
    check(await client.patch(f"/v1/orgs/{chain6[1]}", json={"parent": chain6[5]}, headers=tokens.admin()), 409, "cycle")


async def test_unauthorized(client):
    response = await client.get("/v1/flags")
    check(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_forbidden(client, tokens, chain6):
    check(
        await client.put(f"/v1/orgs/{chain6[1]}/flags/beta", json={"value": True}, headers=tokens.reader()),
        403,
        "forbidden",
    )


async def test_payload_too_large(client, tokens, chain6):
    body = b'{"value": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    check(
        await client.put(f"/v1/orgs/{chain6[1]}/flags/banner", content=body, headers=tokens.writer()),
        413,
        "payload-too-large",
    )


async def test_unsupported_media_type(client, tokens, uid):
    check(
        await client.post(
            "/v1/orgs/bulk", content=b"<orgs/>", headers={**tokens.admin(), "Content-Type": "application/xml"}
        ),
        415,
        "unsupported-media-type",
    )


async def test_invalid_rows(client, tokens, uid):
    body = check(
        await client.post("/v1/orgs/bulk", json=[{"id": uid("ok")}, {"id": "no good"}], headers=tokens.admin()),
        422,
        "invalid-rows",
    )
    assert body["errors"] == [{"row": 2, "id": "no good", "type": "invalid-id", "detail": body["errors"][0]["detail"]}]


async def test_invalid_catalog(settings_for, tokens):
    settings = settings_for()
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://other.test") as other:
            settings.flags_file.write_bytes(orjson.dumps({"flags": {"x": {"type": "color", "default": "red"}}}))
            check(await other.post("/v1/catalog/reload", headers=tokens.admin()), 422, "invalid-catalog")


async def test_not_found_for_an_unknown_route(client, tokens):
    check(await client.get("/no-such-route", headers=tokens.admin()), 404, "not-found")
    check(await client.get("/no-such-route"), 404, "not-found")


async def test_method_not_allowed(client, tokens):
    response = await client.delete("/v1/flags", headers=tokens.admin())
    check(response, 405, "method-not-allowed")
    assert "GET" in response.headers["allow"]
    check(await client.post("/healthz"), 405, "method-not-allowed")
