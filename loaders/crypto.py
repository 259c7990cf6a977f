"""Authenticated encryption of backup files: AES-256-GCM, streamed in 1 MiB chunks.

File layout (all integers big-endian):

    header  = MAGIC (8) | salt (16) | key check (16)
    chunk*  = length (4) | AES-GCM(chunk key, nonce = index (11) | last (1), plaintext, aad = header | context)

Each file gets its own key, HKDF-SHA256(master key, salt), so chunk nonces can simply
count. The key check (also from HKDF) tells "another key" apart from "damaged file"
before any plaintext is produced. The last-chunk flag sits in the nonce, so a file cut
short at a chunk boundary fails, as do reordered or altered chunks. The master key is
32 random bytes, written as base64 (`graphflags backup-key`); it is never logged.

The context is not stored in the file: the reader must know it, so a file only opens
where it was written. A backup folder (format 2) holds one manifest and its files:

    BACKUP-MANIFEST.gfenc = MANIFEST_MAGIC (8) | backup id (16) | sealed manifest,
                            context = "manifest" | backup id
    NAME.gfenc            = sealed file, context = "file" | backup id | SHA-256(manifest) | NAME

The backup id is random per backup; the manifest (JSON) lists every file's name, size
and SHA-256. A file from another backup (other id and manifest), a file renamed within
a backup, a dropped or added file, or a changed manifest therefore all fail on restore,
and SHA256SUMS (plain text, for checking copies) is not what a restore relies on.
Format 1 (no context, no manifest) is recognised and refused by name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"GFBAK\x00\x02\x00"  # "graphflags backup", format 2
FORMAT = 2
FORMAT1_MAGIC = b"GFBAK\x00\x01\x00"  # before backup ids and the manifest: refused, see decrypt_chunks
MANIFEST_MAGIC = b"GFMAN\x00\x02\x00"
BACKUP_MANIFEST = "BACKUP-MANIFEST.gfenc"
_BACKUP_ID = 16
SUFFIX = ".gfenc"
CHUNK = 1 << 20
_SALT = 16
_CHECK = 16
HEADER = len(MAGIC) + _SALT + _CHECK


class CryptoError(RuntimeError):
    """A key that cannot be used, a file encrypted under another key, or a damaged file."""


class WrongKey(CryptoError):
    pass


class FormatError(CryptoError):
    """A backup in a format this version does not restore."""


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
    material = HKDF(algorithm=hashes.SHA256(), length=32 + _CHECK, salt=salt, info=b"graphflags backup file v2").derive(
        master
    )
    return AESGCM(material[:32]), material[32:]


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def encrypt_stream(master: bytes, source: BinaryIO, target: BinaryIO, context: bytes = b"") -> None:
    salt = os.urandom(_SALT)
    aead, check = _derive(master, salt)
    header = MAGIC + salt + check
    target.write(header)
    aad = header + context
    index = 0
    chunk = source.read(CHUNK)
    while True:
        following = source.read(CHUNK)  # one chunk ahead, to know which one is last
        last = not following
        sealed = aead.encrypt(_nonce(index, last), chunk, aad)
        target.write(len(sealed).to_bytes(4, "big") + sealed)
        if last:
            return
        chunk, index = following, index + 1


def decrypt_chunks(master: bytes, source: BinaryIO, name: str = "file", context: bytes = b"") -> Iterator[bytes]:
    """Plaintext chunks of `source`; raises WrongKey or CryptoError (and yields nothing more)."""
    header = source.read(HEADER)
    if header.startswith(FORMAT1_MAGIC):
        raise FormatError(
            f"{name} is in backup format 1, which this version does not restore (it reads format "
            f"{FORMAT} only: format 1 cannot tell a file of its backup from one swapped in)"
        )
    if len(header) != HEADER or not header.startswith(MAGIC):
        raise CryptoError(f"{name} is not a graphflags encrypted backup file")
    aad = header + context
    aead, check = _derive(master, header[len(MAGIC) : len(MAGIC) + _SALT])
    if not secrets.compare_digest(check, header[len(MAGIC) + _SALT :]):
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
            yield aead.decrypt(_nonce(index, last), sealed, aad)
        except InvalidTag:
            raise CryptoError(
                f"{name} fails authentication (chunk {index}): damaged or truncated, or written for "
                "another backup or under another name"
            ) from None
        if last:
            return
        index += 1


def _sha256(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _manifest_context(backup_id: bytes) -> bytes:
    return b"manifest\x00" + backup_id


def _file_context(backup_id: bytes, manifest_digest: bytes, name: str) -> bytes:
    # Fixed-length fields first, the name last: no two (id, digest, name) give the same bytes.
    return b"file\x00" + backup_id + manifest_digest + name.encode()


def encrypt_file(master: bytes, path: Path, target: Path, context: bytes) -> None:
    with open(path, "rb") as source, open(target, "xb") as sink:
        encrypt_stream(master, source, sink, context)
        sink.flush()
        os.fsync(sink.fileno())


def decrypt_file(master: bytes, path: Path, target: Path, context: bytes) -> tuple[int, str]:
    """Decrypt `path` into `target`: its plaintext size and SHA-256; on any failure `target` is gone."""
    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as source, open(target, "wb") as sink:
            for chunk in decrypt_chunks(master, source, path.name, context):
                sink.write(chunk)
                digest.update(chunk)
                size += len(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return size, digest.hexdigest()


# Whole backup folders: what loaders.backup's seal/unseal call.

UNENCRYPTED_MARK = "UNENCRYPTED"
SUMS = "SHA256SUMS"  # plain checksums of the files, for checking copies; restore with a key ignores it


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


def _files(folder: Path) -> list[Path]:
    return [path for path in sorted(folder.iterdir()) if path.is_file()]


def encrypt_folder(plain: Path, out: Path, key: bytes, kind: str) -> None:
    """Encrypt every file of `plain` into the new folder `out`, with the manifest that binds them."""
    files = [{"name": path.name, **dict(zip(("size", "sha256"), _sha256(path), strict=True))} for path in _files(plain)]
    backup_id = os.urandom(_BACKUP_ID)
    manifest = json.dumps(
        {
            "format": FORMAT,
            "backup_id": backup_id.hex(),
            "kind": kind,
            "created": datetime.now(UTC).isoformat(),
            "files": files,
        },
        sort_keys=True,
    ).encode()
    digest = hashlib.sha256(manifest).digest()
    out.mkdir()
    for entry in files:
        encrypt_file(
            key, plain / entry["name"], out / (entry["name"] + SUFFIX), _file_context(backup_id, digest, entry["name"])
        )
    with open(out / BACKUP_MANIFEST, "xb") as sink:
        sink.write(MANIFEST_MAGIC + backup_id)
        encrypt_stream(key, io.BytesIO(manifest), sink, _manifest_context(backup_id))
        sink.flush()
        os.fsync(sink.fileno())


def mark_unencrypted(folder: Path) -> None:
    (folder / UNENCRYPTED_MARK).write_text(
        "This backup is NOT encrypted: it was written without GRAPHFLAGS_BACKUP_KEY(_FILE).\n"
    )


def _read_manifest(key: bytes, path: Path) -> tuple[dict, bytes, bytes]:
    """The authenticated manifest, the backup id and the manifest's SHA-256."""
    with open(path, "rb") as source:
        prefix = source.read(len(MANIFEST_MAGIC) + _BACKUP_ID)
        if len(prefix) != len(MANIFEST_MAGIC) + _BACKUP_ID or not prefix.startswith(MANIFEST_MAGIC):
            raise CryptoError(f"{path.name} is not a graphflags backup manifest (format {FORMAT})")
        backup_id = prefix[len(MANIFEST_MAGIC) :]
        text = b"".join(decrypt_chunks(key, source, path.name, _manifest_context(backup_id)))
    manifest = json.loads(text)
    if manifest.get("format") != FORMAT or manifest.get("backup_id") != backup_id.hex():
        raise CryptoError(f"{path.name} does not describe this backup")  # authenticated, so a bug of ours
    for entry in manifest["files"]:
        if entry["name"] != Path(entry["name"]).name or entry["name"].startswith("."):
            raise CryptoError(f"{path.name} names a file outside the backup folder: {entry['name']!r}")
    return manifest, backup_id, hashlib.sha256(text).digest()


def _plain_refusal(folder: Path, names: set[str]) -> CryptoError:
    """Why a folder without a manifest cannot be restored while a key is configured."""
    sealed = sorted(name for name in names if name.endswith(SUFFIX))
    for name in sealed:
        with open(folder / name, "rb") as handle:
            if handle.read(len(FORMAT1_MAGIC)) == FORMAT1_MAGIC:
                return FormatError(
                    f"{folder} is a backup in format 1 (written before backups had an id and an authenticated "
                    f"manifest); this version restores format {FORMAT} only, because format 1 cannot tell its own "
                    "files from files swapped in from other backups. Restore it with the graphflags release that "
                    "wrote it, or use a newer backup"
                )
    if not sealed:
        return CryptoError(
            f"{folder} is an unencrypted backup, but a backup key is configured: refusing it, since anyone who can "
            "write to the backups could have made it. To restore it on purpose, run restore without "
            "GRAPHFLAGS_BACKUP_KEY / GRAPHFLAGS_BACKUP_KEY_FILE"
        )
    return CryptoError(f"{folder} has encrypted files but no {BACKUP_MANIFEST}: not a whole backup")


class decrypted_folder:
    """`with decrypted_folder(folder, key) as plain:` every file decrypted (and so authenticated)
    into a private scratch folder next to `folder`, removed afterwards. With a key, the folder
    must be exactly what its authenticated manifest lists: no file missing, none added, none
    unencrypted. Without one, an unencrypted backup is used as it is. Any failure is raised
    before the caller touches a database."""

    def __init__(self, folder: Path, key: bytes | None) -> None:
        self.folder, self.key, self.scratch = folder, key, None

    def __enter__(self) -> Path:
        entries = sorted(self.folder.iterdir())
        names = {path.name for path in entries if path.is_file()} - {SUMS}
        if self.key is None:
            if any(name.endswith(SUFFIX) for name in names):
                raise CryptoError(
                    f"{self.folder} is encrypted: set GRAPHFLAGS_BACKUP_KEY or "
                    "GRAPHFLAGS_BACKUP_KEY_FILE to the key it was written with"
                )
            return self.folder
        if BACKUP_MANIFEST not in names:
            raise _plain_refusal(self.folder, names)
        manifest, backup_id, digest = _read_manifest(self.key, self.folder / BACKUP_MANIFEST)
        listed = {entry["name"] + SUFFIX: entry for entry in manifest["files"]}
        present = names - {BACKUP_MANIFEST}
        if others := sorted(path.name for path in entries if not path.is_file()):
            raise CryptoError(f"{self.folder} holds folders no backup has: {', '.join(others)}")
        if plain := sorted(name for name in present - listed.keys() if not name.endswith(SUFFIX)):
            raise CryptoError(
                f"{self.folder} mixes files that are not encrypted into an encrypted backup "
                f"({', '.join(plain)}): refusing it"
            )
        if added := sorted(present - listed.keys()):
            raise CryptoError(
                f"{', '.join(added)} in {self.folder} is not listed in the backup's authenticated manifest: refusing it"
            )
        if missing := sorted(listed.keys() - present):
            raise CryptoError(
                f"{', '.join(missing)} is missing from {self.folder} (the backup's authenticated manifest lists it)"
            )
        # mkdtemp makes it 700; on the backups' filesystem, which docs/security.md has encrypted.
        self.scratch = Path(tempfile.mkdtemp(prefix=".graphflags-restore-", dir=self.folder.parent))
        try:
            for name, entry in listed.items():
                got = decrypt_file(
                    self.key,
                    self.folder / name,
                    self.scratch / entry["name"],
                    _file_context(backup_id, digest, entry["name"]),
                )
                if got != (entry["size"], entry["sha256"]):  # authenticated already: this would be our bug
                    raise CryptoError(f"{name} does not match the size and SHA-256 its manifest lists")
        except BaseException:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        return self.scratch

    def __exit__(self, *exc) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
