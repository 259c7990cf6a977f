"""Units of work of a region's copy: apply upstream events, reconcile with a snapshot.

Every change a region makes to its graph is written, in the same transaction, to its
own audit log (with its own seqs, under the sequence lock like any writer), so the cache
follower of every worker process of the region sees it exactly as it sees a local write.
The upstream position (`Replica.seq`) moves in that same transaction: a change and the
record that it was applied commit together, so a restart neither skips nor repeats one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.domain.value_codec import from_graph, optional_json, to_graph
from app.store import audit as audit_store
from app.store import orgs as orgs_store
from app.store.database import execute, fetch
from neo4j import AsyncManagedTransaction

RELOAD_ACTOR = "graphflags-region-reload"


class Inconsistent(Exception):
    """An upstream event does not fit the copy (e.g. a value on an org it lacks): reload."""


@dataclass(frozen=True, slots=True)
class State:
    replica: dict[str, Any] | None  # the Replica node's properties; None: never bootstrapped
    has_orgs: bool

    @property
    def seq(self) -> int | None:
        """The upstream seq everything up to which is applied; None: no complete copy yet."""
        return None if self.replica is None else self.replica.get("seq")


async def state(tx: AsyncManagedTransaction) -> State:
    record = (await fetch(tx, "region_state"))[0]
    return State(record["replica"], record["has_orgs"])


async def update(tx: AsyncManagedTransaction, **fields: Any) -> None:
    await execute(tx, "region_update", fields=fields)


@dataclass(slots=True)
class _Log:
    """Audit events about to be appended, and the orgs whose paths they need."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        action: str,
        org: str,
        *,
        flag: str | None = None,
        old: Any = None,
        new: Any = None,
        at: str | None = None,
        actor: str = RELOAD_ACTOR,
        upstream_seq: int | None = None,
        sealed: bool | None = None,
        schedule: str | None = None,
    ) -> None:
        self.events.append(
            {
                "action": action,
                "org": org,
                "flag": flag,
                "old": optional_json(old),
                "new": optional_json(new),
                "at": at,
                "actor": actor,
                "upstream_seq": upstream_seq,
                "sealed": sealed,
                "schedule": schedule,
            }
        )

    async def write(self, tx: AsyncManagedTransaction, deleted: Sequence[str] = ()) -> None:
        if not self.events:
            return
        gone = set(deleted)
        chains = await orgs_store.chains(tx, list({e["org"] for e in self.events if e["org"] not in gone}))
        for event in self.events:
            event["path"] = chains.get(event["org"], [event["org"]])
        await audit_store.append_copied(tx, self.events)


# --- following the change feed --------------------------------------------------------


async def apply_events(tx: AsyncManagedTransaction, events: Sequence[dict[str, Any]], last: int) -> int:
    """Apply the upstream's events above the recorded position, in seq order; move it to `last`.

    Idempotent: events at or below the position are skipped, so a page or stream that
    repeats events (a reconnection, a retried transaction) changes nothing twice.
    Answers how many events were applied.
    """
    await audit_store.claim_sequence(tx)  # also serialises this with any other writer
    position = (await state(tx)).seq
    if position is None:
        raise Inconsistent("no complete copy to apply events to")
    log = _Log()
    applied = 0
    for event in sorted(events, key=lambda e: e["seq"]):
        if event["seq"] <= position:
            continue
        await _apply(tx, event)
        log.add(
            event["action"],
            event["org"],
            flag=event["flag"],
            old=event["old"],
            new=event["new"],
            at=event["at"],
            actor=event["actor"],
            upstream_seq=event["seq"],
            sealed=event.get("sealed"),
            schedule=event.get("schedule"),
        )
        position = event["seq"]
        applied += 1
    await log.write(tx)
    await update(tx, seq=max(position, last))
    return applied


async def _apply(tx: AsyncManagedTransaction, event: dict[str, Any]) -> None:
    action, org = event["action"], event["org"]
    if action in ("org.create", "org.move"):
        parent = (event["new"] or {}).get("parent")
        await execute(tx, "region_parents", rows=[{"id": org, "parent": parent}])
    elif action == "flag.set":
        rows = await fetch(
            tx,
            "region_values_set",
            values=[
                {
                    "org": org,
                    "flag": event["flag"],
                    "value": to_graph(event["new"]),
                    "at": event["at"],
                    "actor": event["actor"],
                    "sealed": event.get("sealed") or None,
                }
            ],
        )
        if not rows or rows[0]["applied"] != 1:
            raise Inconsistent(f"seq {event['seq']} sets a value on {org!r}, which this copy lacks")
    elif action == "flag.clear":
        await execute(tx, "region_values_clear", values=[{"org": org, "flag": event["flag"]}])
    elif action.startswith("schedule."):
        # A schedule taken, cancelled or failed upstream changes no org or value: schedules
        # live and are applied upstream only; the change one makes arrives as its flag.set/clear.
        pass
    else:
        # An action this version does not know would leave the copy silently different.
        raise Inconsistent(f"seq {event['seq']} has an unknown action {action!r}")


# --- reconciling with a snapshot --------------------------------------------------------


async def reconcile_page(
    tx: AsyncManagedTransaction, rows: Sequence[dict[str, Any]], after: str, upto: str | None
) -> int:
    """Make the local orgs with id in (after, upto] exactly the snapshot's `rows`.

    `rows` are a snapshot page in id order (`upto` its last id; None for the tail after
    the last page). Only differences are written, each with an audit event so every
    worker's cache drops what it held. Answers how many changes were made.
    """
    await audit_store.claim_sequence(tx)
    local = {
        org: (parent, {flag: (value, kind, sealed) for flag, value, kind, sealed in values})
        for org, parent, values in (await fetch(tx, "region_local_orgs", after=after, upto=upto))[0]["rows"]
    }
    log = _Log()
    parents: list[dict[str, Any]] = []
    sets: list[dict[str, Any]] = []
    clears: list[dict[str, Any]] = []
    for row in rows:
        org, parent = row["id"], row["parent"]
        mine = local.pop(org, None)
        if mine is None:
            parents.append({"id": org, "parent": parent})
            log.add("org.create", org, new={"parent": parent})
            own: dict[str, tuple[Any, Any, Any]] = {}
        else:
            if mine[0] != parent:
                parents.append({"id": org, "parent": parent})
                log.add("org.move", org, old={"parent": mine[0]}, new={"parent": parent})
            own = mine[1]
        for flag, value, kind, updated_at, updated_by, *seal in row["values"]:
            sealed = bool(seal and seal[0]) or None  # snapshots before seals had five fields
            old = own.pop(flag, None)
            if old is not None and _same(old[0], value) and bool(old[2]) == bool(sealed):
                continue
            sets.append(
                {"org": org, "flag": flag, "value": value, "at": updated_at, "actor": updated_by, "sealed": sealed}
            )
            log.add(
                "flag.set",
                org,
                flag=flag,
                old=None if old is None else from_graph(old[0], old[1]),
                new=from_graph(value, kind),
                sealed=True if sealed else (False if old and old[2] else None),
            )
        for flag, (value, kind, _sealed) in own.items():
            clears.append({"org": org, "flag": flag})
            log.add("flag.clear", org, flag=flag, old=from_graph(value, kind))
    # What is left of `local` is gone upstream: its values cleared, detached, removed.
    for org, (parent, own) in local.items():
        for flag, (value, kind, _sealed) in own.items():
            log.add("flag.clear", org, flag=flag, old=from_graph(value, kind))
        log.add("org.move", org, old={"parent": parent}, new={"parent": None})
    if parents:
        await execute(tx, "region_parents", rows=parents)
    if sets:
        await execute(tx, "region_values_set", values=sets)
    if clears:
        await execute(tx, "region_values_clear", values=clears)
    await log.write(tx, deleted=list(local))
    if local:
        await execute(tx, "region_orgs_delete", ids=list(local))
    return len(log.events)


def _same(a: Any, b: Any) -> bool:
    # True == 1 == 1.0 in Python; the graph keeps them apart, so must this comparison.
    return type(a) is type(b) and a == b
