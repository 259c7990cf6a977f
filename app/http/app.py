"""The ASGI application: routes, error handlers, and the services they share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware

from app.auth.stream_tokens import StreamCredentials
from app.gc_policy import GcPolicy
from app.http import ofrep, values
from app.http.answers import EncodedAnswers
from app.http.errors import HANDLERS
from app.http.hot import HotRoutes
from app.http.rate_limits import RateLimits
from app.http.region_gate import RegionGate
from app.http.routes import ROUTES
from app.http.stale import MarkStale
from app.http.streams import StreamSlots
from app.logs import configure_logging
from app.observability import metrics, tracing
from app.observability.middleware import Instrumentation
from app.services.catalog import CatalogService
from app.services.container import build_services
from app.services.event_streams import StreamHub
from app.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        configure_logging(settings)
        # Here, not in create_app: each worker process needs its own exporter thread.
        tracing.configure(settings.otlp_endpoint, ratio=settings.trace_sample_ratio)
        services = build_services(settings)
        app.state.services = services
        app.state.answers = EncodedAnswers(services.values, services.cache, services.catalog)
        await services.catalog.reload()
        # The follower's first round fixes where the feed starts before any value is cached.
        await services.follower.poll()
        # OpenFeature event streams hang off the follower and the catalog: no stream polls.
        hub = app.state.stream_hub = StreamHub(
            ofrep.BulkAnswers(services.values), lambda name: _set_of(services.catalog, name)
        )
        services.follower.listeners.append(hub.heard)
        services.catalog.listeners.append(hub.everything_changed)
        services.follower.on_missed.append(hub.everything_changed)
        tasks = [
            asyncio.create_task(services.follower.run()),
            asyncio.create_task(hub.run()),
            asyncio.create_task(hub.keep_alive(settings.stream_heartbeat_seconds)),
        ]
        if settings.metrics:
            tasks.append(asyncio.create_task(metrics.flush_every()))
        if settings.upstream_url:
            # A region: how current its copy is, for /readyz and each answer (app/region/).
            app.state.region = services.region_status(settings.upstream_url)
            await app.state.region.poll()
            tasks.append(asyncio.create_task(app.state.region.run()))
        if settings.watch_catalog:
            tasks.append(asyncio.create_task(services.catalog.watch()))
        if not settings.upstream_url:  # a region's copy holds no schedules: the upstream applies them
            scheduler = services.scheduler(
                settings.schedule_poll_interval, settings.schedule_retention_days, settings.schedule_prune_interval
            )
            tasks.append(asyncio.create_task(scheduler.run()))
        if settings.gc_freeze_interval:
            gc_policy = GcPolicy(settings.gc_freeze_interval, settings.gc_thaw_interval)
            tasks.append(asyncio.create_task(gc_policy.run()))
        # Audit retention: old change-feed events are pruned in the background (app/services/changes.py).
        pruner = services.audit_pruner(settings.audit_retention_days, settings.audit_prune_interval)
        tasks.append(asyncio.create_task(pruner.run()))
        # Counted once it can serve: a scrape showing N workers means N answer requests.
        metrics.worker_started()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await services.close()
            tracing.shutdown()
            metrics.worker_exiting()

    metrics.configure(settings.metrics)
    # With metrics and tracing both off, not even the middleware runs.
    instrumented = settings.metrics or bool(settings.otlp_endpoint)
    middleware = [Middleware(Instrumentation, metrics_on=settings.metrics)] if instrumented else []
    middleware.append(Middleware(MarkStale))
    if settings.upstream_url:
        middleware.append(Middleware(RegionGate, upstream=settings.upstream_url))
    # Innermost: the lookups skip the router and the exception layers (app/http/hot.py).
    middleware.append(
        Middleware(
            HotRoutes,
            routes=ROUTES,
            handlers=HANDLERS,
            endpoints={values.get_value, values.list_values, ofrep.evaluate_flag, ofrep.evaluate_flags},
        )
    )
    app = Starlette(routes=ROUTES, exception_handlers=HANDLERS, lifespan=lifespan, middleware=middleware)
    app.state.settings = settings
    # Checked by `authorized` right after authentication (app/http/auth.py).
    app.state.rate_limits = RateLimits(
        settings.rate_limit_token,
        settings.rate_limit_tenant,
        settings.rate_limits_file,
        settings.rate_limits_reload_interval,
    )
    # Open SSE streams per token (app/http/streams.py).
    app.state.stream_slots = StreamSlots(settings.max_streams_per_token)
    # The credentials of OpenFeature event-stream URLs (app/auth/stream_tokens.py).
    app.state.stream_credentials = StreamCredentials(settings)
    return app


def _set_of(catalog: CatalogService, flag: str) -> str | None:
    """The set a flag belongs to in the catalog in force (None: not in it)."""
    definition = catalog.current.get(flag)
    return None if definition is None else definition.set
