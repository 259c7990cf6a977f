"""An audit event: its fields, named once for the store that appends and reads it, the change
log that reports it, and the API that shows it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.domain.value_codec import optional_json

# An event's own fields, as stored, logged and shown (in the API's order), besides the seq,
# time and actor the store gives it.
EVENT_FIELDS = ("action", "org", "flag", "old", "new", "sealed", "schedule")
# Stored as JSON text: a value may be any JSON value, objects included.
JSON_TEXT_FIELDS = frozenset({"old", "new"})
# Shown only where they apply: on value events that involve a seal, on changes a schedule applied.
OCCASIONAL_FIELDS = frozenset({"sealed", "schedule"})


@dataclass(frozen=True, slots=True)
class Change:
    """One audit event about to be written."""

    action: str  # flag.set, flag.clear, org.create, org.move, schedule.create, schedule.cancel, schedule.fail
    org: str
    path: Sequence[str]  # the org and its ancestors at the time of the change
    old: Any = None
    new: Any = None
    flag: str | None = None
    # Set on value events that involve a seal: True (the value is sealed), False (it was unsealed);
    # on a schedule's own events, the seal its change asks for.
    sealed: bool | None = None
    # Set on changes a schedule applied, and on the schedule's own events: its id.
    schedule: str | None = None

    def fields(self) -> dict[str, Any]:
        """The event's fields, values as they are (the change log's line)."""
        return {name: getattr(self, name) for name in EVENT_FIELDS}

    def params(self) -> dict[str, Any]:
        """The event as the store appends it: JSON text where `JSON_TEXT_FIELDS` say, and the path."""
        stored = self.fields()
        for name in JSON_TEXT_FIELDS:
            stored[name] = optional_json(stored[name])
        return {**stored, "path": list(self.path)}
