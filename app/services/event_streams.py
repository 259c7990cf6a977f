"""Which open OpenFeature event streams a change concerns, and telling them (in-process pub/sub).

Streams never poll. The one change-feed reader of the process (app/cache/follower.py) hands
every change it reads to `StreamHub.heard`; a catalog reload, or changes the reader missed
(retention deleted them first), call `everything_changed`.

Streams are grouped by what they were answered: (org, flag sets). A group keeps the org's
chain (its id and its ancestors', nearest first) and the ETag of its current answer, and
every org of that chain indexes the group (`_by_member`). So testing a change against ten
thousand streams is one dict lookup of the changed org: a value set, cleared, sealed or
rolled out on any org of a chain, and a move of any org of it (the chain's own org or an
ancestor), reach exactly the groups whose chain holds that org; changes elsewhere reach
none. A reached group is then answered again, off the request path, and its subscribers
hear of it only when the ETag actually changed (a value shadowed by a nearer one, or a flag
outside the sets answered, changes nothing for them).

The answering is done by one task, a group at a time, yielding to the event loop every
millisecond of answering or every few tens of subscribers woken (their writers run in the
loop's next round): a fan-out to every stream must not hold up the lookups served meanwhile. A
group keeps its answer as one encoded entry per flag, so a value change re-resolves only the
flags it touched (for 10,000 groups, a tenth of the work of answering them whole); a move, a
catalog reload or a flag the group does not know yet answers the group whole.

Idle streams are kept alive by one timer for the whole process (`keep_alive`), not a task
per stream: each subscriber, once every interval, is marked, and its writer then sends an SSE
comment, so proxies and load balancers that cut silent connections leave the streams open.
The marking is spread over the interval (a timing wheel of KEEP_ALIVE_SLICES slots, a stream
in the slot it joined), so no moment wakes every stream at once.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from loguru import logger

from app.domain.access import Principal
from app.errors import Problem

GroupKey = tuple[str, frozenset[str] | None]
WHOLE = None  # "answer the group whole", where a set of flag names says which flags to answer again


class Answers(Protocol):
    """How answers are made (app/http/ofrep.py BulkAnswers): raises org-not-found for an org gone."""

    async def entries(
        self, org: str, sets: frozenset[str] | None, only: frozenset[str] | None = None
    ) -> tuple[list[str], dict[str, bytes]]: ...

    def etag(self, entries: Iterable[bytes]) -> str: ...


# A fan-out yields to the event loop once it has answered groups for this long, so that the
# lookups served meanwhile wait at most about that long (answers may take any time: a group
# whose answer did not change costs a few dict reads, one read from the database far more)...
ANSWERING_SLICE_SECONDS = 0.001
# ... or once it has woken this many subscribers: each writer then sends its event in the
# loop's next round, so this bounds that round as well (a few tens of microseconds a writer).
WAKES_PER_YIELD = 32
# Keep-alives are spread over the interval in this many slices, each stream woken once per
# interval in the slice it joined: ten thousand writers woken at one tick are half a second of
# a core, and a fan-out or the lookups arriving at that tick would wait behind them.
KEEP_ALIVE_SLICES = 30
# Subscribers woken for a keep-alive between two yields: their writers then run a batch at a
# time, so a slice of many streams never holds the lookups up for long.
KEEP_ALIVES_PER_YIELD = 100


class Notice(enum.Enum):
    """What a subscriber's writer sends when it has no new ETag: a keep-alive comment."""

    KEEP_ALIVE = "keep-alive"


KEEP_ALIVE = Notice.KEEP_ALIVE


class Subscriber:
    """One open stream: the newest ETag it has to announce, and a way to wake its writer."""

    __slots__ = ("_waiter", "ended", "keep_alive_due", "keep_alive_slot", "pending", "principal")

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.pending: str | None = None
        self.ended = False
        self.keep_alive_due = False
        self.keep_alive_slot = 0  # its slice of the keep-alive wheel (StreamHub.keep_alive)
        # The future the writer awaits while it has nothing to send. A bare future, not an
        # asyncio.Event: a fan-out wakes ten thousand writers, and an Event's waiter list, its
        # future per wait and its clear() cost more than the wake-up itself.
        self._waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def announce(self, etag: str) -> None:
        self.pending = etag  # a newer ETag replaces one not yet sent: the client needs only the latest
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def keep_alive(self) -> None:
        self.keep_alive_due = True
        self._wake()

    async def next(self) -> str | Notice | None:
        """The next ETag to announce, KEEP_ALIVE when the stream should say something, or None
        when the stream must end."""
        while self.pending is None and not self.ended and not self.keep_alive_due:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.ended:
            return None
        self.keep_alive_due = False  # an event keeps the connection alive as well as a comment
        if self.pending is None:
            return KEEP_ALIVE
        etag, self.pending = self.pending, None
        return etag


class _Group:
    __slots__ = ("chain", "entries", "etag", "subscribers")

    def __init__(self, chain: list[str], entries: dict[str, bytes], etag: str) -> None:
        self.chain = tuple(chain)
        self.entries = entries  # flag name -> its encoded evaluation, in the answer's order
        self.etag = etag
        self.subscribers: set[Subscriber] = set()


class StreamHub:
    def __init__(self, answers: Answers, set_of_flag: Callable[[str], str | None]) -> None:
        self._answers = answers
        self._set_of_flag = set_of_flag  # a flag's set in the catalog in force, None if unknown
        self._groups: dict[GroupKey, _Group] = {}
        self._by_member: dict[str, set[GroupKey]] = {}
        # Groups to answer again, each with the flags to answer (WHOLE: all of them).
        self._dirty: dict[GroupKey, set[str] | None] = {}
        self._wake = asyncio.Event()
        # The keep-alive wheel: each slot holds the subscribers it keeps alive; joiners take turns.
        self._keep_alive_slots: list[set[Subscriber]] = [set() for _ in range(KEEP_ALIVE_SLICES)]
        self._joined = 0

    @property
    def streams(self) -> int:
        return sum(len(group.subscribers) for group in self._groups.values())

    # --- streams come and go --------------------------------------------------------

    async def subscribe(
        self, principal: Principal, org: str, sets: frozenset[str] | None, known_etag: str
    ) -> Subscriber:
        """A subscriber for the answer of (org, sets) to `principal`, whose client holds `known_etag`.

        Raises 403 when the org is (no longer) inside the principal's scope, 422/404 when it is gone.
        """
        key = (org, sets)
        group = self._groups.get(key)
        if group is None:
            chain, entries = await self._answers.entries(org, sets)
            group = self._groups.get(key)  # another stream may have made it meanwhile
            if group is None:
                group = self._groups[key] = _Group(chain, entries, self._answers.etag(entries.values()))
                self._index(key, group.chain)
        principal.require_scope(group.chain)
        subscriber = Subscriber(principal)
        group.subscribers.add(subscriber)
        subscriber.keep_alive_slot = self._joined % KEEP_ALIVE_SLICES
        self._joined += 1
        self._keep_alive_slots[subscriber.keep_alive_slot].add(subscriber)
        if group.etag != known_etag:
            subscriber.announce(group.etag)  # changed between the answer and the stream: say so now
        return subscriber

    def unsubscribe(self, org: str, sets: frozenset[str] | None, subscriber: Subscriber) -> None:
        # First: a group ended whole (_end_group) is gone already, its subscribers not yet.
        self._keep_alive_slots[subscriber.keep_alive_slot].discard(subscriber)
        key = (org, sets)
        group = self._groups.get(key)
        if group is None:
            return
        group.subscribers.discard(subscriber)
        if not group.subscribers:
            del self._groups[key]
            self._unindex(key, group.chain)
            self._dirty.pop(key, None)

    # --- changes come in ------------------------------------------------------------

    def heard(self, changes: Iterable[list[Any]]) -> None:
        """Changes read from the feed: `[seq, action, org, flag]` each (app/cache/follower.py)."""
        for _seq, action, org, flag in changes:
            keys = self._by_member.get(org)
            if not keys:
                continue
            if action == "org.move" or flag is None:
                for key in keys:
                    self._dirty[key] = WHOLE
                continue
            flag_set = self._set_of_flag(flag)
            for key in keys:
                sets = key[1]
                # A flag outside the sets a stream was answered cannot change its answer.
                if sets is not None and flag_set is not None and flag_set not in sets:
                    continue
                flags = self._dirty.get(key, set())
                if flags is not WHOLE:
                    flags.add(flag)
                    self._dirty[key] = flags
        if self._dirty:
            self._wake.set()

    def everything_changed(self) -> None:
        """Any answer may have changed (a catalog reload: defaults, flags added or removed; or
        changes the feed reader missed): answer every group again."""
        for key in self._groups:
            self._dirty[key] = WHOLE
        if self._dirty:
            self._wake.set()

    # --- and are told ---------------------------------------------------------------

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.fan_out()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away; the next change tries again
                logger.exception("event streams: a fan-out failed")

    async def keep_alive(self, interval: float) -> None:
        """Every `interval` seconds, every open stream sends a keep-alive (one timer for all):
        one slot of the wheel every interval / KEEP_ALIVE_SLICES seconds."""
        loop = asyncio.get_running_loop()
        step = interval / KEEP_ALIVE_SLICES
        slot, due = 0, loop.time()
        while True:
            due += step  # from the schedule, not from the last wake-up: no drift past the interval
            await asyncio.sleep(max(0.0, due - loop.time()))
            for done, subscriber in enumerate(list(self._keep_alive_slots[slot]), 1):
                subscriber.keep_alive()
                if done % KEEP_ALIVES_PER_YIELD == 0:
                    await asyncio.sleep(0)
            slot = (slot + 1) % KEEP_ALIVE_SLICES

    async def fan_out(self) -> None:
        """Answer every group a change reached again, and tell the subscribers whose answer changed."""
        loop = asyncio.get_running_loop()
        slice_ends = loop.time() + ANSWERING_SLICE_SECONDS
        woken = 0
        while self._dirty:
            key, flags = self._dirty.popitem()
            group = self._groups.get(key)
            if group is None:
                continue
            try:
                chain, entries = await self._answer_again(key, group, flags)
            except Problem:  # the org is gone (a region's copy can drop orgs): its streams end
                self._end_group(key, group)
                continue
            except Exception:
                self._dirty[key] = WHOLE  # not lost: tried again with the next change
                raise
            group.entries = entries
            etag = self._answers.etag(entries.values())
            moved = tuple(chain) != group.chain
            if moved:  # index the group under its new ancestors
                self._unindex(key, group.chain)
                group.chain = tuple(chain)
                self._index(key, group.chain)
            changed = etag != group.etag
            group.etag = etag
            if changed or moved:
                for subscriber in group.subscribers:  # telling one removes none (that waits for its writer)
                    # Scope is judged on the chain, checked at subscribe: only a move can change it.
                    if moved and not subscriber.principal.may_act_on(group.chain):
                        subscriber.end()  # moved out of the caller's subtrees: the stream may not say more
                    elif changed:
                        subscriber.announce(etag)
                woken += len(group.subscribers)
            if woken >= WAKES_PER_YIELD or loop.time() >= slice_ends:
                await asyncio.sleep(0)
                slice_ends = loop.time() + ANSWERING_SLICE_SECONDS
                woken = 0

    async def _answer_again(
        self, key: GroupKey, group: _Group, flags: set[str] | None
    ) -> tuple[list[str], dict[str, bytes]]:
        """The group's chain and entries now: the `flags` named answered again, or all (WHOLE)."""
        if flags is not WHOLE and flags <= group.entries.keys():
            chain, changed = await self._answers.entries(key[0], key[1], only=frozenset(flags))
            if changed.keys() == flags:
                return chain, {**group.entries, **changed}  # the same order: only values replaced
        # A move, a reload, or a flag new to this answer (or gone from the catalog): answer it whole.
        return await self._answers.entries(*key)

    def _end_group(self, key: GroupKey, group: _Group) -> None:
        for subscriber in group.subscribers:
            subscriber.end()
        del self._groups[key]
        self._unindex(key, group.chain)

    def _index(self, key: GroupKey, chain: tuple[str, ...]) -> None:
        for member in chain:
            self._by_member.setdefault(member, set()).add(key)

    def _unindex(self, key: GroupKey, chain: tuple[str, ...]) -> None:
        for member in chain:
            keys = self._by_member.get(member)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_member[member]
