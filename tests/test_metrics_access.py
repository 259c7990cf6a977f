"""Who may read the metrics (docs/api.md "Limits"): `/metrics` on the public listener only for
admins of '*' (the text names actors of every tenant); the loopback listener needs no token."""

from __future__ import annotations

import socket

import httpx

from app.observability import metrics


async def test_a_scoped_admin_may_not_read_the_public_metrics(client, tokens):
    scoped = await client.get("/metrics", headers=tokens.admin("acme"))
    assert scoped.status_code == 403, scoped.text
    assert scoped.headers["content-type"].startswith("application/problem+json")
    assert scoped.json()["type"].endswith("/forbidden")
    assert "graphflags_" not in scoped.text
    assert (await client.get("/metrics", headers=tokens.admin("acme", "globex"))).status_code == 403
    everything = await client.get("/metrics", headers=tokens.admin("*"))
    assert everything.status_code == 200
    assert "graphflags_http_request_duration_seconds" in everything.text


def test_the_loopback_metrics_listener_needs_no_token():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server, thread = metrics.serve_listener("127.0.0.1", port)
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert answer.status_code == 200
        assert "graphflags_" in answer.text
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
