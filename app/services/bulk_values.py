"""Bulk value writes (`PUT /v1/flags/{flag}/values`): one flag on many orgs, all or nothing.

The whole request is judged first, as bulk orgs are (docs/api.md): rows that cannot be read
or whose value does not fit the flag, then the caller's scope (a single row outside it
refuses the whole request with 403), then each row against the graph (org-not-found,
sealed). Any bad row: `422 invalid-rows` and nothing is written.

All or nothing is one write transaction: it takes the writers' lock, reads the rows'
chains in batches, judges them, writes the changed values in batched UNWIND statements
and appends one audit event per changed org. Judging under the lock means what was
checked is what gets written (no seal or move can slip in between). The transaction
gets `bulk_timeout` seconds rather than a request's query timeout: 100,000 rows take
seconds, not milliseconds.

Memory stays proportional to the rows: each batch's chains are judged and dropped; what
is kept per changed org is its audit event (with the org's path, which scoped audit
readers need).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.domain.access import Principal, Role
from app.domain.catalog import Catalog, FlagDefinition
from app.domain.hierarchy import RowError, invalid_rows
from app.domain.ids import check_flag_name
from app.domain.resolution import Link, Sealed, resolve, same_value, sealing_org, unsealed
from app.domain.value_rows import ValueRow
from app.errors import Problem, ProblemType
from app.services import dry_run as dry_runs
from app.services.dry_run import Affected, DryRun, Rehearsed
from app.services.values import ValueService
from app.store import audit as audit_store
from app.store import dry_run as dry_run_store
from app.store import values as values_store
from app.store.audit import Change
from app.store.database import Database
from neo4j import AsyncManagedTransaction


@dataclass(frozen=True, slots=True)
class BulkWritten:
    changed: int
    unchanged: int


class BulkValues:
    def __init__(
        self, db: Database, catalog: Callable[[], Catalog], values: ValueService, batch_size: int, timeout: float
    ) -> None:
        self.db = db
        self._catalog = catalog
        self.values = values  # told of each committed change, as for an immediate write
        self.batch_size = batch_size
        self.timeout = timeout

    async def write(
        self,
        principal: Principal,
        flag_name: str,
        rows: Sequence[ValueRow],
        unreadable: Sequence[RowError] = (),
        dry_run: DryRun | None = None,
    ) -> BulkWritten | Affected:
        """`unreadable`: the rows the parser could not read, reported with the values that do not fit."""
        check_flag_name(flag_name)
        flag = self._catalog().require(flag_name)
        parsed, errors = _values(flag, rows)
        if errors or unreadable:
            raise invalid_rows(sorted([*unreadable, *errors], key=lambda error: error.row))
        try:
            written, first, left = await self.db.write_within(
                self.timeout, self._judge_and_write, principal, flag, parsed, dry_run is not None
            )
        except Rehearsed as rehearsed:
            return await _count(
                self.db,
                dry_run,
                flag,
                rehearsed.facts["roots"],
                rehearsed.facts["sealed_roots"],
                rehearsed.facts["stops"],
            )
        if first is not None:
            for offset, (org, stored) in enumerate(left):
                self.values.committed(org, flag.name, stored, first + offset)
        return written

    async def _judge_and_write(
        self,
        tx: AsyncManagedTransaction,
        principal: Principal,
        flag: FlagDefinition,
        rows: list[tuple[ValueRow, Any]],
        rehearse: bool,
    ) -> tuple[BulkWritten, int | None, list[tuple[str, Any]]]:
        """What was written; the first audit seq (None: nothing changed); each changed org with
        what it stores now (in seq order)."""
        await audit_store.claim_sequence(tx)
        admin = principal.role is not None and principal.role >= Role.admin
        new_stored = {row.org: stored for row, stored in rows}
        errors: list[RowError] = []
        changes: list[Change] = []
        left: list[tuple[str, Any]] = []  # each changed org and what it stores after the write
        sets: list[dict[str, Any]] = []
        clears: list[str] = []
        roots: list[str] = []  # dry run: orgs whose effective value changes
        sealed_roots: list[str] = []  # dry run: own sealed values that change (their whole subtree follows)
        unchanged = 0
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            chains = await values_store.bulk_chains(tx, [row.org for row, _ in batch], flag.name)
            if not principal.unscoped:
                for row, _ in batch:
                    chain = chains.get(row.org)
                    if chain is None or not principal.may_act_on([link.org for link in chain]):
                        raise Problem(
                            ProblemType.forbidden,
                            f"row {row.row}: the organization is outside this token's subtrees; nothing was written",
                        )
            for row, stored in batch:
                chain = chains.get(row.org)
                if chain is None:
                    errors.append(RowError(row.row, row.org, ProblemType.org_not_found, f"no organization {row.org!r}"))
                    continue
                above = sealing_org(chain)
                if above is not None:
                    errors.append(
                        RowError(
                            row.row,
                            row.org,
                            ProblemType.sealed,
                            f"{flag.name!r} is sealed on {above!r}, above {row.org!r}",
                        )
                    )
                    continue
                own, was_sealed = unsealed(chain[0].stored)
                if was_sealed and not admin:
                    errors.append(
                        RowError(
                            row.row,
                            row.org,
                            ProblemType.sealed,
                            f"{flag.name!r} is sealed on {row.org!r} itself: only an admin may change it",
                        )
                    )
                    continue
                previous = None if own is None else flag.from_graph(own)
                if same_value(previous, row.value):
                    unchanged += 1
                    continue
                keeps_seal = was_sealed and stored is not None  # as a PUT without "sealed"; a clear lifts it
                if stored is None:
                    clears.append(row.org)
                else:
                    sets.append({"org": row.org, "value": stored, "sealed": True if keeps_seal else None})
                left.append((row.org, Sealed(stored) if keeps_seal else stored))
                changes.append(
                    Change(
                        action="flag.clear" if stored is None else "flag.set",
                        org=row.org,
                        flag=flag.name,
                        old=previous,
                        new=row.value,
                        path=[link.org for link in chain],
                        sealed=True if keeps_seal else (False if was_sealed else None),
                    )
                )
                if rehearse and not errors:
                    after = [Link(link.org, _new(link, new_stored)) for link in chain]
                    after[0] = Link(row.org, Sealed(stored) if keeps_seal else stored)
                    if was_sealed or keeps_seal:
                        sealed_roots.append(row.org)
                    elif not same_value(resolve(flag, chain).value, resolve(flag, after).value):
                        roots.append(row.org)
            del chains
        if errors:
            raise invalid_rows(errors)
        if rehearse:
            raise Rehearsed(roots=roots, sealed_roots=sealed_roots, stops=[change.org for change in changes])
        await values_store.bulk_write(tx, flag.name, sets, clears, principal.subject, self.batch_size)
        first = await audit_store.append(tx, principal.subject, changes)
        return BulkWritten(len(changes), unchanged), first, left


def _new(link: Link, new_stored: dict[str, Any]) -> Any:
    """A chain member's stored value once the request is written (its own, when it is not in the request)."""
    if link.org not in new_stored:
        return link.stored
    return new_stored[link.org]


def _values(flag: FlagDefinition, rows: Sequence[ValueRow]) -> tuple[list[tuple[ValueRow, Any]], list[RowError]]:
    """Each row with its value as stored (None: a clear), or the rows' errors (bad values, repeated orgs)."""
    parsed: list[tuple[ValueRow, Any]] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for row in rows:
        if row.org in seen:
            errors.append(
                RowError(row.row, row.org, ProblemType.invalid_body, f"{row.org!r} is already in row {seen[row.org]}")
            )
            continue
        seen[row.org] = row.row
        if row.value is None:
            parsed.append((row, None))
            continue
        try:
            value = flag.check(row.value)
        except Problem as problem:
            errors.append(RowError(row.row, row.org, problem.type, problem.detail))
            continue
        parsed.append((ValueRow(row.row, row.org, value), flag.to_graph(value)))
    return parsed, errors


async def _count(
    db: Database, dry_run: DryRun, flag: FlagDefinition, roots: list[str], sealed_roots: list[str], stops: list[str]
) -> Affected:
    limit, total, sample = dry_run.limit, 0, []
    if roots:
        total, sample = await db.read_within(
            dry_run.timeout, dry_run_store.regions_stopping, flag.name, roots, stops, limit + 1, dry_runs.SAMPLE
        )
    if sealed_roots and total <= limit:
        # A changed sealed value reaches its whole subtree (no other row can be below it).
        orgs, some = await db.read_within(
            dry_run.timeout, dry_run_store.subtrees, sealed_roots, limit + 1 - total, dry_runs.SAMPLE
        )
        total, sample = total + orgs, sample + some
    if total > limit:
        return Affected(limit, False, sample[: min(dry_runs.SAMPLE, limit)])
    return Affected(total, True, sample[: dry_runs.SAMPLE])
