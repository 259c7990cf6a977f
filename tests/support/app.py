"""The app in-process over a server of a module's own, with an admin token on every request; migrations."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

from app.auth.tokens import mint_dev_token
from app.http.app import create_app
from app.settings import Settings
from app.store.database import Database
from app.store.migrations import apply_migrations


async def migrate(settings: Settings) -> Settings:
    """Apply the migrations to `settings`' database; answers `settings`. Migrations build indexes: on
    a loaded machine that has outlasted a request's query_timeout (10 s) and failed whole sessions,
    so they get minutes here; the tests themselves keep the real timeout."""
    db = Database(settings.model_copy(update={"query_timeout": 300.0}))
    try:
        await apply_migrations(db)
    finally:
        await db.close()
    return settings


class AdminApp:
    """`async with AdminApp(settings) as client:` a started app and an admin client for it."""

    def __init__(self, settings: Settings, subject: str = "tester") -> None:
        token = mint_dev_token(settings, subject=subject, roles=["admin"], orgs=["*"], ttl=600)
        self.settings, self.headers = settings, {"Authorization": f"Bearer {token}"}

    async def __aenter__(self) -> httpx.AsyncClient:
        self.manager = LifespanManager(create_app(self.settings), startup_timeout=60)
        app = (await self.manager.__aenter__()).app
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=self.headers
        )
        return self.client

    async def __aexit__(self, *exc) -> None:
        await self.client.aclose()
        await self.manager.__aexit__(*exc)
