"""docs/api.md "Limits": body sizes, 64-bit integers and hierarchy depth.

Every limit answers with a problem document, writes nothing, and holds up no other
request. The body tests that matter most go over a real socket (the `live_server`):
only there can a test send headers and a part of a body, and see the answer arrive
before the rest would have.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

PROBLEM = "application/problem+json"
SMALL = 64 * 1024  # OFREP, value writes, single org writes
BULK = 4 * 1024 * 1024  # max_body_bytes in the test settings (conftest)


def slug(response) -> str:
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    return response.json()["type"].rsplit("/", 1)[-1]


async def exists(client, tokens, org) -> bool:
    response = await client.get(f"/v1/orgs/{org}", headers=tokens.reader())
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


def padded(document: dict, size: int) -> bytes:
    """`document` as JSON, padded with inner whitespace to exactly `size` bytes."""
    raw = orjson.dumps(document)
    assert len(raw) <= size
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


async def raw_request(base_url: str, head: str, parts: list[bytes]) -> tuple[int, dict[str, str], bytes]:
    """Send a request's head and `parts` of its body, never the rest, and read the answer.

    The connection stays open with the body unfinished: an answer can only come from a
    server that decided without the rest of the body.
    """
    url = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n")
        for part in parts:
            writer.write(part)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), 30)) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 30)
        return status, headers, body
    finally:
        writer.close()


def head(method: str, path: str, token: str, extra: str, content_type: str = "application/json") -> str:
    return (
        f"{method} {path} HTTP/1.1\nHost: graphflags.test\nAuthorization: Bearer {token}\n"
        f"Content-Type: {content_type}\n{extra}\n"
    )


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.fixture(scope="module")
def small_routes():
    """The routes limited to 64 KiB, each with a method and a path (orgs made by the test)."""
    return lambda org: [
        ("POST", "/ofrep/v1/evaluate/flags/beta"),
        ("POST", "/ofrep/v1/evaluate/flags"),
        ("PUT", f"/v1/orgs/{org}/flags/beta"),
        ("POST", "/v1/orgs"),
        ("PATCH", f"/v1/orgs/{org}"),
    ]


# --------------------------------------------------------------------------- bodies


async def test_declared_length_over_the_limit_is_refused_before_the_body_is_read(
    live_server, tokens, uid, small_routes
):
    token = tokens.mint("admin")
    for method, path in small_routes(uid("org")):
        status, headers, body = await raw_request(
            live_server, head(method, path, token, f"Content-Length: {SMALL + 1}"), [b'{"co']
        )
        assert status == 413, (method, path, body)
        assert headers["content-type"].startswith(PROBLEM)
        assert orjson.loads(body)["type"].endswith("/payload-too-large")
    status, _, body = await raw_request(
        live_server, head("POST", "/v1/orgs/bulk", token, f"Content-Length: {BULK + 1}"), [b"[{"]
    )
    assert status == 413, body


async def test_a_declared_length_of_thousands_of_digits_is_413(live_server, tokens):
    # The head alone: the parser refuses it before any body. Body bytes sent after it would sit
    # unread when the server closes, and the kernel then resets the connection, answer and all.
    status, _, body = await raw_request(
        live_server, head("POST", "/v1/orgs/bulk", tokens.mint("admin"), "Content-Length: " + "9" * 5000), []
    )
    assert status in (400, 413), body


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(live_server, tokens, uid, small_routes):
    token = tokens.mint("admin")
    for method, path in small_routes(uid("org")):
        status, _, body = await raw_request(
            live_server, head(method, path, token, "Transfer-Encoding: chunked"), [chunk(b"{" + b" " * SMALL)]
        )
        assert status == 413, (method, path, body)
    status, _, body = await raw_request(
        live_server,
        head("POST", "/v1/orgs/bulk", token, "Transfer-Encoding: chunked"),
        [chunk(b"[" + b" " * (1024 * 1024)) for _ in range(5)],
    )
    assert status == 413, body


async def test_a_bulk_json_body_is_parsed_as_it_streams_in(live_server, tokens, uid):
    """A broken JSON array is refused from its first bad bytes, while the rest is still to come."""
    good = orjson.dumps({"id": uid("root")})
    status, _, body = await raw_request(
        live_server,
        head("POST", "/v1/orgs/bulk", tokens.mint("admin"), "Transfer-Encoding: chunked"),
        [chunk(b"[" + good + b", oops")],
    )
    assert status == 400, body
    assert orjson.loads(body)["type"].endswith("/invalid-body")


async def test_healthz_answers_while_a_bulk_body_streams_slowly(live_server, tokens, uid):
    root = uid("root")
    release = asyncio.Event()
    sent_first = asyncio.Event()

    async def slowly():
        yield b'[{"id": "' + root.encode() + b'"}'
        sent_first.set()
        await release.wait()
        # A bad last row: the answer comes once the body is read, with no database work.
        yield b', {"id": "no good"}]'

    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        loading = asyncio.create_task(
            http.post("/v1/orgs/bulk", content=slowly(), headers={**tokens.admin(), "Content-Type": "application/json"})
        )
        await sent_first.wait()
        health = await http.get("/healthz")
        assert health.status_code == 200
        assert not loading.done()  # the bulk request is still waiting on its own body
        release.set()
        response = await loading
        assert response.status_code == 422, response.text
        assert [(e["row"], e["type"]) for e in response.json()["errors"]] == [(2, "invalid-id")]


async def test_ofrep_body_of_64_kib_is_read_and_one_byte_more_is_413(client, tokens, chain6):
    org = chain6[1]
    for path in ("/ofrep/v1/evaluate/flags/beta", "/ofrep/v1/evaluate/flags"):
        fits = padded({"context": {"targetingKey": org}}, SMALL)
        assert (await client.post(path, content=fits, headers=tokens.reader())).status_code == 200
        over = await client.post(
            path, content=padded({"context": {"targetingKey": org}}, SMALL + 1), headers=tokens.reader()
        )
        assert over.status_code == 413, over.text
        assert slug(over) == "payload-too-large"


async def test_value_write_over_64_kib_is_413_and_writes_nothing(client, tokens, chain6):
    org = chain6[2]
    over = await client.put(
        f"/v1/orgs/{org}/flags/banner", content=padded({"value": "big"}, SMALL + 1), headers=tokens.writer()
    )
    assert over.status_code == 413, over.text
    assert slug(over) == "payload-too-large"
    value = await client.get(f"/v1/orgs/{org}/flags/banner", headers=tokens.reader())
    assert value.json()["reason"] != "own"
    fits = await client.put(
        f"/v1/orgs/{org}/flags/banner", content=padded({"value": "big"}, SMALL), headers=tokens.writer()
    )
    assert fits.status_code == 200, fits.text


async def test_org_writes_over_64_kib_are_413_and_write_nothing(client, tokens, uid):
    root, other, org = uid("root"), uid("other"), uid("org")
    for made in (root, other):
        assert (await client.post("/v1/orgs", json={"id": made}, headers=tokens.admin())).status_code == 201
    over = await client.post("/v1/orgs", content=padded({"id": org, "parent": root}, SMALL + 1), headers=tokens.admin())
    assert over.status_code == 413 and slug(over) == "payload-too-large"
    assert not await exists(client, tokens, org)
    fits = await client.post("/v1/orgs", content=padded({"id": org, "parent": root}, SMALL), headers=tokens.admin())
    assert fits.status_code == 201, fits.text
    moved = await client.patch(f"/v1/orgs/{org}", content=padded({"parent": other}, SMALL + 1), headers=tokens.admin())
    assert moved.status_code == 413 and slug(moved) == "payload-too-large"
    assert (await client.get(f"/v1/orgs/{org}", headers=tokens.reader())).json()["parent"] == root


async def test_bulk_bodies_are_fed_to_the_parser_in_bounded_slices(client, tokens, uid, monkeypatch):
    """A body that arrives as one large chunk is still parsed a bounded slice at a time, the
    event loop free between slices: no request waits on another's parsing for long."""
    from app.domain.org_rows import RowParser

    fed: list[int] = []
    original = RowParser.feed

    def counting(self, data):
        fed.append(len(data))
        return original(self, data)

    monkeypatch.setattr(RowParser, "feed", counting)
    # The last row is bad, so the whole body is read and parsed but nothing is written.
    rows = [{"id": uid(f"o{i}")} for i in range(20_000)] + [{"id": "no good"}]
    body = orjson.dumps(rows)
    assert len(body) > 4 * SMALL
    response = await client.post(
        "/v1/orgs/bulk", content=body, headers={**tokens.admin(), "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert sum(fed) == len(body)
    assert max(fed) <= SMALL


# --------------------------------------------------------------------------- integers

INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)


@pytest.fixture
async def unbounded(settings_for, tmp_path):
    """An app whose catalog has an integer flag without min or max, and a number flag.

    Names no other catalog uses: a value stored here must not make flags.json (which
    bounds checkout-timeout-s) refuse to load for a later test serving over this database.
    """
    from asgi_lifespan import LifespanManager

    from app.http.app import create_app

    catalog = tmp_path / "unbounded.json"
    catalog.write_bytes(
        orjson.dumps(
            {
                "flags": {
                    "unbounded-count": {"type": "integer", "default": 30},
                    "ratio": {"type": "number", "default": 1.5},
                }
            }
        )
    )
    application = create_app(settings_for(catalog))
    async with LifespanManager(application, startup_timeout=60):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://graphflags.test"
        ) as http:
            yield http


async def own_value(http, tokens, org, flag):
    response = await http.get(f"/v1/orgs/{org}/flags/{flag}", headers=tokens.reader())
    assert response.status_code == 200, response.text
    return response.json()["value"] if response.json()["reason"] == "own" else None


async def test_integers_outside_64_bits_in_a_path_are_422_and_write_nothing(unbounded, tokens, chain6):
    org = chain6[3]
    for text in ["9" * 5000, "-" + "9" * 5000, str(INT64_MAX + 1), str(INT64_MIN - 1), str(2**64)]:
        response = await unbounded.post(f"/{org}/unbounded-count/{text}", headers=tokens.writer())
        assert response.status_code == 422, (text[:30], response.text)
        assert slug(response) == "invalid-value"
        assert await own_value(unbounded, tokens, org, "unbounded-count") is None
    response = await unbounded.post(f"/{org}/ratio/{'9' * 5000}", headers=tokens.writer())
    assert response.status_code == 422 and slug(response) == "invalid-value"
    for fits in (INT64_MAX, INT64_MIN):
        response = await unbounded.post(f"/{org}/unbounded-count/{fits}", headers=tokens.writer())
        assert response.status_code == 200, response.text
        assert await own_value(unbounded, tokens, org, "unbounded-count") == fits


async def test_integers_outside_64_bits_in_a_body_are_refused_and_write_nothing(unbounded, tokens, chain6):
    org = chain6[4]
    path = f"/v1/orgs/{org}/flags/unbounded-count"
    for number, status, problem in [
        (INT64_MAX + 1, 422, "invalid-value"),
        (INT64_MIN - 1, 422, "invalid-value"),
        (2**64 - 1, 422, "invalid-value"),
        (2**64, 422, "invalid-value"),
        ("9" * 5000, 400, "invalid-body"),
        ("-" + "9" * 5000, 400, "invalid-body"),
    ]:
        body = b'{"value": ' + str(number).encode() + b"}"
        response = await unbounded.put(path, content=body, headers=tokens.writer())
        assert response.status_code == status, (str(number)[:30], response.text)
        assert slug(response) == problem
        assert await own_value(unbounded, tokens, org, "unbounded-count") is None
    for body in (b'{"value": 1e999}', b'{"value": ' + b"9" * 5000 + b"}"):
        response = await unbounded.put(f"/v1/orgs/{org}/flags/ratio", content=body, headers=tokens.writer())
        assert response.status_code == 400 and slug(response) == "invalid-body", response.text
    response = await unbounded.put(path, content=b'{"value": %d}' % INT64_MAX, headers=tokens.writer())
    assert response.status_code == 200, response.text
    assert await own_value(unbounded, tokens, org, "unbounded-count") == INT64_MAX


async def test_huge_numbers_in_ofrep_and_bulk_bodies_are_4xx(client, tokens, chain6, uid):
    huge = b"9" * 5000
    for path in ("/ofrep/v1/evaluate/flags/beta", "/ofrep/v1/evaluate/flags"):
        body = b'{"context": {"targetingKey": "' + chain6[0].encode() + b'", "n": ' + huge + b"}}"
        response = await client.post(path, content=body, headers=tokens.reader())
        assert response.status_code == 400, response.text
        assert response.json()["errorCode"] == "PARSE_ERROR"
    root = uid("root")
    response = await client.post(
        "/v1/orgs/bulk",
        content=b'[{"id": "' + root.encode() + b'", "n": ' + huge + b"}]",
        headers={**tokens.admin(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and slug(response) == "invalid-body", response.text
    ndjson = orjson.dumps({"id": root}) + b'\n{"id": "x", "n": ' + huge + b"}\n"
    response = await client.post(
        "/v1/orgs/bulk", content=ndjson, headers={**tokens.admin(), "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 422 and slug(response) == "invalid-rows", response.text
    assert [(e["row"], e["type"]) for e in response.json()["errors"]] == [(2, "invalid-body")]
    assert not await exists(client, tokens, root)


def test_catalog_integers_are_signed_64_bit():
    from app.domain.catalog import Catalog

    catalog = Catalog.parse(orjson.dumps({"flags": {"n": {"type": "integer", "default": 0}}}))
    flag = catalog.require("n")
    assert flag.check(INT64_MAX) == INT64_MAX and flag.check(INT64_MIN) == INT64_MIN
    for value in (INT64_MAX + 1, INT64_MIN - 1, 10**5000):
        with pytest.raises(Exception) as refused:
            flag.check(value)
        assert getattr(refused.value, "slug", None) == "invalid-value"
    for text in ("9" * 5000, str(INT64_MAX + 1)):
        with pytest.raises(Exception) as refused:
            flag.parse_path_value(text)
        assert getattr(refused.value, "slug", None) == "invalid-value"
    with pytest.raises(Exception) as refused:
        Catalog.parse(orjson.dumps({"flags": {"n": {"type": "integer", "default": 2**64 - 1}}}))
    assert getattr(refused.value, "slug", None) == "invalid-catalog"


# --------------------------------------------------------------------------- depth (GRAPHFLAGS_MAX_DEPTH 64)


async def bulk_rows(client, tokens, pairs):
    return await client.post(
        "/v1/orgs/bulk", json=[{"id": org, "parent": parent} for org, parent in pairs], headers=tokens.admin()
    )


def line(ids: list[str], under: str | None = None) -> list[tuple[str, str | None]]:
    return [(org, ids[i - 1] if i else under) for i, org in enumerate(ids)]


async def parent_of(client, tokens, org):
    response = await client.get(f"/v1/orgs/{org}", headers=tokens.reader())
    assert response.status_code == 200, response.text
    return response.json()["parent"]


async def test_an_org_64_levels_deep_is_created_and_65_is_too_deep(client, tokens, uid):
    ids = [uid(f"d{depth}") for depth in range(65)]  # the root at depth 0, the last at 64
    response = await bulk_rows(client, tokens, line(ids))
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 65
    deeper = uid("d65")
    refused = await client.post("/v1/orgs", json={"id": deeper, "parent": ids[64]}, headers=tokens.admin())
    assert refused.status_code == 422, refused.text
    assert slug(refused) == "too-deep"
    assert not await exists(client, tokens, deeper)
    beside = await client.post("/v1/orgs", json={"id": uid("beside"), "parent": ids[63]}, headers=tokens.admin())
    assert beside.status_code == 201, beside.text


async def test_bulk_rows_below_64_levels_are_too_deep_row_errors_and_nothing_is_written(client, tokens, uid):
    ids = [uid(f"d{depth}") for depth in range(66)]
    # Children first: depth follows the parents through the request, in any order.
    response = await bulk_rows(client, tokens, list(reversed(line(ids))))
    assert response.status_code == 422, response.text
    assert slug(response) == "invalid-rows"
    assert [(e["row"], e["id"], e["type"]) for e in response.json()["errors"]] == [(1, ids[65], "too-deep")]
    assert not await exists(client, tokens, ids[0])
    # Under an existing chain, the graph's depth counts too.
    assert (await bulk_rows(client, tokens, line(ids[:60]))).status_code == 200
    more = [uid(f"m{depth}") for depth in range(6)]  # depths 60..65
    response = await bulk_rows(client, tokens, line(more, under=ids[59]))
    assert response.status_code == 422, response.text
    assert [(e["row"], e["type"]) for e in response.json()["errors"]] == [(6, "too-deep")]
    assert not await exists(client, tokens, more[0])
    assert (await bulk_rows(client, tokens, line(more[:5], under=ids[59]))).status_code == 200


async def test_a_move_counts_the_moved_subtrees_height(client, tokens, uid):
    ids = [uid(f"d{depth}") for depth in range(61)]  # the last at depth 60
    low = [uid(f"low{depth}") for depth in range(5)]  # a subtree 4 levels tall
    for pairs in (line(ids), line(low)):
        assert (await bulk_rows(client, tokens, pairs)).status_code == 200
    refused = await client.patch(f"/v1/orgs/{low[0]}", json={"parent": ids[60]}, headers=tokens.admin())
    assert refused.status_code == 422, refused.text  # low[4] would sit at depth 65
    assert slug(refused) == "too-deep"
    assert await parent_of(client, tokens, low[0]) is None
    audit = await client.get("/v1/audit", params={"org": low[0]}, headers=tokens.admin())
    assert [event["action"] for event in audit.json()["events"]] == ["org.create"]
    moved = await client.patch(f"/v1/orgs/{low[0]}", json={"parent": ids[59]}, headers=tokens.admin())
    assert moved.status_code == 200, moved.text  # low[4] at depth 64
    assert await parent_of(client, tokens, low[0]) == ids[59]
    # A move under the deepest org allowed is refused for the org itself.
    leaf = uid("leaf")
    assert (await client.post("/v1/orgs", json={"id": leaf}, headers=tokens.admin())).status_code == 201
    refused = await client.patch(f"/v1/orgs/{leaf}", json={"parent": low[4]}, headers=tokens.admin())
    assert refused.status_code == 422 and slug(refused) == "too-deep"


async def test_non_ascii_digits_in_integer_query_parameters_are_422(client, tokens):
    """'²' and '١' are digits to str.isdigit() but not to int(): a 500 before."""
    for text in ("²", "١٢", "1²"):
        for path, params in [
            ("/v1/changes", {"after": text}),
            ("/v1/changes", {"limit": text}),
            ("/v1/audit", {"cursor": text}),
            ("/v1/audit", {"limit": text}),
        ]:
            response = await client.get(path, params=params, headers=tokens.admin())
            assert response.status_code == 422, (path, params, response.text)
            assert slug(response) == "invalid-query"
