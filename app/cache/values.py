"""The in-process cache of what resolution reads from the graph.

What is cached is not the effective value of (org, flag) but its two ingredients:
- `chain(org)`: the org's id and its ancestors', nearest first;
- `own(org, flag)`: the value the org itself sets for the flag (or that it sets none).
An effective value is then resolved in memory by walking the chain. The point of
caching ingredients: a toggle of flag F on org X changes exactly one entry,
`own(X, F)`, however many millions of descendants inherit it; nothing is scanned.
Only a move changes chains, and moves are rare: a move drops every chain.
Catalog defaults are read from the catalog in force at resolution time, so a catalog
change needs no invalidation at all.

Each instance applies its own writes at once, after they commit, and learns of other
instances' writes from the audit log (app/cache/follower.py), within a stated bound.

Races between a reader that fills the cache and a writer that invalidates it are
settled with epochs: a reader notes the epoch before reading the graph and fills only
if no invalidation happened meanwhile, so a value read before a commit can never be
stored after that commit's invalidation.

Memory is bounded: past `max_entries` the oldest entries are dropped (insertion order,
which for a cache refilled on miss approximates least-recently-filled).

aiocache is not used here on purpose: its memory backend has no size bound, schedules
a timer per key for expiry, and makes every access an awaited call through its plugin
and timeout layers, while this hot path needs a few dict reads and no await at all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextvars import ContextVar
from itertools import islice
from typing import Any

MADE_HERE_KEPT = 100_000
_UNSET = object()  # "the org sets no value": cached too, it is the common case

# Set, for the request in progress, to the age in seconds of a last-known value served
# while the database was away; the HTTP layer turns it into response headers.
served_stale: ContextVar[float | None] = ContextVar("graphflags_served_stale", default=None)


class ValueCache:
    def __init__(self, max_entries: int = 1_000_000, max_lag: float = 2.0) -> None:
        self.max_entries = max_entries
        # How long the cache may go without hearing from the change feed and still be used.
        self.max_lag = max_lag
        self._chains: dict[str, tuple[str, ...]] = {}
        self._own: dict[tuple[str, str], Any] = {}
        self._all_own: dict[str, dict[str, Any]] = {}  # every value an org sets (bulk reads)
        self._value_epoch = 0
        self._chain_epoch = 0
        # When the change feed last answered; untrusted until the first answer.
        self._heard_at = float("-inf")
        self._made_here: set[int] = set()  # seqs of changes this instance applied on commit
        self.hits = 0
        self.misses = 0

    # --- consistency with the rest of the world -------------------------------------

    def heard_from_feed(self) -> None:
        self._heard_at = time.monotonic()

    @property
    def lag(self) -> float:
        return time.monotonic() - self._heard_at

    @property
    def trustworthy(self) -> bool:
        """False once the change feed has been silent too long: other instances' writes may be missed."""
        return self.lag <= self.max_lag

    def epochs(self) -> tuple[int, int]:
        """Note these before reading the graph; pass them to the fill calls."""
        return self._value_epoch, self._chain_epoch

    # --- invalidation ---------------------------------------------------------------

    def value_changed(self, org: str, flag: str, seq: int | None = None) -> None:
        """A value changed; `seq` is its audit seq when the change was made by this instance."""
        if seq is not None:
            if len(self._made_here) >= MADE_HERE_KEPT:
                self._made_here.clear()  # only costs a second invalidation of those changes
            self._made_here.add(seq)
        self._value_epoch += 1
        self._own.pop((org, flag), None)
        self._all_own.pop(org, None)

    def made_here(self, seq: int) -> bool:
        """Whether this instance made (and so already applied) the change with this seq."""
        if seq in self._made_here:
            self._made_here.discard(seq)
            return True
        return False

    def hierarchy_changed(self) -> None:
        """An org moved: every chain below it changed, and which those are is not known here."""
        self._chain_epoch += 1
        self._chains.clear()

    def clear(self) -> None:
        self._value_epoch += 1
        self._chain_epoch += 1
        self._chains.clear()
        self._own.clear()
        self._all_own.clear()

    # --- reads ----------------------------------------------------------------------

    def flag_chain(self, org: str, flag: str, stale_ok: bool = False) -> list[tuple[str, Any]] | None:
        """The org's chain with each member's own value of `flag` (None: not set), or None on a miss.

        `stale_ok`: answer even when the change feed has been silent too long (the database
        is away and this is the last known value).
        """
        if not (stale_ok or self.trustworthy):
            return None
        chain = self._chains.get(org)
        if chain is not None:
            own = self._own
            links = []
            for member in chain:
                stored = own.get((member, flag))
                if stored is None:  # never stored as None: _UNSET stands for "sets nothing"
                    break
                links.append((member, None if stored is _UNSET else stored))
            else:
                self.hits += 1
                return links
        self.misses += 1
        return None

    def flags_chain(self, org: str, stale_ok: bool = False) -> list[tuple[str, dict[str, Any]]] | None:
        """The org's chain with every value each member sets, or None on a miss."""
        if not (stale_ok or self.trustworthy):
            return None
        chain = self._chains.get(org)
        if chain is not None:
            maps = [self._all_own.get(member) for member in chain]
            if all(values is not None for values in maps):
                self.hits += 1
                return list(zip(chain, maps, strict=True))  # type: ignore[arg-type]
        self.misses += 1
        return None

    # --- fills ----------------------------------------------------------------------

    def fill_flag_chain(self, epochs: tuple[int, int], flag: str, links: Sequence[tuple[str, Any]]) -> None:
        value_epoch, chain_epoch = epochs
        if chain_epoch == self._chain_epoch:
            self._remember_chain(links[0][0], tuple(member for member, _ in links))
        if value_epoch == self._value_epoch:
            for member, stored in links:
                self._own[(member, flag)] = _UNSET if stored is None else stored
            self._bound(self._own)

    def fill_flags_chain(self, epochs: tuple[int, int], chain: Sequence[tuple[str, dict[str, Any]]]) -> None:
        value_epoch, chain_epoch = epochs
        if chain_epoch == self._chain_epoch:
            self._remember_chain(chain[0][0], tuple(member for member, _ in chain))
        if value_epoch == self._value_epoch:
            for member, values in chain:
                self._all_own[member] = values
            self._bound(self._all_own)

    def _remember_chain(self, org: str, chain: tuple[str, ...]) -> None:
        # Every suffix of a chain is the chain of that ancestor: remember them all.
        for start in range(len(chain)):
            self._chains[chain[start]] = chain[start:]
        self._bound(self._chains)

    def _bound(self, entries: dict) -> None:
        excess = len(entries) - self.max_entries
        if excess > 0:
            # Drop a tenth more than needed so eviction runs rarely, not on every fill.
            for key in list(islice(entries, excess + self.max_entries // 10)):
                del entries[key]

    def stats(self) -> dict[str, int]:
        return {"chains": len(self._chains), "values": len(self._own), "orgs": len(self._all_own)}

