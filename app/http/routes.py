"""The routing table: every path the service answers, in one list.

Order matters: the versioned API comes before the unversioned seed aliases, whose
`/{org}/{flag}` shape would otherwise also match paths such as `/v1/flags`.
"""

from __future__ import annotations

from starlette.routing import Mount, Route

from app.http import bulk_values, changes, console, event_streams, schedules, snapshot
from app.http import audit, catalog, health, metrics, ofrep, openapi, orgs, values

ROUTES = [
    Route("/healthz", health.healthz, methods=["GET"]),
    Route("/readyz", health.readyz, methods=["GET"]),
    Route("/metrics", metrics.metrics_text, methods=["GET"]),
    Route("/openapi.json", openapi.document, methods=["GET"]),
    Route("/docs", console.docs, methods=["GET"]),
    Route("/docs/{name}", console.docs_asset, methods=["GET"]),
    # The console (app/ui/): static files, public like /docs; every API call it makes needs a token.
    Route("/ui", console.console_root, methods=["GET"]),
    Mount("/ui", app=console.console_files),
    # Flag values
    Route("/v1/orgs/{org}/flags", values.list_values, methods=["GET"]),
    Route("/v1/orgs/{org}/flags/{flag}", values.get_value, methods=["GET"]),
    Route("/v1/orgs/{org}/flags/{flag}", values.put_value, methods=["PUT"]),
    Route("/v1/orgs/{org}/flags/{flag}", values.delete_value, methods=["DELETE"]),
    Route("/v1/orgs/{org}/flags/{flag}/explain", values.explain_value, methods=["GET"]),
    # Organizations
    Route("/v1/orgs", orgs.create_org, methods=["POST"]),
    Route("/v1/orgs", orgs.find_orgs, methods=["GET"]),
    Route("/v1/orgs/bulk", orgs.create_orgs_bulk, methods=["POST"]),
    Route("/v1/orgs/{org}", orgs.get_org, methods=["GET"]),
    Route("/v1/orgs/{org}", orgs.move_org, methods=["PATCH"]),
    Route("/v1/orgs/{org}/children", orgs.list_children, methods=["GET"]),
    # Catalog
    Route("/v1/flags", catalog.list_flags, methods=["GET"]),
    Route("/v1/flags/{flag}", catalog.get_flag, methods=["GET"]),
    Route("/v1/flags/{flag}/values", bulk_values.put_values, methods=["PUT"]),
    Route("/v1/catalog/reload", catalog.reload_catalog, methods=["POST"]),
    # Audit
    Route("/v1/audit", audit.list_audit, methods=["GET"]),
    Route("/v1/changes", changes.list_changes, methods=["GET"]),
    # Scheduled changes (taken by PUT/DELETE /v1/orgs/{org}/flags/{flag} with "at")
    Route("/v1/schedules", schedules.list_schedules, methods=["GET"]),
    Route("/v1/schedules/{schedule}", schedules.cancel_schedule, methods=["DELETE"]),
    # What a region bootstraps from (docs/regions.md)
    Route("/v1/snapshot", snapshot.get_snapshot, methods=["GET"]),
    # OpenFeature Remote Evaluation Protocol (the seed's POST alias would match these too)
    Route("/ofrep/v1/evaluate/flags", ofrep.evaluate_flags, methods=["POST"]),
    Route("/ofrep/v1/evaluate/flags/{key}", ofrep.evaluate_flag, methods=["POST"]),
    # Its event streams (ADR-0008): the URL a bulk answer's eventStreams names, credential included
    Route("/ofrep/v1/event-streams/{org}", event_streams.stream_events, methods=["GET"]),
    # The seed's two endpoints, kept as users wrote them down.
    Route("/{org}/{flag}", values.get_value, methods=["GET"]),
    Route("/{org}/{flag}/{val:path}", values.post_seed_value, methods=["POST"]),
]
