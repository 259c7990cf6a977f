"""Backup encryption (loaders/crypto.py) and its hooks in seal/unseal, on real files.

Whole backups of the session's Neo4j are then taken and refused on restore (before the
database is touched). The restore itself against a real Neo4j, right key and wrong key,
is in tests/test_bolt_tls.py, whose module has a server of its own to replace.
"""

from __future__ import annotations

import hashlib
import io
import os
import resource
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from app.settings import Settings
from loaders import crypto
from loaders.backup import SUMS, BackupError, backup_online, restore, seal, unseal
from loaders.neo4j_home import Neo4jHome


def _key() -> bytes:
    return crypto.parse_key(crypto.new_key())


@pytest.mark.parametrize("size", [0, 1, crypto.CHUNK - 1, crypto.CHUNK, crypto.CHUNK + 1, 3 * crypto.CHUNK + 17])
def test_round_trip_any_size(size):
    key, plain = _key(), os.urandom(size)
    sealed = io.BytesIO()
    crypto.encrypt_stream(key, io.BytesIO(plain), sealed)
    # The plaintext does not show through. Only checked from 16 bytes: a 1-byte plaintext
    # turns up somewhere in the random nonce and ciphertext about one run in five.
    assert size < 16 or plain[:64] not in sealed.getvalue()
    assert sealed.getvalue().startswith(crypto.MAGIC)
    out = b"".join(crypto.decrypt_chunks(key, io.BufferedReader(io.BytesIO(sealed.getvalue()))))
    assert out == plain


def _sealed(key: bytes, plain: bytes) -> bytes:
    sink = io.BytesIO()
    crypto.encrypt_stream(key, io.BytesIO(plain), sink)
    return sink.getvalue()


def _decrypt(key: bytes, data: bytes) -> bytes:
    return b"".join(crypto.decrypt_chunks(key, io.BufferedReader(io.BytesIO(data))))


def test_wrong_key_is_named_as_such():
    data = _sealed(_key(), b"org,parent\n" * 1000)
    with pytest.raises(crypto.WrongKey, match="another backup key"):
        _decrypt(_key(), data)


def test_tampering_truncation_and_reordering_fail():
    key = _key()
    plain = os.urandom(2 * crypto.CHUNK + 5)
    data = _sealed(key, plain)
    flipped = bytearray(data)
    flipped[crypto.HEADER + 100] ^= 1
    with pytest.raises(crypto.CryptoError, match="damaged"):
        _decrypt(key, bytes(flipped))
    # Cut after the first whole chunk: every remaining chunk authenticates, but none says "last".
    first = crypto.HEADER + 4 + int.from_bytes(data[crypto.HEADER : crypto.HEADER + 4], "big")
    with pytest.raises(crypto.CryptoError):
        _decrypt(key, data[:first])
    with pytest.raises(crypto.CryptoError, match="truncated|damaged"):
        _decrypt(key, data[:-10])
    with pytest.raises(crypto.CryptoError, match="not a graphflags"):
        _decrypt(key, b"plain text, never encrypted")


@pytest.mark.parametrize("text", ["", "short", "A" * 44, "not base64 at all!!!!!!!!!!!!!!!!!!!!!!!!!!!"])
def test_bad_keys_are_refused_without_echoing_them(text):
    with pytest.raises(crypto.CryptoError) as raised:
        crypto.parse_key(text)
    assert text not in str(raised.value) or text == ""


def test_url_safe_and_standard_base64_are_the_same_key():
    raw = bytes(range(250, 256)) * 5 + b"\xfb\xff"
    import base64

    assert crypto.parse_key(base64.b64encode(raw).decode()) == raw
    assert crypto.parse_key(base64.urlsafe_b64encode(raw).decode() + "\n") == raw


def _backup_folder(tmp_path: Path, key: bytes | None) -> Path:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "orgs.csv").write_text("id:ID(Org),:LABEL\nacme,Org\nsecret-tenant,Org\n")
    (plain / "manifest.json").write_text('{"counts": {"orgs": 2}}')
    folder = tmp_path / "graphflags-export-x"
    seal(plain, folder, key)
    return folder


def test_seal_encrypts_every_file_and_unseal_checks_them(tmp_path):
    key = _key()
    folder = _backup_folder(tmp_path, key)
    names = sorted(path.name for path in folder.iterdir())
    assert names == [crypto.BACKUP_MANIFEST, "SHA256SUMS", "manifest.json.gfenc", "orgs.csv.gfenc"]
    assert not any(b"secret-tenant" in path.read_bytes() for path in folder.iterdir())
    with unseal(folder, key) as plain:
        assert plain != folder and (plain.stat().st_mode & 0o777) == 0o700
        assert sorted(path.name for path in plain.iterdir()) == ["manifest.json", "orgs.csv"]
        assert "secret-tenant" in (plain / "orgs.csv").read_text()
    assert not plain.exists()


def test_decrypting_with_the_wrong_key_leaves_nothing_behind(tmp_path):
    folder = _backup_folder(tmp_path, _key())
    before = sorted(tmp_path.iterdir())
    with pytest.raises(crypto.WrongKey):
        with unseal(folder, _key()):
            pytest.fail("a wrong key must not yield a folder")
    with pytest.raises(crypto.CryptoError, match="is encrypted: set GRAPHFLAGS_BACKUP_KEY"):
        with unseal(folder, None):
            pytest.fail("no key must not yield a folder")
    assert sorted(tmp_path.iterdir()) == before


def test_without_a_key_the_folder_is_marked_unencrypted_and_checked(tmp_path):
    folder = _backup_folder(tmp_path, None)
    assert (folder / crypto.UNENCRYPTED_MARK).is_file()
    assert "secret-tenant" in (folder / "orgs.csv").read_text()
    assert crypto.UNENCRYPTED_MARK in (folder / SUMS).read_text()
    with unseal(folder, None) as plain:
        assert plain == folder
    (folder / "orgs.csv").write_text("id:ID(Org),:LABEL\nevil,Org\n")
    with pytest.raises(BackupError, match="does not match"):
        unseal(folder, None)


def test_a_ciphertext_replaced_with_one_of_the_same_key_fails_authentication(tmp_path):
    key = _key()
    folder = _backup_folder(tmp_path, key)
    sink = io.BytesIO()
    crypto.encrypt_stream(key, io.BytesIO(b"id:ID(Org),:LABEL\nevil,Org\n"), sink)
    (folder / "orgs.csv.gfenc").write_bytes(sink.getvalue())
    _resum(folder)
    with pytest.raises(crypto.CryptoError, match="orgs.csv.gfenc fails authentication"):
        with unseal(folder, key):
            pytest.fail("a swapped file must not yield a folder")


def test_key_from_settings(tmp_path):
    text = crypto.new_key()
    assert crypto.key_from_settings(Settings(backup_key=SecretStr(text))) == crypto.parse_key(text)
    key_file = tmp_path / "backup.key"
    key_file.write_text(text + "\n")
    assert crypto.key_from_settings(Settings(backup_key_file=key_file)) == crypto.parse_key(text)
    assert crypto.key_from_settings(Settings()) is None
    with pytest.raises(crypto.CryptoError, match="cannot read the backup key file"):
        crypto.key_from_settings(Settings(backup_key_file=tmp_path / "missing.key"))


def test_backup_key_command_writes_a_private_key_once(tmp_path):
    from app.cli import main

    out = tmp_path / "keys" / "backup.key"
    result = CliRunner().invoke(main, ["backup-key", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out.stat().st_mode & 0o777) == 0o600
    key_text = out.read_text()
    assert len(crypto.parse_key(key_text)) == 32
    assert key_text.strip() not in result.output
    again = CliRunner().invoke(main, ["backup-key", "--out", str(out)])
    assert again.exit_code != 0 and "never overwritten" in again.output
    assert out.read_text() == key_text


def test_backup_command_refuses_without_a_key(tmp_path, monkeypatch):
    from app.cli import main
    from app.settings import get_settings

    for name in ("GRAPHFLAGS_BACKUP_KEY", "GRAPHFLAGS_BACKUP_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["backup", "--to", str(tmp_path / "b")])
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0
    assert "no backup key" in result.output and "--unencrypted" in result.output
    assert not (tmp_path / "b").exists()


# Whole backups of the session's real database, restored into a home that must never be touched:
# every refusal below happens before restore stops, loads or imports anything.

FORMAT1 = Path(__file__).parent / "data" / "backup-format1"
FORMAT1_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # test only: the bytes 0..31


class Untouchable(Neo4jHome):
    """A home whose every state-changing command fails the test."""

    def _touched(self, command: str):
        raise AssertionError(f"restore ran {command} on the database before refusing the backup")

    def stop(self, *arguments, **options):
        self._touched("stop")

    def start(self, *arguments, **options):
        self._touched("start")

    def admin(self, *arguments, **options):
        self._touched(f"neo4j-admin {' '.join(arguments)}")


@pytest.fixture
def untouchable(tmp_path: Path) -> Untouchable:
    path = tmp_path / "home"
    (path / "conf").mkdir(parents=True)
    (path / "conf" / "neo4j.conf").write_text("server.bolt.listen_address=127.0.0.1:1\n")
    return Untouchable(path)


@pytest.fixture
def keyed(migrated: Settings) -> Settings:
    return migrated.model_copy(update={"backup_key": SecretStr(crypto.new_key()), "backup_key_file": None})


def _resum(folder: Path) -> None:
    """What someone who swaps files does to SHA256SUMS: it is plain text, anyone can rewrite it."""
    (folder / SUMS).write_text(
        "".join(
            f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"
            for path in sorted(folder.iterdir())
            if path.is_file() and path.name != SUMS
        )
    )


def _refused(home: Neo4jHome, folder: Path, settings: Settings, match: str) -> str:
    with pytest.raises(BackupError, match=match) as raised:
        restore(home, folder, settings, heap="256m", off_heap="256m")
    assert "nothing was restored" in str(raised.value)
    return str(raised.value)


def test_a_file_from_an_older_backup_with_the_same_key_is_refused(keyed, untouchable, tmp_path):
    older = backup_online(keyed, tmp_path / "older")
    newer = backup_online(keyed, tmp_path / "newer")
    shutil.copy(older / "orgs.csv.gfenc", newer / "orgs.csv.gfenc")
    _resum(newer)
    _refused(untouchable, newer, keyed, "orgs.csv.gfenc .*(another backup|authentic)")


def test_files_renamed_within_a_backup_are_refused(keyed, untouchable, tmp_path):
    folder = backup_online(keyed, tmp_path / "b")
    orgs, parents = folder / "orgs.csv.gfenc", folder / "parent_of.csv.gfenc"
    orgs.rename(tmp_path / "swap")
    parents.rename(orgs)
    (tmp_path / "swap").rename(parents)
    _resum(folder)
    _refused(untouchable, folder, keyed, "(orgs|parent_of).csv.gfenc .*(another backup|authentic)")


def test_sha256sums_is_not_what_restore_trusts(keyed, untouchable, tmp_path):
    """A dropped file, with its SHA256SUMS line dropped too, would silently lose its data."""
    folder = backup_online(keyed, tmp_path / "b")
    (folder / "parent_of.csv.gfenc").unlink()
    _resum(folder)
    _refused(untouchable, folder, keyed, "parent_of.csv.gfenc is missing")
    # The backup's own list of files is authenticated: a damaged one is refused, not worked around.
    manifest = folder / crypto.BACKUP_MANIFEST
    data = bytearray(manifest.read_bytes())
    data[-20] ^= 1
    manifest.write_bytes(bytes(data))
    _resum(folder)
    _refused(untouchable, folder, keyed, "damaged")


def test_a_key_refuses_plaintext_and_mixed_backups(migrated, keyed, untouchable, tmp_path):
    plain = backup_online(migrated, tmp_path / "plain")
    assert (plain / crypto.UNENCRYPTED_MARK).is_file()
    _refused(untouchable, plain, keyed, "unencrypted")
    (plain / crypto.UNENCRYPTED_MARK).unlink()  # without its mark: still plaintext
    _resum(plain)
    _refused(untouchable, plain, keyed, "unencrypted")

    mixed = backup_online(keyed, tmp_path / "mixed")
    (mixed / "orgs.csv.gfenc").unlink()
    shutil.copy(plain / "orgs.csv", mixed / "orgs.csv")
    _resum(mixed)
    message = _refused(untouchable, mixed, keyed, "orgs.csv")
    assert "not encrypted" in message or "unencrypted" in message


def test_the_restore_command_exits_non_zero_on_a_plaintext_backup(migrated, untouchable, tmp_path, monkeypatch):
    from app.cli import main
    from app.settings import get_settings

    plain = backup_online(migrated, tmp_path / "plain")
    monkeypatch.delenv("GRAPHFLAGS_BACKUP_KEY_FILE", raising=False)
    monkeypatch.setenv("GRAPHFLAGS_BACKUP_KEY", crypto.new_key())
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["restore", "--from", str(plain), "--home", str(untouchable.path)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0
    assert "unencrypted" in result.output and "nothing was restored" in result.output


def test_a_format_1_backup_is_refused_by_its_version(untouchable, migrated, tmp_path):
    settings = migrated.model_copy(update={"backup_key": SecretStr(FORMAT1_KEY), "backup_key_file": None})
    folder = shutil.copytree(FORMAT1, tmp_path / "graphflags-export-format1")
    _refused(untouchable, folder, settings, "format 1")
    with pytest.raises(crypto.FormatError, match="format 1"):  # and file by file
        crypto.decrypt_file(crypto.parse_key(FORMAT1_KEY), folder / "orgs.csv.gfenc", tmp_path / "orgs.csv", b"")


def _files_under(*roots: Path) -> list[Path]:
    return [path for root in roots if root.exists() for path in root.rglob("*") if path.is_file()]


def test_a_backup_that_fails_while_encrypting_leaves_no_plaintext(migrated, keyed, tmp_path):
    """Disk full, for real: a file size limit (RLIMIT_FSIZE) makes the kernel refuse the write (EFBIG)
    that would take the largest ciphertext past the largest plaintext."""
    sizes = [path.stat().st_size for path in backup_online(migrated, tmp_path / "measure").iterdir()]
    root = tmp_path / "backups"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes) + 1, hard))
    try:
        with pytest.raises((OSError, BackupError)):
            backup_online(keyed, root)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    left = _files_under(root)
    assert left == [], f"a failed backup left {left}"


def test_an_export_that_cannot_reach_the_database_is_a_backup_error_and_leaves_nothing(migrated, tmp_path):
    from tests.support.ports import free_port

    nowhere = migrated.model_copy(update={"neo4j_uri": f"bolt://127.0.0.1:{free_port()}", "retry_time": 0.0})
    root = tmp_path / "backups"
    with pytest.raises(BackupError, match="the export failed; no backup was written"):
        backup_online(nowhere, root)
    assert list(root.iterdir()) == []
