"""The flag catalog (`flags.json`): what flags exist, their types, defaults and limits.

A `Catalog` is immutable; a reload builds a new one and swaps it in whole, so a
request never sees half of an old catalog and half of a new one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.domain import rollouts, value_codec
from app.domain.ids import is_flag_name
from app.domain.rollouts import Rollout
from app.errors import Problem, ProblemType

FlagType = Literal["boolean", "integer", "number", "string", "object"]

# Longest string or encoded object a flag value may be: flags are switches, not blobs.
MAX_VALUE_BYTES = 64 * 1024

_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"-?[0-9]+")
# `integer` values are signed 64-bit, as Neo4j stores them (docs/api.md "Limits").
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_OUTSIDE_INT64 = "outside the signed 64-bit range"


class FlagDefinition(BaseModel):
    """One flag as the catalog defines it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: FlagType
    default: Any
    description: str = ""
    set: str = Field("default", pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not is_flag_name(name):
            raise ValueError("flag names are 1-128 characters matching [a-z0-9][a-z0-9._-]*")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> FlagDefinition:
        if (self.min is not None or self.max is not None) and self.type not in ("integer", "number"):
            raise ValueError("min/max apply only to integer and number flags")
        if self.allowed is not None and self.type != "string":
            raise ValueError("allowed applies only to string flags")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        problem = self.problem_with(self.default)
        if problem:
            raise ValueError(f"default {self.default!r}: {problem}")
        if self.type == "number":
            object.__setattr__(self, "default", float(self.default))
        return self

    def problem_with(self, value: Any) -> str | None:
        """Why `value` cannot be this flag's value, or None when it can (a rollout: its value)."""
        if type(value) is Rollout:
            return self.problem_with(value.value)
        match self.type:
            case "boolean":
                if not isinstance(value, bool):
                    return "expected true or false"
            case "integer":
                if not isinstance(value, int) or isinstance(value, bool):
                    return "expected an integer"
                if not INT64_MIN <= value <= INT64_MAX:
                    return _OUTSIDE_INT64
            case "number":
                if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                    return "expected a finite number"
            case "string":
                if not isinstance(value, str):
                    return "expected a string"
                if len(value.encode()) > MAX_VALUE_BYTES:
                    return f"longer than {MAX_VALUE_BYTES} bytes"
                if self.allowed is not None and value not in self.allowed:
                    return f"expected one of {list(self.allowed)}"
            case "object":
                if not isinstance(value, dict):
                    return "expected a JSON object"
                if len(orjson.dumps(value)) > MAX_VALUE_BYTES:
                    return f"longer than {MAX_VALUE_BYTES} bytes encoded"
                if rollouts.has_public_shape(value):
                    # The audit log and the change feed show rollouts in this shape: keep it theirs.
                    return 'the shape {"rollout": {"percent", "unit_depth", "value"}} is reserved for rollouts'

        if self.type in ("integer", "number"):
            if self.min is not None and value < self.min:
                return f"below the minimum {self.min:g}"
            if self.max is not None and value > self.max:
                return f"above the maximum {self.max:g}"
        return None

    def check(self, value: Any) -> Any:
        """`value` as this flag stores it, or `422 invalid-value`. A Rollout (app/domain/rollouts.py,
        its percent and depth already checked there) is checked for the value it rolls out."""
        if type(value) is Rollout:
            return Rollout.of(value.percent, value.unit_depth, self.check(value.value))
        problem = self.problem_with(value)
        if problem:
            raise Problem(ProblemType.invalid_value, f"flag {self.name!r} ({self.type}): {problem}")
        return float(value) if self.type == "number" else value

    def parse_path_value(self, text: str) -> Any:
        """The seed alias `POST /{org}/{flag}/{val}` carries the value as a path segment."""
        value: Any = text
        match self.type:
            case "boolean":
                lowered = text.lower()
                value = True if lowered == "true" else False if lowered == "false" else text
            case "integer":
                if _INTEGER.fullmatch(text):
                    # int() of more than 4,300 digits raises ValueError: judge the length first.
                    if len(text.lstrip("-").lstrip("0")) > len(str(INT64_MAX)):
                        raise Problem(ProblemType.invalid_value, f"flag {self.name!r} (integer): {_OUTSIDE_INT64}")
                    value = int(text)
            case "number":
                value = float(text) if _JSON_NUMBER.fullmatch(text) else text
            case "object":
                try:
                    value = orjson.loads(text)
                except orjson.JSONDecodeError:
                    raise Problem(
                        ProblemType.invalid_value, f"flag {self.name!r} (object): the value is not JSON"
                    ) from None
        return self.check(value)

    # Neo4j properties hold scalars and lists, not maps: see app/domain/value_codec.py.
    def to_graph(self, value: Any) -> Any:
        return value_codec.to_graph(value, self.type)

    def from_graph(self, stored: Any) -> Any:
        return value_codec.from_graph(stored, self.type)

    def stored_definition(self) -> str:
        """The definition as the graph keeps it on its Flag node (what a catalog sync compares)."""
        return value_codec.canonical_json(self.public())

    def public(self) -> dict[str, Any]:
        """The definition as `GET /v1/flags` shows it (unset limits left out)."""
        return self.model_dump(exclude_none=True)


class CatalogFile(BaseModel):
    """The shape of `flags.json`: `{"flags": {name: definition}}`."""

    model_config = ConfigDict(extra="forbid")

    schema_: str | None = Field(None, alias="$schema")
    flags: dict[str, dict[str, Any]]


class Catalog:
    """An immutable set of flag definitions, by name."""

    def __init__(self, flags: Iterable[FlagDefinition]) -> None:
        self._flags: dict[str, FlagDefinition] = {flag.name: flag for flag in flags}

    def __len__(self) -> int:
        return len(self._flags)

    def __iter__(self) -> Iterator[FlagDefinition]:
        return iter(self._flags.values())

    def __contains__(self, name: str) -> bool:
        return name in self._flags

    def get(self, name: str) -> FlagDefinition | None:
        return self._flags.get(name)

    def require(self, name: str) -> FlagDefinition:
        flag = self._flags.get(name)
        if flag is None:
            raise Problem(ProblemType.flag_not_found, f"no flag named {name!r} in the catalog")
        return flag

    def in_sets(self, sets: frozenset[str] | None) -> list[FlagDefinition]:
        return [f for f in self._flags.values() if sets is None or f.set in sets]

    def changed_from(self, old: Catalog) -> list[FlagDefinition]:
        """Flags that are new or whose definition differs from `old`."""
        return [f for f in self._flags.values() if old._flags.get(f.name) != f]

    @classmethod
    def parse(cls, raw: bytes | str) -> Catalog:
        """Parse and validate a whole catalog; any fault refuses all of it."""
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise Problem(ProblemType.invalid_catalog, f"not JSON: {error}") from None
        try:
            catalog_file = CatalogFile.model_validate(document)
        except ValidationError as error:
            raise Problem(ProblemType.invalid_catalog, _first_error(error)) from None
        flags = []
        for name, definition in catalog_file.flags.items():
            if not isinstance(definition, Mapping):
                raise Problem(ProblemType.invalid_catalog, f"flag {name!r}: definition must be an object")
            try:
                flags.append(FlagDefinition.model_validate({**definition, "name": name}))
            except ValidationError as error:
                raise Problem(ProblemType.invalid_catalog, f"flag {name!r}: {_first_error(error)}") from None
        return cls(flags)

    @classmethod
    def load(cls, path: Path) -> Catalog:
        try:
            return cls.parse(path.read_bytes())
        except OSError as error:
            raise Problem(ProblemType.invalid_catalog, f"cannot read {path}: {error.strerror}") from None


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]
