"""The change feed (`GET /v1/changes`): JSON pages, SSE streams, scoping and retention."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError

from app.cache.follower import ChangeFollower
from app.cache.values import ValueCache
from app.http.app import create_app
from app.services.changes import AuditPruner
from app.settings import Settings
from app.store import audit as audit_store
from app.store import retention as retention_store
from app.store.audit import Change
from app.store.database import Database


async def newest_seq(client, tokens) -> int:
    # A position far ahead answers no events, only the newest seq.
    response = await client.get("/v1/changes", params={"after": 10**15}, headers=tokens.admin())
    assert response.status_code == 200, response.text
    assert response.json()["events"] == []
    return response.json()["last"]


async def put(client, tokens, org, flag, value):
    response = await client.put(f"/v1/orgs/{org}/flags/{flag}", json={"value": value}, headers=tokens.admin())
    assert response.status_code == 200, response.text


class TestJsonPages:
    async def test_events_after_a_seq_oldest_first(self, client, tokens, uid, make_orgs):
        start = await newest_seq(client, tokens)
        root, child = uid("root"), uid("child")
        await make_orgs([(root, None), (child, root)])
        await put(client, tokens, child, "theme", "dark")
        assert (await client.delete(f"/v1/orgs/{child}/flags/theme", headers=tokens.admin())).status_code == 204

        response = await client.get("/v1/changes", params={"after": start}, headers=tokens.admin())
        assert response.status_code == 200
        body = response.json()
        mine = [event for event in body["events"] if event["org"] in (root, child)]
        assert [(e["action"], e["org"], e["flag"], e["old"], e["new"]) for e in mine] == [
            ("org.create", root, None, None, {"parent": None}),
            ("org.create", child, None, None, {"parent": root}),
            ("flag.set", child, "theme", None, "dark"),
            ("flag.clear", child, "theme", "dark", None),
        ]
        seqs = [event["seq"] for event in body["events"]]
        assert seqs == sorted(seqs) and seqs[0] > start
        assert body["last"] == seqs[-1]
        assert set(mine[0]) == {"seq", "at", "actor", "action", "org", "flag", "old", "new"}

    async def test_limit_pages_through_with_last(self, client, tokens, chain6):
        start = await newest_seq(client, tokens)
        for days in (11, 12, 13):
            await put(client, tokens, chain6[3], "retention-days", days)
        seen, after = [], start
        while True:
            page = (await client.get("/v1/changes", params={"after": after, "limit": 1}, headers=tokens.admin())).json()
            assert len(page["events"]) <= 1
            if not page["events"]:
                assert page["last"] == after
                break
            assert page["last"] == page["events"][0]["seq"]
            seen += page["events"]
            after = page["last"]
        assert [e["new"] for e in seen if e["org"] == chain6[3]] == [11, 12, 13]

    async def test_a_scoped_admin_sees_only_its_subtrees(self, client, tokens, uid, make_orgs):
        start = await newest_seq(client, tokens)
        mine, below, theirs = uid("mine"), uid("below"), uid("theirs")
        await make_orgs([(mine, None), (below, mine), (theirs, None)])
        await put(client, tokens, below, "beta", True)
        await put(client, tokens, theirs, "beta", True)
        everything = (await client.get("/v1/changes", params={"after": start}, headers=tokens.admin())).json()
        scoped = (await client.get("/v1/changes", params={"after": start}, headers=tokens.admin(mine))).json()
        assert {e["org"] for e in everything["events"]} >= {mine, below, theirs}
        assert {e["org"] for e in scoped["events"]} == {mine, below}
        # `last` is the newest of the scoped admin's own events: following from it skips none of
        # them, and it does not show how busy the other tenants are (issue 10).
        assert scoped["last"] == max(e["seq"] for e in scoped["events"]) < everything["last"]

    async def test_admins_only(self, client, tokens):
        assert (await client.get("/v1/changes", headers=tokens.writer())).status_code == 403
        assert (await client.get("/v1/changes")).status_code == 401

    @pytest.mark.parametrize(
        "params",
        [
            {"after": "-1"},
            {"after": "x"},
            {"after": "1" * 19},
            {"limit": "0"},
            {"limit": "1001"},
            {"limit": "ten"},
            {"since": "2020-01-01"},
        ],
    )
    async def test_bad_query_is_422(self, client, tokens, params):
        response = await client.get("/v1/changes", params=params, headers=tokens.admin())
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith("/invalid-query")


async def _append_events(db: Database, org: str, count: int) -> list[int]:
    """Audit events written through the store, as a change would write them; their seqs."""

    async def work(tx):
        await audit_store.claim_sequence(tx)
        await audit_store.append(
            tx,
            "retention-test",
            [Change("flag.set", org, [org], old=None, new=i, flag="retention-days") for i in range(count)],
        )
        result = await tx.run("MATCH (e:AuditEvent {org: $org}) RETURN collect(e.seq) AS seqs", org=org)
        return sorted((await result.single())["seqs"])

    return await db.write(work)


async def _age(db: Database, seqs: list[int], days: int) -> None:
    """Pretend events happened `days` ago: retention is measured in days."""

    async def work(tx):
        await tx.run(
            "MATCH (e:AuditEvent) WHERE e.seq IN $seqs SET e.at = datetime() - duration({days: $days})",
            seqs=seqs,
            days=days,
        )

    await db.write(work)


async def _stored(db: Database, seqs: list[int]) -> list[int]:
    async def work(tx):
        result = await tx.run("MATCH (e:AuditEvent) WHERE e.seq IN $seqs RETURN collect(e.seq) AS seqs", seqs=seqs)
        return sorted((await result.single())["seqs"])

    return await db.read(work)


@pytest.fixture
async def db(migrated):
    database = Database(migrated)
    yield database
    await database.close()


class TestRetention:
    async def test_a_follower_whose_unread_events_were_pruned_starts_over_and_moves_on(self, db, uid):
        """Events above a cache follower's position deleted before it read them (a follower left
        behind by more than the retention period, or events aged by hand as here): it forgets what
        it cached and resumes, instead of waiting at the hole for events that will never come and
        applying every change since on every poll."""
        cache = ValueCache()
        follower = ChangeFollower(db, cache, interval=3600)
        await follower.poll()  # positioned at the present
        org = uid("cached")
        cache.fill_flag_chain(cache.epochs(), "beta", [(org, True)])
        lost = await _append_events(db, uid("lost"), 2)
        kept = await _append_events(db, uid("kept"), 1)
        await _age(db, lost, days=31)
        await AuditPruner(db, retention_days=30, interval=3600, batch=100).prune()
        assert await _stored(db, lost) == []
        await follower.poll()
        assert follower.after >= kept[-1], "moved past the hole"
        assert cache.flag_chain(org, "beta") is None, "forgot what it cached"
        assert cache.flag_chain(org, "beta", stale_ok=True) == [(org, True)], "kept as last-known only"

    async def test_prune_deletes_only_old_events_and_old_positions_answer_410(self, client, tokens, db, uid):
        old = await _append_events(db, uid("old"), 3)
        young = await _append_events(db, uid("young"), 2)
        await _age(db, old, days=31)

        await AuditPruner(db, retention_days=30, interval=3600, batch=2).prune()
        assert await _stored(db, old) == []
        assert await _stored(db, young) == young
        pruned = await db.read(retention_store.pruned_through)
        assert pruned >= old[-1]

        expired = await client.get("/v1/changes", params={"after": pruned - 1}, headers=tokens.admin())
        assert expired.status_code == 410
        problem = expired.json()
        assert problem["type"].endswith("/changes-expired")
        assert problem["oldest"] == pruned + 1
        assert problem["last"] >= young[-1]
        # From the watermark on nothing is missing: the client reloads, then follows from there.
        resumed = await client.get("/v1/changes", params={"after": pruned}, headers=tokens.admin())
        assert resumed.status_code == 200
        assert [e["seq"] for e in resumed.json()["events"] if e["seq"] in young] == young

    async def test_events_inside_the_retention_are_kept(self, db, uid):
        events = await _append_events(db, uid("recent"), 2)
        await _age(db, events, days=29)
        await AuditPruner(db, retention_days=30, interval=3600).prune()
        assert await _stored(db, events) == events

    async def test_the_app_prunes_in_the_background(self, settings_for, db, uid):
        events = await _append_events(db, uid("background"), 2)
        await _age(db, events, days=8)
        settings = settings_for(audit_retention_days=7, audit_prune_interval=0.1)
        async with LifespanManager(create_app(settings), startup_timeout=60):
            deadline = time.monotonic() + 30
            while await _stored(db, events):
                assert time.monotonic() < deadline, "the background pruner did not delete old events"
                await asyncio.sleep(0.1)
        assert await db.read(retention_store.pruned_through) >= events[-1]

    def test_retention_is_at_least_seven_days(self, migrated):
        with pytest.raises(ValidationError):
            Settings(**{**migrated.model_dump(), "audit_retention_days": 6})
        assert Settings(**{**migrated.model_dump(), "audit_retention_days": 7}).audit_retention_days == 7


async def _sse_events(lines, count: int) -> list[dict]:
    """The next `count` events of a stream: {"id", "event", "data"} each; comments skipped."""
    events, current = [], {}
    async for line in lines:
        if line == "":
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif line.startswith(":") or line.startswith("retry:"):
            continue
        else:
            field, _, value = line.partition(":")
            current[field] = value.removeprefix(" ")
    raise AssertionError("the stream ended early")


class TestStream:
    async def test_stream_sends_new_events_as_they_commit_and_resumes(self, live_server, tokens, uid):
        admin = {**tokens.admin(), "Accept": "text/event-stream"}
        async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
            org = uid("streamed")
            start = (await http.get("/v1/changes", params={"after": 10**15}, headers=tokens.admin())).json()["last"]
            assert (await http.post("/v1/orgs", json={"id": org}, headers=tokens.admin())).status_code == 201
            async with http.stream("GET", "/v1/changes", params={"after": start}, headers=admin) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                created = await asyncio.wait_for(_find(lines, org, "org.create"), timeout=20)
                assert int(created["id"]) == orjson.loads(created["data"])["seq"]
                # A change committed while the stream is open arrives on it.
                await put(http, tokens, org, "beta", True)
                changed = await asyncio.wait_for(_find(lines, org, "flag.set"), timeout=20)
                assert int(changed["id"]) > int(created["id"])
            # Reconnecting with Last-Event-ID resumes after it, whatever the URL's `after` says.
            await put(http, tokens, org, "beta", False)
            resume = {**admin, "Last-Event-ID": created["id"]}
            async with http.stream("GET", "/v1/changes", params={"after": 0}, headers=resume) as stream:
                assert stream.status_code == 200
                lines = stream.aiter_lines()
                again = await asyncio.wait_for(_find(lines, org, "flag.set"), timeout=20)
                assert again["id"] == changed["id"]
                latest = await asyncio.wait_for(_find(lines, org, "flag.set"), timeout=20)
                assert orjson.loads(latest["data"])["new"] is False

    async def test_stream_from_an_expired_position_is_410(self, live_server, tokens, db, uid):
        old = await _append_events(db, uid("old-stream"), 1)
        await _age(db, old, days=40)
        await AuditPruner(db, retention_days=30, interval=3600).prune()
        pruned = await db.read(retention_store.pruned_through)
        async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
            response = await http.get(
                "/v1/changes", params={"after": pruned - 1}, headers={**tokens.admin(), "Accept": "text/event-stream"}
            )
        assert response.status_code == 410
        assert response.json()["type"].endswith("/changes-expired")


async def _find(lines, org: str, action: str) -> dict:
    """The next event about `org` with `action`, skipping others'."""
    while True:
        (event,) = await _sse_events(lines, 1)
        data = orjson.loads(event["data"])
        if data["org"] == org and data["action"] == action:
            return event


def test_serve_stops_while_a_stream_is_open(migrated, tokens, tmp_path):
    """`graphflags serve` must stop on SIGTERM even with a subscriber connected: streams never end."""
    import signal

    from tests.support.serve import Served, service_env

    server = Served(service_env(migrated), tmp_path / "serve.log").start()
    base = server.url
    try:
        headers = {**tokens.admin(), "Accept": "text/event-stream"}
        with httpx.stream("GET", f"{base}/v1/changes", params={"after": 10**15}, headers=headers, timeout=30) as stream:
            assert stream.status_code == 200
            assert next(stream.iter_lines()).startswith("retry:")
            server.signal(signal.SIGTERM)
            # uvicorn re-raises the signal it handled once it has stopped cleanly.
            assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        server.kill()
