"""neo4j-admin import and export/restore on a real Neo4j of their own.

Import replaces the whole database, so this module starts its own disposable Neo4j
home on free ports (never the shared test server): a checked user CSV goes in with
neo4j-admin, the API answers through the imported graph, changes made through the API
survive an export and a restore, and the audit sequence carries on after it.
"""

from __future__ import annotations

import asyncio
import io
import random
from pathlib import Path

import httpx
import pytest

from app.domain.catalog import Catalog
from app.settings import Settings
from loaders.admin_import import import_directory
from loaders.backup import backup_online, restore
from loaders.neo4j_home import Neo4jHome
from loaders.synthetic import Shape, generate, write_csv
from loaders.user_csv import check_and_write
from tests.support.app import AdminApp

REPO = Path(__file__).resolve().parent.parent
FLAGS = REPO / "flags.json"
CATALOG = Catalog.load(FLAGS)
pytestmark = pytest.mark.slow
SHAPE = Shape(orgs=3000, fanout=(5, 4), max_depth=20, huge=2, density=0.05, seed=11, prefix="imp")


@pytest.fixture(scope="module")
def home(spare_home: Neo4jHome) -> Neo4jHome:
    # The session's spare server (tests/conftest.py): the import replaces its whole database and
    # starts it, so whatever another module left in it does not matter.
    return spare_home


@pytest.fixture(scope="module")
def settings(home: Neo4jHome, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    keys = tmp_path_factory.mktemp("import-keys")
    return home.settings(
        Settings(
            flags_file=FLAGS,
            jwt_dev_key_file=keys / "dev-jwt.key",
            watch_catalog=False,
            log_json=False,
            log_level="WARNING",
        )
    )


def App(settings: Settings) -> AdminApp:
    return AdminApp(settings, subject="importer")


def expected(parent_of: dict, own: dict, org: str, flag: str):
    at: str | None = org
    while at is not None:
        if (at, flag) in own:
            return own[at, flag], ("own" if at == org else "inherited"), at
        at = parent_of[at]
    return CATALOG.require(flag).default, "default", None


async def _audit(client: httpx.AsyncClient) -> list[dict]:
    response = await client.get("/v1/audit", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["events"]


async def test_import_lookups_then_export_and_restore(home, settings, tmp_path):
    orgs_csv, values_csv = tmp_path / "orgs.csv", tmp_path / "values.csv"
    with open(orgs_csv, "w") as orgs_out, open(values_csv, "w") as values_out:
        write_csv(SHAPE, orgs_out, values_out, CATALOG)
    parent_of, depth, own = {}, {}, {}
    for org in generate(SHAPE, CATALOG):
        parent_of[org.id], depth[org.id] = org.parent, org.depth
        for flag, value in org.values:
            own[org.id, flag.name] = value

    manifest = check_and_write(orgs_csv, values_csv, CATALOG, tmp_path / "import")
    report = await asyncio.to_thread(
        import_directory, home, tmp_path / "import", settings, heap="256m", off_heap="256m"
    )
    assert report.counts["Org"] == 3000 and report.counts["SET"] == manifest.counts()["SET"] == len(own)
    assert "0001_constraints" in report.migrations

    deepest = max(depth, key=depth.get)
    assert depth[deepest] == 20
    rng = random.Random(5)
    valued = sorted({org for org, _ in own})
    probes = [(deepest, flag.name) for flag in CATALOG]
    probes += [(rng.choice(valued), rng.choice(list(CATALOG)).name) for _ in range(60)]
    # Orgs below a valued org inherit: pick descendants of valued orgs as well.
    children: dict[str, list[str]] = {}
    for org, parent in parent_of.items():
        children.setdefault(parent, []).append(org)
    probes += [(child, flag) for (org, flag) in list(own)[:80] for child in children.get(org, [])[:1]]

    async with App(settings) as client:
        for org, flag in probes:
            response = await client.get(f"/v1/orgs/{org}/flags/{flag}")
            assert response.status_code == 200, response.text
            value, reason, source = expected(parent_of, own, org, flag)
            assert response.json() == {"org": org, "flag": flag, "value": value, "reason": reason, "source_org": source}
        chain = (await client.get(f"/v1/orgs/{deepest}")).json()["ancestors"]
        assert len(chain) == 20 and chain[-1] == "imp0-0"

        # Changes through the API after the import, on a new leaf so that the probes keep their answers:
        # audited, and part of the backup.
        new = "imp-new"
        assert (await client.post("/v1/orgs", json={"id": new, "parent": deepest})).status_code == 201
        assert (await client.put(f"/v1/orgs/{new}/flags/theme", json={"value": "dark"})).status_code == 200
        assert (await client.delete(f"/v1/orgs/{new}/flags/theme")).status_code in (200, 204)
        assert (
            await client.put(f"/v1/orgs/{new}/flags/session-policy", json={"value": {"idle_minutes": 5, "mfa": True}})
        ).status_code == 200
        assert (
            await client.put(f"/v1/orgs/{new}/flags/support-banner", json={"value": 'line one\n"quoted", line two'})
        ).status_code == 200
        assert (
            await client.put(f"/v1/orgs/{new}/flags/sso-required", json={"value": True, "sealed": True})
        ).status_code == 200
        events_before = await _audit(client)
        assert [event["action"] for event in events_before] == [
            "flag.set",
            "flag.set",
            "flag.set",
            "flag.clear",
            "flag.set",
            "org.create",
        ]
        assert events_before[0]["sealed"] is True

    backup = await asyncio.to_thread(backup_online, settings, tmp_path / "backups")
    assert (backup / "SHA256SUMS").is_file()
    await asyncio.to_thread(restore, home, backup, settings, heap="256m", off_heap="256m")

    async with App(settings) as client:
        assert await _audit(client) == events_before
        banner = (await client.get(f"/v1/orgs/{new}/flags/support-banner")).json()
        assert (banner["value"], banner["reason"]) == ('line one\n"quoted", line two', "own")
        policy = (await client.get(f"/v1/orgs/{new}/flags/session-policy")).json()
        assert (policy["value"], policy["reason"]) == ({"idle_minutes": 5, "mfa": True}, "own")
        assert (await client.get(f"/v1/orgs/{new}")).json()["parent"] == deepest
        sealed = (await client.get(f"/v1/orgs/{new}/flags/sso-required/explain")).json()
        assert (sealed["reason"], sealed["chain"][0]["sealed"]) == ("sealed", True)
        for org, flag in probes:
            value, reason, source = expected(parent_of, own, org, flag)
            got = (await client.get(f"/v1/orgs/{org}/flags/{flag}")).json()
            assert (got["value"], got["reason"], got["source_org"]) == (value, reason, source)
        # The audit sequence carries on after the restored events.
        assert (await client.put(f"/v1/orgs/{new}/flags/beta-dashboard", json={"value": True})).status_code == 200
        assert (await _audit(client))[0]["seq"] == events_before[0]["seq"] + 1

    # Nothing lost: a second export equals the first, row for row (the new event aside).
    again = await asyncio.to_thread(backup_online, settings, tmp_path / "backups")
    first, second = _data(backup), _data(again)
    assert second["audit_events.csv"][:-1] == first["audit_events.csv"]
    assert second["audit_sequence.csv"] != first["audit_sequence.csv"]
    for name in ("orgs.csv", "parent_of.csv", "set_long.csv", "set_double.csv", "set_string.csv"):
        assert second[name] == first[name], name
    assert len(first["orgs.csv"]) == 3001
    first_booleans, second_booleans = set(first["set_boolean.csv"]), set(second["set_boolean.csv"])
    assert len(second_booleans - first_booleans) == 1 and first_booleans <= second_booleans


def _data(folder: Path) -> dict[str, list[str]]:
    """Each data file's rows, sorted (audit events by seq)."""
    rows = {}
    for path in folder.glob("*.csv"):
        if not path.name.endswith(".header.csv"):
            lines = io.StringIO(path.read_text()).read().splitlines()
            rows[path.name] = (
                sorted(lines, key=lambda line: int(line.split(",", 1)[0]))
                if path.name == "audit_events.csv"
                else sorted(lines)
            )
    return rows
