"""What an org id and a flag name may look like (docs/api.md, "Identifiers")."""

from __future__ import annotations

import re

from app.errors import Problem, ProblemType

# The one statement of each rule: the checks below and the OpenAPI schemas of the routes'
# parameters (app/http/openapi.py) are both made from these.
_ORG_ID_CHARS = "A-Za-z0-9._:-"
ORG_ID_PATTERN = f"[{_ORG_ID_CHARS}]{{1,128}}"
# What may start an org id: a search prefix (GET /v1/orgs?prefix=), empty included.
ORG_ID_PREFIX_PATTERN = f"[{_ORG_ID_CHARS}]{{0,128}}"
FLAG_NAME_PATTERN = "[a-z0-9][a-z0-9._-]{0,127}"
# "." and ".." alone cannot travel in a URL path, so they are not ids.
NOT_ORG_IDS = (".", "..")

_ORG_ID = re.compile(ORG_ID_PATTERN)
_FLAG_NAME = re.compile(FLAG_NAME_PATTERN)


def is_org_id(value: object) -> bool:
    return isinstance(value, str) and value not in NOT_ORG_IDS and _ORG_ID.fullmatch(value) is not None


def is_flag_name(value: object) -> bool:
    return isinstance(value, str) and _FLAG_NAME.fullmatch(value) is not None


def check_org_id(value: object, what: str = "org id") -> str:
    if not is_org_id(value):
        raise Problem(
            ProblemType.invalid_id,
            f"{what} {value!r} must be 1-128 characters of A-Z a-z 0-9 . _ : - (not '.' or '..')",
        )
    return value  # type: ignore[return-value]


def check_flag_name(value: object) -> str:
    if not is_flag_name(value):
        raise Problem(
            ProblemType.invalid_id, f"flag name {value!r} must be 1-128 characters matching [a-z0-9][a-z0-9._-]*"
        )
    return value  # type: ignore[return-value]
