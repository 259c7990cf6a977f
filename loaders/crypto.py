"""Authenticated encryption of backup files: AES-256-GCM, streamed in 1 MiB chunks.

File layout (all integers big-endian):

    header  = MAGIC (8) | salt (16) | key check (16)
    chunk*  = length (4) | AES-GCM(chunk key, nonce = index (11) | last (1), plaintext, aad = header)

Each file gets its own key, HKDF-SHA256(master key, salt), so chunk nonces can simply
count. The key check (also from HKDF) tells "another key" apart from "damaged file"
before any plaintext is produced. The last-chunk flag sits in the nonce, so a file cut
short at a chunk boundary fails, as do reordered or altered chunks. The master key is
32 random bytes, written as base64 (`graphflags backup-key`); it is never logged.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"GFBAK\x00\x01\x00"  # "graphflags backup", format 1
SUFFIX = ".gfenc"
CHUNK = 1 << 20
_SALT = 16
_CHECK = 16
HEADER = len(MAGIC) + _SALT + _CHECK


class CryptoError(RuntimeError):
    """A key that cannot be used, a file encrypted under another key, or a damaged file."""


class WrongKey(CryptoError):
    pass


def new_key() -> str:
    """A fresh master key as base64 text (what GRAPHFLAGS_BACKUP_KEY or the key file holds)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def parse_key(text: str) -> bytes:
    """The 32 key bytes of base64 text (standard or URL-safe alphabet)."""
    cleaned = text.strip()
    try:
        raw = base64.b64decode(cleaned.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        # Never echo the text: it may be a (mistyped) key.
        raise CryptoError("the backup key must be 32 random bytes in base64 (make one with: graphflags backup-key)")
    return raw


def _derive(master: bytes, salt: bytes) -> tuple[AESGCM, bytes]:
    material = HKDF(algorithm=hashes.SHA256(), length=32 + _CHECK, salt=salt,
                    info=b"graphflags backup file v1").derive(master)
    return AESGCM(material[:32]), material[32:]


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def is_encrypted(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def encrypt_stream(master: bytes, source: BinaryIO, target: BinaryIO) -> None:
    salt = os.urandom(_SALT)
    aead, check = _derive(master, salt)
    header = MAGIC + salt + check
    target.write(header)
    index = 0
    chunk = source.read(CHUNK)
    while True:
        following = source.read(CHUNK)  # one chunk ahead, to know which one is last
        last = not following
        sealed = aead.encrypt(_nonce(index, last), chunk, header)
        target.write(len(sealed).to_bytes(4, "big") + sealed)
        if last:
            return
        chunk, index = following, index + 1


def decrypt_chunks(master: bytes, source: BinaryIO, name: str = "file") -> Iterator[bytes]:
    """Plaintext chunks of `source`; raises WrongKey or CryptoError (and yields nothing more)."""
    header = source.read(HEADER)
    if len(header) != HEADER or not header.startswith(MAGIC):
        raise CryptoError(f"{name} is not a graphflags encrypted backup file")
    aead, check = _derive(master, header[len(MAGIC):len(MAGIC) + _SALT])
    if not secrets.compare_digest(check, header[len(MAGIC) + _SALT:]):
        raise WrongKey(f"{name} was encrypted with another backup key (GRAPHFLAGS_BACKUP_KEY / _FILE)")
    index = 0
    while True:
        length = source.read(4)
        if len(length) != 4:
            raise CryptoError(f"{name} is truncated (no final chunk)")
        sealed = source.read(int.from_bytes(length, "big"))
        following = source.peek(1)[:1] if hasattr(source, "peek") else b"?"
        last = not following
        try:
            yield aead.decrypt(_nonce(index, last), sealed, header)
        except InvalidTag:
            raise CryptoError(f"{name} is damaged or truncated (chunk {index} fails authentication)") from None
        if last:
            return
        index += 1


def encrypt_file(master: bytes, path: Path) -> Path:
    """Replace `path` with `path.gfenc`; the plaintext is removed once the ciphertext is on disk."""
    target = path.with_name(path.name + SUFFIX)
    tmp = target.with_name(f".{target.name}.tmp")
    with open(path, "rb") as source, open(tmp, "wb") as sink:
        encrypt_stream(master, source, sink)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(tmp, target)
    path.unlink()
    return target


def decrypt_file(master: bytes, path: Path, target: Path) -> None:
    """Decrypt `path` into `target`; on any failure `target` does not exist afterwards."""
    try:
        with open(path, "rb") as source, open(target, "wb") as sink:
            for chunk in decrypt_chunks(master, source, path.name):
                sink.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


# Whole backup folders: what loaders.backup's seal/unseal call.

UNENCRYPTED_MARK = "UNENCRYPTED"


def key_from_settings(settings) -> bytes | None:
    """The backup master key: GRAPHFLAGS_BACKUP_KEY, else the file GRAPHFLAGS_BACKUP_KEY_FILE, else None."""
    if settings.backup_key is not None:
        return parse_key(settings.backup_key.get_secret_value())
    if settings.backup_key_file is not None:
        try:
            return parse_key(Path(settings.backup_key_file).read_text())
        except OSError as error:
            raise CryptoError(f"cannot read the backup key file {settings.backup_key_file}: {error.strerror}") from None
    return None


def encrypt_folder(folder: Path, key: bytes | None) -> None:
    """Encrypt every file of a fresh backup folder, or mark the folder as unencrypted."""
    if key is None:
        (folder / UNENCRYPTED_MARK).write_text(
            "This backup is NOT encrypted: it was written without GRAPHFLAGS_BACKUP_KEY(_FILE).\n")
        return
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.endswith(SUFFIX):
            encrypt_file(key, path)


class decrypted_folder:
    """`with decrypted_folder(folder, key) as plain:` every file decrypted (and so authenticated)
    into a private scratch folder next to `folder`, removed afterwards; an unencrypted backup
    is used as it is. Any failure is raised before the caller touches a database."""

    def __init__(self, folder: Path, key: bytes | None) -> None:
        self.folder, self.key, self.scratch = folder, key, None

    def __enter__(self) -> Path:
        import shutil
        import tempfile

        sealed = [path for path in sorted(self.folder.iterdir()) if path.name.endswith(SUFFIX)]
        if not sealed:
            return self.folder
        if self.key is None:
            raise CryptoError(f"{self.folder} is encrypted: set GRAPHFLAGS_BACKUP_KEY or GRAPHFLAGS_BACKUP_KEY_FILE "
                              "to the key it was written with")
        # mkdtemp makes it 700; on the backups' filesystem, which docs/security.md has encrypted.
        self.scratch = Path(tempfile.mkdtemp(prefix=".graphflags-restore-", dir=self.folder.parent))
        try:
            for path in sealed:
                decrypt_file(self.key, path, self.scratch / path.name[:-len(SUFFIX)])
        except BaseException:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        return self.scratch

    def __exit__(self, *exc) -> None:
        import shutil

        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
