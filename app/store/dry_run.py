"""Counting what a change would reach (app/services/dry_run.py): walks down the tree in the database."""

from __future__ import annotations

from typing import Any

from app.store.database import fetch
from neo4j import AsyncManagedTransaction


async def regions(
    tx: AsyncManagedTransaction, flag: str, roots: list[str], cap: int, sample: int
) -> tuple[int, list[str]]:
    """How many orgs (at most `cap`) take `flag` from one of `roots`, and up to `sample` of their ids."""
    records = await fetch(tx, "dry_run_region", flag=flag, roots=roots, cap=cap, sample=sample)
    return records[0]["orgs"], records[0]["sample"]


async def move_regions(
    tx: AsyncManagedTransaction, org: str, flags: list[str], cap: int, sample: int
) -> tuple[int, list[str]]:
    """How many orgs of `org`'s subtree (at most `cap`) take at least one of `flags` from above `org`."""
    records = await fetch(tx, "dry_run_move", org=org, flags=flags, cap=cap, sample=sample)
    return records[0]["orgs"], records[0]["sample"]


async def subtrees(tx: AsyncManagedTransaction, roots: list[str], cap: int, sample: int) -> tuple[int, list[str]]:
    """How many orgs (at most `cap`) the subtrees of `roots` hold, roots included, and up to `sample` ids."""
    records = await fetch(tx, "dry_run_subtree", roots=roots, cap=cap, sample=sample)
    return records[0]["orgs"], records[0]["sample"]


async def frontier(tx: AsyncManagedTransaction, flag: str, roots: list[str]) -> list[tuple[str, object, bool]]:
    """The orgs just below the regions of `roots` that set `flag` themselves: (id, stored value, sealed)."""
    records = await fetch(tx, "dry_run_frontier", flag=flag, roots=roots)
    return [tuple(row) for row in records[0]["setters"]]


async def regions_stopping(
    tx: AsyncManagedTransaction, flag: str, roots: list[str], stops: list[str], cap: int, sample: int
) -> tuple[int, list[str]]:
    """`regions`, where each walk also stops at the orgs of `stops`."""
    records = await fetch(tx, "dry_run_regions_stop", flag=flag, roots=roots, stops=stops, cap=cap, sample=sample)
    return records[0]["orgs"], records[0]["sample"]


async def flag_setters(tx: AsyncManagedTransaction, flag: str) -> int:
    """How many orgs set `flag` (a degree: no relationship is read)."""
    records = await fetch(tx, "dry_run_flag_setters", flag=flag)
    return records[0]["setters"] if records else 0


async def shielded(tx: AsyncManagedTransaction, flag: str, root: str, cap: int) -> tuple[int, int]:
    """(the orgs of `root`'s subtree, at most `cap`; those of them below an org that sets `flag`)."""
    records = await fetch(tx, "dry_run_shielded", flag=flag, root=root, cap=cap)
    return (records[0]["total"], records[0]["shielded"]) if records else (0, 0)


async def subtree_values(tx: AsyncManagedTransaction, flag: str, root: str) -> list[list[Any]]:
    """Every org of `root`'s subtree, parents first: [id, parent id, stored value of `flag` or None, sealed]."""
    records = await fetch(tx, "dry_run_subtree_values", flag=flag, root=root)
    return records[0]["rows"] if records else []


async def rollouts_below(tx: AsyncManagedTransaction, flag: str, root: str) -> bool:
    """Whether an org just below `root`'s region (as `regions` walks it) sets `flag` as a rollout."""
    records = await fetch(tx, "dry_run_frontier_rollouts", flag=flag, root=root)
    return bool(records and records[0]["found"])
