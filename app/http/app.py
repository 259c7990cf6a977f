"""The ASGI application: routes, error handlers, and the services they share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette

from app.auth.tokens import TokenVerifier
from app.http.errors import HANDLERS
from app.http.routes import ROUTES
from app.logs import configure_logging
from app.services.audit import AuditService
from app.services.catalog import CatalogService
from app.services.orgs import OrgService
from app.services.values import ValueService
from app.settings import Settings, get_settings
from app.store.database import Database


@dataclass(frozen=True, slots=True)
class Services:
    db: Database
    tokens: TokenVerifier
    catalog: CatalogService
    values: ValueService
    orgs: OrgService
    audit: AuditService


def build_services(settings: Settings) -> Services:
    db = Database(settings)
    catalog = CatalogService(db, settings.flags_file)
    return Services(
        db=db,
        tokens=TokenVerifier(settings),
        catalog=catalog,
        values=ValueService(db, lambda: catalog.current),
        orgs=OrgService(db, settings.bulk_batch_size),
        audit=AuditService(db),
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        configure_logging(settings)
        services = build_services(settings)
        app.state.services = services
        await services.catalog.reload()
        watcher = asyncio.create_task(services.catalog.watch()) if settings.watch_catalog else None
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await services.db.close()

    app = Starlette(routes=ROUTES, exception_handlers=HANDLERS, lifespan=lifespan)
    app.state.settings = settings
    return app
