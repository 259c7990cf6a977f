"""OpenFeature event streams (docs/api.md, OFREP ADR-0008), through a real SSE client (httpx-sse).

Bulk answers and streams come from the live server; changes are written through the other
app instance (`client`), so the stream learns of them the way it would in production: from
its process's one change-feed reader.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import pytest
from httpx_sse import aconnect_sse
from loguru import logger
from pydantic import ValidationError

from app.domain.resolution import Resolution
from app.http.ofrep import Encodings, success
from app.settings import Settings
from tests.conftest import TEST_CATALOG
from tests.support.live import serving

BULK = "/ofrep/v1/evaluate/flags"
# A bound for a test that would otherwise hang, not a measure: the contract says within 1 s.
WAIT = 60.0


def context(org: str) -> dict:
    return {"context": {"targetingKey": org}}


async def bulk(http: httpx.AsyncClient, token: str, org: str, **headers: str) -> httpx.Response:
    return await http.post(BULK, json=context(org), headers={"X-API-Key": token, **headers})


async def put(client, tokens, org: str, flag: str, value) -> None:
    response = await client.put(f"/v1/orgs/{org}/flags/{flag}", json={"value": value}, headers=tokens.admin())
    assert response.status_code == 200, response.text


async def move(client, tokens, org: str, parent: str) -> None:
    response = await client.patch(f"/v1/orgs/{org}", json={"parent": parent}, headers=tokens.admin())
    assert response.status_code == 200, response.text


def stream_url(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    (entry,) = answer.json()["eventStreams"]
    assert entry["type"] == "sse"
    return entry["url"]


class Stream:
    """An open event stream, read by httpx-sse in the background."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http, self.url = http, url
        self.events: asyncio.Queue = asyncio.Queue()

    async def __aenter__(self) -> Stream:
        self._context = aconnect_sse(self.http, "GET", self.url)
        self.source = await self._context.__aenter__()
        assert self.source.response.status_code == 200, await self.source.response.aread()
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for event in self.source.aiter_sse():
            await self.events.put(event)
        await self.events.put(None)  # the stream ended

    async def next(self):
        return await asyncio.wait_for(self.events.get(), timeout=WAIT)

    async def refetch(self) -> str:
        """The next event, which must be a refetchEvaluation; its ETag."""
        event = await self.next()
        assert event is not None, "the stream ended"
        assert event.event == "message"
        data = orjson.loads(event.data)
        assert data["type"] == "refetchEvaluation"
        assert event.id == data["etag"]
        return data["etag"]

    async def __aexit__(self, *exc_info) -> None:
        self._reader.cancel()
        await self._context.__aexit__(*exc_info)


class RawStream:
    """An open event stream read line by line, comments included (httpx-sse drops them)."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http, self.url = http, url
        self.lines: asyncio.Queue = asyncio.Queue()

    async def __aenter__(self) -> RawStream:
        self._context = self.http.stream("GET", self.url)
        response = await self._context.__aenter__()
        assert response.status_code == 200, await response.aread()
        self._reader = asyncio.create_task(self._read(response))
        return self

    async def _read(self, response: httpx.Response) -> None:
        async for line in response.aiter_lines():
            if line:  # the blank lines between messages
                await self.lines.put(line)

    async def next(self) -> str:
        return await asyncio.wait_for(self.lines.get(), timeout=WAIT)

    async def __aexit__(self, *exc_info) -> None:
        self._reader.cancel()
        await self._context.__aexit__(*exc_info)


@pytest.fixture
async def live(live_server):
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        yield http


@pytest.fixture
async def two_trees(uid, make_orgs) -> dict[str, str]:
    """Tenant a: a -> a1 -> a2 -> a3, and a-other (a root of its own); tenant b: b -> b1."""
    names = {name: uid(name) for name in ("a", "a1", "a2", "a3", "a-other", "b", "b1")}
    await make_orgs(
        [
            (names["a"], None),
            (names["a1"], names["a"]),
            (names["a2"], names["a1"]),
            (names["a3"], names["a2"]),
            (names["a-other"], None),
            (names["b"], None),
            (names["b1"], names["b"]),
        ]
    )
    return names


async def test_a_bulk_answer_names_its_stream_and_takes_flag_config_etag(live, tokens, two_trees):
    token = tokens.mint("reader", two_trees["a"])
    first = await bulk(live, token, two_trees["a2"])
    url = stream_url(first)
    assert first.json()["eventStreams"][0]["inactivityDelaySec"] >= 1
    assert urlsplit(url).path == f"/ofrep/v1/event-streams/{two_trees['a2']}"
    etag = first.headers["etag"]
    # The ETag covers the flags alone: the same answer, the same ETag, and the same URL (so a
    # provider keeps its connection).
    again = await bulk(live, token, two_trees["a2"])
    assert again.headers["etag"] == etag and stream_url(again) == url
    # ?flagConfigEtag= in the place of If-None-Match; the header, when sent, wins.
    unchanged = await live.post(
        BULK, params={"flagConfigEtag": etag}, json=context(two_trees["a2"]), headers={"X-API-Key": token}
    )
    assert unchanged.status_code == 304 and unchanged.headers["etag"] == etag
    other = await live.post(
        BULK,
        params={"flagConfigEtag": etag},
        json=context(two_trees["a2"]),
        headers={"X-API-Key": token, "If-None-Match": '"older"'},
    )
    assert other.status_code == 200


async def test_a_refetch_after_an_ancestor_change_and_none_for_other_orgs(live, client, tokens, two_trees):
    token = tokens.mint("reader", two_trees["a"])
    answer = await bulk(live, token, two_trees["a3"])
    async with Stream(live, stream_url(answer)) as stream:
        # Changes elsewhere: another tenant, a sibling tree of the same tenant, the org's own
        # descendant-free neighbour... none of them alters a3's answer.
        await put(client, tokens, two_trees["b1"], "beta", True)
        await put(client, tokens, two_trees["a-other"], "beta", True)
        # Then an ancestor two levels up: the first event must be about this one.
        await put(client, tokens, two_trees["a1"], "beta", True)
        etag = await stream.refetch()
        fresh = await bulk(live, token, two_trees["a3"])
        assert fresh.headers["etag"] == etag != answer.headers["etag"]
        assert {flag["key"]: flag["value"] for flag in fresh.json()["flags"]}["beta"] is True
        # A seal on the root is a change of the chain as well.
        sealed = await client.put(
            f"/v1/orgs/{two_trees['a']}/flags/beta", json={"value": False, "sealed": True}, headers=tokens.admin()
        )
        assert sealed.status_code == 200, sealed.text
        assert await stream.refetch() == (await bulk(live, token, two_trees["a3"])).headers["etag"]
        assert stream.events.empty()


async def test_a_stream_of_other_sets_hears_nothing_of_a_flag_outside_them(live, client, tokens, two_trees):
    token = tokens.mint("reader", two_trees["a"])
    answer = await bulk(live, token, two_trees["a2"], **{"X-Flag-Set": "storage"})
    async with Stream(live, stream_url(answer)) as stream:
        await put(client, tokens, two_trees["a"], "dark-mode", True)  # set "ui": not answered
        await put(client, tokens, two_trees["a"], "retention-days", 9)  # set "storage"
        etag = await stream.refetch()
        assert etag == (await bulk(live, token, two_trees["a2"], **{"X-Flag-Set": "storage"})).headers["etag"]


async def test_a_refetch_after_a_move_and_then_changes_under_the_new_parent(live, client, tokens, two_trees):
    token = tokens.mint("reader", "*")
    await put(client, tokens, two_trees["a-other"], "theme", "dark")
    answer = await bulk(live, token, two_trees["a3"])
    async with Stream(live, stream_url(answer)) as stream:
        await move(client, tokens, two_trees["a2"], two_trees["a-other"])  # an ancestor of a3 moves
        etag = await stream.refetch()
        fresh = await bulk(live, token, two_trees["a3"])
        assert fresh.headers["etag"] == etag
        assert {flag["key"]: flag["value"] for flag in fresh.json()["flags"]}["theme"] == "dark"
        # The stream now follows the new chain, and no longer the old one.
        await put(client, tokens, two_trees["a1"], "banner", "old parent")
        await put(client, tokens, two_trees["a-other"], "banner", "new parent")
        assert await stream.refetch() == (await bulk(live, token, two_trees["a3"])).headers["etag"]
        assert stream.events.empty()


async def test_a_stream_ends_at_the_callers_token_expiry(live, tokens, two_trees):
    token = tokens.mint("reader", two_trees["a"], ttl=6)
    expires = time.time() + 6
    async with Stream(live, stream_url(await bulk(live, token, two_trees["a1"]))) as stream:
        while (event := await asyncio.wait_for(stream.events.get(), timeout=WAIT + 6)) is not None:
            last = event
    assert time.time() >= expires - 1  # the token's exp is a whole second
    assert last.event == "token-expired"
    assert orjson.loads(last.data)["status"] == 401
    # And the URL opens nothing once the caller's token has expired.
    refused = await live.get(stream.url)
    assert refused.status_code == 401


async def test_a_cross_tenant_url_is_refused_and_the_credential_is_not_logged(live, tokens, two_trees):
    token = tokens.mint("reader", two_trees["a"])
    url = urlsplit(stream_url(await bulk(live, token, two_trees["a1"])))
    credential = url.query.removeprefix("token=")
    logged: list[str] = []
    sink = logger.add(lambda message: logged.append(str(message) + str(message.record["extra"])), level="DEBUG")
    try:
        # Tenant a's URL pointed at tenant b's org.
        elsewhere = url._replace(path=f"/ofrep/v1/event-streams/{two_trees['b1']}")
        refused = await live.get(urlunsplit(elsewhere))
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("/forbidden")
        # A forged or altered credential, or none at all.
        forged = url._replace(
            query="token=" + credential[:-4] + ("AAAA" if not credential.endswith("AAAA") else "BBBB")
        )
        assert (await live.get(urlunsplit(forged))).status_code == 401
        assert (await live.get(urlunsplit(url._replace(query="")))).status_code == 401
    finally:
        logger.remove(sink)
    assert logged, "the refusals were not logged at all"
    assert not any(credential in line for line in logged)
    # The URL's credential is no API token either.
    assert (
        await live.get(f"/v1/orgs/{two_trees['a1']}", headers={"Authorization": f"Bearer {credential}"})
    ).status_code == 401


async def test_a_stream_ends_when_its_org_moves_out_of_the_callers_scope(live, client, tokens, two_trees):
    token = tokens.mint("reader", two_trees["a"])
    url = stream_url(await bulk(live, token, two_trees["a3"]))
    async with Stream(live, url) as stream:
        await move(client, tokens, two_trees["a2"], two_trees["b"])
        while (event := await stream.next()) is not None:
            assert event.event != "message", "a stream out of scope said what changed"
    assert (await live.get(url)).status_code == 403


async def test_idle_streams_send_keep_alive_comments_and_still_hear_changes(settings_for, client, tokens, two_trees):
    # A short interval, so that the test waits a fraction of a second per keep-alive.
    settings = settings_for(stream_heartbeat_seconds=0.2)
    token = tokens.mint("reader", two_trees["a"])
    with serving(settings) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            answers = {org: await bulk(http, token, two_trees[org]) for org in ("a1", "a2", "a3")}
            async with (
                RawStream(http, stream_url(answers["a1"])) as first,
                RawStream(http, stream_url(answers["a3"])) as second,
                Stream(http, stream_url(answers["a2"])) as parsed,
            ):
                for stream in (first, second):
                    assert (await stream.next()).startswith(": listening")
                    # Idle: nothing but keep-alives, one after the other.
                    assert [await stream.next() for _ in range(3)] == [": keep-alive"] * 3
                # A change between keep-alives still reaches every stream.
                await put(client, tokens, two_trees["a"], "beta", True)
                for org, stream in (("a1", first), ("a3", second)):
                    while (line := await stream.next()) == ": keep-alive":
                        pass
                    etag = (await bulk(http, token, two_trees[org])).headers["etag"]
                    assert line == f"id: {etag}"
                    assert await stream.next() == "event: message"
                    assert orjson.loads((await stream.next()).removeprefix("data: "))["etag"] == etag
                assert await parsed.refetch() == (await bulk(http, token, two_trees["a2"])).headers["etag"]
                # Keep-alives after an event (the streams' clock) are no events to an SSE client:
                # the next one it dispatches is the next change's.
                assert [await first.next() for _ in range(3)] == [": keep-alive"] * 3
                await put(client, tokens, two_trees["a"], "beta", False)
                assert await parsed.refetch() == (await bulk(http, token, two_trees["a2"])).headers["etag"]


async def test_a_stream_base_url_sends_clients_to_the_instances_kept_for_streams(
    settings_for, live, live_server, client, tokens, two_trees
):
    """GRAPHFLAGS_STREAM_BASE_URL: the instance answering lookups hands out URLs of another (here
    the live server), which opens the stream and hears a change made through a third (`client`)."""
    token = tokens.mint("reader", two_trees["a"])
    with serving(settings_for(stream_base_url=live_server + "/")) as lookups_base:
        async with httpx.AsyncClient(base_url=lookups_base, timeout=30) as lookups:
            answer = await bulk(lookups, token, two_trees["a2"])
    url = stream_url(answer)
    assert url.startswith(live_server + "/ofrep/v1/event-streams/") and not url.startswith(lookups_base)
    async with Stream(live, url) as stream:
        await put(client, tokens, two_trees["a"], "beta", True)
        assert await stream.refetch() == (await bulk(live, token, two_trees["a2"])).headers["etag"]


def test_a_stream_base_url_must_be_an_http_base_url():
    with pytest.raises(ValidationError, match="no query, no fragment"):
        Settings(stream_base_url="https://streams.example/?region=eu")
    with pytest.raises(ValidationError, match="URL scheme should be 'http' or 'https'"):
        Settings(stream_base_url="ftp://streams.example")


async def test_a_catalog_reload_tells_the_streams_whose_answer_it_changes(settings_for, tokens, two_trees, tmp_path):
    """The reload `serve` does when flags.json changes (the watcher): a new default of a flag
    reaches a stream that answered it from the default, and not one whose org sets it itself."""
    flag = f"{two_trees['a']}-reloaded"  # Flag nodes are shared in the database: a name of this test's own
    base_catalog = orjson.loads(TEST_CATALOG.read_bytes())

    def catalog(default: str) -> bytes:
        return orjson.dumps({"flags": {**base_catalog["flags"], flag: {"type": "string", "default": default}}})

    source = tmp_path / "reload-source.json"
    source.write_bytes(catalog("one"))
    settings = settings_for(source, watch_catalog=True)
    admin = tokens.admin()
    token = tokens.mint("reader", "*")

    def answered(response: httpx.Response) -> object:
        return {entry["key"]: entry["value"] for entry in response.json()["flags"]}[flag]

    with serving(settings) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            # a-other sets the flag itself; a3 answers it from the catalog's default.
            response = await http.put(
                f"/v1/orgs/{two_trees['a-other']}/flags/{flag}", json={"value": "own"}, headers=admin
            )
            assert response.status_code == 200, response.text
            by_default, own = await bulk(http, token, two_trees["a3"]), await bulk(http, token, two_trees["a-other"])
            assert (answered(by_default), answered(own)) == ("one", "own")
            async with Stream(http, stream_url(by_default)) as defaulted, Stream(http, stream_url(own)) as unaffected:
                # As an editor saves: a new file renamed over the old one.
                replacement = settings.flags_file.with_suffix(".tmp")
                replacement.write_bytes(catalog("two"))
                replacement.replace(settings.flags_file)
                etag = await defaulted.refetch()
                fresh = await bulk(http, token, two_trees["a3"])
                assert fresh.headers["etag"] == etag != by_default.headers["etag"]
                assert answered(fresh) == "two"
                # The reload changed nothing a-other's stream was answered: its first event is
                # about the change made after it.
                response = await http.put(
                    f"/v1/orgs/{two_trees['a-other']}/flags/{flag}", json={"value": "later"}, headers=admin
                )
                assert response.status_code == 200, response.text
                later = await bulk(http, token, two_trees["a-other"])
                assert await unaffected.refetch() == later.headers["etag"]
                assert answered(later) == "later"
                assert unaffected.events.empty() and defaulted.events.empty()


def test_an_evaluation_encoded_once_is_reused_only_for_the_same_resolution_and_value_type():
    """A fan-out encodes each distinct resolution once (app/http/ofrep.py Encodings): the bytes
    reused must be those a fresh encoding makes, and True, 1 and 1.0 (equal in Python) stay apart."""
    encodings = Encodings(kept=3)
    inherited = Resolution(True, "inherited", "root", 2)
    first = encodings.encode("beta", inherited)
    assert first == orjson.dumps(success("beta", inherited))
    assert encodings.encode("beta", Resolution(True, "inherited", "root", 2)) is first  # reused
    for value in (1, 1.0, "1", ["a"]):
        other = Resolution(value, "inherited", "root", 2)
        assert encodings.encode("beta", other) == orjson.dumps(success("beta", other))
    # Another depth or source is another evaluation, and past `kept` the bytes are still right.
    for depth in range(5):
        deeper = Resolution(True, "inherited", "root", depth)
        assert encodings.encode("beta", deeper) == orjson.dumps(success("beta", deeper))
    assert encodings.encode("other", inherited) == orjson.dumps(success("other", inherited))
