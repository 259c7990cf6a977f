"""`GET /v1/snapshot`: every org with its parent and own values, and the seq to follow from.

What a region bootstraps from (docs/regions.md). The seq is read before the first org
page: every change with a seq at or below it had committed by then (writers commit in
seq order), so every page shows at least that state. Pages are separate read
transactions, and Neo4j reads are read-committed anyway (one long transaction would not
be a point-in-time view either), so a page may also show changes made after that seq.
That is harmless to a reader that then applies the change feed from the seq: each event
sets a state (this value, this parent), so replaying one the page already showed
changes nothing, and after the replay every org and value is as the upstream has it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from app.store import audit as audit_store
from app.store import orgs as orgs_store
from app.store.database import Database

FORMAT = 1
PAGE = 5_000


class Snapshot:
    """One snapshot: `start()` fixes its seq, `lines()` streams it as NDJSON."""

    def __init__(self, db: Database, page: int = PAGE) -> None:
        self.db = db
        self.page = page
        self.seq: int | None = None

    async def start(self) -> int:
        self.seq = await self.db.read(audit_store.last_seq)
        return self.seq

    async def lines(self) -> AsyncIterator[bytes]:
        """A header line, one line per org (in id order), and a trailer with the count.

        A stream cut short (the database or the network failed) has no trailer, so a
        reader can tell it from a complete one.
        """
        if self.seq is None:
            raise RuntimeError("start() fixes the snapshot's seq first")
        yield orjson.dumps({"snapshot": {"format": FORMAT, "seq": self.seq}}) + b"\n"
        after, orgs = "", 0  # every id sorts after the empty string
        while rows := await self.db.read(orgs_store.page, after, self.page):
            yield b"".join(
                orjson.dumps({"id": org, "parent": parent, "values": values}) + b"\n" for org, parent, values in rows
            )
            orgs += len(rows)
            after = rows[-1][0]
        yield orjson.dumps({"end": {"orgs": orgs, "seq": self.seq}}) + b"\n"
