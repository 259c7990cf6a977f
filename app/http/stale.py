"""Marks answers served from last-known values while the database was away.

`Age` (RFC 9111) says how old the value may be, in whole seconds; `X-Graphflags-Stale`
carries the same age with a decimal, and its presence alone tells a client the value
was not confirmed by the database for this answer.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.cache.values import served_stale


class MarkStale:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        served_stale.set(None)

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                age = served_stale.get()
                if age is not None:
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"age", str(int(age)).encode()),
                        (b"x-graphflags-stale", f"{age:.1f}".encode()),
                    ]
            await send(message)

        await self.app(scope, receive, send_marked)
