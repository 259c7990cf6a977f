"""Traces (OpenTelemetry SDK, exported over OTLP/HTTP) and the trace id of the work in progress.

Tracing is on only when an OTLP endpoint is configured; otherwise no tracer exists and
no span is ever built. Either way each request gets a trace id (the incoming
`traceparent`'s, the span's, or a random one), kept in a context variable, so log lines
and problem documents can name it and a 500 can be found in the logs.

The provider is this module's own, not OpenTelemetry's global one: a global can be set
once per process, and tests need to swap in an in-memory exporter.
"""

from __future__ import annotations

import os
import random
from contextvars import ContextVar
from time import perf_counter

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind, Status, StatusCode

from app.observability import metrics

# Per request: [trace id, or None until asked; the request's headers, to find a traceparent in].
# Worked out only when a log line or an error needs it, and filled in place, so every
# context copied from the request's (tasks it starts) sees the same id.
_trace: ContextVar[list | None] = ContextVar("graphflags_trace", default=None)
_provider: TracerProvider | None = None
tracer: trace.Tracer | None = None
sample_ratio = 1.0


def current_trace_id() -> str | None:
    holder = _trace.get()
    if holder is None:
        return None
    if holder[0] is None:
        incoming = incoming_trace(holder[1])
        holder[0] = incoming[0] if incoming else new_trace_id()
    return holder[0]


def set_trace_id(trace_id: str) -> None:
    _trace.set([trace_id, None])


def begin_request(headers: list[tuple[bytes, bytes]]) -> None:
    """An untraced request: its trace id is the caller's traceparent's, or a new one, once asked."""
    _trace.set([None, headers])


def incoming_trace(headers: list[tuple[bytes, bytes]]) -> tuple[str, bool] | None:
    """The trace id of a W3C `traceparent` header and whether the caller samples it."""
    for name, value in headers:
        if name == b"traceparent":
            parts = value.split(b"-")
            if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != b"0" * 32 and len(parts[3]) == 2:
                try:
                    int(parts[1], 16)
                    flags = int(parts[3], 16)
                except ValueError:
                    return None
                return parts[1].decode(), bool(flags & 1)
    return None


def new_trace_id() -> str:
    return f"{random.getrandbits(128):032x}"


def configure(otlp_endpoint: str | None, processor: SpanProcessor | None = None, ratio: float = 1.0) -> None:
    """Turn tracing on (an endpoint, or a processor given by a test) or off (neither).

    `ratio` of the traces this service starts are recorded; a request whose caller
    sent a sampled `traceparent` is always recorded. Unrecorded requests still get a trace
    id (logs, errors) but cost no span building or export.
    """
    global _provider, tracer, sample_ratio
    shutdown()
    if processor is None and not otlp_endpoint:
        return
    if processor is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=_traces_url(otlp_endpoint)))
    # The middleware samples (it decides before building anything); what reaches the SDK is traced.
    sample_ratio = ratio
    _provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", "graphflags")}), sampler=ALWAYS_ON
    )
    _provider.add_span_processor(processor)
    tracer = _provider.get_tracer("graphflags")


def shutdown() -> None:
    """Flush what is queued and stop the exporter thread."""
    global _provider, tracer
    if _provider is not None:
        _provider.shutdown()
    _provider, tracer = None, None


def _traces_url(endpoint: str) -> str:
    # OTEL_EXPORTER_OTLP_ENDPOINT names the collector's base; the traces path goes below it.
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


class QueryObservation:
    """Times one Cypher statement into the histogram and, inside a traced request, a child span."""

    __slots__ = ("span", "started", "statement")

    def __init__(self, statement: str) -> None:
        self.statement = statement
        self.span = None

    def __enter__(self) -> QueryObservation:
        if tracer is not None:
            parent = trace.get_current_span()
            # Only inside a request: the cache follower's polls would otherwise make a trace each.
            if parent.is_recording():
                self.span = tracer.start_span(
                    f"cypher {self.statement}",
                    kind=SpanKind.CLIENT,
                    attributes={"db.system.name": "neo4j", "db.query.summary": self.statement},
                )
        self.started = perf_counter()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        seconds = perf_counter() - self.started
        if metrics.enabled():
            metrics.query_observed(self.statement, seconds, error is not None)
        if self.span is not None:
            if error is not None:
                self.span.record_exception(error)
                self.span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            self.span.end()


def observe_query(statement: str) -> QueryObservation:
    return QueryObservation(statement)
