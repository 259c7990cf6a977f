"""The service as `make run` starts it: the CLI, a real uvicorn process, migrations, the sample catalog."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jsonschema
import pytest

from app.domain.catalog import Catalog
from app.store.database import Database
from app.store.migrations import apply_migrations
from tests.support.ports import free_port
from tests.support.serve import Served
from tests.support.serve import service_env as support_env

REPO = Path(__file__).resolve().parent.parent
GRAPHFLAGS = [sys.executable, "-m", "app.cli"]


@pytest.fixture
def service_env(migrated, tmp_path) -> dict[str, str]:
    """The environment `make run` gives the service (the port too), pointed at the test database."""
    env = support_env(
        migrated,
        GRAPHFLAGS_PORT=str(free_port()),
        GRAPHFLAGS_JWT_DEV_KEY_FILE=str(tmp_path / "dev-jwt.key"),
        GRAPHFLAGS_FLAGS_FILE=str(REPO / "flags.json"),
    )
    env.pop("GRAPHFLAGS_WATCH_CATALOG")  # as `make run`: the default
    return env


def test_serve_answers_over_http_with_a_cli_token(service_env, uid, tmp_path):
    token = subprocess.run(
        [*GRAPHFLAGS, "token", "--sub", "cli-user", "--role", "admin", "--org", "*"],
        env=service_env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with Served(service_env, tmp_path / "serve.log").start() as server:
        base = server.url
        assert base.endswith(f":{service_env['GRAPHFLAGS_PORT']}")  # the port `make run` names
        headers = {"Authorization": f"Bearer {token}"}
        parent, child = uid("acme"), uid("acme-eu")
        assert httpx.post(f"{base}/v1/orgs", json={"id": parent}, headers=headers).status_code == 201
        assert httpx.post(f"{base}/v1/orgs", json={"id": child, "parent": parent}, headers=headers).status_code == 201
        assert httpx.post(f"{base}/{parent}/new-checkout/true", headers=headers).status_code == 200
        seed = httpx.get(f"{base}/{child}/new-checkout", headers=headers).json()
        assert seed == {
            "org": child,
            "flag": "new-checkout",
            "value": True,
            "reason": "inherited",
            "source_org": parent,
        }
        assert httpx.get(f"{base}/{child}/new-checkout").status_code == 401
        audit = httpx.get(f"{base}/v1/audit", params={"org": parent}, headers=headers).json()["events"]
        assert audit[0]["actor"] == "cli-user"


def test_migrate_is_idempotent(service_env):
    first = subprocess.run(
        [*GRAPHFLAGS, "migrate"], env=service_env, cwd=REPO, check=True, capture_output=True, text=True
    )
    assert first.stdout.strip() == "schema up to date"  # the session fixture applied them already


async def test_migrations_are_recorded_and_constraints_exist(migrated):
    db = Database(migrated)
    try:
        assert await apply_migrations(db) == []

        async def schema(tx):
            names = [record["name"] async for record in await tx.run("SHOW CONSTRAINTS YIELD name")]
            applied = [record["name"] async for record in await tx.run("MATCH (m:Migration) RETURN m.name AS name")]
            return names, applied

        constraints, applied = await db.read(schema)
    finally:
        await db.close()
    assert {"org_id_unique", "flag_name_unique", "audit_seq_unique"} <= set(constraints)
    migration_files = sorted(path.stem for path in (REPO / "cypher" / "migrations").glob("*.cypher"))
    assert sorted(applied) == migration_files


def test_sample_catalog_is_valid_and_matches_its_schema():
    document = json.loads((REPO / "flags.json").read_text())
    jsonschema.validate(document, json.loads((REPO / "flags.schema.json").read_text()))
    catalog = Catalog.load(REPO / "flags.json")
    assert {flag.type for flag in catalog} >= {"boolean", "number", "string"}


def test_schema_rejects_what_the_service_rejects():
    schema = json.loads((REPO / "flags.schema.json").read_text())
    bad = {"flags": {"x": {"type": "boolean", "default": "yes"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    with pytest.raises(Exception, match="invalid-catalog"):
        Catalog.parse(json.dumps(bad))


async def test_routing_uris_work_unchanged(migrated):
    """`neo4j://` (cluster routing) works against a single server, so moving to a cluster is a URI change."""
    routed = migrated.model_copy(update={"neo4j_uri": migrated.neo4j_uri.replace("bolt://", "neo4j://")})
    db = Database(routed)
    try:

        async def one(tx):
            return (await (await tx.run("RETURN 1 AS one")).single())["one"]

        assert await db.read(one) == 1
        assert await db.write(one) == 1
    finally:
        await db.close()


def test_serve_closes_idle_connections_after_the_keep_alive_timeout(service_env, tmp_path):
    """GRAPHFLAGS_KEEP_ALIVE_TIMEOUT reaches uvicorn: an idle keep-alive connection is closed by
    the service after it, not after uvicorn's own 5 s (the default, 75 s, outlasts load balancers')."""
    service_env["GRAPHFLAGS_KEEP_ALIVE_TIMEOUT"] = "1"
    with Served(service_env, tmp_path / "serve.log").start() as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            assert connection.recv(4096).startswith(b"HTTP/1.1 200")
            answered = time.monotonic()
            readable, _, _ = select.select([connection], [], [], 10)
            idle = time.monotonic() - answered
            assert readable and connection.recv(4096) == b"", "the service did not close the idle connection"
            assert idle < 4, f"closed after {idle:.1f} s of idling, not after the 1 s configured"
