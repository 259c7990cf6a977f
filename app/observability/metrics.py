"""Prometheus metrics: the instruments, the cheap calls the code paths make, the exposition.

prometheus_client rather than OpenTelemetry's Prometheus exporter because the service
runs several uvicorn worker processes and a scrape must show all of them, not whichever
worker answered. prometheus_client's multiprocess mode keeps each process's values in
memory-mapped files under PROMETHEUS_MULTIPROC_DIR and adds them up at scrape time, in
any process; `graphflags serve` gives every run a fresh directory (`multiprocess_dir`).
Without that variable (tests, an app embedded some other way) the values live in this
process, which is then the whole service.

Every call below is a no-op when metrics are switched off (GRAPHFLAGS_METRICS=false), so
the overhead can be measured and avoided.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import tempfile
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

from app.errors import Problem

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
P = ParamSpec("P")
T = TypeVar("T")

# Cached lookups answer in well under a millisecond; database trips in a few; the top
# buckets catch timeouts (GRAPHFLAGS_QUERY_TIMEOUT defaults to 10 s).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "graphflags_http_request_duration_seconds",
    "HTTP requests by route template and status, and their latency",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
QUERY_SECONDS = Histogram(
    "graphflags_cypher_duration_seconds",
    "Cypher statements by name (cypher/NAME.cypher) and their latency",
    ["statement"],
    buckets=LATENCY_BUCKETS,
)
QUERY_ERRORS = Counter("graphflags_cypher_errors_total", "Cypher statements that raised, by name", ["statement"])
POOL_IN_USE = Gauge(
    "graphflags_neo4j_connections_in_use",
    "Neo4j sessions holding a pooled connection, all workers",
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "graphflags_neo4j_pool_max", "Neo4j connection pool capacity, all workers", multiprocess_mode="livesum"
)
NEO4J_UP = Gauge(
    "graphflags_neo4j_up",
    "1 if the latest database call reached Neo4j, 0 if it could not connect",
    multiprocess_mode="mostrecent",
)
REFUSED_FOR_LOAD = Counter(
    "graphflags_refused_for_load_total",
    "Database reads and writes refused with 503 because too many waited for their turn",
    ["kind"],
)
CACHE_LOOKUPS = Counter("graphflags_cache_lookups_total", "In-process cache lookups by result", ["result"])
EVALUATIONS = Counter(
    "graphflags_flag_evaluations_total",
    "Single-flag evaluations (lookups, OFREP) by flag and reason",
    ["flag", "reason"],
)
BULK_EVALUATIONS = Counter(
    "graphflags_bulk_flag_evaluations_total", "Flags answered by bulk evaluations (every flag of an org)"
)
CHANGES_BY_ACTOR = Counter(
    "graphflags_changes_by_actor_total", "Committed changes (audit events) by actor and action", ["actor", "action"]
)
CHANGES_BY_FLAG = Counter(
    "graphflags_flag_changes_total", "Committed flag value changes by flag and action", ["flag", "action"]
)
CATALOG_RELOADS = Counter(
    "graphflags_catalog_reloads_total", "Catalog loads by outcome: applied, refused (invalid), failed", ["outcome"]
)
WORKERS = Gauge("graphflags_worker_processes", "Worker processes serving requests", multiprocess_mode="livesum")
CATALOG_FLAGS = Gauge("graphflags_catalog_flags", "Flags in the catalog in force", multiprocess_mode="mostrecent")

_enabled = True

# The hot path does not touch prometheus_client: one increment there takes a lock, checks
# the pid and writes the memory-mapped file (about 2 us each; a cached lookup made five,
# a third of its CPU). It adds to these plain dicts instead, and `flush` hands the sums to
# prometheus_client every FLUSH_INTERVAL seconds and before this process answers a scrape.
FLUSH_INTERVAL = 1.0
_BOUNDS = (*LATENCY_BUCKETS, float("inf"))
# label values -> [count in each bucket (not cumulative)..., sum of the seconds in each bucket...]
_requests: dict[tuple[str, str, int], list[float]] = {}
_queries: dict[str, list[float]] = {}
_query_errors: dict[str, int] = {}
_cache = {"hit": 0, "miss": 0}
_evaluations: dict[tuple[str, str], int] = {}
_bulk_evaluations = [0]


def configure(enabled: bool) -> None:
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


def _observe(pending: dict, key, seconds: float) -> None:
    slots = pending.get(key)
    if slots is None:
        slots = pending[key] = [0.0] * (2 * len(_BOUNDS))
    bucket = bisect_left(_BOUNDS, seconds)  # the first bucket whose bound is >= seconds
    slots[bucket] += 1
    slots[len(_BOUNDS) + bucket] += seconds


def request_observed(method: str, route: str, status: int, seconds: float) -> None:
    _observe(_requests, (method, route, status), seconds)


def query_observed(statement: str, seconds: float, failed: bool) -> None:
    _observe(_queries, statement, seconds)
    if failed:
        _query_errors[statement] = _query_errors.get(statement, 0) + 1


def cache_hit() -> None:
    _cache["hit"] += 1


def cache_miss() -> None:
    _cache["miss"] += 1


def flag_evaluated(flag: str, reason: str) -> None:
    """One single-flag evaluation that answered; `reason` as the answer gives it (own, STATIC, ...)."""
    key = (flag, reason)
    _evaluations[key] = _evaluations.get(key, 0) + 1


def flags_evaluated_in_bulk(count: int) -> None:
    _bulk_evaluations[0] += count


def flush() -> None:
    """Hand what the hot path counted to prometheus_client (and so to the scrape)."""
    global _requests, _queries, _query_errors, _evaluations
    requests, _requests = _requests, {}
    queries, _queries = _queries, {}
    errors, _query_errors = _query_errors, {}
    evaluations, _evaluations = _evaluations, {}
    if not _enabled:
        _cache.update(hit=0, miss=0)
        _bulk_evaluations[0] = 0
        return
    for (method, route, status), slots in requests.items():
        _add_observations(REQUEST_SECONDS.labels(method, route, str(status)), slots)
    for statement, slots in queries.items():
        _add_observations(QUERY_SECONDS.labels(statement), slots)
    for statement, count in errors.items():
        QUERY_ERRORS.labels(statement).inc(count)
    for (flag, reason), count in evaluations.items():
        EVALUATIONS.labels(flag, reason).inc(count)
    for result in ("hit", "miss"):
        count, _cache[result] = _cache[result], 0
        if count:
            CACHE_LOOKUPS.labels(result).inc(count)
    bulk, _bulk_evaluations[0] = _bulk_evaluations[0], 0
    if bulk:
        BULK_EVALUATIONS.inc(bulk)


def _add_observations(child: Histogram, slots: list[float]) -> None:
    """Replay what one bucket counted through the public `observe`, at the mean of its seconds.

    prometheus_client has no public "add n observations", so each counted one is observed
    once more here, off the request path. The mean of values in a bucket lies in that
    bucket, so bucket counts and the sum come out as if each had been observed itself.
    """
    for bucket, bound in enumerate(_BOUNDS):
        count = int(slots[bucket])
        if count:
            # min(): a rounding error must not carry the mean past the bucket's upper bound.
            mean = min(slots[len(_BOUNDS) + bucket] / count, bound)
            for _ in range(count):
                child.observe(mean)


async def flush_every(interval: float = FLUSH_INTERVAL) -> None:
    while True:
        await asyncio.sleep(interval)
        flush()


def change_committed(actor: str, action: str, flag: str | None) -> None:
    if _enabled:
        CHANGES_BY_ACTOR.labels(actor, action).inc()
        # Value changes only: a schedule's events name a flag too, but change no value (yet),
        # and the toggle-storm alert on this series (ops/alerts.yml) counts values changing.
        if flag is not None and action in ("flag.set", "flag.clear"):
            CHANGES_BY_FLAG.labels(flag, action).inc()


def catalog_reloaded(outcome: str, flags: int | None = None) -> None:
    if _enabled:
        CATALOG_RELOADS.labels(outcome).inc()
        if flags is not None:
            CATALOG_FLAGS.set(flags)


def counted_catalog_reload(reload: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Counts each catalog load by outcome: applied, refused (a Problem: invalid file), failed."""

    @functools.wraps(reload)
    async def counted(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            catalog = await reload(*args, **kwargs)
        except Problem:
            catalog_reloaded("refused")
            raise
        except Exception:
            catalog_reloaded("failed")
            raise
        catalog_reloaded("applied", len(catalog))  # type: ignore[arg-type]
        return catalog

    return counted


def pool_acquired() -> None:
    if _enabled:
        POOL_IN_USE.inc()


def pool_released() -> None:
    if _enabled:
        POOL_IN_USE.dec()


def pool_capacity(size: int) -> None:
    if _enabled:
        POOL_MAX.inc(size)


def refused_for_load(kind: str) -> None:
    """`kind`: reads or writes."""
    if _enabled:
        REFUSED_FOR_LOAD.labels(kind).inc()


def database_reachable(up: bool) -> None:
    if _enabled:
        NEO4J_UP.set(1 if up else 0)


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of the whole service: every worker's values when there are several.

    This process's counts are exact; other workers' are at most FLUSH_INTERVAL behind.
    """
    flush()
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def registry() -> CollectorRegistry:
    if MULTIPROC_ENV not in os.environ:
        return REGISTRY
    # A fresh registry per scrape, as the multiprocess collector reads the files when asked.
    fresh = CollectorRegistry()
    multiprocess.MultiProcessCollector(fresh)
    return fresh


def serve_listener(host: str, port: int):
    """The metrics alone on their own port, from a background thread of this process.

    Returns prometheus_client's (server, thread), so that a test can stop it."""
    return start_http_server(port, addr=host, registry=registry())


def worker_started() -> None:
    if _enabled:
        WORKERS.inc()


def worker_exiting() -> None:
    """Hand over the last counts, then drop this process's share of the live gauges."""
    flush()
    if MULTIPROC_ENV in os.environ:
        multiprocess.mark_process_dead(os.getpid())


@contextlib.contextmanager
def multiprocess_dir() -> Iterator[Path]:
    """A metrics directory for one run of the service, set in the environment the workers inherit.

    Files left by an earlier run would be added to this run's counters, so a directory the
    operator named is emptied first, and one made here is removed at the end.
    """
    named = os.environ.get(MULTIPROC_ENV)
    if named:
        path = Path(named)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="graphflags-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)
