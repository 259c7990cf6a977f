"""The flag catalog (docs/api.md, "Catalog"): reading it, reloading it, refusing bad ones, watching the file.

Reload tests run an extra app instance over its own copy of the catalog (Flag nodes are
shared in the database, so every flag these tests add has a name unique to the test).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from loguru import logger

from app.http.app import create_app

PROBLEM = "application/problem+json"
BASE = orjson.loads((Path(__file__).parent / "data" / "catalog.json").read_bytes())


def expect_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"].endswith(f"/{slug}"), body
    return body


def unique(name: str) -> str:
    return f"c{uuid.uuid4().hex[:10]}-{name}"


def catalog_with(**extra) -> dict:
    return {"flags": {**BASE["flags"], **extra}}


def write(path: Path, document: dict | bytes) -> None:
    path.write_bytes(document if isinstance(document, bytes) else orjson.dumps(document))


@contextlib.asynccontextmanager
async def instance(settings, startup_timeout: float = 60) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=startup_timeout, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://other.test") as http:
            yield http


@contextlib.contextmanager
def captured_warnings():
    """Messages of WARNING and above logged meanwhile (added after an instance reconfigured loguru)."""
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(message.record["message"]), level="WARNING")
    try:
        yield messages
    finally:
        logger.remove(sink)


@pytest.fixture
def own_catalog(settings_for, tmp_path):
    """Settings whose catalog file is the test catalog plus `extra` flags; edit settings.flags_file."""

    def build(extra: dict, **overrides):
        source = tmp_path / f"source-{uuid.uuid4().hex[:6]}.json"
        write(source, catalog_with(**extra))
        return settings_for(source, **overrides)

    return build


async def reload(http, tokens):
    return await http.post("/v1/catalog/reload", headers=tokens.admin())


async def flag_definition(http, tokens, name):
    return await http.get(f"/v1/flags/{name}", headers=tokens.reader())


# --------------------------------------------------------------------------- reading


async def test_list_flags_shows_the_catalog(client, tokens):
    response = await client.get("/v1/flags", headers=tokens.reader())
    assert response.status_code == 200
    flags = {flag["name"]: flag for flag in response.json()["flags"]}
    assert set(flags) == set(BASE["flags"])
    assert flags["dark-mode"] == {
        "name": "dark-mode",
        "type": "boolean",
        "default": False,
        "description": "Dark colour theme",
        "set": "ui",
    }
    assert flags["theme"]["allowed"] == ["light", "dark"]
    assert (flags["max-upload-mb"]["min"], flags["max-upload-mb"]["max"]) == (1, 1024)
    assert flags["max-upload-mb"]["default"] == 10.0
    assert flags["limits"]["default"] == {"seats": 5}
    for flag in flags.values():
        assert {"name", "type", "default", "description"} <= set(flag)


async def test_get_one_flag(client, tokens):
    response = await client.get("/v1/flags/retention-days", headers=tokens.reader())
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["type"], body["default"], body["min"], body["max"], body["set"]) == (
        "retention-days",
        "integer",
        30,
        1,
        3650,
        "storage",
    )


async def test_unknown_flag_is_flag_not_found(client, tokens):
    expect_problem(await client.get("/v1/flags/no-such-flag", headers=tokens.reader()), 404, "flag-not-found")


@pytest.mark.parametrize("name", ["Dark-Mode", "-lead", "_x", "x" * 129, "a%20b", "a:b", "%C3%A9"])
async def test_bad_flag_name_is_invalid_id(client, tokens, name):
    expect_problem(await client.get(f"/v1/flags/{name}", headers=tokens.reader()), 422, "invalid-id")


async def test_values_of_unknown_flags_are_flag_not_found(client, tokens, chain6):
    org, headers = chain6[2], tokens.admin()
    for method, path, body in [
        ("GET", f"/v1/orgs/{org}/flags/no-such-flag", None),
        ("GET", f"/{org}/no-such-flag", None),
        ("GET", f"/v1/orgs/{org}/flags/no-such-flag/explain", None),
        ("PUT", f"/v1/orgs/{org}/flags/no-such-flag", {"value": True}),
        ("DELETE", f"/v1/orgs/{org}/flags/no-such-flag", None),
        ("POST", f"/{org}/no-such-flag/true", None),
    ]:
        expect_problem(await client.request(method, path, json=body, headers=headers), 404, "flag-not-found")
    listed = await client.get(f"/v1/orgs/{org}/flags", headers=headers)
    assert "no-such-flag" not in listed.json()["flags"]


async def test_reload_of_the_unchanged_file(client, tokens):
    response = await reload(client, tokens)
    assert response.status_code == 200, response.text
    assert response.json() == {"flags": len(BASE["flags"])}


# --------------------------------------------------------------------------- reload


async def test_reload_puts_a_new_flag_in_force(own_catalog, tokens, uid, make_orgs):
    settings = own_catalog({})
    new = unique("new")
    org = uid("org")
    await make_orgs([(org, None)])
    async with instance(settings) as http:
        expect_problem(await flag_definition(http, tokens, new), 404, "flag-not-found")
        write(
            settings.flags_file,
            catalog_with(**{new: {"type": "integer", "default": 7, "set": "fresh", "description": "brand new"}}),
        )
        response = await reload(http, tokens)
        assert response.status_code == 200, response.text
        assert response.json() == {"flags": len(BASE["flags"]) + 1}
        definition = await flag_definition(http, tokens, new)
        assert definition.status_code == 200
        assert definition.json() == {
            "name": new,
            "type": "integer",
            "default": 7,
            "description": "brand new",
            "set": "fresh",
        }
        value = await http.get(f"/v1/orgs/{org}/flags/{new}", headers=tokens.reader())
        assert value.json() == {"org": org, "flag": new, "value": 7, "reason": "default", "source_org": None}
        put = await http.put(f"/v1/orgs/{org}/flags/{new}", json={"value": 9}, headers=tokens.writer())
        assert put.status_code == 200
        only = await http.get(f"/v1/orgs/{org}/flags?set=fresh", headers=tokens.reader())
        assert only.json()["flags"] == {new: {"value": 9, "reason": "own", "source_org": org}}


BAD_CATALOGS = {
    "not json": lambda name: b'{"flags": {',
    "empty file": lambda name: b"",
    "no flags key": lambda name: orjson.dumps({"flag": {}}),
    "bad type": lambda name: orjson.dumps(catalog_with(**{name: {"type": "float", "default": 1.0}})),
    "default above max": lambda name: orjson.dumps(
        catalog_with(**{name: {"type": "integer", "default": 50, "min": 1, "max": 10}})
    ),
    "default below min": lambda name: orjson.dumps(
        catalog_with(**{name: {"type": "number", "default": 0.5, "min": 1, "max": 10}})
    ),
    "default not allowed": lambda name: orjson.dumps(
        catalog_with(**{name: {"type": "string", "default": "x", "allowed": ["a"]}})
    ),
    "bad flag name": lambda name: orjson.dumps(catalog_with(**{name.upper(): {"type": "boolean", "default": True}})),
    "unknown key": lambda name: orjson.dumps(
        catalog_with(**{name: {"type": "boolean", "default": True, "colour": "red"}})
    ),
}


@pytest.mark.parametrize("case", BAD_CATALOGS)
async def test_an_invalid_catalog_is_refused_and_the_old_one_stays(own_catalog, tokens, case):
    keep = unique("keep")
    settings = own_catalog({keep: {"type": "integer", "default": 3, "min": 1, "max": 5}})
    bad = unique("bad")
    async with instance(settings) as http:
        before = (await http.get("/v1/flags", headers=tokens.reader())).json()
        write(settings.flags_file, BAD_CATALOGS[case](bad))
        with captured_warnings() as logged:
            response = await reload(http, tokens)
        body = expect_problem(response, 422, "invalid-catalog")
        assert body["detail"]
        # "the reason is logged"
        assert any(body["detail"] in message for message in logged), logged
        assert (await http.get("/v1/flags", headers=tokens.reader())).json() == before
        assert (await flag_definition(http, tokens, keep)).json()["default"] == 3
        assert (await flag_definition(http, tokens, bad)).status_code in (404, 422)
        ready = await http.get("/readyz")
        assert ready.status_code == 200


async def test_a_missing_file_is_refused_and_the_old_catalog_stays(own_catalog, tokens):
    keep = unique("keep")
    settings = own_catalog({keep: {"type": "boolean", "default": True}})
    async with instance(settings) as http:
        settings.flags_file.unlink()
        expect_problem(await reload(http, tokens), 422, "invalid-catalog")
        assert (await flag_definition(http, tokens, keep)).status_code == 200


async def test_reload_refuses_a_catalog_that_would_invalidate_stored_values(own_catalog, tokens, uid, make_orgs):
    theme, size = unique("theme"), unique("size")
    definitions = {
        theme: {"type": "string", "default": "light", "allowed": ["light", "dark"]},
        size: {"type": "number", "default": 10, "min": 1, "max": 100},
    }
    settings = own_catalog(definitions)
    org, other = uid("org"), uid("other")
    await make_orgs([(org, None), (other, None)])
    async with instance(settings) as http:
        assert (
            await http.put(f"/v1/orgs/{org}/flags/{theme}", json={"value": "dark"}, headers=tokens.writer())
        ).status_code == 200
        assert (
            await http.put(f"/v1/orgs/{org}/flags/{size}", json={"value": 80}, headers=tokens.writer())
        ).status_code == 200
        refusals = [
            {theme: {"type": "string", "default": "light", "allowed": ["light"]}},
            {theme: {"type": "boolean", "default": False}},
            {size: {"type": "number", "default": 10, "min": 1, "max": 50}},
            {size: {"type": "integer", "default": 10}},  # 80.0 is stored: a number, not an integer
            {size: {"type": "string", "default": "10"}},
        ]
        for change in refusals:
            write(settings.flags_file, catalog_with(**{**definitions, **change}))
            body = expect_problem(await reload(http, tokens), 422, "invalid-catalog")
            assert next(iter(change)) in body["detail"]
        # the old catalog is still in force: "dark" may still be written elsewhere
        still = await http.put(f"/v1/orgs/{other}/flags/{theme}", json={"value": "dark"}, headers=tokens.writer())
        assert still.status_code == 200, still.text
        assert (await flag_definition(http, tokens, theme)).json()["allowed"] == ["light", "dark"]
        assert (await flag_definition(http, tokens, size)).json()["max"] == 100
        value = await http.get(f"/v1/orgs/{org}/flags/{theme}", headers=tokens.reader())
        assert (value.json()["value"], value.json()["reason"]) == ("dark", "own")
        # a change the stored values survive is taken
        widened = {
            theme: {"type": "string", "default": "light", "allowed": ["light", "dark", "blue"]},
            size: {"type": "number", "default": 10, "min": 1, "max": 80},
        }
        write(settings.flags_file, catalog_with(**widened))
        assert (await reload(http, tokens)).status_code == 200
        assert (await flag_definition(http, tokens, theme)).json()["allowed"] == ["light", "dark", "blue"]
        # once the stored value is cleared, narrowing is fine
        for target in (org, other):
            assert (await http.delete(f"/v1/orgs/{target}/flags/{theme}", headers=tokens.writer())).status_code == 204
        write(settings.flags_file, catalog_with(**{**widened, theme: refusals[0][theme]}))
        assert (await reload(http, tokens)).status_code == 200, "no stored value is in the way any more"
        expect_problem(
            await http.put(f"/v1/orgs/{org}/flags/{theme}", json={"value": "dark"}, headers=tokens.writer()),
            422,
            "invalid-value",
        )


async def test_removed_flag_is_404_and_its_values_come_back(own_catalog, tokens, uid, make_orgs):
    gone = unique("gone")
    definition = {gone: {"type": "string", "default": "none"}}
    settings = own_catalog(definition)
    root, leaf = uid("root"), uid("leaf")
    await make_orgs([(root, None), (leaf, root)])
    async with instance(settings) as http:
        assert (
            await http.put(f"/v1/orgs/{root}/flags/{gone}", json={"value": "kept"}, headers=tokens.writer())
        ).status_code == 200

        write(settings.flags_file, catalog_with())
        assert (await reload(http, tokens)).json() == {"flags": len(BASE["flags"])}
        expect_problem(await flag_definition(http, tokens, gone), 404, "flag-not-found")
        expect_problem(await http.get(f"/v1/orgs/{leaf}/flags/{gone}", headers=tokens.reader()), 404, "flag-not-found")
        expect_problem(
            await http.put(f"/v1/orgs/{leaf}/flags/{gone}", json={"value": "x"}, headers=tokens.writer()),
            404,
            "flag-not-found",
        )
        expect_problem(
            await http.delete(f"/v1/orgs/{root}/flags/{gone}", headers=tokens.writer()), 404, "flag-not-found"
        )
        listed = await http.get(f"/v1/orgs/{leaf}/flags", headers=tokens.reader())
        assert gone not in listed.json()["flags"]
        assert gone not in {f["name"] for f in (await http.get("/v1/flags", headers=tokens.reader())).json()["flags"]}

        write(settings.flags_file, catalog_with(**definition))
        assert (await reload(http, tokens)).status_code == 200
        back = await http.get(f"/v1/orgs/{leaf}/flags/{gone}", headers=tokens.reader())
        assert back.json() == {"org": leaf, "flag": gone, "value": "kept", "reason": "inherited", "source_org": root}


async def test_a_removed_flag_cannot_come_back_incompatible_with_its_stored_values(own_catalog, tokens, uid, make_orgs):
    gone = unique("gone")
    definition = {gone: {"type": "integer", "default": 1}}
    settings = own_catalog(definition)
    org = uid("org")
    await make_orgs([(org, None)])
    async with instance(settings) as http:
        assert (
            await http.put(f"/v1/orgs/{org}/flags/{gone}", json={"value": 500}, headers=tokens.writer())
        ).status_code == 200
        write(settings.flags_file, catalog_with())
        assert (await reload(http, tokens)).status_code == 200
        write(settings.flags_file, catalog_with(**{gone: {"type": "integer", "default": 1, "max": 100}}))
        expect_problem(await reload(http, tokens), 422, "invalid-catalog")
        expect_problem(await flag_definition(http, tokens, gone), 404, "flag-not-found")


async def test_the_watcher_picks_up_a_changed_file(own_catalog, tokens):
    settings = own_catalog({}, watch_catalog=True)
    first, second = unique("watched1"), unique("watched2")

    async def appears(http, name) -> bool:
        for _ in range(100):
            if (await flag_definition(http, tokens, name)).status_code == 200:
                return True
            await asyncio.sleep(0.1)
        return False

    async with instance(settings) as http:
        await asyncio.sleep(0.3)  # let the watcher start watching
        write(settings.flags_file, catalog_with(**{first: {"type": "boolean", "default": True}}))
        assert await appears(http, first), "the watcher did not load the changed file within 10 s"
        # a broken file is refused and the watcher carries on with the next change
        write(settings.flags_file, b'{"flags": {"broken": ')
        await asyncio.sleep(0.5)
        assert (await flag_definition(http, tokens, first)).status_code == 200
        replacement = settings.flags_file.with_suffix(".tmp")
        write(
            replacement,
            catalog_with(**{first: {"type": "boolean", "default": True}, second: {"type": "string", "default": "hi"}}),
        )
        replacement.replace(settings.flags_file)  # the way editors save: rename over the file
        assert await appears(http, second), "the watcher did not load the renamed-over file within 10 s"
        assert (await flag_definition(http, tokens, first)).json()["default"] is True


async def test_a_catalog_of_100000_flags_loads(settings_for, tokens, tmp_path, uid, make_orgs):
    prefix = f"c{uuid.uuid4().hex[:8]}"
    generated = 100_000 - len(BASE["flags"])
    flags = dict(BASE["flags"])
    for n in range(generated):
        kind = n % 4
        name = f"{prefix}-f{n:06d}"
        if kind == 0:
            flags[name] = {"type": "boolean", "default": False, "set": f"s{n % 50}"}
        elif kind == 1:
            flags[name] = {"type": "integer", "default": n, "min": 0, "set": f"s{n % 50}"}
        elif kind == 2:
            flags[name] = {"type": "string", "default": "a", "allowed": ["a", "b"], "set": f"s{n % 50}"}
        else:
            flags[name] = {"type": "number", "default": 1.5, "description": f"flag {n}", "set": f"s{n % 50}"}
    source = tmp_path / "big.json"
    write(source, {"flags": flags})
    settings = settings_for(source)
    org = uid("org")
    await make_orgs([(org, None)])

    started = time.perf_counter()
    async with instance(settings, startup_timeout=600) as http:
        loaded = time.perf_counter() - started
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["flags"] == 100_000
        sample = f"{prefix}-f{generated - 1:06d}"
        definition = await flag_definition(http, tokens, sample)
        assert definition.status_code == 200, definition.text
        value = await http.get(f"/v1/orgs/{org}/flags/{prefix}-f000001", headers=tokens.reader())
        assert value.json()["value"] == 1
        one_set = await http.get(f"/v1/orgs/{org}/flags?set=s7", headers=tokens.reader())
        assert len(one_set.json()["flags"]) == len([n for n in range(generated) if n % 50 == 7])
        started = time.perf_counter()
        again = await reload(http, tokens)
        reloaded = time.perf_counter() - started
        assert again.status_code == 200, again.text
        assert again.json() == {"flags": 100_000}
    print(
        f"\n100,000-flag catalog: first load (startup, synced to the graph) {loaded:.2f} s, "
        f"unchanged reload {reloaded:.2f} s"
    )
