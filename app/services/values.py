"""Flag values on orgs: effective lookups, explanations, sets and clears.

The order of checks is docs/api.md's: ids and body first (422), then the caller's subtree
(403, whether the org exists or not), then existence (404). Writes check scope inside
their own transaction, so a concurrent move cannot slip an org out from under them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from loguru import logger

from app.cache.batched_reads import BatchedReads
from app.cache.shared_reads import SharedReads
from app.cache.values import ValueCache, served_stale
from app.domain import rollouts
from app.domain.access import Principal, Role
from app.domain.catalog import Catalog, FlagDefinition
from app.domain.ids import check_flag_name, check_org_id
from app.domain.resolution import (
    Link,
    Resolution,
    Sealed,
    active,
    resolve,
    rollout_reach,
    same_value,
    sealing_org,
    unsealed,
)
from app.errors import Problem, ProblemType
from app.observability import metrics
from app.services import dry_run as dry_runs
from app.services.dry_run import Affected, DryRun, Rehearsed
from app.services.group_commit import GroupCommit
from app.store import values as values_store
from app.store.audit import Change
from app.store.database import Database, DatabaseUnavailable, is_outage
from app.store.values import StoredValue
from neo4j import AsyncManagedTransaction

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Written:
    value: Any
    previous: Any
    changed: bool
    seq: int | None = None  # the change's audit seq
    sealed: bool = False  # the value is sealed after the change


@dataclass(frozen=True, slots=True)
class Lookup:
    flag: FlagDefinition
    resolution: Resolution
    chain: list[Link]  # the org, then its ancestors, each with its stored value

    def explanation(self) -> list[dict[str, Any]]:
        """Each link's own value; `active`: it is in force where it is set (no seal above
        overrides it; false where nothing is set); `sealed`: the value is sealed there."""
        entries = []
        for setter, (link, in_force) in enumerate(zip(self.chain, active(self.chain), strict=True)):
            stored, sealed = unsealed(link.stored)
            entry = {
                "org": link.org,
                "value": None if stored is None else self.flag.from_graph(stored),
                "active": in_force,
                "sealed": sealed,
            }
            if rollouts.is_stored(stored):
                # Where the explained org stands in this rollout: its unit and the unit's bucket
                # (both null when the org is above the unit depth, out of the rollout's reach).
                unit = rollout_reach(self.chain, setter)
                entry["unit"] = unit
                entry["bucket"] = None if unit is None else rollouts.bucket(self.flag.name, unit)
            entries.append(entry)
        return entries


def org_not_found(org: str) -> Problem:
    return Problem(ProblemType.org_not_found, f"no organization {org!r}")


class ValueService:
    def __init__(
        self,
        db: Database,
        catalog: Callable[[], Catalog],
        cache: ValueCache,
        serve_stale_for: float = 3600.0,
        write_batch_max: int = 256,
        *,
        batch_size: int = 64,
        batches_in_flight: int = 4,
    ) -> None:
        self.db = db
        self.serve_stale_for = serve_stale_for
        self._catalog = catalog  # a callable: the catalog in force may be swapped at any time
        self.cache = cache
        self.shared_reads = SharedReads()  # concurrent misses of one entry: one query
        # Concurrent misses of different entries: one statement (app/cache/batched_reads.py).
        self.batched_reads: BatchedReads[values_store.ChainLookup, values_store.Chain] = BatchedReads(
            lambda lookups: db.read_autocommit(values_store.lookup_chains, lookups),
            batch_size=batch_size,
            in_flight=batches_in_flight,
            queue_timeout=db.read_queue_timeout,
        )
        self.writes = GroupCommit(self._write_batch, write_batch_max, db.write_queue_timeout)

    async def _flag_chain(self, org: str, flag: str) -> tuple[list[Link] | None, tuple[int, int] | None]:
        """The chain, and the cache epochs to fill it under when it was read from the database
        (None when it came from the cache). The caller fills only once the lookup passed its
        scope and flag checks."""
        cached = self.cache.flag_chain(org, flag)
        if cached is not None:
            metrics.cache_hit()
            return [Link(member, stored) for member, stored in cached], None
        metrics.cache_miss()
        epochs = self.cache.epochs()
        try:
            chain = await self.shared_reads.read(
                ("flag_chain", org, flag, epochs), lambda: self.batched_reads.submit((org, flag))
            )
        except Exception as error:
            stale = self._last_known(error, lambda: self.cache.flag_chain(org, flag, stale_ok=True))
            return [Link(member, stored) for member, stored in stale], None
        if chain is None:
            return None, epochs
        # Each member's pairs hold at most the one for `flag` (the statement filters by it), and
        # its sealed names hold that name if it is sealed there: `Sealed` carries the seal into the cache.
        return [
            Link(member, (Sealed(pairs[0][1]) if sealed else pairs[0][1]) if pairs else None)
            for member, pairs, sealed in chain
        ], epochs

    async def _flags_chain(self, org: str) -> tuple[list[tuple[str, dict[str, Any]]] | None, tuple[int, int] | None]:
        cached = self.cache.flags_chain(org)
        if cached is not None:
            metrics.cache_hit()
            return cached, None
        metrics.cache_miss()
        epochs = self.cache.epochs()
        try:
            chain = await self.shared_reads.read(
                ("flags_chain", org, epochs), lambda: self.batched_reads.submit((org, None))
            )
        except Exception as error:
            return self._last_known(error, lambda: self.cache.flags_chain(org, stale_ok=True)), None
        if chain is None:
            return None, epochs
        return [(member, _with_seals(pairs, sealed)) for member, pairs, sealed in chain], epochs

    def _last_known(self, error: Exception, read_cache: Callable[[], T | None]) -> T:
        """With the database away, the cached value if there is one and it is not too old; else re-raise."""
        if not (is_outage(error) or isinstance(error, DatabaseUnavailable)):
            raise error
        age = self.cache.lag
        known = read_cache() if age <= self.serve_stale_for else None
        if known is None:
            raise error
        served_stale.set(age)
        return known

    async def lookup(self, principal: Principal, org: str, flag_name: str) -> Lookup:
        """The effective value of a flag for an org, and the chain it was chosen from."""
        check_org_id(org)
        check_flag_name(flag_name)
        catalog = self._catalog()
        chain, read_under = await self._flag_chain(org, flag_name)
        principal.require_scope(None if chain is None else [link.org for link in chain])
        if chain is None:
            raise org_not_found(org)
        flag = catalog.require(flag_name)
        if read_under is not None:  # read from the database, and both checks passed: worth keeping
            self.cache.fill_flag_chain(read_under, flag_name, [(link.org, link.stored) for link in chain])
        return Lookup(flag, resolve(flag, chain), chain)

    async def lookup_all(self, principal: Principal, org: str, sets: frozenset[str] | None) -> dict[str, Resolution]:
        """Every catalog flag (of `sets`, when given) for one org."""
        check_org_id(org)
        _, resolutions = await self.resolve_all(org, sets, principal)
        return resolutions

    async def resolve_all(
        self,
        org: str,
        sets: frozenset[str] | None,
        principal: Principal | None = None,
        only: frozenset[str] | None = None,
    ) -> tuple[list[str], dict[str, Resolution]]:
        """The org's chain (nearest first) and every catalog flag (of `sets`; of those, `only`) for it.

        `principal` None: asked by the service itself, for an answer a caller was given already
        (an event stream checking whether that answer changed; app/services/event_streams.py).
        """
        catalog = self._catalog()
        chain, read_under = await self._flags_chain(org)
        ids = None if chain is None else [ancestor for ancestor, _ in chain]
        if principal is not None:
            principal.require_scope(ids)
        if chain is None:
            raise org_not_found(org)
        if read_under is not None:
            self.cache.fill_flags_chain(read_under, chain)
        return ids, {
            flag.name: resolve(flag, [Link(ancestor, values.get(flag.name)) for ancestor, values in chain])
            for flag in catalog.in_sets(sets)
            if only is None or flag.name in only
        }

    async def set(
        self,
        principal: Principal,
        org: str,
        flag_name: str,
        value: Any = None,
        *,
        path_value: str | None = None,
        dry_run: DryRun | None = None,
        sealed: bool | None = None,
    ) -> Written | Affected:
        """Set the org's own value; `path_value` is the seed alias's untyped path segment.

        `sealed`: True seals the value, False unseals it, None keeps the org's seal as it is.
        With `dry_run`: every check, nothing written, and what the change would reach.
        """
        check_org_id(org)
        check_flag_name(flag_name)
        flag = self._catalog().get(flag_name)
        if flag is not None:
            value = flag.parse_path_value(path_value) if path_value is not None else flag.check(value)
        if dry_run is not None:
            return await self._rehearse(dry_run, principal, org, flag_name, flag, value, sealed)
        return await self._write(principal, org, flag_name, flag, value, sealed)

    async def clear(
        self, principal: Principal, org: str, flag_name: str, *, dry_run: DryRun | None = None
    ) -> Written | Affected:
        check_org_id(org)
        check_flag_name(flag_name)
        # A clear lifts the org's own seal with its value (admins only: check_seals).
        if dry_run is not None:
            return await self._rehearse(dry_run, principal, org, flag_name, self._catalog().get(flag_name), None, False)
        return await self._write(principal, org, flag_name, self._catalog().get(flag_name), None, False)

    async def _rehearse(
        self,
        dry_run: DryRun,
        principal: Principal,
        org: str,
        flag_name: str,
        flag: FlagDefinition | None,
        value: Any,
        sealed: bool | None = None,
    ) -> Affected:
        # In a transaction of its own, not the group commit: it ends by raising, so it writes
        # nothing, and must not take other callers' writes down with it.
        try:
            await self.db.write(_write, principal, org, flag_name, flag, value, sealed, rehearse=True)
        except Rehearsed as rehearsed:
            return await dry_runs.value_change(
                self.db, dry_run, rehearsed.facts["flag"], rehearsed.facts["chain"], rehearsed.facts["stored"]
            )
        return dry_runs.NOTHING  # the write would change nothing

    async def _write(
        self,
        principal: Principal,
        org: str,
        flag_name: str,
        flag: FlagDefinition | None,
        value: Any,
        sealed: bool | None = None,
    ) -> Written:
        # Committed with whatever other writes of this process are waiting (app/services/group_commit.py).
        return await self.writes.submit(_WriteRequest(principal, org, flag_name, flag, value, sealed))

    async def _write_batch(self, requests: list[_WriteRequest]) -> list[Written | Exception]:
        """One transaction for all `requests`; each one's outcome (Written, or its Problem)."""
        try:
            outcomes = await self.db.write(_write_batch, requests)
        except Exception as error:
            if len(requests) == 1 or is_outage(error) or isinstance(error, DatabaseUnavailable):
                raise
            # Not the database being away but something in the batch it refused: each write on
            # its own, so a bad one fails alone and is not acknowledged, and the others are.
            logger.warning(
                "a batch of {} writes failed ({}); retrying them one by one", len(requests), type(error).__name__
            )
            return [await self._write_alone(request) for request in requests]
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, Written) and outcome.changed:
                self._committed(request, outcome)
        return outcomes

    async def _write_alone(self, request: _WriteRequest) -> Written | Exception:
        try:
            return (await self._write_batch([request]))[0]
        except Exception as error:
            return error

    def _committed(self, request: _WriteRequest, written: Written) -> None:
        self.committed(request.org, request.flag_name, stored_after(request.flag, written), written.seq)

    def committed(self, org: str, flag_name: str, stored: Any, seq: int) -> None:
        """The one place told of each committed change of this instance (immediate writes, bulk
        writes, applied schedules), in seq order, right after its commit and before any caller
        is answered: this instance sees it at once (write-through: the new value is its cache
        entry, and its last-known value should the database go away), others through the change
        feed. `stored`: the org's own value as the graph now holds it (None: cleared; `Sealed`
        when sealed). Logging and counting each change is the audit store's, after the commit."""
        self.cache.value_written(org, flag_name, stored, seq)


def stored_after(flag: FlagDefinition | None, written: Written) -> Any:
    """What a committed `written` left stored on the org, as `ValueService.committed` takes it."""
    stored = None if written.value is None or flag is None else flag.to_graph(written.value)
    return Sealed(stored) if written.sealed else stored  # the seal travels with the value into the cache


@dataclass(frozen=True, slots=True)
class _WriteRequest:
    """One set (value not None) or clear (value None) of an org's own value, waiting for its batch."""

    principal: Principal
    org: str
    flag_name: str
    flag: FlagDefinition | None
    value: Any
    sealed: bool | None = None  # as ValueService.set's
    rehearse: bool = False  # a dry run: raise `Rehearsed` once every check has passed, before writing
    schedule: str | None = None  # the id of the schedule applying it (audited)


async def _write(
    tx: AsyncManagedTransaction,
    principal: Principal,
    org: str,
    flag_name: str,
    flag: FlagDefinition | None,
    value: Any,
    sealed: bool | None = None,
    rehearse: bool = False,
    schedule: str | None = None,
) -> Written:
    """One set (value not None) or clear (value None) in a transaction of the caller's (a dry
    run, a schedule taken or applied): the group commit's unit of work for a batch of one, so
    every check is the one an immediate write makes. Raises its Problem, or `Rehearsed`."""
    (outcome,) = await _write_batch(
        tx, [_WriteRequest(principal, org, flag_name, flag, value, sealed, rehearse, schedule)]
    )
    if isinstance(outcome, Problem):
        raise outcome
    return outcome


async def _write_batch(tx: AsyncManagedTransaction, requests: list[_WriteRequest]) -> list[Written | Problem]:
    """Each request in order, with its audit event, under one take of the sequence lock.

    A request refused (scope, no such org or flag) gets its Problem and writes nothing; the
    others go on. Writes to the same value in one batch follow each other: each one's
    `previous` is the one before it, and only the last reaches the graph.
    """
    chains = await values_store.begin_writes(tx, [(request.org, request.flag_name) for request in requests])
    own: dict[tuple[str, str], StoredValue] = {}  # (org, flag) -> what this batch leaves there so far
    changes: list[tuple[str, Change]] = []
    decided: list[Written | Problem] = []
    for request, chain in zip(requests, chains, strict=True):
        try:
            decided.append(_decide(request, chain, own, changes))
        except Problem as problem:
            decided.append(problem)
        # `Rehearsed` (a dry run, always a batch of one) goes up: nothing is written.
    first = await values_store.write(tx, list(own.values()), changes)
    outcomes: list[Written | Problem] = []
    seq = first
    for outcome in decided:
        if isinstance(outcome, Written) and outcome.changed:
            outcome = Written(outcome.value, outcome.previous, changed=True, seq=seq, sealed=outcome.sealed)
            seq += 1
        outcomes.append(outcome)
    return outcomes


def _decide(
    request: _WriteRequest,
    chain: list[Link] | None,
    own: dict[tuple[str, str], StoredValue],
    changes: list[tuple[str, Change]],
) -> Written:
    """Check one request against the graph as the batch has left it so far; record its change."""
    path = None if chain is None else [link.org for link in chain]
    request.principal.require_scope(path)
    if chain is None:
        raise org_not_found(request.org)
    flag, value = request.flag, request.value
    if flag is None:
        raise Problem(ProblemType.flag_not_found, f"no flag named {request.flag_name!r} in the catalog")
    if own:
        # Seals and values this batch set earlier on the chain count as if committed.
        chain = [
            Link(link.org, own[(link.org, request.flag_name)].stored) if (link.org, request.flag_name) in own else link
            for link in chain
        ]
    stored, was_sealed = unsealed(chain[0].stored)
    seal = check_seals(request.principal, chain, request.flag_name, was_sealed, request.sealed)
    previous = None if stored is None else flag.from_graph(stored)
    if same_value(previous, value) and was_sealed == seal:
        return Written(value, previous, changed=False, sealed=seal)
    new = None if value is None else flag.to_graph(value)
    if seal:
        if rollouts.is_stored(new):
            # Which orgs a sealed rollout would hold fast, and to what, is not defined: refuse it.
            raise Problem(
                ProblemType.invalid_value,
                f"{request.flag_name!r} would be a sealed rollout on {request.org!r}; "
                "a rollout cannot be sealed (unseal the org's value first)",
            )
        new = Sealed(new)
    if request.rehearse:
        raise Rehearsed(flag=flag, chain=chain, stored=new)
    changes.append(
        (
            request.principal.subject,
            Change(
                action="flag.clear" if value is None else "flag.set",
                org=request.org,
                flag=request.flag_name,
                old=previous,
                new=value,
                path=path,
                sealed=True if seal else (False if was_sealed else None),
                schedule=request.schedule,
            ),
        )
    )
    own[(request.org, request.flag_name)] = StoredValue(request.org, request.flag_name, new, request.principal.subject)
    return Written(value, previous, changed=True, sealed=seal)


def check_seals(principal: Principal, chain: list[Link], flag_name: str, was_sealed: bool, sealed: bool | None) -> bool:
    """Whether the org's value is sealed after the change; 409 under a seal from above,
    403 for a non-admin touching a seal. `sealed` None keeps the org's own seal as it is;
    a clear (the caller passes sealed=False) lifts it."""
    above = sealing_org(chain)
    if above is not None:
        raise Problem(
            ProblemType.sealed,
            f"{flag_name!r} is sealed on {above!r}, above {chain[0].org!r}; an admin may unseal it there",
            sealing_org=above,
        )
    seal = was_sealed if sealed is None else sealed
    if (seal or was_sealed) and (principal.role is None or principal.role < Role.admin):
        raise Problem(
            ProblemType.forbidden,
            f"{flag_name!r} is sealed on {chain[0].org!r}: only an admin may seal, unseal or change a sealed value",
        )
    return seal


def _with_seals(pairs: list[list[Any]], sealed: list[str]) -> dict[str, Any]:
    """A member's [flag, stored value] pairs as a map, its sealed ones (by name) wrapped in `Sealed`."""
    values = dict(pairs)
    for name in sealed:
        values[name] = Sealed(values[name])
    return values
