"""Online export: the live graph, read page by page over Bolt, as an import directory.

Orgs (with their parents and own values) come in id order, pages of `page` orgs, each
page one read transaction returning one collected list; then the Flag nodes as stored
(retired flags too, their values are kept); then the audit events up to the newest seq
at the end of the org pass, in seq order. Restoring the directory is an import
(loaders.admin_import), so the restored graph has the same orgs, values, flags and
audit events, and the audit sequence continues from the exported seq.

The pages are separate transactions: a write that lands while the export runs may be
in it or not, but every change the exported orgs and values show has its audit event
in the export (events are read last, up to a seq taken after the last org page). For a
point-in-time copy, stop the writers or use the offline dump (loaders.backup).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from app.store import export as export_store
from app.store import orgs as orgs_store
from app.store.database import Database
from loaders.admin_csv import AdminCsvWriter, Manifest


async def export_graph(
    db: Database, directory: Path, page: int = 20_000, progress: Callable[[str, int], None] | None = None
) -> Manifest:
    writer = AdminCsvWriter(directory, source="export")
    clock = time.perf_counter()
    try:
        after = ""  # every id sorts after the empty string
        orgs = 0
        while True:
            rows = await db.read(orgs_store.page, after, page)
            if not rows:
                break
            for org, parent, values in rows:
                writer.org(org, parent)
                for flag, value, _type, updated_at, updated_by, sealed in values:
                    writer.value(org, flag, value, updated_at, updated_by, bool(sealed))
            orgs += len(rows)
            after = max(row[0] for row in rows)
            if progress:
                progress("orgs", orgs)
        for name, type_, default, set_, description, definition, active in await db.read(export_store.flags):
            writer.flag(name, type_, default, set_, description, definition, bool(active))
        upto, pruned = await db.read(export_store.sequence)
        seq = 0
        while seq < upto:
            events = await db.read(export_store.audit_page, seq, upto, page)
            if not events:
                break
            for event in events:
                writer.audit_event(*event[:8], path=list(event[8] or []), sealed=event[9], schedule=event[10])
            seq = events[-1][0]
            if progress:
                progress("audit events", seq)
        writer.audit_sequence(upto, pruned)
    except BaseException:
        writer.discard()
        raise
    return writer.close(export_seconds=round(time.perf_counter() - clock, 3))
