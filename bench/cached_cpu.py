"""CPU per cached request inside one process, for the no-op and each cached lookup (issue 11).

    .venv/bin/python bench/cached_cpu.py [--requests 28000]

The real ASGI app (middleware, token check, cache, handler, JSON), driven without sockets, so
uvicorn's own cost per request is not in it: GET /healthz, GET /v1/orgs/{org}/flags/{flag},
the seed's GET /{org}/{flag} and a single-flag OFREP POST, with a reader token scoped to the
chain's root and the default instrumentation. Each figure is the best of 7 slices (a shared
machine only ever adds time). Needs the dev Neo4j (NEO4J_URI) with the orgs of
bench/observability.py (bench-obs-0..3).
"""

from __future__ import annotations

import argparse
import asyncio
import time

ORG, ROOT, FLAG = "bench-obs-3", "bench-obs-0", "new-checkout"


async def measure(requests: int) -> dict[str, float]:
    from asgi_lifespan import LifespanManager

    from app.auth.tokens import mint_dev_token
    from app.http.app import create_app
    from app.settings import Settings

    settings = Settings(watch_catalog=False, log_level="WARNING")
    token = mint_dev_token(settings, subject="bench", roles=["reader"], orgs=[ROOT], ttl=3600)
    app = create_app(settings)
    body = f'{{"context":{{"targetingKey":"{ORG}"}}}}'.encode()
    cases = {
        "healthz": ("GET", "/healthz", b""),
        "rest": ("GET", f"/v1/orgs/{ORG}/flags/{FLAG}", b""),
        "seed": ("GET", f"/{ORG}/{FLAG}", b""),
        "ofrep": ("POST", f"/ofrep/v1/evaluate/flags/{FLAG}", body),
    }
    statuses: list[int] = []

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    results = {}
    async with LifespanManager(app, startup_timeout=60):
        for name, (method, path, payload) in cases.items():
            headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
            if payload:
                headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "root_path": "",
                "query_string": b"",
                "headers": headers,
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 80),
            }

            async def receive(payload=payload):
                return {"type": "http.request", "body": payload, "more_body": False}

            for _ in range(2000):  # warm the caches and the token memo
                await app(dict(scope), receive, send)
            statuses.clear()
            slices = []
            for _ in range(7):
                started = time.process_time()
                for _ in range(requests // 7):
                    await app(dict(scope), receive, send)
                slices.append(time.process_time() - started)
            assert set(statuses) == {200}, set(statuses)
            results[name] = 1e6 * min(slices) / (requests // 7)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=28_000)
    options = parser.parse_args()
    for name, micros in asyncio.run(measure(options.requests)).items():
        print(f"{name}: {micros:.1f} us CPU per request")


if __name__ == "__main__":
    main()
