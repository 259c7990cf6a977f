"""The OpenAPI side of docs/api.md's "Rollouts along the tree", added to what openapi.py and
openapi_safe.py describe: the PUT body's `rollout`, the reason `split` with its unit and bucket,
OFREP's `SPLIT` with `metadata.unit`."""

from __future__ import annotations

from typing import Any

ROLLOUT = {
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


def extend(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    schemas["Rollout"] = ROLLOUT
    put = spec["paths"]["/v1/orgs/{org}/flags/{flag}"]["put"]
    body = put["requestBody"]["content"]["application/json"]["schema"]
    # Either a value or a rollout, with the same optional members (sealed, at) beside either.
    body["properties"]["rollout"] = {"$ref": "#/components/schemas/Rollout"}
    body.pop("required", None)
    body["oneOf"] = [{"required": ["value"]}, {"required": ["rollout"]}]
    for name in ("EffectiveValue", "Explanation"):
        reason = schemas[name]["properties"]["reason"]
        reason["enum"] = [*reason["enum"], "split"]
        reason["description"] = reason.get("description", "") + "; split: the org's unit is in a rollout"
        schemas[name]["properties"]["unit"] = _UNIT
    schemas["Explanation"]["properties"]["bucket"] = {
        "type": "number",
        "description": "reason split: the unit's bucket",
    }
    entry = schemas["Explanation"]["properties"]["chain"]["items"]["properties"]
    entry["unit"] = {
        "type": ["string", "null"],
        "description": (
            "On an org that sets a rollout: the explained org's unit in it (null: the org is above the unit depth)"
        ),
    }
    entry["bucket"] = {"type": ["number", "null"], "description": "On an org that sets a rollout: the unit's bucket"}
    evaluation = schemas["OfrepEvaluation"]["properties"]
    evaluation["reason"]["enum"] = [*evaluation["reason"]["enum"], "SPLIT"]
    evaluation["variant"]["enum"] = [*evaluation["variant"]["enum"], "split"]
    evaluation["metadata"]["properties"]["unit"] = {"type": "string", "description": "reason SPLIT: the org's unit"}
