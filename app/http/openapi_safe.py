"""The OpenAPI side of API.md's "Safe changes", added to the operations app/http/openapi.py describes."""

from __future__ import annotations

import copy
from typing import Any

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
            ("/{org}/{flag}/{val}", "post"), ("/v1/orgs/{org}", "patch")]


def extend(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    schemas["DryRun"] = AFFECTED
    _seals(spec, schemas)
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
