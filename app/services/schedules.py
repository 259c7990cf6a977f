"""Scheduled changes (docs/api.md, "Safe changes"): a value set or cleared at a given time.

Taking a schedule runs the checks of the immediate change (the value write rehearsed as
a dry run is: every check, nothing written), then stores a `(:Schedule)` node in Neo4j,
so it survives restarts and any instance can apply it.

Applying: every instance runs a `Scheduler`, which every `interval` seconds opens one
write transaction that takes the writers' lock (the audit sequence), reads the pending
schedules whose time has come, applies each through the very unit of work of an
immediate write (under the scheduling token's sub, role and subtrees, so everything is
checked again: a change that has become invalid is recorded as failed, not applied) and
marks it applied or failed, all in that transaction. Two instances polling at once are
serialised by the lock and the second finds nothing pending; an instance that dies
mid-way rolls back and the other one applies the schedule. Each applied change is
audited with the scheduler's sub as actor and `"schedule": id`, so it is in /v1/changes.

Audit: every step of a schedule's life is a change, so each writes its event in the
transaction that makes it, with `"schedule": id`: `schedule.create` (new: the planned
change `{"value", "at"}`), `schedule.cancel` (old: the planned change; actor: who
cancelled), `schedule.fail` (old: the planned change, new: `{"reason"}`; actor: the
scheduling token's sub, as for an applied change); the applied change itself is the
`flag.set` or `flag.clear` it makes.

Retention: the same loop deletes finished schedules (applied, failed, cancelled) once they
finished more than `retention` ago, every `prune_interval` seconds, in small batches as
the audit log's pruner does (app/services/changes.py). What an applied schedule changed
stays in the audit log, under that log's own retention.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
from loguru import logger

from app.domain import rollouts
from app.domain.access import Principal, Role
from app.domain.audit_events import Change
from app.domain.catalog import Catalog
from app.domain.ids import check_flag_name, check_org_id
from app.errors import Problem, ProblemType
from app.observability import schedules as schedule_metrics
from app.periodic import Periodic
from app.services import values as values_service
from app.services.dry_run import Rehearsed
from app.store import audit as audit_store
from app.store import orgs as orgs_store
from app.store import schedules as store
from app.store.database import Database, after_commit
from neo4j import AsyncManagedTransaction

DUE_PER_ROUND = 100
# Finished schedules deleted per transaction: each holds its locks only briefly.
PRUNE_BATCH = 1000
LIST_LIMIT = 1000


def parse_at(text: Any) -> datetime:
    """An RFC 3339 time with its offset, in the future; else `422 invalid-value`."""
    if not isinstance(text, str):
        raise Problem(ProblemType.invalid_value, "at must be an RFC 3339 time, e.g. 2030-01-01T09:00:00Z")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(
            ProblemType.invalid_value, f"at {text!r} is not an RFC 3339 time, e.g. 2030-01-01T09:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise Problem(ProblemType.invalid_value, f"at {text!r} needs its UTC offset (e.g. Z or +02:00)")
    if moment <= datetime.now(UTC):
        raise Problem(ProblemType.invalid_value, f"at {text!r} is not in the future")
    return moment


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Schedules:
    def __init__(self, db: Database, catalog: Callable[[], Catalog]) -> None:
        self.db = db
        self._catalog = catalog

    async def schedule(
        self,
        principal: Principal,
        org: str,
        flag_name: str,
        value: Any,
        at: Any,
        sealed: bool | None = None,
        clear: bool = False,
    ) -> dict[str, Any]:
        """Check the change as an immediate one would be, then store it for `at`; `clear`: a clear."""
        moment = parse_at(at)
        check_org_id(org)
        check_flag_name(flag_name)
        flag = self._catalog().get(flag_name)
        if flag is not None and not clear:
            value = flag.check(value)  # as PUT: null is not a value
        try:
            await self.db.write(
                values_service._write,
                principal,
                org,
                flag_name,
                flag,
                value,
                False if value is None else sealed,
                rehearse=True,
            )
        except Rehearsed:
            pass  # every check passed; it would change something now
        # Not rehearsed: it would change nothing now, which may not be true by then.
        schedule = {
            "id": uuid.uuid4().hex,
            "org": org,
            "flag": flag_name,
            "value": None if value is None else orjson.dumps(value).decode(),  # stored as its public JSON
            "clear": value is None,
            "sealed": sealed,
            "at": moment,
        }
        await self.db.write(_create, principal, schedule)
        return {"schedule": schedule["id"], "org": org, "flag": flag_name, "value": value, "at": _rfc3339(moment)}

    async def pending(
        self, principal: Principal, org: str | None, subtree: bool, flag: str | None
    ) -> list[dict[str, Any]]:
        if org is not None:
            check_org_id(org)
        if flag is not None:
            check_flag_name(flag)
        scopes = None if principal.unscoped else sorted(principal.orgs)
        found = await self.db.read(store.pending, org, subtree, flag, scopes, LIST_LIMIT)
        return [_public(schedule) for schedule in found]

    async def cancel(self, principal: Principal, schedule: str) -> None:
        await self.db.write(_cancel, principal, schedule)


def _public(schedule: dict[str, Any]) -> dict[str, Any]:
    value = None if schedule["value"] is None else orjson.loads(schedule["value"])
    public = {
        "schedule": schedule["id"],
        "org": schedule["org"],
        "flag": schedule["flag"],
        "value": value,
        "at": schedule["at"],
        "actor": schedule["actor"],
    }
    if schedule.get("sealed") is not None:
        public["sealed"] = schedule["sealed"]
    return public


def _planned(schedule: dict[str, Any]) -> dict[str, Any]:
    """The change a schedule makes, as its audit events show it: the value (null: a clear) and when."""
    value = None if schedule["value"] is None else orjson.loads(schedule["value"])
    return {"value": value, "at": _rfc3339(schedule["at"])}


def _audit_event(action: str, schedule: dict[str, Any], path: list[str] | None, **old_new: Any) -> Change:
    """An event of a schedule's life (see the module's docstring), in its org's path at the time
    (the org alone once it is gone), so a scoped admin sees it where it sees the org's changes."""
    return Change(
        action=action,
        org=schedule["org"],
        flag=schedule["flag"],
        path=path or [schedule["org"]],
        sealed=schedule["sealed"],
        schedule=schedule["id"],
        **old_new,
    )


async def _create(tx: AsyncManagedTransaction, principal: Principal, schedule: dict[str, Any]) -> None:
    await audit_store.claim_sequence(tx)  # the audit event's seq
    path = await orgs_store.chain(tx, schedule["org"])
    await store.create(
        tx,
        **{**schedule, "at": _rfc3339(schedule["at"])},
        actor=principal.subject,
        role=principal.role.name if principal.role else None,
        orgs=sorted(principal.orgs),
    )
    await audit_store.append(
        tx, principal.subject, [_audit_event("schedule.create", schedule, path, new=_planned(schedule))]
    )


async def _cancel(tx: AsyncManagedTransaction, principal: Principal, schedule: str) -> None:
    await audit_store.claim_sequence(tx)  # not while a scheduler is applying it
    found = await store.get(tx, schedule)
    if found is None or found["status"] != "pending":
        raise Problem(ProblemType.not_found, f"no pending schedule {schedule!r}")
    path = await orgs_store.chain(tx, found["org"])
    principal.require_scope(path)
    await store.finish(tx, schedule, "cancelled", principal.subject)
    await audit_store.append(tx, principal.subject, [_audit_event("schedule.cancel", found, path, old=_planned(found))])


class Scheduler:
    """Applies due schedules; one per instance (see the module's docstring)."""

    def __init__(
        self,
        db: Database,
        catalog: Callable[[], Catalog],
        values: values_service.ValueService,
        interval: float,
        retention_days: int = 30,
        prune_interval: float = 3600.0,
    ) -> None:
        self.db = db
        self._catalog = catalog
        self.values = values  # told of each applied change, as immediate writes are
        self.interval = interval
        self.retention = timedelta(days=retention_days)
        self.prune_interval = prune_interval
        self._counted_at = float("-inf")
        self._pruned_at = float("-inf")

    async def run(self) -> None:
        # While the database is away the due schedules wait in it.
        await Periodic(self._tick, self.interval, what="apply due schedules").run()

    async def _tick(self) -> None:
        await self.round()
        if time.monotonic() - self._pruned_at >= self.prune_interval:
            self._pruned_at = time.monotonic()
            if deleted := await self.prune():
                logger.bind(deleted=deleted).info(
                    "pruned {} finished schedules older than {} days", deleted, self.retention.days
                )

    async def round(self) -> int:
        """Apply what is due; answers how many schedules were settled (applied or failed)."""
        # A read first: most rounds find nothing due, and need not take the writers' lock.
        due = await self.db.read_unqueued(store.any_due)
        settled = await self.db.write(self._apply_due) if due else []
        for org, flag, stored, seq in settled:
            if seq is not None:
                self.values.committed(org, flag, stored, seq)
        if time.monotonic() - self._counted_at > 5 or settled:
            schedule_metrics.pending(await self.db.read(store.pending_count))
            self._counted_at = time.monotonic()
        return len(settled)

    async def prune(self, now: datetime | None = None, batch: int = PRUNE_BATCH) -> int:
        """Delete every schedule that finished more than the retention before `now`; how many went."""
        cutoff = (now or datetime.now(UTC)) - self.retention
        total = 0
        while deleted := await self.db.write(store.prune_batch, cutoff, batch):
            total += deleted
            if deleted < batch:  # a short batch: none are left
                break
        return total

    async def _apply_due(self, tx: AsyncManagedTransaction) -> list[tuple[str, str, Any, int | None]]:
        """Each due schedule settled: (org, flag, what is stored there now, seq; None if it failed)."""
        await audit_store.claim_sequence(tx)
        settled = []
        catalog = self._catalog()
        for schedule in await store.due(tx, DUE_PER_ROUND):
            role = Role[schedule["role"]] if schedule["role"] in Role.__members__ else None
            principal = Principal(schedule["actor"], role, frozenset(schedule["orgs"] or []))
            flag = catalog.get(schedule["flag"])
            try:
                # Stored as its public JSON: a rollout comes back in its public shape.
                value = None if schedule["clear"] else rollouts.from_public(orjson.loads(schedule["value"]))
                if flag is not None and value is not None:
                    value = flag.check(value)
                written = await values_service._write(
                    tx,
                    principal,
                    schedule["org"],
                    schedule["flag"],
                    flag,
                    value,
                    False if value is None else schedule["sealed"],
                    schedule=schedule["id"],
                )
            except Problem as problem:
                # Nothing was written by the failed check: record why, and go on with the others.
                reason = f"{problem.type}: {problem.detail}"
                await store.finish(tx, schedule["id"], "failed", principal.subject, reason=reason)
                path = await orgs_store.chain(tx, schedule["org"])
                failure = _audit_event("schedule.fail", schedule, path, old=_planned(schedule), new={"reason": reason})
                await audit_store.append(tx, principal.subject, [failure])
                after_commit(partial(_failed, schedule["id"], problem))
                settled.append((schedule["org"], schedule["flag"], None, None))
                continue
            await store.finish(tx, schedule["id"], "applied", principal.subject, seq=written.seq)
            # seq None: it changed nothing (the value was already what it sets).
            settled.append((schedule["org"], schedule["flag"], values_service.stored_after(flag, written), written.seq))
        return settled


def _failed(schedule: str, problem: Problem) -> None:
    schedule_metrics.failed()
    logger.warning("schedule {} failed when applied: {} ({})", schedule, problem.type, problem.detail)
