"""The app in-process over a server of a module's own, with an admin token on every request."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager

from app.auth.tokens import mint_dev_token
from app.http.app import create_app
from app.settings import Settings


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
