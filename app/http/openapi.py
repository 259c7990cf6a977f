"""`GET /openapi.json` and `GET /docs`: the contract of docs/api.md, machine-readable.

This module says what each operation is (its summary, parameters, bodies and answers:
the constants below); the route table, app/http/routes.py, says where each one is
answered, and `spec` makes the document's paths from that table, as Starlette's own
SchemaGenerator does from a Router's routes. Id patterns come from app/domain/ids.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.domain import ids
from app.errors import ProblemType
from app.http import openapi_safe
from app.http.api_route import ApiRoute
from app.http.responses import JSON

_ORG_ID = {"type": "string", "pattern": f"^{ids.ORG_ID_PATTERN}$", "not": {"enum": list(ids.NOT_ORG_IDS)}}
_FLAG_NAME = {"type": "string", "pattern": f"^{ids.FLAG_NAME_PATTERN}$"}
# A path parameter's converter, as in `{val:path}`: not part of an OpenAPI path template.
_CONVERTER = re.compile(r":[^}]+}")
# A flag value: boolean, integer (signed 64-bit), number, string or object, by the flag's type.
_ANY = {}
# Why an org has its value (app/domain/resolution.py), in every answer that says so.
_REASON = {
    "enum": ["own", "inherited", "default", "sealed", "split"],
    "description": "sealed: an org at or above this one sealed the value (source_org names it); "
    "split: the org's unit is in a rollout",
}
# docs/api.md, "Rollouts along the tree" (the bucket function and its test vectors: docs/rollouts.md).
_ROLLOUT = {
    "type": "object",
    "required": ["percent", "value"],
    "additionalProperties": False,
    "properties": {
        "percent": {
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "multipleOf": 0.01,
            "description": "Share of the units that get the value, with at most two decimals",
        },
        "value": {"description": "The value rolled out, typed as the flag"},
        "unit_depth": {
            "type": "integer",
            "minimum": 1,
            "default": 1,
            "description": "The units are the orgs this many levels below the org the rollout is set on",
        },
    },
    "description": "An org at depth(org) + unit_depth or deeper is in the rollout when bucket(flag, unit) < percent: "
    "bucket is the first 8 bytes of SHA-256(flag + '/' + unit id), big-endian, mod 10,000, / 100 "
    "(docs/rollouts.md has test vectors)",
}
_UNIT = {
    "type": "string",
    "description": "reason split: the org's unit (its ancestor, or itself, at the rollout's unit depth)",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problems(*statuses: int) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": _ref("Problem")}}
    documented = {str(status): {"description": _status_text(status), "content": problem} for status in statuses}
    for status in {"429", "503"} & documented.keys():
        documented[status]["headers"] = _RETRY_AFTER
    return documented


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _status_text(status: int) -> str:
    return ", ".join(sorted(type_ for type_ in ProblemType if type_.status == status)) or str(status)


# docs/api.md "Limits": what a request body may weigh (app/http/bodies.py).
_SMALL_BODY = "At most 64 KiB (413 payload-too-large beyond, refused from Content-Length before it is read)."
_BULK_BODY = (
    "At most GRAPHFLAGS_MAX_BODY_BYTES (default 64 MiB; 413 payload-too-large beyond), parsed as it streams in."
)


def _op(
    summary: str,
    role: str | None,
    responses: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = (),
    body_limit: str = _SMALL_BODY,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {**responses, **_problems(*errors)}}
    if role is not None:
        operation["description"] = f"Requires the `{role}` role."
        # Every authenticated operation is rate limited (429) and may meet the database away (503).
        operation["responses"].update(_problems(401, 403, 429, 503))
    else:
        operation["security"] = []
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body, "description": body_limit}
    if params:
        operation["parameters"] = params
    return operation


def _path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


ORG = _path_param("org", _ORG_ID)
FLAG = _path_param("flag", _FLAG_NAME)
SETS = _query("set", {"type": "string"}, "Comma-separated flag sets (or the X-Flag-Set header)")


def _header(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": schema, "description": description}


# OFREP (open-feature/protocol, service/openapi.yaml): its own error bodies for 400 and 404.
_OFREP_SCHEMAS: dict[str, Any] = {
    "OfrepRequest": {
        "type": "object",
        "required": ["context"],
        "properties": {
            "context": {
                "type": "object",
                "required": ["targetingKey"],
                "additionalProperties": True,
                "properties": {"targetingKey": {**_ORG_ID, "description": "The org id the flags are evaluated for"}},
            }
        },
    },
    "OfrepEvaluation": {
        "type": "object",
        "required": ["key", "value", "reason", "variant", "metadata"],
        "properties": {
            "key": _FLAG_NAME,
            "value": {**_ANY, "description": "`number` flags are always JSON floats (10.0), `integer` flags integers"},
            "reason": {
                "enum": ["TARGETING_MATCH", "STATIC", "SPLIT"],
                "description": "TARGETING_MATCH: set on the org or an ancestor; STATIC: the catalog default",
            },
            "variant": {"enum": _REASON["enum"]},
            "metadata": {
                "type": "object",
                "additionalProperties": False,
                "description": "source_org and depth (0: the org itself); empty for a catalog default",
                "properties": {
                    "source_org": _ORG_ID,
                    "depth": {"type": "integer", "minimum": 0},
                    "sealed": {"const": True, "description": "Present when a seal decided"},
                    "unit": {"type": "string", "description": "reason SPLIT: the org's unit"},
                },
            },
        },
    },
    "OfrepFailure": {
        "type": "object",
        "required": ["key", "errorCode", "errorDetails"],
        "properties": {
            "key": {"type": "string"},
            "errorCode": {"enum": ["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT"]},
            "errorDetails": {"type": "string"},
        },
    },
    "OfrepFlagNotFound": {
        "type": "object",
        "required": ["key", "errorCode", "errorDetails"],
        "properties": {
            "key": {"type": "string"},
            "errorCode": {"enum": ["FLAG_NOT_FOUND"]},
            "errorDetails": {"type": "string"},
        },
    },
    "OfrepBulkFailure": {
        "type": "object",
        "required": ["errorCode", "errorDetails"],
        "properties": {
            "errorCode": {"enum": ["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT"]},
            "errorDetails": {"type": "string"},
        },
    },
    "OfrepBulkEvaluation": {
        "type": "object",
        "required": ["flags"],
        "properties": {
            "flags": {"type": "array", "items": _ref("OfrepEvaluation")},
            "eventStreams": {
                "type": "array",
                "items": _ref("OfrepEventStream"),
                "description": "OFREP ADR-0008: connect to be told when this answer changes",
            },
        },
    },
    "OfrepEventStream": {
        "type": "object",
        "required": ["type", "url"],
        "properties": {
            "type": {"enum": ["sse"]},
            "url": {
                "type": "string",
                "format": "uri",
                "description": "Carries its own short-lived credential: a secret, never log it",
            },
            "inactivityDelaySec": {"type": "integer", "minimum": 1},
        },
    },
}
_OFREP_SECURITY = [{"bearer": []}, {"apiKey": []}]
_OFREP_BODY = {"application/json": {"schema": _ref("OfrepRequest")}}
_ETAG = {
    "ETag": {
        "description": "Hash of exactly the flags answered (flag sets included; not eventStreams)",
        "schema": {"type": "string"},
    }
}


def _ofrep_operations() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    single = _op(
        "OFREP: evaluate one flag for the org in context.targetingKey",
        "reader",
        {
            "200": _json(_ref("OfrepEvaluation")),
            "400": _json(
                _ref("OfrepFailure"),
                "PARSE_ERROR, TARGETING_KEY_MISSING, INVALID_CONTEXT (also: no such org inside the caller's subtrees)",
            ),
            "404": _json(_ref("OfrepFlagNotFound"), "FLAG_NOT_FOUND"),
        },
        body=_OFREP_BODY,
        params=[_path_param("key", {"type": "string"})],
        errors=(413,),
    )
    bulk = _op(
        "OFREP: evaluate every catalog flag (of the requested sets) for the org in context.targetingKey",
        "reader",
        {
            "200": {**_json(_ref("OfrepBulkEvaluation")), "headers": _ETAG},
            "304": {"description": "If-None-Match matched: nothing changed", "headers": _ETAG},
            "400": _json(_ref("OfrepBulkFailure"), "PARSE_ERROR, TARGETING_KEY_MISSING, INVALID_CONTEXT"),
        },
        body=_OFREP_BODY,
        errors=(413,),
        params=[
            _header("If-None-Match", {"type": "string"}),
            SETS,
            _header("X-Flag-Set", {"type": "string"}, "Comma-separated flag sets"),
            _query(
                "flagConfigEtag",
                {"type": "string"},
                "OFREP event-stream metadata: taken as If-None-Match when that header is absent",
            ),
            _query("flagConfigLastModified", {"type": "string"}, "OFREP event-stream metadata; ignored"),
        ],
    )
    for operation in (single, bulk):
        operation["security"] = _OFREP_SECURITY
    events = {
        "type": "string",
        "description": '`id: <etag>`, `event: message`, `data: {"type": '
        '"refetchEvaluation", "etag": <etag>}` each time the answer '
        "changes; at the caller's token exp a last `event: token-expired`",
    }
    stream = _op(
        "OFREP event stream (ADR-0008) of one bulk answer: use the URL of its eventStreams entry as it is",
        None,
        {"200": {"description": "OK", "content": {"text/event-stream": {"schema": events}}}},
        params=[
            _path_param("org", _ORG_ID),
            _query("token", {"type": "string"}, "The URL's credential"),
            _header("Last-Event-ID", {"type": "string"}, "The last ETag heard"),
        ],
        errors=(401, 403, 404, 422, 429),
    )
    return single, bulk, stream


OFREP_EVALUATE_FLAG, OFREP_EVALUATE_FLAGS, OFREP_EVENT_STREAM = _ofrep_operations()


# An audit seq as the feed reads one: at most 18 digits (app/http/changes.py).
_SEQ = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}


def _changes() -> dict[str, Any]:
    page = {
        "type": "object",
        "required": ["events", "last"],
        "properties": {
            "events": {"type": "array", "items": _ref("AuditEvent")},
            "last": {
                "type": "integer",
                "description": (
                    "Continue with after=last. For a scoped admin: the seq of its own newest event here (or after), "
                    "not the global newest; past a scan window of 10,000 events without one of its own, "
                    "that window's end"
                ),
            },
        },
    }
    stream = {
        "type": "string",
        "description": "Server-Sent Events: `id: <seq>` and `data: <AuditEvent JSON>` "
        "per event, `: heartbeat` comments, `event: expired` if pruned past; "
        "at the token's exp a last `event: token-expired` (a 401 problem) "
        "and the stream ends: reconnect with a fresh token and Last-Event-ID",
    }
    return _op(
        "Audit events after a seq, oldest first (the change feed); a stream with Accept: text/event-stream "
        "(429 when the token already holds GRAPHFLAGS_MAX_STREAMS_PER_TOKEN open streams, default 4)",
        "admin",
        {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": page}, "text/event-stream": {"schema": stream}},
            }
        },
        params=[
            _query("after", _SEQ | {"default": 0}),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1000}),
            _header("Last-Event-ID", _SEQ, "Resume a stream (overrides after)"),
        ],
        errors=(410, 422),
    )


LIST_CHANGES = _changes()


def _snapshot() -> dict[str, Any]:
    # docs/regions.md: what a region bootstraps from, then follows /v1/changes after `seq`.
    lines = {
        "type": "string",
        "description": (
            'NDJSON: a header `{"snapshot": {"format": 1, "seq": S}}`, one line per org in id order '
            '`{"id", "parent", "values": [[flag, value, type, updated_at, updated_by, sealed], ...]}`, and a trailer '
            '`{"end": {"orgs": n, "seq": S}}` (a stream without it was cut short). Every change up to seq S '
            "is in it; later ones may be too, so apply /v1/changes?after=S."
        ),
    }
    operation = _op(
        "Every org with its parent and own values, and the seq to follow the change feed from; "
        "needs an admin token for every org ('*')",
        "admin",
        {
            "200": {
                "description": "OK",
                "content": {"application/x-ndjson": {"schema": lines}},
                "headers": {"X-Graphflags-Snapshot-Seq": {"schema": {"type": "integer"}}},
            }
        },
        errors=(422,),
    )
    operation["description"] += (
        " A region (`serve --upstream`) answers writes with 421 read-only-region, "
        "naming its upstream, and adds X-Graphflags-Staleness to every answer."
    )
    return operation


GET_SNAPSHOT = _snapshot()


def _children() -> dict[str, Any]:
    page = {
        "type": "object",
        "required": ["children", "next"],
        "properties": {
            "children": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "children"],
                    "properties": {
                        "id": _ORG_ID,
                        "children": {"type": "integer", "minimum": 0, "description": "Its own number of children"},
                    },
                },
            },
            "next": {"type": ["string", "null"], "description": "Pass as cursor for the next page; null on the last"},
        },
    }
    operation = _op(
        "An org's children, sorted by id, a page at a time",
        "reader",
        {"200": _json(page)},
        params=[
            ORG,
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
            _query("cursor", {"type": "string"}, "The `next` of the previous page"),
        ],
        errors=(404, 422),
    )
    operation["description"] += " Reads only that org's own child relationships, whatever the size of the tree."
    return operation


LIST_CHILDREN = _children()


def _find_orgs() -> dict[str, Any]:
    found = {
        "type": "object",
        "required": ["orgs", "truncated"],
        "properties": {
            "orgs": {"type": "array", "items": _ORG_ID},
            "truncated": {
                "type": "boolean",
                "description": "More matching ids may exist: the limit was reached, "
                "or the scan bound (type a longer prefix)",
            },
        },
    }
    operation = _op(
        "Org ids starting with a prefix, inside the caller's subtrees, sorted by id",
        "reader",
        {"200": _json(found)},
        params=[
            _query("prefix", {"type": "string", "pattern": f"^{ids.ORG_ID_PREFIX_PATTERN}$", "default": ""}),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
        ],
        errors=(422,),
    )
    operation["description"] += (
        " Candidates come from the org id index in id order; for a scoped token each is "
        "kept if inside its subtrees, and at most 2,000 candidates are examined per request."
    )
    return operation


FIND_ORGS = _find_orgs()


# Every operation of the route table (app/http/routes.py), which names each one; the
# paths of /openapi.json are that table's (`spec` below), so a path is written down once.
_VALUE_READ = _json(_ref("EffectiveValue"))
_ORG_BODY = {"application/json": {"schema": _ref("OrgCreate")}}
_BULK_ORGS_BODY = {
    "application/json": {"schema": {"type": "array", "items": _ref("OrgCreate")}},
    "application/x-ndjson": {"schema": {"type": "string"}},
    "text/csv": {"schema": {"type": "string", "description": "header id,parent"}},
}


def _value_written() -> dict[str, Any]:
    # A fresh object for each write, since each gets its own dry-run answer (openapi_safe.dry_run).
    return _json(_ref("WrittenValue"))


HEALTHZ = _op("Process is alive", None, {"200": _json({"type": "object"})})
OPENAPI = _op("This document", None, {"200": _json({"type": "object"})})
DOCS = _op(
    "This document, browsable",
    None,
    {"200": {"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}}},
)
CONSOLE = _op(
    "The web console (files under /ui/; the API calls it makes need a token)",
    None,
    {"200": {"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}}},
)
READYZ = _op("Database reachable and catalog loaded", None, {"200": _json({"type": "object"})}, errors=(503,))
METRICS = _op(
    "Prometheus metrics of every worker; needs an admin token for '*' (a scoped admin gets 403: "
    "the text names every tenant's actors). Prometheus itself scrapes GRAPHFLAGS_METRICS_PORT, no token",
    "admin",
    {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    errors=(404,),
)
LIST_VALUES = _op(
    "Every catalog flag's effective value for an org",
    "reader",
    {"200": _json({"type": "object", "properties": {"org": _ORG_ID, "flags": {"type": "object"}}})},
    params=[ORG, SETS],
    errors=(404, 422),
)
GET_VALUE = _op(
    "Effective value of a flag for an org", "reader", {"200": _VALUE_READ}, params=[ORG, FLAG], errors=(404, 422)
)
PUT_VALUE = openapi_safe.dry_run(
    openapi_safe.schedulable_put(
        openapi_safe.sealable(
            openapi_safe.sealed_body(
                _op(
                    "Set the org's own value",
                    "writer",
                    {"200": _value_written()},
                    params=[ORG, FLAG],
                    body={
                        "application/json": {
                            # Either a value or a rollout, with the same optional members (sealed, at) beside either.
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {"value": _ANY, "rollout": _ref("Rollout")},
                                "oneOf": [{"required": ["value"]}, {"required": ["rollout"]}],
                            }
                        }
                    },
                    errors=(400, 404, 413, 422),
                )
            )
        )
    )
)
DELETE_VALUE = openapi_safe.dry_run(
    openapi_safe.schedulable_delete(
        openapi_safe.sealable(
            _op(
                "Clear the org's own value (it inherits again)",
                "writer",
                {"204": {"description": "Cleared"}},
                params=[ORG, FLAG],
                errors=(404, 422),
            )
        )
    )
)
EXPLAIN_VALUE = _op(
    "Why an org gets its value: the chain from the org to the root",
    "reader",
    {"200": _json(_ref("Explanation"))},
    params=[ORG, FLAG],
    errors=(404, 422),
)
CREATE_ORG = _op(
    "Create an org (422 too-deep below GRAPHFLAGS_MAX_DEPTH levels)",
    "admin",
    {"201": _json(_ref("Org"), "Created"), "200": _json(_ref("Org"), "Exists")},
    body=_ORG_BODY,
    errors=(400, 409, 413, 422),
)
CREATE_ORGS_BULK = _op(
    "Create many orgs, all or none (a row below GRAPHFLAGS_MAX_DEPTH levels: a too-deep row error)",
    "admin",
    {
        "200": _json(
            {"type": "object", "properties": {"created": {"type": "integer"}, "unchanged": {"type": "integer"}}}
        )
    },
    body=_BULK_ORGS_BODY,
    errors=(400, 413, 415, 422),
    body_limit=_BULK_BODY,
)
GET_ORG = _op(
    "An org, its ancestors and its number of children",
    "reader",
    {"200": _json(_ref("Org"))},
    params=[ORG],
    errors=(404, 422),
)
MOVE_ORG = openapi_safe.dry_run(
    _op(
        "Move an org and its subtree under another parent (422 too-deep when the subtree's "
        "lowest org would sit below GRAPHFLAGS_MAX_DEPTH levels)",
        "admin",
        {"200": _json(_ref("Org"))},
        params=[ORG],
        errors=(400, 404, 409, 413, 422),
        body={
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["parent"],
                    "additionalProperties": False,
                    "properties": {"parent": {"oneOf": [_ORG_ID, {"type": "null"}]}},
                }
            }
        },
    )
)
LIST_FLAGS = _op(
    "The flag catalog",
    "reader",
    {"200": _json({"type": "object", "properties": {"flags": {"type": "array", "items": _ref("Flag")}}})},
)
GET_FLAG = _op("One flag's definition", "reader", {"200": _json(_ref("Flag"))}, params=[FLAG], errors=(404, 422))
PUT_FLAG_VALUES = openapi_safe.dry_run(openapi_safe.bulk_values(FLAG))
RELOAD_CATALOG = _op(
    "Reload flags.json now",
    "admin",
    {"200": _json({"type": "object", "properties": {"flags": {"type": "integer"}}})},
    errors=(422,),
)
LIST_AUDIT = _op(
    "Audit events, newest first",
    "admin",
    {
        "200": _json(
            {
                "type": "object",
                "properties": {
                    "events": {"type": "array", "items": _ref("AuditEvent")},
                    "next": {
                        "type": ["string", "null"],
                        "description": (
                            "Cursor for the next page; null: nothing older matches. Filters no index serves "
                            "(subtree, since, two equality filters, a scoped admin) scan at most 10,000 events "
                            "a request, so a page may hold fewer than limit events, even none, and a cursor"
                        ),
                    },
                },
            }
        )
    },
    params=[
        _query("org", _ORG_ID),
        _query("subtree", {"type": "boolean"}),
        _query("flag", _FLAG_NAME),
        _query("actor", {"type": "string"}),
        _query("since", {"type": "string", "format": "date-time"}),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        _query("cursor", {"type": "string"}),
    ],
    errors=(422,),
)
LIST_SCHEDULES = _op(
    "Pending scheduled changes in the caller's subtrees, soonest first (at most 1000)",
    "writer",
    {
        "200": _json(
            {
                "type": "object",
                "required": ["schedules"],
                "properties": {"schedules": {"type": "array", "items": _ref("Schedule")}},
            }
        )
    },
    params=[
        _query("org", {"type": "string"}),
        _query("subtree", {"type": "boolean", "default": False}),
        _query("flag", {"type": "string"}),
    ],
    errors=(422,),
)
CANCEL_SCHEDULE = _op(
    "Cancel a pending scheduled change",
    "writer",
    {"204": {"description": "Cancelled"}},
    params=[_path_param("schedule", {"type": "string"})],
    errors=(404, 422),
)
SEED_GET_VALUE = _op(
    "Seed alias of GET /v1/orgs/{org}/flags/{flag}",
    "reader",
    {"200": _VALUE_READ},
    params=[ORG, FLAG],
    errors=(404, 422),
)
SEED_POST_VALUE = openapi_safe.dry_run(
    openapi_safe.sealable(
        _op(
            "Seed alias of PUT: the value as a path segment, parsed by the flag's type (integers: signed "
            "64-bit, 422 invalid-value outside)",
            "writer",
            {"200": _value_written()},
            params=[ORG, FLAG, _path_param("val", {"type": "string"})],
            errors=(404, 422),
        )
    )
)


@cache
def spec() -> dict[str, Any]:
    # routes.py names this module's operations (and `document`), so it is imported only when asked.
    from app.http.routes import ROUTES

    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "graphflags",
            "version": "1",
            "description": "Feature flags for organisations arranged in hierarchies.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "RS256/ES256 keys from GRAPHFLAGS_JWT_JWKS_FILE or "
                    "GRAPHFLAGS_JWKS_URL (refetched for an unknown kid, "
                    "rate-limited); exp enforced with no leeway",
                },
                # The same JWT, for clients (OFREP providers) that send an API key header.
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
            "schemas": openapi_safe.with_safe_change_schemas(
                {
                    "Problem": {
                        "type": "object",
                        "required": ["type", "title", "status", "detail"],
                        "properties": {
                            "type": {"type": "string"},
                            "title": {"type": "string"},
                            "status": {"type": "integer"},
                            "detail": {"type": "string"},
                            "errors": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "row": {"type": "integer"},
                                        "id": {"type": ["string", "null"]},
                                        "type": {"type": "string"},
                                        "detail": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                    "EffectiveValue": {
                        "type": "object",
                        "required": ["org", "flag", "value", "reason", "source_org"],
                        "properties": {
                            "org": _ORG_ID,
                            "flag": _FLAG_NAME,
                            "value": _ANY,
                            "reason": _REASON,
                            "source_org": {"type": ["string", "null"]},
                            "unit": _UNIT,
                        },
                    },
                    "WrittenValue": {
                        "type": "object",
                        "required": ["org", "flag", "value", "previous"],
                        "properties": {"org": _ORG_ID, "flag": _FLAG_NAME, "value": _ANY, "previous": _ANY},
                    },
                    "OrgCreate": {
                        "type": "object",
                        "required": ["id"],
                        "additionalProperties": False,
                        "properties": {"id": _ORG_ID, "parent": {"oneOf": [_ORG_ID, {"type": "null"}]}},
                    },
                    "Org": {
                        "type": "object",
                        "required": ["id", "parent"],
                        "properties": {
                            "id": _ORG_ID,
                            "parent": {"type": ["string", "null"]},
                            "ancestors": {"type": "array", "items": {"type": "string"}},
                            "children": {"type": "integer"},
                        },
                    },
                    "Flag": {
                        "type": "object",
                        "required": ["name", "type", "default"],
                        "properties": {
                            "name": _FLAG_NAME,
                            "type": {"enum": ["boolean", "integer", "number", "string", "object"]},
                            "default": _ANY,
                            "description": {"type": "string"},
                            "set": {"type": "string"},
                            "min": {"type": "number"},
                            "max": {"type": "number"},
                            "allowed": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    "AuditEvent": {
                        "type": "object",
                        "properties": {
                            "seq": {"type": "integer"},
                            "at": {"type": "string", "format": "date-time"},
                            "actor": {"type": "string"},
                            "action": {"enum": ["flag.set", "flag.clear", "org.create", "org.move"]},
                            "org": {"type": "string"},
                            "flag": {"type": ["string", "null"]},
                            "old": _ANY,
                            "new": _ANY,
                        },
                    },
                    "Explanation": {
                        "type": "object",
                        "required": ["org", "flag", "value", "reason", "source_org", "chain"],
                        "properties": {
                            "org": _ORG_ID,
                            "flag": _FLAG_NAME,
                            "value": _ANY,
                            "reason": _REASON,
                            "source_org": {"type": ["string", "null"]},
                            "unit": _UNIT,
                            "bucket": {"type": "number", "description": "reason split: the unit's bucket"},
                            "chain": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["org", "value"],
                                    "properties": {
                                        "org": _ORG_ID,
                                        "value": _ANY,
                                        "unit": {
                                            "type": ["string", "null"],
                                            "description": "On an org that sets a rollout: the explained org's "
                                            "unit in it (null: the org is above the unit depth)",
                                        },
                                        "bucket": {
                                            "type": ["number", "null"],
                                            "description": "On an org that sets a rollout: the unit's bucket",
                                        },
                                    },
                                },
                            },
                        },
                    },
                    "Rollout": _ROLLOUT,
                    **_OFREP_SCHEMAS,
                }
            ),
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths_of(ROUTES),
    }
    return document


def paths_of(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI paths of a route table: each ApiRoute's operation under its path and method.

    As Starlette's own SchemaGenerator does, a path converter (`{val:path}`) is left out of
    the template, and routes with include_in_schema=False are skipped."""
    paths: dict[str, Any] = {}
    for route in routes:
        if isinstance(route, ApiRoute) and route.include_in_schema:
            paths.setdefault(_CONVERTER.sub("}", route.path), {})[route.method.lower()] = route.operation
    return paths


async def document(request: Request) -> Response:
    return JSON(spec())
