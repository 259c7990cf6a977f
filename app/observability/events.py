"""One log line and the counters for every committed change (flag set or clear, org create or move).

Called by the audit store once the transaction that wrote the events has committed
(`app.store.database.after_commit`), never from inside it: the driver may run a unit of
work again after a transient failure, and a transaction may still fail to commit, so a
line written inside it could describe a change twice or one that never happened.
"""

from __future__ import annotations

from collections.abc import Sequence

from loguru import logger

from app.domain.audit_events import Change
from app.observability import metrics


def log_change(actor: str, change: Change, seq: int | None) -> None:
    logger.bind(event="change", actor=actor, seq=seq, **change.fields()).info("{} {}", change.action, change.org)
    metrics.change_committed(actor, change.action, change.flag)


def changes_committed(actor: str, changes: Sequence[Change], first_seq: int | None) -> None:
    """`first_seq` is the seq of `changes[0]`; the others follow it one by one."""
    for offset, change in enumerate(changes):
        log_change(actor, change, None if first_seq is None else first_seq + offset)
