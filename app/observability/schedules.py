"""Metrics of scheduled changes (app/services/schedules.py), beside app/observability/metrics.py's."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from app.observability import metrics

PENDING = Gauge(
    "graphflags_schedules_pending",
    "Scheduled changes not yet applied (as the last count saw them)",
    multiprocess_mode="mostrecent",
)
FAILED = Counter(
    "graphflags_schedules_failed_total",
    "Scheduled changes that were no longer valid when their time came (recorded failed, not applied)",
)


def pending(count: int) -> None:
    if metrics.enabled():
        PENDING.set(count)


def failed() -> None:
    if metrics.enabled():
        FAILED.inc()
