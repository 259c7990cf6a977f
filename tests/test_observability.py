"""Metrics, traces and event logs, observed through the app as it runs on the real Neo4j."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from loguru import logger
from neo4j.exceptions import ServiceUnavailable, SessionExpired
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route

from app.auth.tokens import mint_dev_token
from app.errors import Problem
from app.http.app import create_app
from app.observability import tracing
from app.store.database import Database, after_commit
from tests.support.ports import free_port
from tests.support.serve import Served, service_env

LOOKUP_ROUTE = "/v1/orgs/{org}/flags/{flag}"
REPO = Path(__file__).resolve().parent.parent
TEST_CATALOG = REPO / "tests" / "data" / "catalog.json"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client, tokens) -> dict[tuple[str, frozenset], float]:
    response = await client.get("/metrics", headers=tokens.admin())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def value(scraped, name: str, **labels) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


@contextlib.contextmanager
def captured_logs() -> Iterator[list[dict]]:
    """Every loguru record emitted meanwhile, with its bound fields."""
    records: list[dict] = []
    sink = logger.add(lambda message: records.append(message.record), level="DEBUG")
    try:
        yield records
    finally:
        logger.remove(sink)


@contextlib.contextmanager
def traced() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure(None, SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        tracing.configure(None)


async def test_metrics_count_requests_by_route_template_and_status(client, tokens, chain6):
    before = await scrape(client, tokens)
    leaf = chain6[-1]
    for _ in range(3):
        assert (await client.get(f"/v1/orgs/{leaf}/flags/beta", headers=tokens.reader())).status_code == 200
    assert (await client.get(f"/v1/orgs/{leaf}/flags/no-such-flag", headers=tokens.reader())).status_code == 404
    assert (await client.get("/no-such-route", headers=tokens.reader())).status_code == 404
    after = await scrape(client, tokens)

    def delta(**labels):
        name = "graphflags_http_request_duration_seconds_count"
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(method="GET", route=LOOKUP_ROUTE, status="200") == 3
    assert delta(method="GET", route=LOOKUP_ROUTE, status="404") == 1
    assert delta(method="GET", route="<unmatched>", status="404") == 1
    # Raw paths never become labels: org ids would make a series per org.
    assert not any(leaf in str(labels) for _, labels in after)
    evaluations = "graphflags_flag_evaluations_total"
    assert (
        value(after, evaluations, flag="beta", reason="default")
        - value(before, evaluations, flag="beta", reason="default")
        == 3
    )
    # The uncached first lookup ran the walk-up statement, timed under its name.
    assert value(after, "graphflags_cypher_duration_seconds_count", statement="lookup_chains") >= 1
    assert value(after, "graphflags_neo4j_up") == 1


async def test_metrics_need_an_admin_token(client, tokens):
    anonymous = await client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert (await client.get("/metrics", headers=tokens.writer())).status_code == 403
    assert (await client.get("/metrics", headers=tokens.admin())).status_code == 200


async def test_changes_are_counted_by_actor_and_flag(client, tokens, chain6):
    before = await scrape(client, tokens)
    org = chain6[2]
    headers = tokens.writer(sub="toggler-1")
    for value_ in (True, False, True):
        assert (
            await client.put(f"/v1/orgs/{org}/flags/dark-mode", json={"value": value_}, headers=headers)
        ).status_code == 200
    # The same value again changes nothing and is not a toggle.
    assert (
        await client.put(f"/v1/orgs/{org}/flags/dark-mode", json={"value": True}, headers=headers)
    ).status_code == 200
    after = await scrape(client, tokens)
    by_actor = "graphflags_changes_by_actor_total"
    assert (
        value(after, by_actor, actor="toggler-1", action="flag.set")
        - value(before, by_actor, actor="toggler-1", action="flag.set")
        == 3
    )
    by_flag = "graphflags_flag_changes_total"
    assert (
        value(after, by_flag, flag="dark-mode", action="flag.set")
        - value(before, by_flag, flag="dark-mode", action="flag.set")
        == 3
    )


async def test_each_committed_change_logs_one_line_with_its_audit_seq(client, tokens, chain6):
    org = chain6[1]
    with captured_logs() as records:
        response = await client.put(
            f"/v1/orgs/{org}/flags/theme", json={"value": "dark"}, headers=tokens.writer(sub="alice")
        )
        assert response.status_code == 200
        again = await client.put(
            f"/v1/orgs/{org}/flags/theme", json={"value": "dark"}, headers=tokens.writer(sub="alice")
        )
        assert again.status_code == 200
    changes = [r["extra"] for r in records if r["extra"].get("event") == "change"]
    assert len(changes) == 1, changes  # the second request changed nothing
    line = changes[0]
    audit = await client.get("/v1/audit", params={"org": org, "flag": "theme"}, headers=tokens.admin())
    event = audit.json()["events"][0]
    assert {k: line[k] for k in ("actor", "action", "org", "flag", "old", "new", "seq")} == {
        "actor": "alice",
        "action": "flag.set",
        "org": org,
        "flag": "theme",
        "old": None,
        "new": "dark",
        "seq": event["seq"],
    }
    assert len(line["trace_id"]) == 32
    # Lookups are counted, not logged.
    with captured_logs() as records:
        assert (await client.get(f"/v1/orgs/{org}/flags/theme", headers=tokens.reader())).status_code == 200
    assert records == []


async def test_org_changes_log_a_line_each(client, tokens, uid):
    root, child = uid("root"), uid("child")
    with captured_logs() as records:
        response = await client.post(
            "/v1/orgs/bulk", json=[{"id": child, "parent": root}, {"id": root}], headers=tokens.admin(sub="importer")
        )
        assert response.status_code == 200, response.text
    lines = [r["extra"] for r in records if r["extra"].get("event") == "change"]
    assert sorted((line["action"], line["org"], line["actor"]) for line in lines) == [
        ("org.create", child, "importer"),
        ("org.create", root, "importer"),
    ]
    assert len({line["seq"] for line in lines}) == 2


async def test_after_commit_runs_once_for_the_attempt_that_committed(migrated):
    """The driver retries a unit of work; only the attempt that commits may be logged."""
    db = Database(migrated)
    ran: list[str] = []
    attempts = 0

    async def flaky(tx):
        nonlocal attempts
        attempts += 1
        await (await tx.run("RETURN 1")).consume()
        after_commit(lambda n=attempts: ran.append(f"attempt {n}"))
        if attempts == 1:
            raise SessionExpired("connection lost before commit")  # retryable: the driver runs it again
        return attempts

    async def failing(tx):
        after_commit(lambda: ran.append("failed"))
        raise ValueError("the unit of work gives up")

    try:
        assert await db.write(flaky) == 2
        assert ran == ["attempt 2"]
        with pytest.raises(ValueError):
            await db.write(failing)
        assert ran == ["attempt 2"]
    finally:
        await db.close()


async def test_unauthorized_requests_log_the_reason_never_the_token(client, tokens):
    token = tokens.mint("reader", ttl=-10)  # expired
    with captured_logs() as records:
        assert (await client.get("/v1/flags", headers={"Authorization": f"Bearer {token}"})).status_code == 401
        assert (await client.get("/v1/flags", headers={"Authorization": "Bearer not.a.jwt"})).status_code == 401
        assert (await client.get("/v1/flags")).status_code == 401
    lines = [r for r in records if r["message"].startswith("unauthorized")]
    assert len(lines) == 3
    for record in lines:
        assert record["extra"]["path"] == "/v1/flags"
        text = str(record["message"]) + str(record["extra"])
        assert token not in text and token.split(".")[2] not in text and "not.a.jwt" not in text
    assert "expired" in lines[0]["message"]


async def test_a_request_span_has_a_child_span_per_cypher_statement(client, tokens, chain6):
    with traced() as exporter:
        # An org not yet looked up: the cache misses and the walk-up statement runs.
        response = await client.get(f"/v1/orgs/{chain6[4]}/flags/banner", headers=tokens.reader())
        assert response.status_code == 200
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.name == f"GET {LOOKUP_ROUTE}"]
    assert len(server) == 1, [s.name for s in spans]
    server = server[0]
    assert server.attributes["http.route"] == LOOKUP_ROUTE
    assert server.attributes["http.response.status_code"] == 200
    queries = [s for s in spans if s.name.startswith("cypher ")]
    assert "cypher lookup_chains" in [s.name for s in queries]
    for span in queries:
        assert span.parent.span_id == server.context.span_id
        assert span.context.trace_id == server.context.trace_id
        # The statement's name, never its parameters (org ids).
        assert chain6[4] not in str(dict(span.attributes))


async def test_an_incoming_traceparent_is_continued(client, tokens):
    trace_id = "4bf92f3577b34da6a3ce929d0e0736ab"
    with traced() as exporter:
        await client.get("/v1/flags", headers={**tokens.reader(), "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert [format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()] == [trace_id]
    # A caller that does not sample its trace: no spans, but the id still names the log lines.
    with traced() as exporter, captured_logs() as records:
        await client.get("/v1/flags", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-00"})
    assert exporter.get_finished_spans() == ()
    assert [r["extra"].get("trace_id") for r in records if r["message"].startswith("unauthorized")] == [trace_id]


@pytest.fixture
async def failing_app(settings_for):
    """An app with one extra route that fails as a bug would, and one whose database is away."""

    async def bug(request):
        raise RuntimeError("a bug")

    async def database_away(request):
        raise ServiceUnavailable("no route to the database")

    application = create_app(settings_for())
    application.router.routes.insert(0, Route("/test-bug", bug))
    application.router.routes.insert(0, Route("/test-database-away", database_away))
    async with LifespanManager(application, startup_timeout=60):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://graphflags.test") as http:
            yield http


@pytest.mark.parametrize("tracing_on", [False, True])
async def test_server_errors_name_the_trace_id_logged_with_them(failing_app, tracing_on):
    with contextlib.ExitStack() as stack:
        exporter = stack.enter_context(traced()) if tracing_on else None
        records = stack.enter_context(captured_logs())
        bug = await failing_app.get("/test-bug")
        away = await failing_app.get("/test-database-away")
    assert bug.status_code == 500 and away.status_code == 503
    for response, level in ((bug, "ERROR"), (away, "WARNING")):
        document = response.json()
        trace_id = document["trace_id"]
        assert len(trace_id) == 32 and int(trace_id, 16)
        logged = [r for r in records if r["extra"].get("trace_id") == trace_id]
        assert [r["level"].name for r in logged] == [level]
    assert bug.json()["trace_id"] != away.json()["trace_id"]
    if exporter is not None:
        traced_ids = {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()}
        assert bug.json()["trace_id"] in traced_ids


async def test_client_errors_keep_their_documented_shape(client, tokens):
    response = await client.get("/v1/orgs/bad id!/flags/beta", headers=tokens.reader())
    assert response.status_code == 422
    assert set(response.json()) == {"type", "title", "status", "detail"}


def test_a_scrape_adds_up_every_worker_process(migrated, tmp_path):
    """`graphflags serve` with two workers: /metrics shows both, not whichever answered."""
    metrics_port = free_port()
    env = service_env(
        migrated,
        GRAPHFLAGS_WORKERS="2",
        GRAPHFLAGS_METRICS_PORT=str(metrics_port),
        GRAPHFLAGS_JWT_DEV_KEY_FILE=str(tmp_path / "dev-jwt.key"),
        GRAPHFLAGS_FLAGS_FILE=str(TEST_CATALOG),
    )
    env.pop("GRAPHFLAGS_WATCH_CATALOG")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = Served(env, tmp_path / "serve.log")
    base, listener = server.url, f"http://127.0.0.1:{metrics_port}/metrics"

    def both_workers_ready() -> bool:
        scraped = samples(httpx.get(listener).text)
        return value(scraped, "graphflags_worker_processes") == 2 and httpx.get(f"{base}/readyz").status_code == 200

    server.start(ready=both_workers_ready)
    try:
        for _ in range(40):
            with httpx.Client() as fresh:  # a new connection each time, so both workers answer some
                assert fresh.get(f"{base}/healthz").status_code == 200
        healthz = {"method": "GET", "route": "/healthz", "status": "200"}

        def counted(text: str) -> float:
            return value(samples(text), "graphflags_http_request_duration_seconds_count", **healthz)

        # Workers hand their counts over once a second (metrics.FLUSH_INTERVAL).
        deadline = time.monotonic() + 30
        while counted(scraped := httpx.get(listener).text) < 40 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert counted(scraped) == 40
        assert value(samples(scraped), "graphflags_worker_processes") == 2
        # The public route serves the same sums, to an admin.
        token = mint_dev_token(
            migrated.model_copy(update={"jwt_dev_key_file": tmp_path / "dev-jwt.key"}),
            subject="ops",
            roles=["admin"],
            orgs=["*"],
        )
        public = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert counted(public.text) == 40
        assert httpx.get(f"{base}/metrics").status_code == 401
    except BaseException as failure:
        # What the server printed is the first thing to read when this fails.
        server.stop()
        failure.add_note(f"graphflags serve printed:\n{server.tail()}")
        raise
    finally:
        server.stop()


async def test_catalog_reloads_are_counted_by_outcome(client, tokens, settings_for, tmp_path):
    settings = settings_for()
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60):
        before = await scrape(client, tokens)
        catalog = application.state.services.catalog
        await catalog.reload()
        settings.flags_file.write_text('{"flags": {"beta": {"type": "boolean", "default": "not a boolean"}}}')
        with pytest.raises(Problem) as refused:
            await catalog.reload()
        assert refused.value.slug == "invalid-catalog"
        after = await scrape(client, tokens)
    name = "graphflags_catalog_reloads_total"
    assert value(after, name, outcome="applied") - value(before, name, outcome="applied") == 1
    assert value(after, name, outcome="refused") - value(before, name, outcome="refused") == 1
    assert value(after, "graphflags_catalog_flags") == 7  # tests/data/catalog.json, still in force
