"""Flag values on orgs: effective lookups, explanations, sets and clears.

The order of checks is API.md's: ids and body first (422), then the caller's subtree
(403, whether the org exists or not), then existence (404). Writes check scope inside
their own transaction, so a concurrent move cannot slip an org out from under them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from neo4j import AsyncManagedTransaction

from app.cache.shared_reads import SharedReads
from app.cache.values import ValueCache, served_stale
from app.observability import metrics
from app.domain.access import Principal, Role
from app.domain.catalog import Catalog, FlagDefinition
from app.domain.ids import check_flag_name, check_org_id
from app.domain.resolution import Link, Resolution, Sealed, active, resolve, same_value, sealing_org, unsealed
from app.errors import Problem
from app.services import dry_run as dry_runs
from app.services.dry_run import Affected, DryRun, Rehearsed
from app.store import values as values_store
from app.store.audit import Change
from app.store.database import Database, DatabaseUnavailable, is_outage


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Written:
    value: Any
    previous: Any
    changed: bool
    seq: int | None = None  # the change's audit seq


@dataclass(frozen=True, slots=True)
class Lookup:
    flag: FlagDefinition
    resolution: Resolution
    chain: list[Link]  # the org, then its ancestors, each with its stored value

    def explanation(self) -> list[dict[str, Any]]:
        """Each link's own value; `active`: it is in force where it is set (no seal above
        overrides it; false where nothing is set); `sealed`: the value is sealed there."""
        entries = []
        for link, in_force in zip(self.chain, active(self.chain), strict=True):
            stored, sealed = unsealed(link.stored)
            entries.append({"org": link.org, "value": None if stored is None else self.flag.from_graph(stored),
                            "active": in_force, "sealed": sealed})
        return entries


def org_not_found(org: str) -> Problem:
    return Problem("org-not-found", f"no organization {org!r}")


class ValueService:
    def __init__(self, db: Database, catalog: Callable[[], Catalog], cache: ValueCache,
                 serve_stale_for: float = 3600.0) -> None:
        self.db = db
        self.serve_stale_for = serve_stale_for
        self._catalog = catalog  # a callable: the catalog in force may be swapped at any time
        self.cache = cache
        self.shared_reads = SharedReads()  # concurrent misses of one entry: one query

    async def _flag_chain(self, org: str, flag: str) -> list[Link] | None:
        cached = self.cache.flag_chain(org, flag)
        if cached is not None:
            metrics.cache_hit()
            return [Link(member, stored) for member, stored in cached]
        metrics.cache_miss()
        epochs = self.cache.epochs()
        try:
            chain = await self.shared_reads.read(("flag_chain", org, flag, epochs),
                                                 lambda: self.db.read(values_store.flag_chain, org, flag))
        except Exception as error:
            stale = self._last_known(error, lambda: self.cache.flag_chain(org, flag, stale_ok=True))
            return [Link(member, stored) for member, stored in stale]
        if chain is not None:
            self.cache.fill_flag_chain(epochs, flag, [(link.org, link.stored) for link in chain])
        return chain

    async def _flags_chain(self, org: str) -> list[tuple[str, dict[str, Any]]] | None:
        cached = self.cache.flags_chain(org)
        if cached is not None:
            metrics.cache_hit()
            return cached
        metrics.cache_miss()
        epochs = self.cache.epochs()
        try:
            chain = await self.shared_reads.read(("flags_chain", org, epochs),
                                                 lambda: self.db.read(values_store.flags_chain, org))
        except Exception as error:
            return self._last_known(error, lambda: self.cache.flags_chain(org, stale_ok=True))
        if chain is not None:
            self.cache.fill_flags_chain(epochs, chain)
        return chain

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
        chain = await self._flag_chain(org, flag_name)
        principal.require_scope(None if chain is None else [link.org for link in chain])
        if chain is None:
            raise org_not_found(org)
        flag = catalog.require(flag_name)
        return Lookup(flag, resolve(flag, chain), chain)

    async def lookup_all(self, principal: Principal, org: str, sets: frozenset[str] | None
                         ) -> dict[str, Resolution]:
        """Every catalog flag (of `sets`, when given) for one org."""
        check_org_id(org)
        catalog = self._catalog()
        chain = await self._flags_chain(org)
        principal.require_scope(None if chain is None else [ancestor for ancestor, _ in chain])
        if chain is None:
            raise org_not_found(org)
        return {
            flag.name: resolve(flag, [Link(ancestor, values.get(flag.name)) for ancestor, values in chain])
            for flag in catalog.in_sets(sets)
        }

    async def set(self, principal: Principal, org: str, flag_name: str, value: Any = None, *,
                  path_value: str | None = None, dry_run: DryRun | None = None,
                  sealed: bool | None = None) -> Written | Affected:
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

    async def clear(self, principal: Principal, org: str, flag_name: str, *,
                    dry_run: DryRun | None = None) -> Written | Affected:
        check_org_id(org)
        check_flag_name(flag_name)
        # A clear lifts the org's own seal with its value (admins only: check_seals).
        if dry_run is not None:
            return await self._rehearse(dry_run, principal, org, flag_name, self._catalog().get(flag_name), None,
                                        False)
        return await self._write(principal, org, flag_name, self._catalog().get(flag_name), None, False)

    async def _rehearse(self, dry_run: DryRun, principal: Principal, org: str, flag_name: str,
                        flag: FlagDefinition | None, value: Any, sealed: bool | None = None) -> Affected:
        try:
            await self.db.write(_write, principal, org, flag_name, flag, value, sealed, rehearse=True)
        except Rehearsed as rehearsed:
            return await dry_runs.value_change(self.db, dry_run, rehearsed.facts["flag"], rehearsed.facts["chain"],
                                               rehearsed.facts["stored"])
        return dry_runs.NOTHING  # the write would change nothing

    async def _write(self, principal: Principal, org: str, flag_name: str, flag: FlagDefinition | None,
                     value: Any, sealed: bool | None = None) -> Written:
        written = await self.db.write(_write, principal, org, flag_name, flag, value, sealed)
        if written.changed:
            # Committed: this instance sees it at once; others through the change feed.
            self.cache.value_changed(org, flag_name, written.seq)
        return written


async def _write(tx: AsyncManagedTransaction, principal: Principal, org: str, flag_name: str,
                 flag: FlagDefinition | None, value: Any, sealed: bool | None = None,
                 rehearse: bool = False, schedule: str | None = None) -> Written:
    """Set (value not None) or clear (value None) one org's own value, with its audit event.

    `sealed` as for ValueService.set. `rehearse` (a dry run): raise `Rehearsed` once every
    check has passed, before writing. `schedule`: the id of the schedule applying it (audited).
    """
    chain = await values_store.begin_write(tx, org, flag_name)
    path = None if chain is None else [link.org for link in chain]
    principal.require_scope(path)
    if chain is None:
        raise org_not_found(org)
    if flag is None:
        raise Problem("flag-not-found", f"no flag named {flag_name!r} in the catalog")
    own, was_sealed = unsealed(chain[0].stored)
    seal = check_seals(principal, chain, flag_name, was_sealed, sealed)
    previous = None if own is None else flag.from_graph(own)
    if same_value(previous, value) and was_sealed == seal:
        return Written(value, previous, changed=False)
    stored = None if value is None else flag.to_graph(value)
    if seal:
        stored = Sealed(stored)
    if rehearse:
        raise Rehearsed(flag=flag, chain=chain, stored=stored)
    change = Change(action="flag.clear" if value is None else "flag.set", org=org, flag=flag_name,
                    old=previous, new=value, path=path,
                    sealed=True if seal else (False if was_sealed else None), schedule=schedule)
    seq = await values_store.write(tx, change, stored, principal.subject)
    return Written(value, previous, changed=True, seq=seq)


def check_seals(principal: Principal, chain: list[Link], flag_name: str, was_sealed: bool,
                sealed: bool | None) -> bool:
    """Whether the org's value is sealed after the change; 409 under a seal from above,
    403 for a non-admin touching a seal. `sealed` None keeps the org's own seal as it is;
    a clear (the caller passes sealed=False) lifts it."""
    above = sealing_org(chain)
    if above is not None:
        raise Problem("sealed", f"{flag_name!r} is sealed on {above!r}, above {chain[0].org!r}; "
                                "an admin may unseal it there", sealing_org=above)
    seal = was_sealed if sealed is None else sealed
    if (seal or was_sealed) and (principal.role is None or principal.role < Role.admin):
        raise Problem("forbidden", f"{flag_name!r} is sealed on {chain[0].org!r}: only an admin may seal, "
                                   "unseal or change a sealed value")
    return seal
