"""The OpenAPI side of docs/api.md's "Safe changes", added to the operations app/http/openapi.py describes."""

from __future__ import annotations

import copy
from typing import Any

from app.http import openapi_rollouts

DRY_RUN = {"name": "dry_run", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
           "description": "Run every check of the request, write nothing, and answer what it would reach"}

AFFECTED = {"type": "object", "required": ["dry_run", "affected"], "properties": {
    "dry_run": {"const": True},
    "affected": {"type": "object", "required": ["orgs", "exact", "sample"], "properties": {
        "orgs": {"type": "integer", "minimum": 0,
                 "description": "Orgs (the target and its descendants) whose effective value would change; "
                                "for a move, of any flag. At most GRAPHFLAGS_DRY_RUN_MAX."},
        "exact": {"type": "boolean", "description": "false: counting stopped at GRAPHFLAGS_DRY_RUN_MAX"},
        "sample": {"type": "array", "maxItems": 20, "items": {"type": "string"}}}}}}

# (path, method) of every operation that takes ?dry_run=true.
DRY_RUNS = [("/v1/orgs/{org}/flags/{flag}", "put"), ("/v1/orgs/{org}/flags/{flag}", "delete"),
            ("/{org}/{flag}/{val}", "post"), ("/v1/orgs/{org}", "patch"), ("/v1/flags/{flag}/values", "put")]


def extend(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    schemas["DryRun"] = AFFECTED
    _seals(spec, schemas)
    openapi_rollouts.extend(spec)
    spec["paths"]["/v1/flags/{flag}/values"] = {"put": _bulk_values(spec)}
    _schedules(spec, schemas)
    for path, method in DRY_RUNS:
        operation = spec["paths"].get(path, {}).get(method)
        if operation is None:
            continue
        operation.setdefault("parameters", []).append(DRY_RUN)
        ok = operation["responses"].setdefault("200", {"description": "OK", "content": {
            "application/json": {"schema": {}}}})
        schema = ok["content"]["application/json"]["schema"]
        ok["description"] = "OK (with dry_run=true: what the change would reach)"
        ok["content"]["application/json"]["schema"] = (
            {"$ref": "#/components/schemas/DryRun"} if not schema else {"oneOf": [schema, {"$ref": "#/components/schemas/DryRun"}]})
    return spec


def _seals(spec: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Sealed values: the reason `sealed`, explain's `active`/`sealed`, OFREP's metadata.sealed, the PUT body."""
    for name in ("EffectiveValue", "Explanation"):
        schemas[name]["properties"]["reason"] = {
            "enum": ["own", "inherited", "default", "sealed"],
            "description": "sealed: an org at or above this one sealed the value (source_org names it)"}
    entry = schemas["Explanation"]["properties"]["chain"]["items"]
    entry["required"] = ["org", "value", "active", "sealed"]
    entry["properties"]["active"] = {"type": "boolean", "description": (
        "The value set on this org is in force where it is set (false: nothing set, or a seal above overrides it)")}
    entry["properties"]["sealed"] = {"type": "boolean", "description": "This org sealed its value"}
    evaluation = schemas["OfrepEvaluation"]["properties"]
    evaluation["variant"] = {"enum": ["own", "inherited", "default", "sealed"]}
    evaluation["metadata"]["properties"]["sealed"] = {"const": True, "description": "Present when a seal decided"}
    put = spec["paths"]["/v1/orgs/{org}/flags/{flag}"]["put"]
    body = put["requestBody"]["content"]["application/json"]["schema"]
    body["properties"]["sealed"] = {"type": "boolean", "description": (
        "admin only: true seals the value (below this org it wins, and writes of the flag answer 409 sealed); "
        "false unseals; absent keeps the org's seal as it is")}
    for operation in (put, spec["paths"]["/v1/orgs/{org}/flags/{flag}"]["delete"], spec["paths"]["/{org}/{flag}/{val}"]["post"]):
        operation["responses"]["409"] = {"description": "sealed (the detail and sealing_org name the sealing org)",
                                         "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _bulk_values(spec: dict[str, Any]) -> dict[str, Any]:
    row = {"type": "object", "required": ["org", "value"], "additionalProperties": False,
           "properties": {"org": {"type": "string"}, "value": {"description": "typed as the flag; null clears"}}}
    limited = {status: _problem(text) for status, text in (
        ("400", "invalid-body (a CSV header other than org,value)"), ("401", "unauthorized"),
        ("403", "forbidden (a row outside the caller's subtrees refuses the whole request)"),
        ("404", "flag-not-found"), ("413", "payload-too-large"), ("415", "unsupported-media-type"),
        ("422", "invalid-id (the flag name), invalid-rows: errors [{row, id, type, detail}], type one of "
                "invalid-body, invalid-id, invalid-value, org-not-found, sealed; nothing is written"),
        ("429", "rate-limited"), ("503", "unavailable"))}
    return {
        "summary": "Set or clear one flag on many orgs, all or nothing, one audit event per changed org",
        "description": "Requires the `writer` role. Rows count from 1 (the array's first element, NDJSON's "
                       "first line, CSV's first line after the header). Values that equal the org's own are "
                       "unchanged. A sealed value may be changed only by an admin (it stays sealed; null "
                       "clears it); rows below a seal are row errors `sealed`.",
        "parameters": [{"name": "flag", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9._-]{0,127}$"}}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "array", "items": row}},
            "application/x-ndjson": {"schema": {"type": "string", "description": "one row object per line"}},
            "text/csv": {"schema": {"type": "string", "description": "header org,value; the value as JSON text"}}}},
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {
            "type": "object", "required": ["changed", "unchanged"],
            "properties": {"changed": {"type": "integer"}, "unchanged": {"type": "integer"}}}}}}, **limited},
    }


_SCHEDULE = {"type": "object", "required": ["schedule", "org", "flag", "value", "at"], "properties": {
    "schedule": {"type": "string"}, "org": {"type": "string"}, "flag": {"type": "string"},
    "value": {"description": "null: a scheduled clear"}, "at": {"type": "string", "format": "date-time"},
    "actor": {"type": "string"}, "sealed": {"type": "boolean"}}}
_AT = {"type": "string", "format": "date-time",
       "description": "RFC 3339 time with its offset, in the future (else 422 invalid-value): schedule the change "
                      "instead of making it now (202); it is checked now as an immediate change and again then"}


def _schedules(spec: dict[str, Any], schemas: dict[str, Any]) -> None:
    schemas["Schedule"] = _SCHEDULE
    ref = {"$ref": "#/components/schemas/Schedule"}
    accepted = {"description": "Scheduled", "content": {"application/json": {"schema": ref}}}
    value = spec["paths"]["/v1/orgs/{org}/flags/{flag}"]
    value["put"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["at"] = _AT
    value["put"]["responses"]["202"] = accepted
    value["delete"].setdefault("parameters", []).append({"name": "at", "in": "query", "required": False,
                                                         "schema": _AT})
    value["delete"]["responses"]["202"] = accepted
    common = {status: _problem(text) for status, text in (
        ("401", "unauthorized"), ("403", "forbidden"), ("422", "invalid-id, invalid-query"),
        ("429", "rate-limited"), ("503", "unavailable"))}
    spec["paths"]["/v1/schedules"] = {"get": {
        "summary": "Pending scheduled changes in the caller's subtrees, soonest first (at most 1000)",
        "description": "Requires the `writer` role.",
        "parameters": [
            {"name": "org", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "subtree", "in": "query", "required": False, "schema": {"type": "boolean", "default": False}},
            {"name": "flag", "in": "query", "required": False, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {
            "type": "object", "required": ["schedules"],
            "properties": {"schedules": {"type": "array", "items": ref}}}}}}, **common}}}
    spec["paths"]["/v1/schedules/{schedule}"] = {"delete": {
        "summary": "Cancel a pending scheduled change", "description": "Requires the `writer` role.",
        "parameters": [{"name": "schedule", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"204": {"description": "Cancelled"},
                      "404": _problem("not-found: no pending schedule with that id"), **common}}}
