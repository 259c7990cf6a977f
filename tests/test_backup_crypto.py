"""Backup encryption (loaders/crypto.py) and its hooks in seal/unseal, on real files.

The restore against a real Neo4j, right key and wrong key, is in tests/test_bolt_tls.py,
whose module has a server of its own to replace.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from app.settings import Settings
from loaders import crypto
from loaders.backup import SUMS, BackupError, seal, unseal


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
    first = crypto.HEADER + 4 + int.from_bytes(data[crypto.HEADER:crypto.HEADER + 4], "big")
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


def _backup_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "graphflags-export-x"
    folder.mkdir()
    (folder / "orgs.csv").write_text("id:ID(Org),:LABEL\nacme,Org\nsecret-tenant,Org\n")
    (folder / "manifest.json").write_text('{"counts": {"orgs": 2}}')
    return folder


def test_seal_encrypts_every_file_and_unseal_checks_them(tmp_path):
    key = _key()
    folder = _backup_folder(tmp_path)
    seal(folder, key)
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["SHA256SUMS", "manifest.json.gfenc", "orgs.csv.gfenc"]
    assert b"secret-tenant" not in (folder / "orgs.csv.gfenc").read_bytes()
    unseal(folder)
    with crypto.decrypted_folder(folder, key) as plain:
        assert plain != folder and (plain.stat().st_mode & 0o777) == 0o700
        assert "secret-tenant" in (plain / "orgs.csv").read_text()
        assert not (plain / SUMS).exists()
    assert not plain.exists()


def test_decrypting_with_the_wrong_key_leaves_nothing_behind(tmp_path):
    folder = _backup_folder(tmp_path)
    seal(folder, _key())
    before = sorted(tmp_path.iterdir())
    with pytest.raises(crypto.WrongKey):
        with crypto.decrypted_folder(folder, _key()):
            pytest.fail("a wrong key must not yield a folder")
    with pytest.raises(crypto.CryptoError, match="is encrypted: set GRAPHFLAGS_BACKUP_KEY"):
        with crypto.decrypted_folder(folder, None):
            pytest.fail("no key must not yield a folder")
    assert sorted(tmp_path.iterdir()) == before


def test_without_a_key_the_folder_is_marked_unencrypted(tmp_path):
    folder = _backup_folder(tmp_path)
    seal(folder)
    assert (folder / crypto.UNENCRYPTED_MARK).is_file()
    assert "secret-tenant" in (folder / "orgs.csv").read_text()
    assert crypto.UNENCRYPTED_MARK in (folder / SUMS).read_text()
    with crypto.decrypted_folder(folder, _key()) as plain:
        assert plain == folder


def test_a_replaced_ciphertext_fails_the_checksums(tmp_path):
    key = _key()
    folder = _backup_folder(tmp_path)
    seal(folder, key)
    (folder / "orgs.csv.gfenc").write_bytes(_sealed(key, b"id:ID(Org),:LABEL\nevil,Org\n"))
    with pytest.raises(BackupError, match="does not match"):
        unseal(folder)


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
