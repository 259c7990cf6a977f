"""What an org id and a flag name may look like (docs/api.md, "Identifiers")."""

from __future__ import annotations

import re

from app.errors import Problem, ProblemType

_ORG_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_FLAG_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")


def is_org_id(value: object) -> bool:
    # "." and ".." alone cannot travel in a URL path, so they are not ids.
    return isinstance(value, str) and value not in (".", "..") and _ORG_ID.fullmatch(value) is not None


def is_flag_name(value: object) -> bool:
    return isinstance(value, str) and _FLAG_NAME.fullmatch(value) is not None


def check_org_id(value: object, what: str = "org id") -> str:
    if not is_org_id(value):
        raise Problem(ProblemType.invalid_id,
                      f"{what} {value!r} must be 1-128 characters of A-Z a-z 0-9 . _ : - (not '.' or '..')")
    return value  # type: ignore[return-value]


def check_flag_name(value: object) -> str:
    if not is_flag_name(value):
        raise Problem(ProblemType.invalid_id,
                      f"flag name {value!r} must be 1-128 characters matching [a-z0-9][a-z0-9._-]*")
    return value  # type: ignore[return-value]
