"""Backup and restore: online export (CSV, restored by neo4j-admin import) or offline dump/load.

    graphflags backup --to DIR                 # online: the running service's database over Bolt
    graphflags backup --to DIR --offline       # offline: stop the home's server, neo4j-admin dump, start
    graphflags restore --from DIR/<backup>     # either kind: replaces the home's database

Each backup is a new folder `graphflags-<kind>-<UTC time>` holding the files and a
`SHA256SUMS`; restore refuses a folder whose files do not match it. `seal` and `unseal`
are where the files leave and re-enter our hands: with a backup key configured
(GRAPHFLAGS_BACKUP_KEY / _FILE) every file is encrypted there (loaders.crypto), and a
restore decrypts and authenticates all of them before the database is touched; without
one the folder holds a file named UNENCRYPTED (`graphflags backup` refuses unless asked
with --unencrypted).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path

from app.settings import Settings
from app.store.database import Database
from loaders.admin_csv import MANIFEST
from loaders.admin_import import ImportReport, finish_import, import_directory
from loaders.crypto import CryptoError, decrypted_folder, encrypt_folder, key_from_settings
from loaders.export import export_graph
from loaders.neo4j_home import Neo4jHome

SUMS = "SHA256SUMS"
DUMP = "neo4j.dump"


class BackupError(RuntimeError):
    pass


def _new_folder(root: Path, kind: str) -> Path:
    folder = root / f"graphflags-{kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    folder.mkdir(parents=True)
    return folder


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def seal(folder: Path, key: bytes | None = None) -> None:
    """Encrypt every file (or mark the folder unencrypted), then record a checksum of each."""
    encrypt_folder(folder, key)
    lines = [f"{_sha256(path)}  {path.name}\n" for path in sorted(folder.iterdir())
             if path.is_file() and path.name != SUMS]
    (folder / SUMS).write_text("".join(lines))


def unseal(folder: Path) -> None:
    """Check the files against SHA256SUMS before anything is replaced (restore then decrypts)."""
    sums = folder / SUMS
    if not sums.is_file():
        raise BackupError(f"{folder} has no {SUMS}: not a graphflags backup")
    for line in sums.read_text().splitlines():
        digest, name = line.split("  ", 1)
        path = folder / name
        if not path.is_file() or _sha256(path) != digest:
            raise BackupError(f"{path} is missing or does not match {SUMS}; refusing to restore")


def _key(settings: Settings) -> bytes | None:
    try:
        return key_from_settings(settings)
    except CryptoError as error:
        raise BackupError(str(error)) from None


def backup_online(settings: Settings, root: Path, page: int = 20_000) -> Path:
    key = _key(settings)  # a bad key fails before the export runs
    folder = _new_folder(root, "export")

    async def run() -> None:
        db = Database(settings)
        try:
            await export_graph(db, folder, page=page)
        finally:
            await db.close()

    asyncio.run(run())
    seal(folder, key)
    return folder


def backup_offline(home: Neo4jHome, root: Path, settings: Settings | None = None) -> Path:
    """A consistent copy of the store: the server is down between stop and start."""
    key = _key(settings) if settings is not None else None
    folder = _new_folder(root, "dump")
    was_running = home.running()
    home.stop()
    try:
        home.admin("database", "dump", "neo4j", f"--to-path={folder.resolve()}")
    finally:
        if was_running:
            home.start()
    seal(folder, key)
    return folder


def restore(home: Neo4jHome, folder: Path, settings: Settings, *, heap: str = "1g", off_heap: str = "2g"
            ) -> ImportReport:
    """Replace the home's database with a backup folder of either kind."""
    unseal(folder)
    try:
        with decrypted_folder(folder, _key(settings)) as plain:
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
    home.admin("database", "load", "neo4j", f"--from-path={folder.resolve()}", "--overwrite-destination=true",
               heap=heap)
    report.seconds["neo4j-admin load"] = time.perf_counter() - clock
    report.store_bytes = home.store_bytes()
    clock = time.perf_counter()
    home.start()
    report.seconds["start"] = time.perf_counter() - clock
    report.migrations = asyncio.run(finish_import(home.settings(settings), report))
    return report
