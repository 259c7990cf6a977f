"""Offline bulk load: an import directory into a home's default database with neo4j-admin.

    stop the server -> neo4j-admin database import full neo4j --overwrite-destination ...
    -> start the server -> schema migrations -> catalog sync

The import replaces the whole database (take a backup first); running service
instances must be restarted afterwards, as their caches describe the old graph.
neo4j-admin creates no constraints: the migrations build them (and the AuditSequence
node) on the imported data, then the catalog sync checks every stored value against
flags.json and writes Flag nodes that differ from it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.settings import Settings
from loaders.admin_csv import import_arguments, read_manifest
from loaders.neo4j_home import Neo4jHome


@dataclass
class ImportReport:
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    store_bytes: int = 0
    migrations: list[str] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def import_directory(
    home: Neo4jHome,
    directory: Path,
    settings: Settings,
    *,
    heap: str = "1g",
    off_heap: str = "2g",
    threads: int | None = None,
) -> ImportReport:
    """Replace `home`'s default database with the graph in `directory`; `settings` name the catalog."""
    manifest = read_manifest(directory)
    report = ImportReport(counts=manifest["counts"])
    clock = time.perf_counter()

    home.stop()
    report.seconds["stop"] = time.perf_counter() - clock

    clock = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    options = [
        "--overwrite-destination=true",
        "--bad-tolerance=0",
        "--skip-bad-relationships=false",
        "--skip-duplicate-nodes=false",
        f"--max-off-heap-memory={off_heap}",
        f"--report-file={(directory / 'import.report').resolve()}",
    ]
    if threads:
        options.append(f"--threads={threads}")
    # The database name goes first: after --relationships it would be taken for one more file.
    home.admin("database", "import", "full", "neo4j", *options, *import_arguments(directory, manifest), heap=heap)
    report.seconds["neo4j-admin import"] = time.perf_counter() - clock

    clock = time.perf_counter()
    home.start()
    report.seconds["start"] = time.perf_counter() - clock

    report.migrations = asyncio.run(finish_import(home.settings(settings), report))
    report.store_bytes = home.store_bytes()  # with the indexes the migrations built
    return report


async def finish_import(settings: Settings, report: ImportReport) -> list[str]:
    from app.services.catalog import CatalogService
    from app.store.database import Database
    from app.store.migrations import apply_migrations

    db = Database(settings)
    try:
        clock = time.perf_counter()
        ran = await apply_migrations(db)
        report.seconds["migrations (constraints)"] = time.perf_counter() - clock
        clock = time.perf_counter()
        await CatalogService(db, settings.flags_file).reload()
        report.seconds["catalog sync"] = time.perf_counter() - clock
        return ran
    finally:
        await db.close()
