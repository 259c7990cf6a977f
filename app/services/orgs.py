"""The org hierarchy: create (one or in bulk), read, move.

Every change validates and writes in one transaction that holds the writers' lock,
so what was checked is still true when it is written, and a bad row means nothing
is written at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from neo4j import AsyncManagedTransaction

from app.domain.access import Principal
from app.domain.hierarchy import CreationPlan, OrgRow, invalid_rows, plan_creation, referenced_ids
from app.domain.ids import check_org_id
from app.errors import Problem
from app.services.values import org_not_found
from app.store import audit as audit_store
from app.store import orgs as orgs_store
from app.store.audit import Change
from app.store.database import Database


@dataclass(frozen=True, slots=True)
class OrgView:
    id: str
    parent: str | None
    ancestors: list[str]
    children: int


class OrgService:
    def __init__(self, db: Database, batch_size: int) -> None:
        self.db = db
        self.batch_size = batch_size

    async def create(self, principal: Principal, org: str, parent: str | None) -> bool:
        """Create one org; False when it already exists under the same parent."""
        check_org_id(org)
        if parent is not None:
            check_org_id(parent, "parent id")
        plan = await self.db.write(self._create_rows, principal, [OrgRow(1, org, parent)])
        if plan.errors:
            error = plan.errors[0]
            raise Problem(error.type, error.detail)
        return bool(plan.create)

    async def create_many(self, principal: Principal, rows: Sequence[OrgRow]) -> CreationPlan:
        """Create the orgs of a bulk request (rows already well-formed), all or none."""
        plan = await self.db.write(self._create_rows, principal, rows)
        if plan.errors:
            raise invalid_rows(plan.errors)
        return plan

    async def _create_rows(self, tx: AsyncManagedTransaction, principal: Principal,
                           rows: Sequence[OrgRow]) -> CreationPlan:
        await audit_store.claim_sequence(tx)
        ids = referenced_ids(rows)
        existing: dict[str, str | None] = {}
        for start in range(0, len(ids), self.batch_size):
            existing.update(await orgs_store.parents(tx, ids[start:start + self.batch_size]))
        # Chains are needed only to check a scoped caller's subtrees, and only of existing parents.
        chains: dict[str, list[str]] = {}
        if not principal.unscoped:
            anchors = sorted({row.parent for row in rows if row.parent in existing})
            for start in range(0, len(anchors), self.batch_size):
                chains.update(await orgs_store.chains(tx, anchors[start:start + self.batch_size]))
        plan = plan_creation(rows, existing, chains.get, principal)
        if plan.errors or not plan.create:
            return plan
        await orgs_store.create(tx, plan.create, self.batch_size)
        paths = await self._paths_of_new(tx, plan.create, existing)
        changes = [
            Change(action="org.create", org=org, new={"parent": parent}, path=paths[org])
            for org, parent in plan.create
        ]
        await audit_store.append(tx, principal.subject, changes)
        return plan

    async def _paths_of_new(self, tx: AsyncManagedTransaction, created: Sequence[tuple[str, str | None]],
                            existing: dict[str, str | None]) -> dict[str, list[str]]:
        """Each new org's chain, for its audit event: built from the request, topped up from the graph."""
        parent_of = dict(created)
        roots_in_graph = sorted({p for p in parent_of.values() if p is not None and p not in parent_of})
        graph_chains: dict[str, list[str]] = {}
        for start in range(0, len(roots_in_graph), self.batch_size):
            graph_chains.update(await orgs_store.chains(tx, roots_in_graph[start:start + self.batch_size]))
        paths: dict[str, list[str]] = {}
        for org in parent_of:
            trail = [org]
            node = parent_of[org]
            while node is not None and node in parent_of and node not in paths:
                trail.append(node)
                node = parent_of[node]
            if node is None:
                tail = []
            elif node in paths:
                tail = paths[node]
            else:
                tail = graph_chains.get(node, [])
            for depth, member in enumerate(trail):
                paths[member] = trail[depth:] + tail
        return paths

    async def get(self, principal: Principal, org: str) -> OrgView:
        check_org_id(org)
        return await self.db.read(_read_org, principal, org)

    async def move(self, principal: Principal, org: str, parent: str | None) -> bool:
        """Put `org` (and its whole subtree) under `parent`; False when it is already there."""
        check_org_id(org)
        if parent is not None:
            check_org_id(parent, "parent id")
        return await self.db.write(_move, principal, org, parent)


async def _read_org(tx: AsyncManagedTransaction, principal: Principal, org: str) -> OrgView:
    chain = await orgs_store.chain(tx, org)
    principal.require_scope(chain)
    if chain is None:
        raise org_not_found(org)
    return OrgView(org, chain[1] if len(chain) > 1 else None, chain[1:], await orgs_store.children_count(tx, org))


async def _move(tx: AsyncManagedTransaction, principal: Principal, org: str, parent: str | None) -> bool:
    await audit_store.claim_sequence(tx)
    chains = await orgs_store.chains(tx, [org] if parent is None else [org, parent])
    org_chain, parent_chain = chains.get(org), chains.get(parent) if parent is not None else []
    principal.require_scope(org_chain)
    if parent is None and not principal.unscoped:
        raise Problem("forbidden", "only a token for all orgs ('*') may make an org a root")
    if parent is not None:
        principal.require_scope(parent_chain)
    if org_chain is None:
        raise org_not_found(org)
    if parent_chain is None:
        raise Problem("parent-not-found", f"no organization {parent!r}")
    if org in parent_chain:
        raise Problem("cycle", f"{parent!r} is {org!r} or one of its descendants")
    old_parent = org_chain[1] if len(org_chain) > 1 else None
    if old_parent == parent:
        return False
    await orgs_store.move(tx, org, parent)
    # Both the old and the new subtree's admins see the move in their audit log.
    path = [org, *parent_chain, *(ancestor for ancestor in org_chain[1:] if ancestor not in parent_chain)]
    change = Change(action="org.move", org=org, old={"parent": old_parent}, new={"parent": parent}, path=path)
    await audit_store.append(tx, principal.subject, [change])
    return True
