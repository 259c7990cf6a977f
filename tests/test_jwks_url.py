"""Keys from a JWKS URL (docs/api.md "Authentication"): fetched, cached, fetched again when a
token names an unknown `kid` (rate-limited), so an identity provider can rotate keys
without a restart here. The provider is a local HTTP server whose keys change mid-test."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from joserfc import jwt
from joserfc.jwk import ECKey

from app.http.app import create_app

ISSUER, AUDIENCE = "https://idp.example.test/", "graphflags-prod"


class Provider:
    """A JWKS endpoint: `keys` is what it publishes, `up` whether it answers, `fetches` a count."""

    def __init__(self) -> None:
        self.keys: list[ECKey] = []
        self.up = True
        self.fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.fetches += 1
                if not provider.up:
                    self.send_error(503)
                    return
                body = orjson.dumps({"keys": [key.as_dict(private=False) for key in provider.keys]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"


@pytest.fixture
def provider() -> Iterator[Provider]:
    provider = Provider()
    thread = threading.Thread(target=provider.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        provider.server.shutdown()
        provider.server.server_close()
        thread.join(timeout=10)


def key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid})


def signed(signer: ECKey, sub: str = "idp-user", **overrides) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + 300,
        "roles": ["reader"],
        "orgs": ["*"],
        **overrides,
    }
    token = jwt.encode({"alg": "ES256", "kid": signer.kid}, claims, signer, algorithms=["ES256"])
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def instance(settings_for):
    """`await instance(**settings)`: an app instance with keys from the provider; its client."""
    opened: list[tuple[LifespanManager, httpx.AsyncClient]] = []

    async def start(**overrides) -> httpx.AsyncClient:
        application = create_app(settings_for(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, **overrides))
        manager = LifespanManager(application, startup_timeout=60)
        await manager.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://jwks-url.test")
        opened.append((manager, client))
        return client

    yield start
    for manager, client in reversed(opened):
        await client.aclose()
        await manager.__aexit__(None, None, None)


async def test_keys_rotate_without_a_restart(provider, instance):
    old, new = key("k-2025"), key("k-2026")
    provider.keys = [old]
    client = await instance(jwt_jwks_url=provider.url, jwt_jwks_refetch_interval=0.5)
    assert (await client.get("/v1/flags", headers=signed(old))).status_code == 200
    assert provider.fetches == 1
    # Issuer and audience are checked as for a JWKS file.
    assert (await client.get("/v1/flags", headers=signed(old, iss="https://other.example/"))).status_code == 401
    assert (await client.get("/v1/flags", headers=signed(old, aud="graphflags"))).status_code == 401
    # The provider publishes a new key next to the old one (as providers do during a rotation).
    provider.keys = [old, new]
    deadline = time.monotonic() + 20
    while (await client.get("/v1/flags", headers=signed(new))).status_code != 200:
        assert time.monotonic() < deadline, "a token of the new key was never accepted"
        await asyncio.sleep(0.1)
    remembered = signed(old, sub="still-old")
    assert (await client.get("/v1/flags", headers=remembered)).status_code == 200
    # The old key withdrawn: once the keys are fetched again, its tokens are refused.
    newer = key("k-2027")
    provider.keys = [new, newer]
    while (await client.get("/v1/flags", headers=signed(newer))).status_code != 200:
        assert time.monotonic() < deadline, "a token of the newest key was never accepted"
        await asyncio.sleep(0.1)
    assert (await client.get("/v1/flags", headers=signed(old, sub="withdrawn"))).status_code == 401
    # A token of the old key verified before the withdrawal is not remembered past it either.
    assert (await client.get("/v1/flags", headers=remembered)).status_code == 401


async def test_unknown_kids_do_not_cause_a_fetch_storm(provider, instance):
    known = key("known")
    provider.keys = [known]
    client = await instance(jwt_jwks_url=provider.url, jwt_jwks_refetch_interval=3600)
    assert (await client.get("/v1/flags", headers=signed(known))).status_code == 200
    strangers = [key(f"stranger-{n}") for n in range(40)]
    answers = await asyncio.gather(*(client.get("/v1/flags", headers=signed(s)) for s in strangers))
    assert {answer.status_code for answer in answers} == {401}
    assert all(a.headers["www-authenticate"].startswith("Bearer") for a in answers)
    # The first fetch was the one for `known`; within the interval unknown kids fetch nothing more.
    assert provider.fetches == 1


async def test_a_provider_that_is_down_leaves_known_keys_working(provider, instance):
    known = key("known")
    provider.keys = [known]
    client = await instance(jwt_jwks_url=provider.url, jwt_jwks_refetch_interval=0)
    assert (await client.get("/v1/flags", headers=signed(known, sub="first"))).status_code == 200
    provider.up = False
    # An unknown kid now tries the provider (no interval here), which fails: 401, not 5xx.
    stranger = await client.get("/v1/flags", headers=signed(key("stranger")))
    assert stranger.status_code == 401, stranger.text
    assert provider.fetches >= 2
    # A fresh token (never verified before) of the known key still verifies.
    assert (await client.get("/v1/flags", headers=signed(known, sub="during-outage"))).status_code == 200


async def test_a_provider_down_at_start_is_tried_again(provider, instance):
    known = key("known")
    provider.keys = [known]
    provider.up = False
    client = await instance(jwt_jwks_url=provider.url, jwt_jwks_refetch_interval=0)
    assert (await client.get("/v1/flags", headers=signed(known))).status_code == 401
    provider.up = True
    assert (await client.get("/v1/flags", headers=signed(known, sub="later"))).status_code == 200
