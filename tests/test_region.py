"""Regions: an upstream and a region, each `graphflags serve` in its own process on its own Neo4j.

The upstream serves the session's test Neo4j; the region (`serve --upstream URL`) has the
session's spare Neo4j (tests/conftest.py), emptied, as its own. Changes made while the upstream process is
down go through the in-process app on the upstream's database (another upstream instance).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.neo4j_server import Neo4jHome
from app.services.changes import AuditPruner
from app.store.database import Database
from tests.support.neo4j import Neo4jServer, started_and_emptied
from tests.support.serve import Served, crashable, crashable_env

# The stated bound, asserted generously (docs/regions.md: measured well under a second).
STALENESS_BOUND = 5.0

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def region_neo4j(spare_home: Neo4jHome) -> Neo4jServer:
    # The session's spare server (tests/conftest.py), emptied: the region's copy starts from nothing.
    return Neo4jServer.of(started_and_emptied(spare_home))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    prefix = f"r{os.getpid()}{int(time.time() * 1000) % 100000}"
    return {name: f"{prefix}-{name}" for name in ("root", "mid", "leaf", "other", "new", "late", "lost")}


@pytest.fixture(scope="module")
def upstream(neo4j_server, migrated, tokens, tmp_path_factory) -> Iterator[Served]:
    tokens.mint("admin")  # makes sure the development key exists before either process reads it
    serve = crashable("upstream", crashable_env(migrated, neo4j_server), tmp_path_factory.mktemp("logs"))
    serve.start()
    yield serve
    serve.kill()


@pytest.fixture(scope="module")
def seeded(upstream, tokens, world) -> None:
    """A small hierarchy with values on the upstream before the region first starts."""
    admin, writer = tokens.admin(), tokens.writer()
    body = [
        {"id": world["root"], "parent": None},
        {"id": world["mid"], "parent": world["root"]},
        {"id": world["leaf"], "parent": world["mid"]},
        {"id": world["other"], "parent": None},
    ]
    assert httpx.post(f"{upstream.url}/v1/orgs/bulk", json=body, headers=admin).status_code == 200
    for org, flag, value in (
        (world["root"], "dark-mode", True),
        (world["mid"], "theme", "dark"),
        (world["leaf"], "limits", {"seats": 7}),
        (world["leaf"], "max-upload-mb", 12.5),
    ):
        response = httpx.put(f"{upstream.url}/v1/orgs/{org}/flags/{flag}", json={"value": value}, headers=writer)
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def region(region_neo4j, migrated, tokens, upstream, seeded, tmp_path_factory) -> Iterator[Served]:
    env = crashable_env(migrated, region_neo4j)
    env["GRAPHFLAGS_UPSTREAM_TOKEN"] = tokens.mint("admin", sub="region-test", ttl=3600)
    serve = crashable("region", env, tmp_path_factory.mktemp("logs"), "--upstream", upstream.url)
    serve.start()
    yield serve
    serve.kill()


def _value(base: str, org: str, flag: str, headers) -> object:
    response = httpx.get(f"{base}/v1/orgs/{org}/flags/{flag}", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["value"]


def _until(condition, what: str, timeout: float = 30.0) -> float:
    """Poll `condition` until true; answers the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.02)
    return time.monotonic() - started


def _ready(region: Served) -> dict:
    response = httpx.get(f"{region.url}/readyz", timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["region"]


async def _age_and_prune(db: Database, first: int) -> int:
    """Make every event from seq `first` on 31 days old, then let a 30-day retention prune them."""

    async def age(tx):
        await tx.run("MATCH (e:AuditEvent) WHERE e.seq >= $first SET e.at = e.at - duration({days: 31})", first=first)

    await db.write(age)
    return await AuditPruner(db, retention_days=30, interval=3600).prune()


class TestRegion:
    def test_bootstrap_serves_the_upstream_copy(self, region, upstream, world, tokens):
        reader = tokens.reader()
        assert _value(region.url, world["leaf"], "dark-mode", reader) is True  # inherited from root
        assert _value(region.url, world["leaf"], "theme", reader) == "dark"
        assert _value(region.url, world["leaf"], "limits", reader) == {"seats": 7}
        assert _value(region.url, world["leaf"], "max-upload-mb", reader) == 12.5
        explain = httpx.get(f"{region.url}/v1/orgs/{world['leaf']}/flags/dark-mode/explain", headers=reader).json()
        assert [link["org"] for link in explain["chain"]] == [world["leaf"], world["mid"], world["root"]]
        ofrep = httpx.post(
            f"{region.url}/ofrep/v1/evaluate/flags/theme",
            headers=reader,
            json={"context": {"targetingKey": world["leaf"]}},
        )
        assert ofrep.status_code == 200 and ofrep.json()["value"] == "dark"
        assert float(ofrep.headers["x-graphflags-staleness"]) < STALENESS_BOUND
        state = _ready(region)
        assert state["upstream"] == upstream.url and state["bootstraps"] == 1
        assert _until(lambda: _ready(region)["connected"], "the region connects to the feed") < 30

    def test_a_toggle_upstream_is_seen_in_the_region_within_the_bound(self, region, upstream, world, tokens):
        reader, writer = tokens.reader(), tokens.writer()
        delays = []
        for value in (True, False, True, False, True, False):
            assert _value(region.url, world["leaf"], "beta", reader) is not value  # cached in the region now
            put = httpx.put(f"{upstream.url}/v1/orgs/{world['root']}/flags/beta", json={"value": value}, headers=writer)
            assert put.status_code == 200, put.text
            delays.append(
                _until(
                    lambda v=value: _value(region.url, world["leaf"], "beta", reader) is v,
                    "the toggle reaches the region",
                )
            )
        print(
            f"\nregion staleness after a toggle (s): max {max(delays):.3f}, "
            f"median {statistics.median(delays):.3f}, all {[round(d, 3) for d in delays]}"
        )
        assert max(delays) < STALENESS_BOUND

    def test_seals_and_unseals_upstream_are_followed_by_the_region(self, region, upstream, world, tokens):
        reader, admin = tokens.reader(), tokens.admin()

        def answer() -> dict:
            response = httpx.get(f"{region.url}/v1/orgs/{world['leaf']}/flags/theme/explain", headers=reader)
            assert response.status_code == 200, response.text
            return response.json()

        assert answer()["value"] == "dark"  # set on mid; now cached in the region
        sealed = httpx.put(
            f"{upstream.url}/v1/orgs/{world['root']}/flags/theme",
            json={"value": "light", "sealed": True},
            headers=admin,
        )
        assert sealed.status_code == 200, sealed.text
        _until(lambda: answer()["reason"] == "sealed", "the seal reaches the region", timeout=STALENESS_BOUND)
        explained = answer()
        assert (explained["value"], explained["source_org"]) == ("light", world["root"])
        assert [(link["value"], link["active"], link["sealed"]) for link in explained["chain"]] == [
            (None, False, False),
            ("dark", False, False),
            ("light", True, True),
        ]
        ofrep = httpx.post(
            f"{region.url}/ofrep/v1/evaluate/flags/theme",
            headers=reader,
            json={"context": {"targetingKey": world["leaf"]}},
        )
        assert ofrep.json()["metadata"]["sealed"] is True
        unsealed = httpx.put(
            f"{upstream.url}/v1/orgs/{world['root']}/flags/theme",
            json={"value": "light", "sealed": False},
            headers=admin,
        )
        assert unsealed.status_code == 200, unsealed.text
        _until(lambda: answer()["value"] == "dark", "the unseal reaches the region", timeout=STALENESS_BOUND)
        cleared = httpx.delete(f"{upstream.url}/v1/orgs/{world['root']}/flags/theme", headers=admin)
        assert cleared.status_code == 204

    def test_schedules_upstream_are_followed_without_a_reload(self, region, upstream, world, tokens):
        """A schedule's own audit events (taken, cancelled) change nothing in the copy: the region
        copies them with their schedule ids and goes on, rather than reload on an unknown action."""
        reader, writer = tokens.reader(), tokens.writer(sub="planner")
        bootstraps = _ready(region)["bootstraps"]
        url = f"{upstream.url}/v1/orgs/{world['leaf']}/flags/retention-days"

        def at(seconds: float) -> str:
            return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

        applied = httpx.put(url, json={"value": 14, "at": at(1.5)}, headers=writer)
        cancelled = httpx.put(url, json={"value": 15, "at": at(3600)}, headers=writer)
        assert [applied.status_code, cancelled.status_code] == [202, 202], [applied.text, cancelled.text]
        cancel = httpx.delete(f"{upstream.url}/v1/schedules/{cancelled.json()['schedule']}", headers=writer)
        assert cancel.status_code == 204, cancel.text
        _until(lambda: _value(region.url, world["leaf"], "retention-days", reader) == 14, "the schedule's change")

        def copied() -> list[tuple[str, str | None]]:
            events = httpx.get(
                f"{region.url}/v1/audit",
                params={"org": world["leaf"], "flag": "retention-days"},
                headers=tokens.admin(),
            ).json()["events"]
            return sorted((e["action"], e.get("schedule")) for e in events)

        first, second = applied.json()["schedule"], cancelled.json()["schedule"]
        expected = sorted(
            [("schedule.create", first), ("flag.set", first), ("schedule.create", second), ("schedule.cancel", second)]
        )
        # The cancel may follow the applied change upstream on a slow machine: wait for all four.
        _until(lambda: len(copied()) >= len(expected), "the schedule's events reach the region")
        assert copied() == expected
        assert _ready(region)["bootstraps"] == bootstraps

    def test_org_create_and_move_are_applied(self, region, upstream, world, tokens):
        admin, reader = tokens.admin(), tokens.reader()
        created = httpx.post(
            f"{upstream.url}/v1/orgs", json={"id": world["new"], "parent": world["other"]}, headers=admin
        )
        assert created.status_code == 201, created.text
        moved = httpx.patch(f"{upstream.url}/v1/orgs/{world['mid']}", json={"parent": world["new"]}, headers=admin)
        assert moved.status_code == 200, moved.text

        def ancestors() -> list[str] | None:
            response = httpx.get(f"{region.url}/v1/orgs/{world['leaf']}", headers=reader)
            return response.json()["ancestors"] if response.status_code == 200 else None

        _until(lambda: ancestors() == [world["mid"], world["new"], world["other"]], "the move reaches the region")
        # root's value no longer reaches leaf once the region's cache drops the chain it held
        # (its cache follower reads the region's audit log every 0.25 s, so not necessarily yet).
        _until(
            lambda: _value(region.url, world["leaf"], "dark-mode", reader) is False,
            "the cached chain is dropped",
            timeout=STALENESS_BOUND,
        )

    def test_writes_are_refused_with_the_upstream_named(self, region, upstream, world, tokens):
        writer = tokens.writer()
        for method, path, body in (
            ("PUT", f"/v1/orgs/{world['leaf']}/flags/banner", {"value": "hi"}),
            ("DELETE", f"/v1/orgs/{world['mid']}/flags/theme", None),
            ("POST", "/v1/orgs", {"id": world["lost"], "parent": None}),
            ("PATCH", f"/v1/orgs/{world['leaf']}", {"parent": None}),
            ("POST", f"/{world['leaf']}/banner/hi", None),
        ):
            response = httpx.request(method, f"{region.url}{path}", json=body, headers=tokens.admin())
            assert response.status_code == 421, (method, path, response.text)
            problem = response.json()
            assert problem["type"].endswith("/read-only-region")
            assert problem["upstream"] == upstream.url
        assert _value(upstream.url, world["leaf"], "banner", writer) == ""
        assert httpx.get(f"{upstream.url}/v1/orgs/{world['lost']}", headers=writer).status_code == 404
        assert httpx.post(f"{region.url}/v1/catalog/reload", headers=tokens.admin()).status_code == 200

    async def test_the_region_serves_last_known_values_while_the_upstream_is_away(
        self, region, upstream, world, tokens, client
    ):
        reader = tokens.reader()
        upstream.kill()
        try:
            await asyncio.to_thread(_until, lambda: not _ready(region)["connected"], "the region notices")
            assert _value(region.url, world["leaf"], "theme", reader) == "dark"
            # Meanwhile another upstream instance (on the upstream's database) changes a value.
            put = await client.put(
                f"/v1/orgs/{world['mid']}/flags/theme", json={"value": "light"}, headers=tokens.writer()
            )
            assert put.status_code == 200
            await asyncio.to_thread(_until, lambda: _ready(region)["staleness_seconds"] > 1.5, "staleness grows")
            response = httpx.get(f"{region.url}/v1/orgs/{world['leaf']}/flags/theme", headers=reader)
            assert response.json()["value"] == "dark"  # the last known value
            assert float(response.headers["x-graphflags-staleness"]) >= 1.5  # one decimal
        finally:
            upstream.start()
        caught_up = await asyncio.to_thread(
            _until, lambda: _value(region.url, world["leaf"], "theme", reader) == "light", "the region catches up"
        )
        print(f"\nregion caught up {caught_up:.3f} s after the upstream answered again")
        await asyncio.to_thread(_until, lambda: _ready(region)["connected"], "the region streams again")
        assert _ready(region)["bootstraps"] == 1  # caught up from its position, no reload

    async def test_an_expired_position_makes_the_region_reload(self, region, upstream, world, tokens, client, migrated):
        reader = tokens.reader()
        upstream.kill()
        db = Database(migrated)
        try:
            await asyncio.to_thread(_until, lambda: not _ready(region)["connected"], "the region notices")
            first = (await client.get("/v1/changes", params={"after": 2**40}, headers=tokens.admin())).json()["last"]
            created = await client.post(
                "/v1/orgs", json={"id": world["late"], "parent": world["root"]}, headers=tokens.admin()
            )
            assert created.status_code == 201
            put = await client.put(
                f"/v1/orgs/{world['late']}/flags/retention-days", json={"value": 90}, headers=tokens.writer()
            )
            assert put.status_code == 200
            # The region was away longer than the retention: the events it missed are gone.
            assert await _age_and_prune(db, first + 1) >= 2
        finally:
            await db.close()
            upstream.start()
        await asyncio.to_thread(_until, lambda: _ready(region)["bootstraps"] == 2, "the region reloads")
        assert _value(region.url, world["late"], "retention-days", reader) == 90
        assert _value(region.url, world["late"], "dark-mode", reader) is True  # under root, inherited
        assert _value(region.url, world["leaf"], "theme", reader) == "light"

    def test_a_restarted_region_resumes_where_it_stopped(self, region, upstream, world, tokens):
        region.kill()
        put = httpx.put(
            f"{upstream.url}/v1/orgs/{world['leaf']}/flags/banner",
            json={"value": "while away"},
            headers=tokens.writer(),
        )
        assert put.status_code == 200
        region.start()
        reader = tokens.reader()
        _until(lambda: _value(region.url, world["leaf"], "banner", reader) == "while away", "the region resumes")
        assert _ready(region)["bootstraps"] == 2  # resumed from its recorded position, no reload
