"""The `graphflags import | backup | restore` commands (registered in app/cli.py); logic lives in loaders/."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from app.domain.catalog import Catalog
from app.settings import get_settings
from loaders.neo4j_home import DEV_HOME, Neo4jCtlError, Neo4jHome

_home = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEV_HOME,
    show_default=True,
    help="The neo4jctl home whose default database is replaced (its server is stopped and started).",
)
_heap = click.option("--heap", default="1g", show_default=True, help="Heap of the neo4j-admin JVM (HEAP_SIZE).")
_off_heap = click.option(
    "--off-heap", default="2g", show_default=True, help="neo4j-admin --max-off-heap-memory (its default is 90% of RAM)."
)


def _report(report) -> None:
    click.echo(f"imported {report.counts}")
    for step, seconds in report.seconds.items():
        click.echo(f"  {step}: {seconds:.1f} s")
    click.echo(f"  store on disk: {report.store_bytes / 2**20:.1f} MiB; total {report.total_seconds:.1f} s")


def _open_home(path: Path) -> Neo4jHome:
    try:
        return Neo4jHome(path)
    except Neo4jCtlError as error:
        raise click.ClickException(str(error)) from None


@click.command("import")
@click.argument("orgs_csv", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--values",
    "values_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="org,flag,value rows (value as JSON) to import with the orgs.",
)
@click.option(
    "--from-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Import a prepared import directory (python -m loaders.synthetic --admin-dir, an export).",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the checked import files go (default: a temporary directory, removed afterwards).",
)
@click.option("--check-only", is_flag=True, help="Judge the CSV and report bad rows; import nothing.")
@_home
@_heap
@_off_heap
def import_command(
    orgs_csv: Path | None,
    values_csv: Path | None,
    from_dir: Path | None,
    work_dir: Path | None,
    check_only: bool,
    home: Path,
    heap: str,
    off_heap: str,
) -> None:
    """Bulk-load orgs (id,parent CSV) and values with neo4j-admin: REPLACES the home's database.

    The CSV is judged whole first; any bad row (bad id, duplicate id, unknown parent,
    cycle, value that does not fit its flag) is listed with its line and nothing is
    imported. Then: stop the server, neo4j-admin database import full, start, apply
    migrations, sync the catalog. Restart running service instances afterwards.
    """
    from loaders.admin_import import import_directory
    from loaders.user_csv import BadRows, check_and_write

    if (orgs_csv is None) == (from_dir is None):
        raise click.UsageError("give either ORGS_CSV or --from-dir")
    settings = get_settings()
    scratch = None
    if orgs_csv is not None:
        if work_dir is None:
            scratch = tempfile.TemporaryDirectory(
                prefix="graphflags-import-", dir=".local" if Path(".local").is_dir() else None
            )
            work_dir = Path(scratch.name)
        try:
            manifest = check_and_write(orgs_csv, values_csv, Catalog.load(settings.flags_file), work_dir)
        except BadRows as bad:
            click.echo(str(bad), err=True)
            sys.exit(1)
        click.echo(f"checked: {manifest.counts()}")
        if check_only:
            return
        from_dir = work_dir
    try:
        _report(import_directory(_open_home(home), from_dir, settings, heap=heap, off_heap=off_heap))
    except Neo4jCtlError as error:
        raise click.ClickException(str(error)) from None
    finally:
        if scratch is not None:
            scratch.cleanup()


@click.command()
@click.option(
    "--to",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder that receives a new graphflags-<kind>-<time> backup folder.",
)
@click.option("--offline", is_flag=True, help="neo4j-admin dump of --home (stops its server meanwhile).")
@click.option(
    "--unencrypted",
    is_flag=True,
    help="Allow a backup without GRAPHFLAGS_BACKUP_KEY(_FILE); the folder is marked UNENCRYPTED.",
)
@_home
def backup(root: Path, offline: bool, unencrypted: bool, home: Path) -> None:
    """Back up orgs, values, flags and audit events (online export by default), encrypted."""
    from loaders.backup import BackupError, backup_offline, backup_online

    settings = get_settings()
    if settings.backup_key is None and settings.backup_key_file is None and not unencrypted:
        raise click.ClickException(
            "no backup key: set GRAPHFLAGS_BACKUP_KEY_FILE (make one with graphflags "
            "backup-key --out FILE) or GRAPHFLAGS_BACKUP_KEY, or pass --unencrypted"
        )
    try:
        folder = backup_offline(_open_home(home), root, settings) if offline else backup_online(settings, root)
    except (BackupError, Neo4jCtlError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(str(folder) + ("" if settings.backup_key or settings.backup_key_file else "  (UNENCRYPTED)"))


@click.command()
@click.option(
    "--from",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A backup folder (export or dump).",
)
@_home
@_heap
@_off_heap
def restore(folder: Path, home: Path, heap: str, off_heap: str) -> None:
    """REPLACE the home's database with a backup, then migrate and sync the catalog."""
    from loaders.backup import BackupError
    from loaders.backup import restore as run_restore

    try:
        _report(run_restore(_open_home(home), folder, get_settings(), heap=heap, off_heap=off_heap))
    except (BackupError, Neo4jCtlError) as error:
        raise click.ClickException(str(error)) from None
