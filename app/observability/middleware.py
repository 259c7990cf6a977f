"""Per-request instrumentation, as a plain ASGI middleware: the latency histogram by route
template and status, the server span, and the trace id the logs and errors name.

A plain ASGI callable rather than opentelemetry-instrumentation-asgi: that one adds a span
per `send` and `receive` event and parses every header into attributes, which costs
more than the cached lookup it would measure. Here a request costs one histogram
observation, plus one span when tracing is on.
"""

from __future__ import annotations

import asyncio
from random import random
from time import perf_counter

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import metrics, tracing

# Paths that matched no route share one label, so scanners cannot mint new series.
UNMATCHED = "<unmatched>"
_propagator = TraceContextTextMapPropagator()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", UNMATCHED) if route is not None else UNMATCHED


def _failed_status(error: BaseException) -> int:
    # A client that hung up is not a server error (499, as proxies count it); anything else
    # is answered 500 by the error handler outside this middleware.
    return 499 if isinstance(error, asyncio.CancelledError) else 500


class Instrumentation:
    def __init__(self, app: ASGIApp, metrics_on: bool) -> None:
        self.app = app
        self.metrics_on = metrics_on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if tracing.tracer is not None:
            incoming = tracing.incoming_trace(scope["headers"])
            # Decided before any span exists: an unsampled request costs what an untraced one does.
            if incoming[1] if incoming else random() < tracing.sample_ratio:
                await self._traced(scope, receive, send)
                return
        tracing.begin_request(scope["headers"])
        status = 500
        started = perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException as error:
            status = _failed_status(error)
            raise
        finally:
            if self.metrics_on:
                metrics.request_observed(scope["method"], _route(scope), status, perf_counter() - started)

    async def _traced(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"traceparent", b"tracestate")
        }
        parent = _propagator.extract(carrier) if carrier else None
        method = scope["method"]
        span = tracing.tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        # Not reset when the request fails: the 500 handler runs after this middleware has
        # returned and must still name the trace. Each request runs in its own context copy.
        tracing.set_trace_id(format(span.get_span_context().trace_id, "032x"))
        status = 500
        started = perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                span.set_attribute("http.response.status_code", status)
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException as error:
            status = _failed_status(error)
            span.record_exception(error)
            span.set_attribute("http.response.status_code", status)
            raise
        finally:
            route = _route(scope)
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
            otel_context.detach(token)
            if self.metrics_on:
                metrics.request_observed(method, route, status, perf_counter() - started)
