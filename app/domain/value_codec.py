"""How flag values are kept in the graph and in audit events: the one codec for the store,
the region copy and the loaders.

Neo4j properties hold scalars and lists, not maps, so an `object` value is stored as JSON
text, and a rollout as a list. The text is canonical (keys sorted), so the same object always stores the same text:
comparisons of stored values, and the catalog sync's "did this definition change", rely on it.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.domain import rollouts
from app.domain.rollouts import Rollout


def canonical_json(value: Any) -> str:
    """`value` as JSON text with sorted keys: equal values give equal text."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def optional_json(value: Any) -> str | None:
    """An audit event's `old`/`new`: JSON text, or None where there is no value."""
    return None if value is None else canonical_json(value)


def to_graph(value: Any, flag_type: str | None = None) -> Any:
    """`value` as the graph stores it.

    Without a flag type (a region applying an upstream event, which carries none) the value's
    shape decides: only `object` flags hold JSON objects, so the result is the same. A rollout
    is kept as a one-element list (app/domain/rollouts.py): no flag type stores a list.
    """
    if flag_type is None:
        value = rollouts.from_public(value)  # an event shows a rollout in its public shape
    if type(value) is Rollout:
        return rollouts.encode(value)
    if flag_type == "object" or (flag_type is None and isinstance(value, dict)):
        return canonical_json(value)
    return value


def from_graph(stored: Any, flag_type: str | None) -> Any:
    """A stored value as the API shows it: objects decoded, `number` values as floats."""
    if type(stored) is list:
        return rollouts.decode(stored)
    if flag_type == "object" and isinstance(stored, str):
        return orjson.loads(stored)
    if flag_type == "number" and isinstance(stored, int) and not isinstance(stored, bool):
        return float(stored)
    return stored
