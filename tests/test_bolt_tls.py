"""Bolt over TLS, and encrypted backups restored into a real Neo4j.

This module starts its own Neo4j home with Bolt TLS (`neo4jctl init --bolt-tls`) on free ports: the
service reaches it only over TLS, checking the server's certificate against the CA file
(GRAPHFLAGS_NEO4J_TRUSTED_CA); a plain Bolt connection is refused. The same server then
takes an encrypted backup and restores it: with another key nothing is touched, with
the right key the backed-up graph comes back.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Iterator

import pytest
from neo4j.exceptions import ServiceUnavailable
from pydantic import SecretStr

from app.settings import Settings
from app.store.database import Database
from loaders import crypto
from loaders.backup import BackupError, backup_offline, backup_online, restore
from loaders.neo4j_home import Neo4jCtlError, Neo4jHome
from tests.conftest import TEST_CATALOG
from tests.support.app import AdminApp, migrate
from tests.support.neo4j import START_TIMEOUT, running_home

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jHome]:
    with running_home(tmp_path_factory.mktemp("tls-home"), bolt_tls=True) as home:
        yield home


@pytest.fixture(scope="module")
async def settings(home: Neo4jHome, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The service's settings over this home, its database migrated (over TLS): every test here
    finds the schema, whichever runs first."""
    keys = tmp_path_factory.mktemp("tls-keys")
    tls = home.settings(
        Settings(
            flags_file=TEST_CATALOG,
            jwt_dev_key_file=keys / "dev-jwt.key",
            watch_catalog=False,
            log_json=False,
            log_level="WARNING",
            neo4j_trusted_ca=home.bolt_certificate,
        )
    )
    return await migrate(tls)


def App(settings: Settings) -> AdminApp:
    return AdminApp(settings, subject="tls")


def test_the_home_requires_tls_with_its_own_certificate(home):
    conf = (home.path / "conf" / "neo4j.conf").read_text().splitlines()
    assert "server.bolt.tls_level=REQUIRED" in conf
    assert "dbms.ssl.policy.bolt.enabled=true" in conf
    assert ((home.path / "certificates" / "bolt" / "private.key").stat().st_mode & 0o777) == 0o600


async def test_lookups_over_tls(settings):
    async with App(settings) as client:
        for body in ({"id": "tls-root"}, {"id": "tls-leaf", "parent": "tls-root"}):
            assert (await client.post("/v1/orgs", json=body)).status_code == 201
        assert (await client.put("/v1/orgs/tls-root/flags/theme", json={"value": "dark"})).status_code == 200
        got = (await client.get("/v1/orgs/tls-leaf/flags/theme")).json()
        assert (got["value"], got["reason"], got["source_org"]) == ("dark", "inherited", "tls-root")


async def test_plain_bolt_is_refused(settings):
    db = Database(settings.model_copy(update={"neo4j_trusted_ca": None, "retry_time": 0.0}))
    try:
        with pytest.raises(ServiceUnavailable):
            await db.ping()
    finally:
        await db.close()


async def test_a_certificate_from_another_ca_is_refused(settings, tmp_path):
    from app.tls import write_dev_cert

    other_ca, _ = write_dev_cert(tmp_path / "other")
    db = Database(settings.model_copy(update={"neo4j_trusted_ca": other_ca, "retry_time": 0.0}))
    try:
        with pytest.raises(ServiceUnavailable, match="(?i)certificate|ssl"):
            await db.ping()
    finally:
        await db.close()


def test_trust_settings_with_a_self_choosing_uri_are_refused(home):
    with pytest.raises(ValueError, match="needs a bolt:// or neo4j:// URI"):
        Settings(neo4j_uri="bolt+s://127.0.0.1:7687", neo4j_trusted_ca=home.path / "certificates/bolt/public.crt")


async def test_encrypted_backup_restores_with_its_key_only(home, settings, tmp_path):
    right, wrong = crypto.new_key(), crypto.new_key()
    keyed = settings.model_copy(update={"backup_key": SecretStr(right)})
    async with App(settings) as client:
        assert (await client.post("/v1/orgs", json={"id": "bk-root"})).status_code == 201
        assert (await client.put("/v1/orgs/bk-root/flags/theme", json={"value": "dark"})).status_code == 200

    root = tmp_path / "backups"
    folder = await asyncio.to_thread(backup_online, keyed, root)
    files = sorted(path.name for path in folder.iterdir())
    assert "SHA256SUMS" in files and all(name.endswith(".gfenc") for name in files if name != "SHA256SUMS")
    assert not any(b"bk-root" in (folder / name).read_bytes() for name in files)

    async with App(settings) as client:  # a change after the backup, which a restore undoes
        assert (await client.post("/v1/orgs", json={"id": "bk-after"})).status_code == 201

    pid = home.pid()
    for bad, cause in (
        (settings.model_copy(update={"backup_key": SecretStr(wrong)}), "another backup key"),
        (settings, "is encrypted: set GRAPHFLAGS_BACKUP_KEY"),
    ):
        with pytest.raises(BackupError, match=cause) as raised:
            await asyncio.to_thread(restore, home, folder, bad, heap="256m", off_heap="256m")
        assert "nothing was restored" in str(raised.value) and right not in str(raised.value)
        assert home.pid() == pid  # the server was never stopped
        assert sorted(path.name for path in root.iterdir()) == [folder.name]  # no decrypted leftovers
    async with App(settings) as client:
        assert (await client.get("/v1/orgs/bk-after")).status_code == 200

    await asyncio.to_thread(restore, home, folder, keyed, heap="256m", off_heap="256m")
    assert sorted(path.name for path in root.iterdir()) == [folder.name]
    async with App(settings) as client:
        assert (await client.get("/v1/orgs/bk-after")).status_code == 404
        got = (await client.get("/v1/orgs/bk-root/flags/theme")).json()
        assert (got["value"], got["reason"]) == ("dark", "own")


async def test_a_key_refuses_an_unencrypted_backup_and_leaves_the_database(home, settings, tmp_path):
    keyed = settings.model_copy(update={"backup_key": SecretStr(crypto.new_key())})
    async with App(settings) as client:
        assert (await client.post("/v1/orgs", json={"id": "plain-root"})).status_code == 201
    root = tmp_path / "backups"
    plain = await asyncio.to_thread(backup_online, settings, root)  # no key: written unencrypted
    async with App(settings) as client:
        assert (await client.post("/v1/orgs", json={"id": "plain-after"})).status_code == 201

    pid = home.pid()
    with pytest.raises(BackupError, match="unencrypted backup, but a backup key is configured") as raised:
        await asyncio.to_thread(restore, home, plain, keyed, heap="256m", off_heap="256m")
    assert "nothing was restored" in str(raised.value)
    assert home.pid() == pid  # the server was never stopped
    assert sorted(path.name for path in root.iterdir()) == [plain.name]
    async with App(settings) as client:
        assert (await client.get("/v1/orgs/plain-after")).status_code == 200


def test_a_failed_offline_backup_leaves_no_plaintext(home, settings, tmp_path):
    """neo4j-admin dump dies midway, for real: a file size limit (RLIMIT_FSIZE, inherited by the
    dump's JVM) makes the kernel refuse its writes past 192 KiB (EFBIG) as a full disk would
    (ENOSPC), with part of the dump already on disk."""
    keyed = settings.model_copy(update={"backup_key": SecretStr(crypto.new_key())})
    root = tmp_path / "backups"
    home.stop()  # stopped already, so the backup does not start it under the limit
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (192 * 1024, hard))
        with pytest.raises(Neo4jCtlError, match="admin"):
            backup_offline(home, root, keyed)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        home.start(START_TIMEOUT)
    left = [path for path in root.rglob("*") if path.is_file()] if root.exists() else []
    assert left == [], f"a failed backup left {left}"
