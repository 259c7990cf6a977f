"""The org hierarchy: create (one or in bulk), read, move.

Every change validates and writes in one transaction that holds the writers' lock,
so what was checked is still true when it is written, and a bad row means nothing
is written at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.domain.access import Principal
from app.domain.catalog import Catalog
from app.domain.hierarchy import (
    MAX_DEPTH,
    CreationPlan,
    OrgRow,
    invalid_rows,
    parents_first,
    path_of,
    plan_creation,
    referenced_ids,
    too_deep,
)
from app.domain.ids import check_org_id
from app.errors import Problem, ProblemType
from app.services import dry_run as dry_runs
from app.services.dry_run import Affected, DryRun, Rehearsed
from app.services.values import org_not_found
from app.store import audit as audit_store
from app.store import orgs as orgs_store
from app.store.audit import Change
from app.store.database import Database
from neo4j import AsyncManagedTransaction


@dataclass(frozen=True, slots=True)
class OrgView:
    id: str
    parent: str | None
    ancestors: list[str]
    children: int


class OrgService:
    def __init__(
        self,
        db: Database,
        batch_size: int,
        on_hierarchy_change: Callable[[], None] = lambda: None,
        max_depth: int = MAX_DEPTH,
    ) -> None:
        self.db = db
        self.batch_size = batch_size
        self.max_depth = max_depth
        # Called after a move commits: cached ancestor chains of the moved subtree are wrong now.
        self.on_hierarchy_change = on_hierarchy_change

    async def create(self, principal: Principal, org: str, parent: str | None) -> bool:
        """Create one org; False when it already exists under the same parent."""
        check_org_id(org)
        if parent is not None:
            check_org_id(parent, "parent id")
        plan = await self.db.write(self._judge_and_write, principal, [OrgRow(1, org, parent)])
        if plan.errors:
            error = plan.errors[0]
            raise Problem(error.type, error.detail)
        return bool(plan.create)

    async def create_many(self, principal: Principal, rows: Sequence[OrgRow]) -> CreationPlan:
        """Create the orgs of a bulk request (rows already well-formed).

        A request of up to `batch_size` rows is judged and written in one transaction.
        A larger one is judged whole first (any bad row: nothing is written), then
        written in batches of `batch_size`, parents before children, each batch in its
        own transaction: one transaction for a million orgs would need gigabytes of
        server memory. Should the database fail between batches, the answer is an
        error and the orgs written so far stay; re-sending the request (idempotent)
        completes it.
        """
        if len(rows) <= self.batch_size:
            plan = await self.db.write(self._judge_and_write, principal, rows)
        else:
            plan, chains = await self._judge_in_batches(principal, rows)
            if not plan.errors:
                parent_of = dict(plan.create)
                ordered = parents_first(plan.create)
                for start in range(0, len(ordered), self.batch_size):
                    batch = ordered[start : start + self.batch_size]
                    await self.db.write(self._write_batch, principal.subject, batch, parent_of, chains)
        if plan.errors:
            raise invalid_rows(plan.errors)
        return plan

    async def _judge(
        self, tx: AsyncManagedTransaction, principal: Principal, rows: Sequence[OrgRow]
    ) -> tuple[CreationPlan, dict[str, list[str]]]:
        """Decide what to create; also return the chains of the existing parents the rows name."""
        ids = referenced_ids(rows)
        existing: dict[str, str | None] = {}
        for start in range(0, len(ids), self.batch_size):
            existing.update(await orgs_store.parents(tx, ids[start : start + self.batch_size]))
        anchors = sorted({row.parent for row in rows if row.parent in existing})
        chains: dict[str, list[str]] = {}
        for start in range(0, len(anchors), self.batch_size):
            chains.update(await orgs_store.chains(tx, anchors[start : start + self.batch_size]))
        return plan_creation(rows, existing, chains.get, principal, self.max_depth), chains

    async def _judge_in_batches(
        self, principal: Principal, rows: Sequence[OrgRow]
    ) -> tuple[CreationPlan, dict[str, list[str]]]:
        """`_judge` for a request of many batches: one short read transaction per lookup batch.

        A single transaction for a million rows outlives the query timeout (measured: 503
        after 10 s). No snapshot is lost that mattered: every write batch re-checks its orgs
        under the writers' lock.
        """
        ids = referenced_ids(rows)
        existing: dict[str, str | None] = {}
        for start in range(0, len(ids), self.batch_size):
            existing.update(await self.db.read(orgs_store.parents, ids[start : start + self.batch_size]))
        del ids
        anchors = sorted({row.parent for row in rows if row.parent in existing})
        chains: dict[str, list[str]] = {}
        for start in range(0, len(anchors), self.batch_size):
            chains.update(await self.db.read(orgs_store.chains, anchors[start : start + self.batch_size]))
        return plan_creation(rows, existing, chains.get, principal, self.max_depth), chains

    async def _judge_and_write(
        self, tx: AsyncManagedTransaction, principal: Principal, rows: Sequence[OrgRow]
    ) -> CreationPlan:
        await audit_store.claim_sequence(tx)
        plan, chains = await self._judge(tx, principal, rows)
        if not plan.errors and plan.create:
            await self._write(tx, principal.subject, plan.create, dict(plan.create), chains)
        return plan

    async def _write_batch(
        self,
        tx: AsyncManagedTransaction,
        actor: str,
        batch: list[tuple[str, str | None]],
        parent_of: dict[str, str | None],
        chains: dict[str, list[str]],
    ) -> None:
        """One batch of a large request; re-checked under the lock, as time passed since judging."""
        await audit_store.claim_sequence(tx)
        existing = await orgs_store.parents(tx, [org for org, _ in batch])
        conflicts = [org for org, parent in batch if org in existing and existing[org] != parent]
        if conflicts:
            raise Problem(
                ProblemType.org_conflict,
                f"{conflicts[0]!r} was created under another parent meanwhile; "
                "the orgs before it were written, re-send to see what remains",
            )
        # Already there with the same parent: a re-sent request, or a concurrent twin.
        await self._write(tx, actor, [row for row in batch if row[0] not in existing], parent_of, chains)

    async def _write(
        self,
        tx: AsyncManagedTransaction,
        actor: str,
        created: Sequence[tuple[str, str | None]],
        parent_of: dict[str, str | None],
        chains: dict[str, list[str]],
    ) -> None:
        if not created:
            return
        await orgs_store.create(tx, created, self.batch_size)
        changes = [
            Change(action="org.create", org=org, new={"parent": parent}, path=path_of(org, parent_of, chains))
            for org, parent in created
        ]
        await audit_store.append(tx, actor, changes)

    async def get(self, principal: Principal, org: str) -> OrgView:
        check_org_id(org)
        return await self.db.read(_read_org, principal, org)

    async def children(
        self, principal: Principal, org: str, limit: int, after: str
    ) -> tuple[list[tuple[str, int]], bool]:
        """A page of `org`'s children after id `after`, and whether more follow."""
        check_org_id(org)
        return await self.db.read(_read_children, principal, org, limit, after)

    async def find(self, principal: Principal, prefix: str, limit: int) -> tuple[list[str], bool]:
        """Up to `limit` ids starting with `prefix` inside the caller's subtrees, in id order, and
        whether some may have been left out (the limit or the scan bound was reached)."""
        roots = None if principal.unscoped else sorted(principal.orgs)
        if roots == []:
            return [], False
        return await self.db.read(_find_ids, prefix, limit, roots)

    async def move(
        self,
        principal: Principal,
        org: str,
        parent: str | None,
        *,
        dry_run: DryRun | None = None,
        catalog: Catalog | None = None,
    ) -> bool | Affected:
        """Put `org` (and its whole subtree) under `parent`; False when it is already there.

        With `dry_run` (and the catalog in force): every check, nothing written, and the
        orgs whose effective value of any flag the move would change.
        """
        check_org_id(org)
        if parent is not None:
            check_org_id(parent, "parent id")
        if dry_run is not None:
            try:
                await self.db.write(_move, principal, org, parent, self.max_depth, rehearse=True)
            except Rehearsed as rehearsed:
                return await dry_runs.move(self.db, dry_run, catalog, org, rehearsed.facts["old_parent"], parent)
            return dry_runs.NOTHING  # already there
        moved = await self.db.write(_move, principal, org, parent, self.max_depth)
        if moved:
            self.on_hierarchy_change()
        return moved


async def _read_org(tx: AsyncManagedTransaction, principal: Principal, org: str) -> OrgView:
    chain = await orgs_store.chain(tx, org)
    principal.require_scope(chain)
    if chain is None:
        raise org_not_found(org)
    return OrgView(org, chain[1] if len(chain) > 1 else None, chain[1:], await orgs_store.children_count(tx, org))


async def _read_children(
    tx: AsyncManagedTransaction, principal: Principal, org: str, limit: int, after: str
) -> tuple[list[tuple[str, int]], bool]:
    chain = await orgs_store.chain(tx, org)
    principal.require_scope(chain)
    if chain is None:
        raise org_not_found(org)
    # One more than asked tells whether a next page exists without a second query.
    page = await orgs_store.children_page(tx, org, after, limit + 1)
    return page[:limit], len(page) > limit


# Prefix search: candidates are read from the id index in pages of FIND_PAGE, and a scoped caller's
# are kept only if inside its subtrees (each checked by a walk up, at most the depth limit long).
# At most FIND_SCAN candidates per request: a prefix that matches many orgs of other tenants
# answers what it found so far instead of scanning them all.
FIND_PAGE = 200
FIND_SCAN = 2000
# Above every character an org id may hold (A-Z a-z 0-9 . _ : -): [P, P + _ABOVE) is "starts with P".
_ABOVE = "\x7f"


async def _find_ids(
    tx: AsyncManagedTransaction, prefix: str, limit: int, roots: list[str] | None
) -> tuple[list[str], bool]:
    found: list[str] = []
    low, high, scanned = prefix, prefix + _ABOVE, 0
    while len(found) < limit and scanned < FIND_SCAN:
        # Unscoped, every candidate counts: one query of exactly what is needed, plus one to tell if more exist.
        size = limit - len(found) + 1 if roots is None else min(FIND_PAGE, FIND_SCAN - scanned)
        ids, last, count = await orgs_store.ids_in_range(tx, low, high, size, roots)
        found.extend(ids)
        scanned += count
        if count < size:
            return found[:limit], False
        # The smallest string after `last`: ids cannot hold NUL.
        low = last + "\x00"
    return found[:limit], True


async def _move(
    tx: AsyncManagedTransaction,
    principal: Principal,
    org: str,
    parent: str | None,
    max_depth: int = MAX_DEPTH,
    rehearse: bool = False,
) -> bool:
    await audit_store.claim_sequence(tx)
    chains = await orgs_store.chains(tx, [org] if parent is None else [org, parent])
    org_chain, parent_chain = chains.get(org), chains.get(parent) if parent is not None else []
    principal.require_scope(org_chain)
    if parent is None and not principal.unscoped:
        raise Problem(ProblemType.forbidden, "only a token for all orgs ('*') may make an org a root")
    if parent is not None:
        principal.require_scope(parent_chain)
    if org_chain is None:
        raise org_not_found(org)
    if parent_chain is None:
        raise Problem(ProblemType.parent_not_found, f"no organization {parent!r}")
    if org in parent_chain:
        raise Problem(ProblemType.cycle, f"{parent!r} is {org!r} or one of its descendants")
    old_parent = org_chain[1] if len(org_chain) > 1 else None
    if old_parent == parent:
        return False
    # The org lands at depth len(parent_chain); its subtree's lowest org `height` below that.
    # Only a move deeper can break the limit (data from before it may already be deeper).
    depth = len(parent_chain)
    if depth > len(org_chain) - 1:
        levels = max_depth - depth + 1  # a descendant this far below would be too deep
        if levels <= 0:
            raise Problem(ProblemType.too_deep, too_deep(org, depth, max_depth))
        if await orgs_store.subtree_reaches(tx, org, levels):
            raise Problem(
                ProblemType.too_deep,
                f"moving {org!r} under {parent!r} would put its subtree's lowest orgs at "
                f"least {depth + levels} levels below their root; at most {max_depth} "
                "are allowed",
            )
    if rehearse:
        raise Rehearsed(old_parent=old_parent)
    await orgs_store.move(tx, org, parent)
    # Both the old and the new subtree's admins see the move in their audit log.
    path = [org, *parent_chain, *(ancestor for ancestor in org_chain[1:] if ancestor not in parent_chain)]
    change = Change(action="org.move", org=org, old={"parent": old_parent}, new={"parent": parent}, path=path)
    await audit_store.append(tx, principal.subject, [change])
    return True
