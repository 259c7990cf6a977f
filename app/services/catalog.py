"""The catalog in force: loaded from flags.json, checked against stored values,
mirrored to the graph, and swapped in whole on a change of the file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from loguru import logger
from watchfiles import awatch

from app.domain.catalog import Catalog
from app.errors import Problem, ProblemType
from app.observability import metrics
from app.store import audit as audit_store
from app.store import catalog as catalog_store
from app.store.database import Database

# Seconds a catalog check-and-sync may take (it writes every new or changed flag in one transaction).
SYNC_TIMEOUT = 300.0


class CatalogService:
    def __init__(self, db: Database, path: Path) -> None:
        self.db = db
        self.path = path
        self.current = Catalog([])
        self.loaded = False
        self._lock = asyncio.Lock()
        # Called after a new catalog is in force (open event streams answer again).
        self.listeners: list[Callable[[], None]] = []

    @metrics.counted_catalog_reload
    async def reload(self) -> Catalog:
        """Load the file and put it in force, or raise `invalid-catalog` and keep the old one."""
        async with self._lock:
            try:
                candidate = Catalog.load(self.path)
                # Not a request's query: a first sync of 100,000 flags takes longer than query_timeout.
                changed, retired = await self.db.write_within(
                    max(self.db.timeout, SYNC_TIMEOUT), _check_and_sync, candidate
                )
            except Problem as problem:
                # docs/api.md: a refused file leaves the old catalog in force "and the reason is logged",
                # whether the watcher or POST /v1/catalog/reload asked.
                logger.warning("catalog change refused, old catalog stays: {}", problem.detail)
                raise
            self.current, self.loaded = candidate, True
            for listener in self.listeners:
                listener()
            logger.bind(flags=len(candidate), changed=changed, retired=retired).info("catalog in force")
            return candidate

    async def watch(self) -> None:
        """Reload whenever the file changes; a bad file is logged and the old catalog stays."""
        # Watch the folder: editors replace files by renaming, which a watch on the file misses.
        async for changes in awatch(self.path.parent, recursive=False):
            if not any(Path(changed).name == self.path.name for _, changed in changes):
                continue
            try:
                await self.reload()
            except Problem:
                pass  # refused and logged by reload(); the old catalog stays
            except Exception:
                logger.exception("catalog reload failed, old catalog stays")


async def _check_and_sync(tx, candidate: Catalog) -> tuple[int, int]:
    """Refuse a catalog under which a stored value would be invalid; else mirror it to the graph.

    One write transaction holding the writers' lock, so no value can be stored under the
    old definitions between the check and the sync.
    """
    await audit_store.claim_sequence(tx)
    stored = await catalog_store.stored_definitions(tx)
    # Only flags whose definition differs from what the graph holds can break stored values.
    changed, retired = catalog_store.differences(list(candidate), stored)
    values = await catalog_store.stored_values(tx, [f.name for f in changed]) if changed else {}
    for flag in changed:
        for stored_value in values.get(flag.name, ()):
            try:
                problem = flag.problem_with(flag.from_graph(stored_value))
            except ValueError:
                problem = "it is not valid JSON"
            if problem:
                raise Problem(
                    ProblemType.invalid_catalog,
                    f"flag {flag.name!r}: stored value {stored_value!r} would be invalid ({problem})",
                )
    await catalog_store.sync(tx, changed, retired)
    return len(changed), len(retired)
