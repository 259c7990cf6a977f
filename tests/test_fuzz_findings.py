"""What contract fuzzing found, pinned down: each of these once answered a 500 or broke the document."""

from __future__ import annotations


async def test_a_csv_line_with_a_stray_carriage_return_is_a_row_error_not_a_500(client, tokens, uid):
    good = uid("good")
    body = f"id,parent\n{uid('bad')}\rx,\n{good},\n".encode()
    response = await client.post("/v1/orgs/bulk", content=body, headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [(error["row"], error["type"]) for error in response.json()["errors"]] == [(1, "invalid-body")]
    # Nothing was written, the good row included.
    assert (await client.get(f"/v1/orgs/{good}", headers=tokens.admin())).status_code == 404


async def test_a_csv_header_with_a_stray_carriage_return_is_refused_as_a_body(client, tokens):
    response = await client.post(
        "/v1/orgs/bulk", content=b"i\rd,parent\na,\n", headers={**tokens.admin(), "Content-Type": "text/csv"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["type"].endswith("/invalid-body")


async def test_405_names_every_method_of_the_path(client, tokens):
    response = await client.request("OPTIONS", "/v1/orgs/acme/flags/beta", headers=tokens.admin())
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PUT", "DELETE"}
    response = await client.request("OPTIONS", "/v1/orgs/acme", headers=tokens.admin())
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH"}


async def test_a_malformed_after_is_refused_even_with_last_event_id(client, tokens):
    response = await client.get("/v1/changes?after=null", headers={**tokens.admin(), "Last-Event-ID": "0"})
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/invalid-query")


async def test_an_empty_last_event_id_is_refused(client, tokens):
    response = await client.get("/v1/changes", headers={**tokens.admin(), "Last-Event-ID": ""})
    assert response.status_code == 422, response.text


async def test_audit_since_with_an_offset_neo4j_does_not_take_is_answered(client, tokens, uid):
    """Python takes offsets up to 24 h, Neo4j only 18 h: `since` went to Cypher as it came (500)."""
    root = uid("root")
    assert (await client.post("/v1/orgs", json={"id": root}, headers=tokens.admin())).status_code == 201
    for since, seen in [
        ("0216-03-06T11:38:12.66-19:43", True),
        ("2000-01-01T00:00:00+23:59", True),
        ("0001-01-01T00:00:00+05:00", True),
        ("9999-12-31T23:59:59-05:00", False),
    ]:
        response = await client.get("/v1/audit", params={"org": root, "since": since}, headers=tokens.admin())
        assert response.status_code == 200, (since, response.text)
        assert bool(response.json()["events"]) is seen, since
