"""Backup and restore: online export (CSV, restored by neo4j-admin import) or offline dump/load.

    graphflags backup --to DIR                 # online: the running service's database over Bolt
    graphflags backup --to DIR --offline       # offline: stop the home's server, neo4j-admin dump, start
    graphflags restore --from DIR/<backup>     # either kind: replaces the home's database

Each backup is a new folder `graphflags-<kind>-<UTC time>`. The export or dump is written
into a private (mode 700) scratch folder under DIR, sealed from there into the backup
folder, which appears whole by a rename; the scratch folder is removed whatever happens,
so a failed backup leaves nothing behind, plaintext least of all. `seal` and `unseal` are
where the files leave and re-enter our hands: with a backup key configured
(GRAPHFLAGS_BACKUP_KEY / _FILE) every file is encrypted there, bound to the backup by an
authenticated manifest (loaders.crypto), and a restore authenticates all of them, and
refuses a folder that is not exactly that, before the database is touched. Without a key
the folder holds a file named UNENCRYPTED (`graphflags backup` refuses unless asked with
--unencrypted) and its `SHA256SUMS` is checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from neo4j.exceptions import DriverError, Neo4jError

from app.settings import Settings
from app.store.database import Database, DatabaseUnavailable
from loaders.admin_csv import MANIFEST
from loaders.admin_import import ImportReport, finish_import, import_directory
from loaders.crypto import (
    SUMS,
    CryptoError,
    decrypted_folder,
    encrypt_folder,
    key_from_settings,
    mark_unencrypted,
)
from loaders.export import export_graph
from loaders.neo4j_home import Neo4jHome

DUMP = "neo4j.dump"


class BackupError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_sums(folder: Path) -> None:
    lines = [
        f"{_sha256(path)}  {path.name}\n" for path in sorted(folder.iterdir()) if path.is_file() and path.name != SUMS
    ]
    (folder / SUMS).write_text("".join(lines))


def seal(plain: Path, out: Path, key: bytes | None = None, kind: str = "export") -> None:
    """Make the backup folder `out` (new) from the files of `plain`: encrypted with `key` (plain is
    left as it was), or, without one, plain itself renamed to `out` and marked UNENCRYPTED."""
    if key is None:
        mark_unencrypted(plain)
        plain.rename(out)
    else:
        encrypt_folder(plain, out, key, kind)
    _write_sums(out)


def unseal(folder: Path, key: bytes | None) -> decrypted_folder:
    """`with unseal(folder, key) as plain:` the backup's files, authenticated (with a key) or
    checked against SHA256SUMS (an unencrypted backup, without one)."""
    if key is None:
        _check_sums(folder)
    return decrypted_folder(folder, key)


def _check_sums(folder: Path) -> None:
    sums = folder / SUMS
    if not sums.is_file():
        raise BackupError(f"{folder} has no {SUMS}: not a graphflags backup; nothing was restored")
    for line in sums.read_text().splitlines():
        digest, name = line.split("  ", 1)
        path = folder / name
        if not path.is_file() or _sha256(path) != digest:
            raise BackupError(f"{path} is missing or does not match {SUMS}; nothing was restored")


def _take(root: Path, kind: str, key: bytes | None, write: Callable[[Path], None]) -> Path:
    """A new backup folder under `root` from what `write` puts into the (empty) folder it is given."""
    root.mkdir(parents=True, exist_ok=True)
    # Private (700) and on the backups' filesystem, which docs/security.md has encrypted; removed
    # in `finally`, so an export, dump or encryption that fails leaves no plaintext behind.
    scratch = Path(tempfile.mkdtemp(prefix=f".graphflags-{kind}-", dir=root))
    try:
        plain, sealed = scratch / "plain", scratch / "sealed"
        plain.mkdir()
        write(plain)
        seal(plain, sealed, key, kind)
        folder = root / f"graphflags-{kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
        if folder.exists():
            raise BackupError(f"{folder} exists already")
        os.rename(sealed, folder)  # the backup appears whole, never half-written
        return folder
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _key(settings: Settings) -> bytes | None:
    try:
        return key_from_settings(settings)
    except CryptoError as error:
        raise BackupError(str(error)) from None


def backup_online(settings: Settings, root: Path, page: int = 20_000) -> Path:
    key = _key(settings)  # a bad key fails before the export runs

    async def run(folder: Path) -> None:
        db = Database(settings)
        try:
            await export_graph(db, folder, page=page)
        finally:
            await db.close()

    try:
        return _take(root, "export", key, lambda folder: asyncio.run(run(folder)))
    except (Neo4jError, DriverError, DatabaseUnavailable) as error:  # the CLI says so, without a traceback
        raise BackupError(f"the export failed; no backup was written: {error}") from None


def backup_offline(home: Neo4jHome, root: Path, settings: Settings | None = None) -> Path:
    """A consistent copy of the store: the server is down between stop and start."""
    key = _key(settings) if settings is not None else None

    def dump(folder: Path) -> None:
        was_running = home.running()
        home.stop()
        try:
            home.admin("database", "dump", "neo4j", f"--to-path={folder.resolve()}")
        finally:
            if was_running:
                home.start()

    return _take(root, "dump", key, dump)


def restore(
    home: Neo4jHome, folder: Path, settings: Settings, *, heap: str = "1g", off_heap: str = "2g"
) -> ImportReport:
    """Replace the home's database with a backup folder of either kind."""
    key = _key(settings)
    try:
        with unseal(folder, key) as plain:
            return _restore(home, plain, settings, heap=heap, off_heap=off_heap)
    except CryptoError as error:
        raise BackupError(f"{error}; nothing was restored") from None


def _restore(home: Neo4jHome, folder: Path, settings: Settings, *, heap: str, off_heap: str) -> ImportReport:
    if (folder / MANIFEST).is_file():
        return import_directory(home, folder, settings, heap=heap, off_heap=off_heap)
    if not (folder / DUMP).is_file():
        raise BackupError(f"{folder} holds neither {MANIFEST} (export) nor {DUMP} (dump)")
    report = ImportReport(counts={})
    clock = time.perf_counter()
    home.stop()
    home.admin(
        "database", "load", "neo4j", f"--from-path={folder.resolve()}", "--overwrite-destination=true", heap=heap
    )
    report.seconds["neo4j-admin load"] = time.perf_counter() - clock
    report.store_bytes = home.store_bytes()
    clock = time.perf_counter()
    home.start()
    report.seconds["start"] = time.perf_counter() - clock
    report.migrations = asyncio.run(finish_import(home.settings(settings), report))
    return report
