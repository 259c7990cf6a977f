"""The services one worker process shares, built from the settings: what the HTTP layer is given.

The HTTP layer reaches the database only through these services; `db` is here for the
services themselves, the background tasks and tests, never for request handlers.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.auth.tokens import TokenVerifier
from app.cache.follower import ChangeFollower
from app.cache.values import ValueCache
from app.region.status import RegionStatus
from app.services.audit import AuditService
from app.services.bulk_values import BulkValues
from app.services.catalog import CatalogService
from app.services.changes import AuditPruner, ChangeFeed
from app.services.orgs import OrgService
from app.services.schedules import Scheduler, Schedules
from app.services.snapshot import Snapshot
from app.services.values import ValueService
from app.settings import Settings
from app.store.database import Database


@dataclass(frozen=True, slots=True)
class Services:
    db: Database
    tokens: TokenVerifier
    catalog: CatalogService
    values: ValueService
    orgs: OrgService
    audit: AuditService
    cache: ValueCache
    follower: ChangeFollower

    # --- per request: cheap objects over the shared database ----------------------------

    def change_feed(self) -> ChangeFeed:
        return ChangeFeed(self.db)

    def snapshot(self) -> Snapshot:
        return Snapshot(self.db)

    def schedules(self) -> Schedules:
        return Schedules(self.db, lambda: self.catalog.current)

    def bulk_values(self, batch_size: int, timeout: float) -> BulkValues:
        return BulkValues(self.db, lambda: self.catalog.current, self.values, batch_size, timeout)

    # --- background tasks of the worker -----------------------------------------------

    def region_status(self, upstream: str) -> RegionStatus:
        return RegionStatus(self.db, upstream)

    def scheduler(self, interval: float, retention_days: int = 30, prune_interval: float = 3600.0) -> Scheduler:
        return Scheduler(self.db, lambda: self.catalog.current, self.values, interval, retention_days, prune_interval)

    def audit_pruner(self, retention_days: int, interval: float) -> AuditPruner:
        return AuditPruner(self.db, retention_days, interval)

    # --- the database's health, for /readyz ----------------------------------------------

    async def ping_database(self) -> None:
        await self.db.ping()

    @property
    def database_circuit_open_for(self) -> float | None:
        """Seconds until the database's circuit breaker lets calls through again; None: closed."""
        return self.db.circuit_open_for

    async def close(self) -> None:
        await self.db.close()


def build_services(settings: Settings) -> Services:
    db = Database(settings)
    catalog = CatalogService(db, settings.flags_file)
    cache = ValueCache(settings.cache_max_entries, settings.cache_max_lag)
    return Services(
        db=db,
        tokens=TokenVerifier(settings),
        catalog=catalog,
        values=ValueService(
            db,
            lambda: catalog.current,
            cache,
            settings.serve_stale_for,
            settings.write_batch_max,
            batch_size=settings.read_batch_size,
            batches_in_flight=settings.read_batches_in_flight,
        ),
        orgs=OrgService(
            db, settings.bulk_batch_size, on_hierarchy_change=cache.hierarchy_changed, max_depth=settings.max_depth
        ),
        audit=AuditService(db),
        cache=cache,
        follower=ChangeFollower(db, cache, settings.cache_follow_interval),
    )
