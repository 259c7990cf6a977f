"""Single-flag answers encoded once per (org, flag, cache epochs, catalog), not once per request.

A cached lookup used to resolve the chain, build its dataclasses and serialise the JSON on
every request: about a third of what the handler spent. Here the encoded body is kept with
what it was computed from, and served again only while all of that still holds:
- the value cache's epochs are the ones noted before the lookup: any write applied here
  (at commit) or learnt from the change feed, and any move, bumps them, so an answer older
  than a write applied here is never served;
- the catalog in force is the same object (defaults, types and flags live there);
- the value cache is trustworthy (the change feed answered lately). When it is not, every
  request goes through `ValueService.lookup`, which decides whether to read the graph or to
  serve a last-known value marked stale; an answer served stale is never kept.
Authentication, rate limits and the role are checked before this is asked (`authorized`),
and the caller's scope is checked here on every answer, against the chain the answer was
resolved from, so a token outside the org's subtrees gets 403 as from the lookup itself.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any

from app.cache.values import ValueCache, served_stale
from app.domain.access import Principal
from app.observability import metrics
from app.services.catalog import CatalogService
from app.services.values import Lookup, ValueService

# Bodies are a few hundred bytes: 100,000 of them stay within some tens of MiB per worker.
ANSWERS_KEPT = 100_000


class EncodedAnswers:
    def __init__(
        self, values: ValueService, cache: ValueCache, catalog: CatalogService, max_entries: int = ANSWERS_KEPT
    ) -> None:
        self._values = values
        self._cache = cache
        self._catalog = catalog
        self.max_entries = max_entries
        # (kind, org, flag) -> (epochs, catalog, chain org ids, reason, body)
        self._entries: dict[tuple[str, str, str], tuple[Any, Any, tuple[str, ...], str, bytes]] = {}

    def holds(self, kind: str, org: str, flag: str) -> bool:
        """Whether the next answer of `kind` for (org, flag) would be served from here."""
        entry = self._entries.get((kind, org, flag))
        return (
            entry is not None
            and self._cache.trustworthy
            and entry[0] == self._cache.epochs()
            and entry[1] is self._catalog.current
        )

    async def answer(
        self, principal: Principal, kind: str, org: str, flag: str, encode: Callable[[Lookup], bytes]
    ) -> tuple[bytes, str]:
        """The encoded answer of `kind` for (org, flag) and its resolution reason; raises as lookup does."""
        cache = self._cache
        key = (kind, org, flag)
        epochs = catalog = None
        if cache.trustworthy:
            epochs, catalog = cache.epochs(), self._catalog.current
            entry = self._entries.get(key)
            if entry is not None and entry[0] == epochs and entry[1] is catalog:
                principal.require_scope(entry[2])
                # Counted as the lookup would have counted its cache hit.
                cache.hits += 1
                metrics.cache_hit()
                return entry[4], entry[3]
        found = await self._values.lookup(principal, org, flag)
        body = encode(found)
        # Noted before the lookup: if anything changed meanwhile, the entry never matches.
        if epochs is not None and served_stale.get() is None:
            entries = self._entries
            entries[key] = (epochs, catalog, tuple(link.org for link in found.chain), found.resolution.reason, body)
            if len(entries) > self.max_entries:
                # Oldest first, a tenth more than needed, so this runs rarely.
                for old in list(islice(entries, len(entries) - self.max_entries + self.max_entries // 10)):
                    del entries[old]
        return body, found.resolution.reason
