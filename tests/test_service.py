"""The service as `make run` starts it: the CLI, a real uvicorn process, migrations, the sample catalog."""

from __future__ import annotations

import json
import os
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

REPO = Path(__file__).resolve().parent.parent
GRAPHFLAGS = [sys.executable, "-m", "app.cli"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def service_env(migrated, tmp_path) -> dict[str, str]:
    """The environment `make run` gives the service, pointed at the test database."""
    return {
        **os.environ,
        "NEO4J_URI": migrated.neo4j_uri,
        "NEO4J_USER": migrated.neo4j_user,
        "NEO4J_PASSWORD": migrated.neo4j_password.get_secret_value(),
        "GRAPHFLAGS_PORT": str(_free_port()),
        "GRAPHFLAGS_JWT_DEV_KEY_FILE": str(tmp_path / "dev-jwt.key"),
        "GRAPHFLAGS_FLAGS_FILE": str(REPO / "flags.json"),
    }


def test_serve_answers_over_http_with_a_cli_token(service_env, uid):
    token = subprocess.run([*GRAPHFLAGS, "token", "--sub", "cli-user", "--role", "admin", "--org", "*"],
                           env=service_env, cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()
    server = subprocess.Popen([*GRAPHFLAGS, "serve"], env=service_env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{service_env['GRAPHFLAGS_PORT']}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token}"}
        parent, child = uid("acme"), uid("acme-eu")
        assert httpx.post(f"{base}/v1/orgs", json={"id": parent}, headers=headers).status_code == 201
        assert httpx.post(f"{base}/v1/orgs", json={"id": child, "parent": parent}, headers=headers).status_code == 201
        assert httpx.post(f"{base}/{parent}/new-checkout/true", headers=headers).status_code == 200
        seed = httpx.get(f"{base}/{child}/new-checkout", headers=headers).json()
        assert seed == {"org": child, "flag": "new-checkout", "value": True, "reason": "inherited",
                        "source_org": parent}
        assert httpx.get(f"{base}/{child}/new-checkout").status_code == 401
        audit = httpx.get(f"{base}/v1/audit", params={"org": parent}, headers=headers).json()["events"]
        assert audit[0]["actor"] == "cli-user"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_migrate_is_idempotent(service_env):
    first = subprocess.run([*GRAPHFLAGS, "migrate"], env=service_env, cwd=REPO, check=True, capture_output=True,
                           text=True)
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
