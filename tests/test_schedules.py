"""Scheduled changes (docs/api.md, "Safe changes"): taken with the immediate change's checks, stored in
Neo4j, applied once within a second of their time by whichever instance is up, checked again then."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.http.app import create_app
from app.services.schedules import Scheduler
from app.store.cypher import cypher
from app.store.database import Database
from tests.support.serve import crashable, crashable_env


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.fixture
async def tree(uid, make_orgs) -> dict[str, str]:
    names = {name: uid(name) for name in ("root", "a", "b")}
    await make_orgs([(names["root"], None), (names["a"], names["root"]), (names["b"], names["root"])])
    return names


async def _until(check, timeout: float = 20.0):
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    return result


async def _events(client, tokens, org, flag) -> list:
    response = await client.get("/v1/audit", params={"org": org, "flag": flag}, headers=tokens.admin())
    return response.json()["events"]


async def test_a_schedule_is_applied_once_at_its_time_and_audited(client, tokens, tree):
    at = _in(2)
    taken = await client.put(
        f"/v1/orgs/{tree['a']}/flags/theme", json={"value": "dark", "at": at}, headers=tokens.writer(sub="planner")
    )
    assert taken.status_code == 202, taken.text
    body = taken.json()
    assert {k: body[k] for k in ("org", "flag", "value")} == {"org": tree["a"], "flag": "theme", "value": "dark"}
    assert datetime.fromisoformat(body["at"]) == datetime.fromisoformat(at)
    listed = await client.get("/v1/schedules", params={"org": tree["root"], "subtree": "true"}, headers=tokens.writer())
    assert [s["schedule"] for s in listed.json()["schedules"]] == [body["schedule"]]
    # Not before its time.
    value = await client.get(f"/v1/orgs/{tree['a']}/flags/theme", headers=tokens.reader())
    assert value.json()["value"] == "light"

    async def applied():
        answer = await client.get(f"/v1/orgs/{tree['a']}/flags/theme", headers=tokens.reader())
        return answer.json()["value"] == "dark"

    await _until(applied)
    applied_at = datetime.now(UTC)
    events = await _events(client, tokens, tree["a"], "theme")
    # Newest first: the change it made, then the schedule's taking (both with its id).
    assert [(e["action"], e["actor"], e["new"], e.get("schedule")) for e in events] == [
        ("flag.set", "planner", "dark", body["schedule"]),
        ("schedule.create", "planner", {"value": "dark", "at": body["at"]}, body["schedule"]),
    ]
    # Not early. (How late is measured, not asserted: bench/schedules.py, bench/RESULTS.md.)
    event_at = datetime.fromisoformat(events[0]["at"])
    assert datetime.fromisoformat(at) <= event_at <= applied_at
    changes = await client.get("/v1/changes", params={"after": events[0]["seq"] - 1}, headers=tokens.admin())
    assert changes.json()["events"][0]["schedule"] == body["schedule"]
    assert (await client.get("/v1/schedules", params={"org": tree["a"]}, headers=tokens.writer())).json() == {
        "schedules": []
    }


async def test_a_scheduled_clear(client, tokens, tree):
    await client.put(f"/v1/orgs/{tree['b']}/flags/beta", json={"value": True}, headers=tokens.writer())
    taken = await client.delete(f"/v1/orgs/{tree['b']}/flags/beta", params={"at": _in(1)}, headers=tokens.writer())
    assert taken.status_code == 202, taken.text
    assert taken.json()["value"] is None

    async def cleared():
        answer = await client.get(f"/v1/orgs/{tree['b']}/flags/beta", headers=tokens.reader())
        return answer.json()["reason"] == "default"

    await _until(cleared)


async def test_a_schedule_is_taken_only_after_the_immediate_changes_checks(client, tokens, tree, uid):
    writer = tokens.writer()
    cases = [
        ({"value": "dark", "at": _in(-5)}, tree["a"], "theme", writer, 422, "invalid-value"),  # past
        ({"value": "dark", "at": "tomorrow"}, tree["a"], "theme", writer, 422, "invalid-value"),
        ({"value": "dark", "at": "2030-01-01T09:00:00"}, tree["a"], "theme", writer, 422, "invalid-value"),  # no offset
        ({"value": "purple", "at": _in(60)}, tree["a"], "theme", writer, 422, "invalid-value"),
        ({"value": None, "at": _in(60)}, tree["a"], "theme", writer, 422, "invalid-value"),  # as PUT: not a clear
        ({"value": "dark", "at": _in(60)}, uid("none"), "theme", writer, 404, "org-not-found"),
        ({"value": "dark", "at": _in(60)}, tree["a"], "no-such-flag", writer, 404, "flag-not-found"),
        ({"value": "dark", "at": _in(60)}, tree["a"], "theme", tokens.writer(tree["b"]), 403, "forbidden"),
        ({"value": "dark", "at": _in(60)}, tree["a"], "theme", tokens.reader(), 403, "forbidden"),
        ({"value": "dark", "at": _in(60), "sealed": True}, tree["a"], "theme", writer, 403, "forbidden"),
    ]
    for body, org, flag, headers, status, slug in cases:
        response = await client.put(f"/v1/orgs/{org}/flags/{flag}", json=body, headers=headers)
        assert (response.status_code, response.json()["type"].rsplit("/", 1)[-1]) == (status, slug), body
    past = await client.delete(f"/v1/orgs/{tree['a']}/flags/theme", params={"at": _in(-1)}, headers=writer)
    assert past.status_code == 422
    listed = await client.get("/v1/schedules", params={"org": tree["a"]}, headers=writer)
    assert listed.json() == {"schedules": []}


async def test_cancel_and_scope(client, tokens, tree):
    taken = await client.put(
        f"/v1/orgs/{tree['a']}/flags/beta", json={"value": True, "at": _in(3600)}, headers=tokens.writer()
    )
    schedule = taken.json()["schedule"]
    # Another tenant neither sees nor cancels it.
    other = tokens.writer(tree["b"])
    seen = (await client.get("/v1/schedules", headers=other)).json()["schedules"]
    assert all(s["org"] != tree["a"] for s in seen)
    assert (await client.delete(f"/v1/schedules/{schedule}", headers=other)).status_code == 403
    mine = await client.get(
        "/v1/schedules", params={"org": tree["a"], "flag": "beta"}, headers=tokens.writer(tree["root"])
    )
    assert [s["schedule"] for s in mine.json()["schedules"]] == [schedule]
    assert (await client.delete(f"/v1/schedules/{schedule}", headers=tokens.writer())).status_code == 204
    assert (await client.delete(f"/v1/schedules/{schedule}", headers=tokens.writer())).status_code == 404
    assert (await client.get("/v1/schedules", params={"org": tree["a"]}, headers=tokens.writer())).json() == {
        "schedules": []
    }


async def _in_changes(client, tokens, seq: int) -> tuple[str, str | None]:
    """The action and schedule id of the change feed's event `seq`."""
    changes = await client.get("/v1/changes", params={"after": seq - 1, "limit": 1}, headers=tokens.admin())
    (event,) = changes.json()["events"]
    assert event["seq"] == seq
    return event["action"], event.get("schedule")


async def test_a_cancel_is_audited_with_the_schedule_id_where_the_org_is_seen(client, tokens, tree):
    taken = await client.put(
        f"/v1/orgs/{tree['a']}/flags/beta",
        json={"value": True, "at": _in(3600)},
        headers=tokens.writer(sub="planner"),
    )
    assert taken.status_code == 202, taken.text
    schedule = taken.json()["schedule"]
    # Refused cancels write nothing: another tenant's, and one that asks for a dry run (the
    # contract gives a cancel none; it must not cancel for real).
    other = await client.delete(f"/v1/schedules/{schedule}", headers=tokens.writer(tree["b"], sub="intruder"))
    assert other.status_code == 403
    rehearsed = await client.delete(
        f"/v1/schedules/{schedule}", params={"dry_run": "true"}, headers=tokens.writer(sub="on-call")
    )
    assert rehearsed.status_code == 422 and rehearsed.json()["type"].endswith("/invalid-query"), rehearsed.text
    assert await _pending(client, tokens, schedule)
    assert [e["action"] for e in await _events(client, tokens, tree["a"], "beta")] == ["schedule.create"]

    cancelled = await client.delete(f"/v1/schedules/{schedule}", headers=tokens.writer(tree["root"], sub="on-call"))
    assert cancelled.status_code == 204
    events = await _events(client, tokens, tree["a"], "beta")
    planned = {"value": True, "at": taken.json()["at"]}
    assert [(e["action"], e["actor"], e["org"], e["flag"], e["old"], e["new"], e["schedule"]) for e in events] == [
        ("schedule.cancel", "on-call", tree["a"], "beta", planned, None, schedule),
        ("schedule.create", "planner", tree["a"], "beta", None, planned, schedule),
    ]
    assert await _in_changes(client, tokens, events[0]["seq"]) == ("schedule.cancel", schedule)
    # A scoped admin sees it with the org's other changes; another tenant's admin does not.
    seen = await client.get(
        "/v1/audit", params={"org": tree["root"], "subtree": "true", "flag": "beta"}, headers=tokens.admin(tree["root"])
    )
    assert events[0] in seen.json()["events"]
    elsewhere = await client.get("/v1/audit", params={"actor": "on-call"}, headers=tokens.admin(tree["b"]))
    assert all(e.get("schedule") != schedule for e in elsewhere.json()["events"])
    # Counted as a change by its actor, not as a change of the flag's value (the toggle-storm alert's).
    metrics = (await client.get("/metrics", headers=tokens.admin())).text
    assert 'graphflags_changes_by_actor_total{action="schedule.cancel",actor="on-call"}' in metrics
    assert 'graphflags_flag_changes_total{action="schedule.' not in metrics


async def test_a_change_no_longer_valid_at_its_time_is_recorded_failed(client, tokens, tree):
    taken = await client.put(
        f"/v1/orgs/{tree['a']}/flags/retention-days", json={"value": 90, "at": _in(2)}, headers=tokens.writer()
    )
    assert taken.status_code == 202
    # Meanwhile an admin seals the flag above: the scheduled write would now be refused.
    sealed = await client.put(
        f"/v1/orgs/{tree['root']}/flags/retention-days", json={"value": 7, "sealed": True}, headers=tokens.admin()
    )
    assert sealed.status_code == 200

    async def settled():
        listed = await client.get("/v1/schedules", params={"org": tree["a"]}, headers=tokens.writer())
        return listed.json()["schedules"] == []

    await _until(settled)
    assert (await client.get(f"/v1/orgs/{tree['a']}/flags/retention-days", headers=tokens.reader())).json()[
        "value"
    ] == 7
    # No value event: only the schedule's taking and its failure, with why, under the scheduler's sub.
    events = await _events(client, tokens, tree["a"], "retention-days")
    planned = {"value": 90, "at": taken.json()["at"]}
    assert [(e["action"], e["actor"], e["old"], e["schedule"]) for e in events] == [
        ("schedule.fail", "tester", planned, taken.json()["schedule"]),
        ("schedule.create", "tester", None, taken.json()["schedule"]),
    ]
    assert events[0]["new"]["reason"].startswith("sealed: ") and tree["root"] in events[0]["new"]["reason"]
    assert await _in_changes(client, tokens, events[0]["seq"]) == ("schedule.fail", taken.json()["schedule"])
    metrics = await client.get("/metrics", headers=tokens.admin())
    failed = [line for line in metrics.text.splitlines() if line.startswith("graphflags_schedules_failed_total")]
    assert failed and float(failed[0].split()[-1]) >= 1


def test_the_other_instance_applies_a_schedule_once_when_the_first_is_killed(neo4j_server, migrated, tokens, tmp_path):
    """Two served instances over one Neo4j: the one that took the schedule dies before its time."""
    tokens.mint("admin")
    first = crashable("first", crashable_env(migrated, neo4j_server), tmp_path)
    second = crashable("second", crashable_env(migrated, neo4j_server), tmp_path)
    first.start()
    second.start()
    try:
        admin, writer = tokens.admin(), tokens.writer(sub="night-shift")
        org = f"k{time.time_ns() % 10**12}"
        assert httpx.post(f"{first.url}/v1/orgs", json={"id": org}, headers=admin).status_code == 201
        # Several due at once, so both instances poll while they are due.
        taken = [
            httpx.put(f"{first.url}/v1/orgs/{org}/flags/{flag}", json={"value": True, "at": _in(4)}, headers=writer)
            for flag in ("dark-mode", "beta")
        ]
        assert [t.status_code for t in taken] == [202, 202], [t.text for t in taken]
        first.kill()
        deadline = time.monotonic() + 30
        while True:
            values = [
                httpx.get(f"{second.url}/v1/orgs/{org}/flags/{flag}", headers=admin).json()["value"]
                for flag in ("dark-mode", "beta")
            ]
            if values == [True, True]:
                break
            assert time.monotonic() < deadline, second.tail()
            time.sleep(0.1)
        # Restarted, the first instance finds nothing left to apply: each was applied once.
        first.start()
        time.sleep(1.0)
        events = httpx.get(f"{second.url}/v1/audit", params={"org": org}, headers=admin).json()["events"]
        applied = [e for e in events if e["action"] == "flag.set"]
        assert sorted((e["flag"], e["actor"]) for e in applied) == [
            ("beta", "night-shift"),
            ("dark-mode", "night-shift"),
        ]
        assert {e["schedule"] for e in applied} == {t.json()["schedule"] for t in taken}
    finally:
        first.kill()
        second.kill()


async def test_an_applied_schedule_goes_through_to_this_instances_cache(tokens, tree, settings_for):
    """The scheduler tells the value service of what it applied, as an immediate write does: the
    cache holds the new value (not merely drops the old one).

    Every instance on the database applies due schedules (the session's app, served processes of
    other tests), so this drives one scheduler's rounds itself on an instance of its own, and
    checks the cache when that scheduler is the one that applied the change; another instance
    winning the race only means trying again with the next value."""
    app = create_app(settings_for(schedule_poll_interval=3600))  # its own loop stays asleep
    async with (
        LifespanManager(app, startup_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://one") as client,
    ):
        services = app.state.services
        scheduler = Scheduler(services.db, lambda: services.catalog.current, services.values, interval=3600)
        org, values = tree["b"], ["dark", "light"] * 3
        for value in values:
            lookup = await client.get(f"/v1/orgs/{org}/flags/theme", headers=tokens.reader())
            assert lookup.status_code == 200, lookup.text
            taken = await client.put(
                f"/v1/orgs/{org}/flags/theme", json={"value": value, "at": _in(0.3)}, headers=tokens.writer()
            )
            assert taken.status_code == 202, taken.text
            mine = 0
            while not mine and await _pending(client, tokens, taken.json()["schedule"]):
                mine = await scheduler.round()
            if mine:
                chain = services.cache.flag_chain(org, "theme", stale_ok=True)
                assert chain is not None and chain[0] == (org, value)  # no lookup since: the scheduler's
                return
        pytest.fail(f"other instances applied all {len(values)} schedules first")


async def _pending(client, tokens, schedule: str) -> bool:
    listed = await client.get("/v1/schedules", headers=tokens.admin())
    return any(
        item["schedule"] == schedule and item.get("status", "pending") == "pending"
        for item in listed.json()["schedules"]
    )


# --------------------------------------------------------------------------- retention


@pytest.fixture
async def db(migrated):
    database = Database(migrated)
    yield database
    await database.close()


async def _finished_days_ago(db: Database, schedules: list[str], days: int) -> None:
    """Pretend these schedules finished `days` ago: retention is measured in days."""

    async def work(tx):
        await tx.run(
            "MATCH (s:Schedule) WHERE s.id IN $ids SET s.finished_at = datetime() - duration({days: $days})",
            ids=schedules,
            days=days,
        )

    await db.write(work)


async def _stored(db: Database, schedules: list[str]) -> dict[str, str]:
    """id -> status of those of `schedules` still stored."""

    async def work(tx):
        result = await tx.run(
            "MATCH (s:Schedule) WHERE s.id IN $ids RETURN s.id AS id, s.status AS status", ids=schedules
        )
        return {record["id"]: record["status"] async for record in result}

    return await db.read(work)


async def _take(client, tokens, org: str, flag: str, value, seconds: float) -> str:
    taken = await client.put(
        f"/v1/orgs/{org}/flags/{flag}", json={"value": value, "at": _in(seconds)}, headers=tokens.writer()
    )
    assert taken.status_code == 202, taken.text
    return taken.json()["schedule"]


async def _cancelled(client, tokens, org: str, flag: str) -> str:
    schedule = await _take(client, tokens, org, flag, True, 3600)
    assert (await client.delete(f"/v1/schedules/{schedule}", headers=tokens.writer())).status_code == 204
    return schedule


async def test_finished_schedules_past_the_retention_are_pruned(client, tokens, tree, db):
    applied = await _take(client, tokens, tree["a"], "theme", "dark", 1)
    failed = await _take(client, tokens, tree["a"], "retention-days", 90, 1)
    sealed = await client.put(
        f"/v1/orgs/{tree['root']}/flags/retention-days", json={"value": 7, "sealed": True}, headers=tokens.admin()
    )
    assert sealed.status_code == 200

    async def settled():
        statuses = await _stored(db, [applied, failed])
        return statuses == {applied: "applied", failed: "failed"}

    await _until(settled)
    old_cancel, young_cancel = [await _cancelled(client, tokens, tree["b"], flag) for flag in ("beta", "dark-mode")]
    # Pending for a year: never pruned, however old it is (only finished ones go).
    pending = await _take(client, tokens, tree["b"], "theme", "dark", 365 * 86400)
    await _finished_days_ago(db, [applied, failed, old_cancel], days=31)
    await _finished_days_ago(db, [young_cancel], days=29)

    scheduler = Scheduler(db, lambda: None, None, interval=1.0, retention_days=30)
    deleted = await scheduler.prune(batch=2)  # batches of 2: the loop goes on past a full batch

    assert deleted >= 3  # other tests' old finished schedules may go too
    assert await _stored(db, [applied, failed, old_cancel, young_cancel, pending]) == {
        young_cancel: "cancelled",
        pending: "pending",
    }
    # The applied change itself stays in the audit log, with its schedule id.
    events = await _events(client, tokens, tree["a"], "theme")
    assert [(e["action"], e.get("schedule")) for e in events] == [("flag.set", applied), ("schedule.create", applied)]
    # Pending ones are still listed and can still be cancelled.
    listed = await client.get("/v1/schedules", params={"org": tree["b"]}, headers=tokens.writer())
    assert [s["schedule"] for s in listed.json()["schedules"]] == [pending]
    assert (await client.delete(f"/v1/schedules/{pending}", headers=tokens.writer())).status_code == 204


async def test_the_scheduler_loop_prunes_in_the_background(client, tokens, tree, db, settings_for):
    old = await _cancelled(client, tokens, tree["a"], "beta")
    await _finished_days_ago(db, [old], days=3)
    settings = settings_for(schedule_retention_days=2, schedule_prune_interval=0.1)
    async with LifespanManager(create_app(settings), startup_timeout=60):

        async def gone():
            return await _stored(db, [old]) == {}

        await _until(gone, timeout=30)


async def test_the_prune_seeks_the_finished_index(db):
    async def explain(tx):
        result = await tx.run("EXPLAIN " + cypher("schedules_prune"), cutoff=datetime.now(UTC), batch=10)
        return str((await result.consume()).plan)

    plan = await db.read(explain)
    # The schedule_finished index (0006_schedule_retention), sought by status and finish time.
    assert "NodeIndexSeek" in plan and "Schedule(status, finished_at)" in plan, plan
    assert "NodeByLabelScan" not in plan and "AllNodesScan" not in plan, plan
