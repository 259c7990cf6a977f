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

Memory is bounded: past `max_entries` the least recently used entries are dropped. A
hit moves what it read to the young end of its dict (popped and put back: a dict keeps
insertion order, and this measured cheaper than OrderedDict's get and move_to_end), so
the busiest entries, the roots every chain ends in above all, are the last to go.

Fills come only from lookups that passed the caller's scope check and the flag-exists
check (app/services/values.py): junk flag names and other tenants' ids cannot push the
hot set out, nor be timed apart from missing ones by a second, cached answer.

A write made here updates its entry with the value it committed (write-through). An
invalidation heard from the change feed moves the old value to `last_known`: never used
for a normal answer, only while the database is away, marked stale.

aiocache is not used here on purpose: its memory backend has no size bound, schedules
a timer per key for expiry, and makes every access an awaited call through its plugin
and timeout layers, while this hot path needs a few dict reads and no await at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from itertools import islice
from typing import Any

MADE_HERE_KEPT = 100_000
_UNSET = object()  # "the org sets no value": cached too, it is the common case

# Set, for the request in progress, to the age in seconds of a last-known value served
# while the database was away; the HTTP layer turns it into response headers.
served_stale: ContextVar[float | None] = ContextVar("graphflags_served_stale", default=None)


class ValueCache:
    def __init__(
        self, max_entries: int = 1_000_000, max_lag: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        # Seconds, only ever subtracted: a parameter so that tests move time instead of sleeping.
        self.clock = clock
        # How long the cache may go without hearing from the change feed and still be used.
        self.max_lag = max_lag
        self._chains: dict[str, tuple[str, ...]] = {}
        self._own: dict[tuple[str, str], Any] = {}
        self._all_own: dict[str, dict[str, Any]] = {}  # every value an org sets (bulk reads)
        # What the feed invalidated and moves dropped, for stale serving only (see the docstring).
        self._stale_chains: dict[str, tuple[str, ...]] = {}
        self._stale_own: dict[tuple[str, str], Any] = {}
        self._stale_all_own: dict[str, dict[str, Any]] = {}
        # The seq of the newest write here applied to each (org, flag): an older one answered later loses.
        self._written_seq: dict[tuple[str, str], int] = {}
        self._value_epoch = 0
        self._chain_epoch = 0
        # When the feed poll whose answer we last applied was sent; untrusted until the first answer.
        self._heard_at = float("-inf")
        self._made_here: set[int] = set()  # seqs of changes this instance applied on commit
        self.hits = 0
        self.misses = 0

    # --- consistency with the rest of the world -------------------------------------

    def heard_from_feed(self, asked_at: float | None = None) -> None:
        """The feed answered a poll sent at `asked_at` (by `self.clock`; default now).

        The clock counts from when the poll was sent: what it returned is as old as that,
        however long the answer took to come back.
        """
        self._heard_at = max(self._heard_at, self.clock() if asked_at is None else asked_at)

    @property
    def lag(self) -> float:
        return self.clock() - self._heard_at

    @property
    def trustworthy(self) -> bool:
        """False once the change feed has been silent too long: other instances' writes may be missed."""
        return self.lag <= self.max_lag

    def epochs(self) -> tuple[int, int]:
        """Note these before reading the graph; pass them to the fill calls."""
        return self._value_epoch, self._chain_epoch

    # --- invalidation ---------------------------------------------------------------

    def value_changed(self, org: str, flag: str, seq: int | None = None) -> None:
        """A value changed elsewhere (heard from the feed): drop it, keeping it as last-known.

        `seq` is its audit seq when the change was made by this instance.
        """
        if seq is not None:
            self._note_made_here(seq)
        self._value_epoch += 1
        key = (org, flag)
        stored = self._own.pop(key, None)
        if stored is not None:
            self._stale_own[key] = stored
            self._bound(self._stale_own)
        values = self._all_own.pop(org, None)
        if values is not None:
            self._stale_all_own[org] = values
            self._bound(self._stale_all_own)

    def value_written(self, org: str, flag: str, stored: Any, seq: int) -> None:
        """This instance committed `stored` (None: cleared) as the org's own value, with audit `seq`.

        The entry takes the new value rather than going (write-through): the next lookup is a
        hit, and the value survives as last-known if the database goes away right after.
        """
        self._note_made_here(seq)
        # Fills from reads begun before this commit may carry the old value: they are dropped.
        self._value_epoch += 1
        key = (org, flag)
        newest = self._written_seq.get(key)
        if newest is not None and newest > seq:
            return  # a later write here was applied already
        self._written_seq[key] = seq
        self._bound(self._written_seq)
        self._own.pop(key, None)
        self._own[key] = _UNSET if stored is None else stored
        self._bound(self._own)
        self._stale_own.pop(key, None)
        for all_own in (self._all_own, self._stale_all_own):
            values = all_own.get(org)
            if values is not None:
                values = dict(values)  # callers may hold the old map
                if stored is None:
                    values.pop(flag, None)
                else:
                    values[flag] = stored
                all_own[org] = values

    def _note_made_here(self, seq: int) -> None:
        if len(self._made_here) >= MADE_HERE_KEPT:
            self._made_here.clear()  # only costs a second invalidation of those changes
        self._made_here.add(seq)

    def made_here(self, seq: int) -> bool:
        """Whether this instance made (and so already applied) the change with this seq."""
        if seq in self._made_here:
            self._made_here.discard(seq)
            return True
        return False

    def hierarchy_changed(self) -> None:
        """An org moved: every chain below it changed, and which those are is not known here."""
        self._chain_epoch += 1
        # Kept for stale serving: a chain from before the move is better than no answer in an outage.
        self._stale_chains = self._chains
        self._chains = {}

    def everything_changed(self) -> None:
        """Changes were missed (retention deleted them before the feed was read here), so no entry
        can be trusted to be current: all of them go, kept as last-known for stale serving only."""
        self.hierarchy_changed()
        self._value_epoch += 1
        self._stale_own.update(self._own)
        self._own = {}
        self._stale_all_own.update(self._all_own)
        self._all_own = {}
        self._bound(self._stale_own)
        self._bound(self._stale_all_own)

    def clear(self) -> None:
        self._value_epoch += 1
        self._chain_epoch += 1
        for entries in (
            self._chains,
            self._own,
            self._all_own,
            self._stale_chains,
            self._stale_own,
            self._stale_all_own,
            self._written_seq,
        ):
            entries.clear()

    # --- reads ----------------------------------------------------------------------

    def flag_chain(self, org: str, flag: str, stale_ok: bool = False) -> list[tuple[str, Any]] | None:
        """The org's chain with each member's own value of `flag` (None: not set), or None on a miss.

        `stale_ok`: answer even when the change feed has been silent too long (the database
        is away and this is the last known value), from last-known entries too.
        """
        if stale_ok:
            return self._last_known_flag_chain(org, flag)
        if not self.trustworthy:
            return None
        chains = self._chains
        chain = chains.pop(org, None)
        if chain is not None:
            chains[org] = chain  # put back at the young end: this is a use
            own = self._own
            links = []
            for member in chain:
                key = (member, flag)
                stored = own.pop(key, None)
                if stored is None:  # never stored as None: _UNSET stands for "sets nothing"
                    break
                own[key] = stored
                links.append((member, None if stored is _UNSET else stored))
            else:
                self.hits += 1
                return links
        self.misses += 1
        return None

    def flags_chain(self, org: str, stale_ok: bool = False) -> list[tuple[str, dict[str, Any]]] | None:
        """The org's chain with every value each member sets, or None on a miss."""
        if stale_ok:
            return self._last_known_flags_chain(org)
        if not self.trustworthy:
            return None
        chains = self._chains
        chain = chains.pop(org, None)
        if chain is not None:
            chains[org] = chain  # put back at the young end: this is a use
            all_own = self._all_own
            maps = []
            for member in chain:
                values = all_own.pop(member, None)
                if values is None:
                    break
                all_own[member] = values
                maps.append(values)
            else:
                self.hits += 1
                return list(zip(chain, maps, strict=True))
        self.misses += 1
        return None

    def _last_known_flag_chain(self, org: str, flag: str) -> list[tuple[str, Any]] | None:
        chain = self._chains.get(org) or self._stale_chains.get(org)
        if chain is None:
            return None
        links = []
        for member in chain:
            key = (member, flag)
            stored = self._own.get(key)
            if stored is None:
                stored = self._stale_own.get(key)
            if stored is None:
                return None
            links.append((member, None if stored is _UNSET else stored))
        return links

    def _last_known_flags_chain(self, org: str) -> list[tuple[str, dict[str, Any]]] | None:
        chain = self._chains.get(org) or self._stale_chains.get(org)
        if chain is None:
            return None
        maps = []
        for member in chain:
            values = self._all_own.get(member)
            if values is None:
                values = self._stale_all_own.get(member)
            if values is None:
                return None
            maps.append(values)
        return list(zip(chain, maps, strict=True))

    # --- fills ----------------------------------------------------------------------

    def fill_flag_chain(self, epochs: tuple[int, int], flag: str, links: Sequence[tuple[str, Any]]) -> None:
        value_epoch, chain_epoch = epochs
        if chain_epoch == self._chain_epoch:
            self._remember_chain(links[0][0], tuple(member for member, _ in links))
        if value_epoch == self._value_epoch:
            own, stale = self._own, self._stale_own
            for member, stored in links:
                key = (member, flag)
                own.pop(key, None)  # a refill is a use: to the young end
                own[key] = _UNSET if stored is None else stored
                if stale:
                    stale.pop(key, None)
            self._bound(own)

    def fill_flags_chain(self, epochs: tuple[int, int], chain: Sequence[tuple[str, dict[str, Any]]]) -> None:
        value_epoch, chain_epoch = epochs
        if chain_epoch == self._chain_epoch:
            self._remember_chain(chain[0][0], tuple(member for member, _ in chain))
        if value_epoch == self._value_epoch:
            all_own, stale = self._all_own, self._stale_all_own
            for member, values in chain:
                all_own.pop(member, None)
                all_own[member] = values
                if stale:
                    stale.pop(member, None)
            self._bound(all_own)

    def _remember_chain(self, org: str, chain: tuple[str, ...]) -> None:
        # Every suffix of a chain is the chain of that ancestor: remember them all.
        chains = self._chains
        for start in range(len(chain)):
            chains.pop(chain[start], None)  # a refill is a use: to the young end
            chains[chain[start]] = chain[start:]
        self._bound(chains)

    def _bound(self, entries: dict) -> None:
        excess = len(entries) - self.max_entries
        if excess > 0:
            # Drop a tenth more than needed so eviction runs rarely, not on every fill. The
            # oldest end holds the least recently used: hits and fills move entries to the end.
            for key in list(islice(entries, excess + self.max_entries // 10)):
                del entries[key]

    def stats(self) -> dict[str, int]:
        return {"chains": len(self._chains), "values": len(self._own), "orgs": len(self._all_own)}
