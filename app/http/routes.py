"""The routing table: every path the service answers, in one list.

Each route carries its OpenAPI operation (app/http/openapi.py generates /openapi.json
from this list) and whether it writes (a region's gate refuses writes, app/http/region_gate.py).

Order matters: the versioned API comes before the unversioned seed aliases, whose
`/{org}/{flag}` shape would otherwise also match paths such as `/v1/flags`.
"""

from __future__ import annotations

from starlette.routing import Mount

from app.http import (
    audit,
    bulk_values,
    catalog,
    changes,
    console,
    event_streams,
    health,
    metrics,
    ofrep,
    openapi,
    orgs,
    schedules,
    snapshot,
    values,
)
from app.http.api_route import ApiRoute as Api
from app.http.api_route import SeedAlias

ROUTES = [
    Api("/healthz", health.healthz, "GET", operation=openapi.HEALTHZ),
    Api("/readyz", health.readyz, "GET", operation=openapi.READYZ),
    Api("/metrics", metrics.metrics_text, "GET", operation=openapi.METRICS),
    Api("/openapi.json", openapi.document, "GET", operation=openapi.OPENAPI),
    Api("/docs", console.docs, "GET", operation=openapi.DOCS),
    Api("/docs/{name}", console.docs_asset, "GET", operation=None),
    # The console (app/ui/): static files, public like /docs; every API call it makes needs a token.
    Api("/ui", console.console_root, "GET", operation=openapi.CONSOLE),
    Mount("/ui", app=console.console_files),
    # Flag values
    Api("/v1/orgs/{org}/flags", values.list_values, "GET", operation=openapi.LIST_VALUES),
    Api("/v1/orgs/{org}/flags/{flag}", values.get_value, "GET", operation=openapi.GET_VALUE),
    Api("/v1/orgs/{org}/flags/{flag}", values.put_value, "PUT", operation=openapi.PUT_VALUE),
    Api("/v1/orgs/{org}/flags/{flag}", values.delete_value, "DELETE", operation=openapi.DELETE_VALUE),
    Api("/v1/orgs/{org}/flags/{flag}/explain", values.explain_value, "GET", operation=openapi.EXPLAIN_VALUE),
    # Organizations
    Api("/v1/orgs", orgs.create_org, "POST", operation=openapi.CREATE_ORG),
    Api("/v1/orgs", orgs.find_orgs, "GET", operation=openapi.FIND_ORGS),
    Api("/v1/orgs/bulk", orgs.create_orgs_bulk, "POST", operation=openapi.CREATE_ORGS_BULK),
    Api("/v1/orgs/{org}", orgs.get_org, "GET", operation=openapi.GET_ORG),
    Api("/v1/orgs/{org}", orgs.move_org, "PATCH", operation=openapi.MOVE_ORG),
    Api("/v1/orgs/{org}/children", orgs.list_children, "GET", operation=openapi.LIST_CHILDREN),
    # Catalog
    Api("/v1/flags", catalog.list_flags, "GET", operation=openapi.LIST_FLAGS),
    Api("/v1/flags/{flag}", catalog.get_flag, "GET", operation=openapi.GET_FLAG),
    Api("/v1/flags/{flag}/values", bulk_values.put_values, "PUT", operation=openapi.PUT_FLAG_VALUES),
    # Loads flags.json into this process: local configuration, which a region may do too.
    Api("/v1/catalog/reload", catalog.reload_catalog, "POST", operation=openapi.RELOAD_CATALOG, writes=False),
    # Audit
    Api("/v1/audit", audit.list_audit, "GET", operation=openapi.LIST_AUDIT),
    Api("/v1/changes", changes.list_changes, "GET", operation=openapi.LIST_CHANGES),
    # Scheduled changes (taken by PUT/DELETE /v1/orgs/{org}/flags/{flag} with "at")
    Api("/v1/schedules", schedules.list_schedules, "GET", operation=openapi.LIST_SCHEDULES),
    Api("/v1/schedules/{schedule}", schedules.cancel_schedule, "DELETE", operation=openapi.CANCEL_SCHEDULE),
    # What a region bootstraps from (docs/regions.md)
    Api("/v1/snapshot", snapshot.get_snapshot, "GET", operation=openapi.GET_SNAPSHOT),
    # OpenFeature Remote Evaluation Protocol (the seed's POST alias would match these too).
    # Evaluations are POSTs that write nothing.
    Api("/ofrep/v1/evaluate/flags", ofrep.evaluate_flags, "POST", operation=openapi.OFREP_EVALUATE_FLAGS, writes=False),
    Api(
        "/ofrep/v1/evaluate/flags/{key}",
        ofrep.evaluate_flag,
        "POST",
        operation=openapi.OFREP_EVALUATE_FLAG,
        writes=False,
    ),
    # Its event streams (ADR-0008): the URL a bulk answer's eventStreams names, credential included.
    Api("/ofrep/v1/event-streams/{org}", event_streams.stream_events, "GET", operation=openapi.OFREP_EVENT_STREAM),
    # The seed's two endpoints, kept as users wrote them down.
    SeedAlias("/{org}/{flag}", values.get_value, "GET", operation=openapi.SEED_GET_VALUE),
    SeedAlias("/{org}/{flag}/{val:path}", values.post_seed_value, "POST", operation=openapi.SEED_POST_VALUE),
]
