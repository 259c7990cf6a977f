"""The OpenAPI side of docs/api.md's "Safe changes": dry runs, seals and schedules.

app/http/openapi.py applies these to the operations that take them, where it defines
each operation, so the route table (app/http/routes.py) remains the one list of paths.
"""

from __future__ import annotations

import copy
from typing import Any

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

DRY_RUN = {
    "name": "dry_run",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean", "default": False},
    "description": "Run every check of the request, write nothing, and answer what it would reach",
}

AFFECTED = {
    "type": "object",
    "required": ["dry_run", "affected"],
    "properties": {
        "dry_run": {"const": True},
        "affected": {
            "type": "object",
            "required": ["orgs", "exact", "sample"],
            "properties": {
                "orgs": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Orgs (the target and its descendants) whose effective value would change; "
                    "for a move, of any flag. At most GRAPHFLAGS_DRY_RUN_MAX.",
                },
                "exact": {"type": "boolean", "description": "false: counting stopped at GRAPHFLAGS_DRY_RUN_MAX"},
                "sample": {"type": "array", "maxItems": 20, "items": {"type": "string"}},
            },
        },
    },
}


def with_safe_change_schemas(schemas: dict[str, Any]) -> dict[str, Any]:
    """The components' schemas with what dry runs, seals and schedules add to them (the reason
    `sealed` itself is in app/http/openapi.py's reason enums, with every other reason)."""
    schemas = copy.deepcopy(schemas)
    schemas["DryRun"] = AFFECTED
    entry = schemas["Explanation"]["properties"]["chain"]["items"]
    entry["required"] = ["org", "value", "active", "sealed"]
    entry["properties"]["active"] = {
        "type": "boolean",
        "description": (
            "The value set on this org is in force where it is set (false: nothing set, or a seal above overrides it)"
        ),
    }
    entry["properties"]["sealed"] = {"type": "boolean", "description": "This org sealed its value"}
    schemas["Schedule"] = _SCHEDULE
    event = schemas["AuditEvent"]["properties"]
    event["action"] = {
        "enum": [*event["action"]["enum"], "schedule.create", "schedule.cancel", "schedule.fail"],
        "description": "schedule.*: a scheduled change taken, cancelled, or refused when its time came "
        '(old/new: the planned {"value", "at"}; a failure\'s new: {"reason"})',
    }
    event["sealed"] = {"type": "boolean", "description": "Present on changes that seal (true) or unseal (false)"}
    event["schedule"] = {"type": "string", "description": "The schedule the event is about, or that made the change"}
    return schemas


def dry_run(operation: dict[str, Any]) -> dict[str, Any]:
    """An operation that takes ?dry_run=true, and then answers what it would reach."""
    operation = copy.deepcopy(operation)
    operation.setdefault("parameters", []).append(DRY_RUN)
    ok = operation["responses"].setdefault(
        "200", {"description": "OK", "content": {"application/json": {"schema": {}}}}
    )
    schema = ok["content"]["application/json"]["schema"]
    ok["description"] = "OK (with dry_run=true: what the change would reach)"
    answer = {"$ref": "#/components/schemas/DryRun"}
    ok["content"]["application/json"]["schema"] = answer if not schema else {"oneOf": [schema, answer]}
    return operation


def sealed_body(operation: dict[str, Any]) -> dict[str, Any]:
    """A PUT of a value, whose body may seal or unseal it."""
    operation = copy.deepcopy(operation)
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    body["properties"]["sealed"] = {
        "type": "boolean",
        "description": (
            "admin only: true seals the value (below this org it wins, and writes of the flag answer 409 sealed); "
            "false unseals; absent keeps the org's seal as it is"
        ),
    }
    return operation


def sealable(operation: dict[str, Any]) -> dict[str, Any]:
    """A write of a value that a seal above may refuse."""
    operation = copy.deepcopy(operation)
    operation["responses"]["409"] = _problem("sealed (the detail and sealing_org name the sealing org)")
    return operation


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": copy.deepcopy(_PROBLEM)}


def bulk_values(flag: dict[str, Any]) -> dict[str, Any]:
    """PUT /v1/flags/{flag}/values; `flag` is the path parameter every flag route shares."""
    row = {
        "type": "object",
        "required": ["org", "value"],
        "additionalProperties": False,
        "properties": {"org": {"type": "string"}, "value": {"description": "typed as the flag; null clears"}},
    }
    limited = {
        status: _problem(text)
        for status, text in (
            ("400", "invalid-body (a CSV header other than org,value)"),
            ("401", "unauthorized"),
            ("403", "forbidden (a row outside the caller's subtrees refuses the whole request)"),
            ("404", "flag-not-found"),
            ("413", "payload-too-large"),
            ("415", "unsupported-media-type"),
            (
                "422",
                "invalid-id (the flag name), invalid-rows: errors [{row, id, type, detail}], type one of "
                "invalid-body, invalid-id, invalid-value, org-not-found, sealed; nothing is written",
            ),
            ("429", "rate-limited"),
            ("503", "unavailable"),
        )
    }
    return {
        "summary": "Set or clear one flag on many orgs, all or nothing, one audit event per changed org",
        "description": "Requires the `writer` role. Rows count from 1 (the array's first element, NDJSON's "
        "first line, CSV's first line after the header). Values that equal the org's own are "
        "unchanged. A sealed value may be changed only by an admin (it stays sealed; null "
        "clears it); rows below a seal are row errors `sealed`.",
        "parameters": [flag],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": row}},
                "application/x-ndjson": {"schema": {"type": "string", "description": "one row object per line"}},
                "text/csv": {"schema": {"type": "string", "description": "header org,value; the value as JSON text"}},
            },
        },
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["changed", "unchanged"],
                            "properties": {"changed": {"type": "integer"}, "unchanged": {"type": "integer"}},
                        }
                    }
                },
            },
            **limited,
        },
    }


_SCHEDULE = {
    "type": "object",
    "required": ["schedule", "org", "flag", "value", "at"],
    "properties": {
        "schedule": {"type": "string"},
        "org": {"type": "string"},
        "flag": {"type": "string"},
        "value": {"description": "null: a scheduled clear"},
        "at": {"type": "string", "format": "date-time"},
        "actor": {"type": "string"},
        "sealed": {"type": "boolean"},
    },
}
_AT = {
    "type": "string",
    "format": "date-time",
    "description": "RFC 3339 time with its offset, in the future (else 422 invalid-value): schedule the change "
    "instead of making it now (202); it is checked now as an immediate change and again then",
}
_SCHEDULE_REF = {"$ref": "#/components/schemas/Schedule"}
_ACCEPTED = {"description": "Scheduled", "content": {"application/json": {"schema": _SCHEDULE_REF}}}


def schedulable_put(operation: dict[str, Any]) -> dict[str, Any]:
    """A PUT of a value whose body may carry `at`: scheduled instead of made now (202)."""
    operation = copy.deepcopy(operation)
    operation["requestBody"]["content"]["application/json"]["schema"]["properties"]["at"] = _AT
    operation["responses"]["202"] = _ACCEPTED
    return operation


def schedulable_delete(operation: dict[str, Any]) -> dict[str, Any]:
    """A DELETE of a value that may take ?at=: scheduled instead of made now (202)."""
    operation = copy.deepcopy(operation)
    operation.setdefault("parameters", []).append({"name": "at", "in": "query", "required": False, "schema": _AT})
    operation["responses"]["202"] = _ACCEPTED
    return operation
