"""A region's follower: copies the upstream into the local graph and keeps the copy current.

    bootstrap   GET /v1/snapshot, reconciled page by page into the local graph, then
                Replica.seq = the snapshot's seq
    catch up    GET /v1/changes?after=seq as JSON pages, each applied in one transaction
    follow      the same feed as a Server-Sent Events stream, applied as it arrives
    410         (or a feed that went backwards: the upstream was restored) -> bootstrap again

Every failure to reach the upstream ends the round; the next starts after an
exponential backoff with jitter (tenacity), from the position recorded in the local
database, so nothing is skipped or applied twice. The local graph keeps answering
meanwhile: it holds the last known values. See docs/regions.md.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
from httpx_sse import aconnect_sse
from loguru import logger
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from app.settings import Settings
from app.store import region as store
from app.store.database import Database

PAGE = 1000  # events per catch-up page (the feed's maximum)
SNAPSHOT_BATCH = 2000  # snapshot orgs reconciled per transaction


class UpstreamError(Exception):
    """The upstream answered, but not as a feed or snapshot should (401, 5xx, a cut snapshot)."""


class Expired(Exception):
    """The upstream no longer has the events after our position (410) or went backwards."""


class NotARegionCopy(Exception):
    """The local database holds orgs that no bootstrap put there: it is not ours to overwrite."""


# Any failure (the upstream or the local database away, a refused token, a copy that needs a
# reload) ends the attempt; the next one starts after the backoff. Only cancellation stops it.
_RETRIED = (Exception,)


class RegionFollower:
    def __init__(self, settings: Settings, db: Database) -> None:
        if not settings.upstream_url:
            raise ValueError("a region needs an upstream URL")
        self.url = settings.upstream_url.rstrip("/")
        self.db = db
        self.confirm_interval = settings.region_confirm_interval
        self.backoff_max = settings.upstream_backoff_max
        token = settings.upstream_token.get_secret_value() if settings.upstream_token else None
        # The token lives in the client's default headers only; httpx does not log headers.
        self.http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=httpx.Timeout(10.0, read=settings.upstream_read_timeout),
        )
        self._reload = False

    async def close(self) -> None:
        await self.http.aclose()

    # --- start-up ----------------------------------------------------------------------

    async def prepare(self) -> None:
        """Before serving: a complete copy must exist. Bootstrap (retrying) if there is none."""
        current = await self.db.read_unqueued(store.state)
        if current.replica is None and current.has_orgs:
            raise NotARegionCopy(
                "the local database holds orgs but is no region copy; refusing to overwrite it "
                "(point the region at an empty database)"
            )
        if current.replica is not None and current.replica.get("url") != self.url:
            logger.warning("the region copy was made from another upstream URL; reloading from {}", self.url)
            self._reload = True
        if current.seq is None or self._reload:
            await self._retrying(self.bootstrap)
        else:
            logger.info("region copy at upstream seq {}; resuming", current.seq)

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the upstream until cancelled."""
        while True:
            try:
                # A round that was connected and then ended starts the next with a short wait.
                await self._retrying(self._round)
                await asyncio.sleep(0.1)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the region from trying again
                logger.exception("region follower failed; retrying")
                await asyncio.sleep(self.backoff_max)

    async def _retrying(self, work) -> None:
        async for attempt in AsyncRetrying(
            wait=wait_exponential_jitter(initial=0.1, max=self.backoff_max, jitter=0.2),
            retry=retry_if_exception_type(_RETRIED),
            before_sleep=self._failed,
            reraise=True,
        ):
            with attempt:
                await work()

    async def _failed(self, retry_state) -> None:
        error = retry_state.outcome.exception()
        if isinstance(error, Expired | store.Inconsistent):
            self._reload = True
        logger.warning(
            "upstream {} unreachable or refused ({}: {}); retry {} in {:.1f} s",
            self.url,
            type(error).__name__,
            _safe(error),
            retry_state.attempt_number,
            retry_state.next_action.sleep if retry_state.next_action else 0.0,
        )
        await self._mark(connected=False)

    async def _round(self) -> None:
        if self._reload:
            await self.bootstrap()
        position = await self._catch_up()
        await self._follow(position)

    # --- bootstrap -----------------------------------------------------------------------

    async def bootstrap(self) -> None:
        """Reconcile the local graph with the upstream's snapshot, then take its seq."""
        clock = time.monotonic()
        await self.db.write(store.update, url=self.url, reloading=True)
        changes = orgs = 0
        async with self.http.stream("GET", "/v1/snapshot") as response:
            _check(response)
            lines = response.aiter_lines()
            header = orjson.loads(await anext(lines))
            seq = header["snapshot"]["seq"]
            after, batch, end = "", [], None
            async for line in lines:
                if not line:
                    continue
                item = orjson.loads(line)
                if "end" in item:
                    end = item["end"]
                    break
                batch.append(item)
                if len(batch) >= SNAPSHOT_BATCH:
                    changes += await self.db.write(store.reconcile_page, batch, after, batch[-1]["id"])
                    orgs += len(batch)
                    after, batch = batch[-1]["id"], []
            if end is None:
                raise UpstreamError("the snapshot ended before its trailer")
            if batch:
                changes += await self.db.write(store.reconcile_page, batch, after, batch[-1]["id"])
                orgs += len(batch)
                after = batch[-1]["id"]
            # Everything above the last id the snapshot listed is gone upstream.
            changes += await self.db.write(store.reconcile_page, [], after, None)
            if end["orgs"] != orgs:
                raise UpstreamError(f"the snapshot announced {end['orgs']} orgs and carried {orgs}")
        replica = (await self.db.read_unqueued(store.state)).replica or {}
        await self.db.write(
            store.update,
            seq=seq,
            url=self.url,
            reloading=False,
            bootstraps=int(replica.get("bootstraps") or 0) + 1,
            bootstrapped_at=time.time(),
        )
        self._reload = False
        logger.bind(orgs=orgs, changes=changes, seq=seq).info(
            "region bootstrapped from {}: {} orgs, {} local changes, at upstream seq {} in {:.1f} s",
            self.url,
            orgs,
            changes,
            seq,
            time.monotonic() - clock,
        )

    # --- the feed ------------------------------------------------------------------------

    async def _catch_up(self) -> int:
        """Apply JSON pages until the feed has nothing more; the position reached."""
        position = await self._position()
        while True:
            response = await self.http.get("/v1/changes", params={"after": position, "limit": PAGE})
            if response.status_code == 410:
                raise Expired(f"the upstream pruned events after seq {position}")
            _check(response)
            page = response.json()
            if page["last"] < position:
                raise Expired(
                    f"the upstream's feed ends at seq {page['last']}, before ours ({position}): "
                    "it was restored or replaced"
                )
            await self.db.write(store.apply_events, page["events"], page["last"])
            position = page["last"]
            if len(page["events"]) < PAGE:
                await self._mark(connected=True, upstream_last=position)
                return position

    async def _follow(self, position: int) -> None:
        """Apply the SSE stream as it arrives; returns when the stream ends."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(position)}
        async with aconnect_sse(
            self.http, "GET", "/v1/changes", params={"after": position, "limit": PAGE}, headers=headers
        ) as source:
            if source.response.status_code == 410:
                raise Expired(f"the upstream pruned events after seq {position}")
            _check(source.response)

            async def read() -> None:
                try:
                    async for message in source.aiter_sse():
                        if message.event == "expired":
                            raise Expired("the upstream pruned events past the stream's position")
                        if message.event == "message" and message.data:
                            queue.put_nowait(orjson.loads(message.data))
                finally:
                    queue.put_nowait(None)  # the applier finishes what arrived, then stops

            reader = asyncio.create_task(read())
            applier = asyncio.create_task(self._apply_from(queue))
            try:
                # The applier ends after the reader (the None), or first when it fails.
                await asyncio.wait({reader, applier}, return_when=asyncio.FIRST_EXCEPTION)
                if applier.done() and not reader.done():
                    reader.cancel()
                await asyncio.gather(reader, applier, return_exceptions=True)
                for task in (applier, reader):
                    if not task.cancelled() and task.exception() is not None:
                        raise task.exception()
            finally:
                for task in (reader, applier):
                    task.cancel()
                await self._mark(connected=False)

    async def _apply_from(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """Apply what the stream delivered, many events a transaction when they come in a burst.

        While the stream is open and nothing is pending, confirm every `confirm_interval`
        that the copy is current: that time is the staleness clock readers see.
        """
        await self._mark(connected=True)
        while True:
            try:
                first = await asyncio.wait_for(queue.get(), timeout=self.confirm_interval)
            except TimeoutError:
                await self._mark(connected=True)
                continue
            events = [first]
            while not queue.empty():
                events.append(queue.get_nowait())
            done = None in events
            events = [event for event in events if event is not None]
            if events:
                await self.db.write(store.apply_events, events, events[-1]["seq"])
                await self._mark(connected=True, upstream_last=events[-1]["seq"])
            if done:
                return

    async def _position(self) -> int:
        seq = (await self.db.read_unqueued(store.state)).seq
        if seq is None:
            raise store.Inconsistent("no complete copy yet")
        return seq

    async def _mark(self, connected: bool, **fields: Any) -> None:
        """Record whether the stream is up; while it is, the copy was current just now."""
        if connected:
            fields["confirmed_at"] = time.time()
        try:
            await self.db.write(store.update, connected=connected, **fields)
        except Exception as error:  # the local database may be away: the staleness clock stops
            logger.warning("cannot record the region's state ({})", type(error).__name__)


def _check(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise UpstreamError(f"{response.request.method} {response.request.url.path} answered {response.status_code}")


def _safe(error: BaseException) -> str:
    # Exceptions carry URLs and messages, never request headers (the token).
    return str(error)[:300]
