"""Rules for adding orgs to the forest: pure functions over what the graph already holds.

`plan_creation` decides, for a batch of `(id, parent)` rows, which orgs to create,
which already exist unchanged, and which rows are wrong, without touching the
database: the store fetches what it needs (existing orgs, their chains), this judges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.domain.access import Principal
from app.errors import Problem, ProblemType

# How many row errors a 422 answer lists at most.
MAX_ROW_ERRORS = 100
# GRAPHFLAGS_MAX_DEPTH's default: levels an org may sit below its root (a root is depth 0).
MAX_DEPTH = 64
# The parent position of a root in `on_cycles`.
ROOT = -1


def too_deep(org: str, depth: int, max_depth: int) -> str:
    return f"{org!r} would sit {depth} levels below its root; at most {max_depth} are allowed"


@dataclass(frozen=True, slots=True)
class OrgRow:
    row: int  # counts from 1, as the client numbered it
    id: str
    parent: str | None


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    id: str | None
    type: ProblemType
    detail: str

    def document(self) -> dict[str, Any]:
        return {"row": self.row, "id": self.id, "type": self.type, "detail": self.detail}


@dataclass(slots=True)
class CreationPlan:
    create: list[tuple[str, str | None]] = field(default_factory=list)
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


def invalid_rows(errors: Sequence[RowError]) -> Problem:
    shown = [error.document() for error in errors[:MAX_ROW_ERRORS]]
    more = f" (first {MAX_ROW_ERRORS} listed)" if len(errors) > MAX_ROW_ERRORS else ""
    return Problem(
        ProblemType.invalid_rows, f"{len(errors)} row(s) are invalid{more}; nothing was written", errors=shown
    )


def referenced_ids(rows: Sequence[OrgRow]) -> list[str]:
    """Every id the rows name, as an org or as a parent: what the store must look up."""
    seen: dict[str, None] = {}
    for row in rows:
        seen[row.id] = None
        if row.parent is not None:
            seen[row.parent] = None
    return list(seen)


def plan_creation(
    rows: Sequence[OrgRow],
    existing_parent: Mapping[str, str | None],
    chain_of: Callable[[str], Sequence[str] | None],
    principal: Principal,
    max_depth: int = MAX_DEPTH,
) -> CreationPlan:
    """Judge `rows` against the graph.

    `existing_parent` maps every existing org among the referenced ids to its parent;
    `chain_of(org)` gives an existing org's chain (itself, then its ancestors).
    Raises `403 forbidden` when a row would place an org outside the caller's
    subtrees (or where it cannot tell without revealing another tenant's org).
    """
    plan = CreationPlan()
    first: dict[str, OrgRow] = {}
    new_rows: dict[str, OrgRow] = {}
    for row in rows:
        earlier = first.get(row.id)
        if earlier is not None:
            if earlier.parent == row.parent:
                plan.unchanged += 1
            else:
                plan.errors.append(
                    RowError(
                        row.row,
                        row.id,
                        ProblemType.org_conflict,
                        f"row {earlier.row} already places {row.id!r} under {earlier.parent!r}",
                    )
                )
            continue
        first[row.id] = row
        if row.id not in existing_parent:
            new_rows[row.id] = row

    _require_scope(first.values(), new_rows, existing_parent, chain_of, principal)

    cyclic = _cyclic_ids(new_rows)
    depths = _depths(new_rows, cyclic, existing_parent, chain_of)
    for row in first.values():
        if row.id in existing_parent:
            if existing_parent[row.id] == row.parent:
                plan.unchanged += 1
            else:
                plan.errors.append(
                    RowError(row.row, row.id, ProblemType.org_conflict, f"organization {row.id!r} already exists")
                )
        elif row.parent is not None and row.parent not in existing_parent and row.parent not in new_rows:
            plan.errors.append(
                RowError(row.row, row.id, ProblemType.parent_not_found, f"no organization {row.parent!r}")
            )
        elif row.id in cyclic:
            plan.errors.append(RowError(row.row, row.id, ProblemType.cycle, f"{row.id!r} would be its own ancestor"))
        elif depths.get(row.id, 0) > max_depth:
            plan.errors.append(
                RowError(row.row, row.id, ProblemType.too_deep, too_deep(row.id, depths[row.id], max_depth))
            )
        else:
            plan.create.append((row.id, row.parent))
    plan.errors.sort(key=lambda error: error.row)
    return plan


def _cyclic_ids(new_rows: Mapping[str, OrgRow]) -> set[str]:
    """New orgs whose parent chain, followed through the request, loops back on itself."""
    ids = list(new_rows)
    index = {org: position for position, org in enumerate(ids)}
    parents = [index.get(row.parent, ROOT) if row.parent is not None else ROOT for row in new_rows.values()]
    return {ids[position] for position in on_cycles(parents)}


def on_cycles(parents: Sequence[int]) -> Iterator[int]:
    """The members of a forest that sit on a cycle; the forest is given as each member's
    parent position (`ROOT` for a root, or a parent outside the forest). Shared by the API's
    bulk create and the CSV loader, whose millions of orgs are positions in int arrays.

    Each member is walked once: linear in the members, whatever the depth.
    """
    state = bytearray(len(parents))  # 0: not seen, 1: on the current walk, 2: settled
    for start in range(len(parents)):
        walk: list[int] = []
        node = start
        while node != ROOT and state[node] == 0:
            state[node] = 1
            walk.append(node)
            node = parents[node]
        if node != ROOT and state[node] == 1:
            yield from walk[walk.index(node) :]
        for visited in walk:
            state[visited] = 2


def _depths(
    new_rows: Mapping[str, OrgRow],
    cyclic: set[str],
    existing_parent: Mapping[str, str | None],
    chain_of: Callable[[str], Sequence[str] | None],
) -> dict[str, int]:
    """Each new org's depth below its root, up through the request's new orgs to the graph.

    Each org is walked once (linear in the rows, whatever the depth). Orgs whose parent is
    missing or which sit on a cycle get no depth: they are refused for that already.
    """
    depth: dict[str, int | None] = {}
    for start in new_rows:
        walk: list[str] = []
        node: str | None = start
        while node is not None and node in new_rows and node not in depth and node not in cyclic:
            walk.append(node)
            depth[node] = None  # on this walk
            node = new_rows[node].parent
        if node is None:
            base: int | None = -1
        elif node in depth:
            base = depth[node]
        elif node in existing_parent:
            chain = chain_of(node)
            base = depth[node] = len(chain) - 1 if chain else 0  # asked once per existing parent
        else:
            base = None
        for org in reversed(walk):
            base = None if base is None else base + 1
            depth[org] = base
    return {org: value for org, value in depth.items() if value is not None}


def _require_scope(
    rows: Iterable[OrgRow],
    new_rows: Mapping[str, OrgRow],
    existing_parent: Mapping[str, str | None],
    chain_of: Callable[[str], Sequence[str] | None],
    principal: Principal,
) -> None:
    """Each row's requested parent must lie inside the caller's subtrees."""
    if principal.unscoped:
        return
    verdicts: dict[str | None, bool] = {None: False}  # only unscoped admins create roots

    def parent_in_scope(parent: str | None) -> bool:
        # Walk up through the request's new orgs until the graph (or a verdict) decides.
        trail: list[str] = []
        while parent is not None and parent not in verdicts and parent in new_rows and parent not in trail:
            trail.append(parent)
            parent = new_rows[parent].parent
        if parent in verdicts:
            verdict = verdicts[parent]
        elif parent is not None and parent in existing_parent:
            chain = chain_of(parent)
            verdict = chain is not None and principal.may_act_on(chain)
        else:
            verdict = False  # unknown to the graph, or a loop: a scoped caller must not learn which
        for org in [*trail, parent]:
            verdicts[org] = verdict
        return verdict

    for row in rows:
        if not parent_in_scope(row.parent):
            raise Problem(ProblemType.forbidden, f"row {row.row} places {row.id!r} outside this token's subtrees")


def parents_first(created: Sequence[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """`created` reordered so each org comes after its parent (when the parent is new too).

    Large requests are written in several transactions; in this order no batch ever
    holds a child whose parent is not in the graph yet.
    """
    children: dict[str | None, list[tuple[str, str | None]]] = {}
    new = {org for org, _ in created}
    for org, parent in created:
        children.setdefault(parent if parent in new else None, []).append((org, parent))
    ordered: list[tuple[str, str | None]] = []
    frontier = children.get(None, [])
    while frontier:
        ordered.extend(frontier)
        frontier = [row for org, _ in frontier for row in children.get(org, ())]
    return ordered


def path_of(org: str, parent_of: Mapping[str, str | None], chains: Mapping[str, Sequence[str]]) -> list[str]:
    """A new org's chain (itself, then its ancestors): up through the new orgs, then the graph's chain."""
    path = [org]
    parent = parent_of.get(org)
    while parent is not None and parent in parent_of:
        path.append(parent)
        parent = parent_of[parent]
    if parent is not None:
        path.extend(chains.get(parent, [parent]))
    return path
