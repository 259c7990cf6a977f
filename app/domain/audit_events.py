"""An audit event about to be written: what the store appends and the change log reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.domain.value_codec import optional_json


@dataclass(frozen=True, slots=True)
class Change:
    """One audit event about to be written."""

    action: str  # flag.set, flag.clear, org.create, org.move
    org: str
    path: Sequence[str]  # the org and its ancestors at the time of the change
    old: Any = None
    new: Any = None
    flag: str | None = None
    # Set on value events that involve a seal: True (the value is sealed), False (it was unsealed).
    sealed: bool | None = None
    # Set on changes a schedule applied: its id.
    schedule: str | None = None

    def params(self) -> dict[str, Any]:
        # old/new may be any JSON value (objects included): stored as JSON text.
        return {
            "action": self.action,
            "org": self.org,
            "flag": self.flag,
            "old": optional_json(self.old),
            "new": optional_json(self.new),
            "path": list(self.path),
            "sealed": self.sealed,
            "schedule": self.schedule,
        }
