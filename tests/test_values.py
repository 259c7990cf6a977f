"""Flag values against the real graph: inheritance at depth, sets, clears, seed paths."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.domain.access import Principal, Role
from app.errors import Problem
from app.http.app import create_app
from app.services.group_commit import GroupCommit
from app.store.database import DatabaseUnavailable, is_outage


async def effective(client, tokens, org, flag):
    response = await client.get(f"/v1/orgs/{org}/flags/{flag}", headers=tokens.reader())
    assert response.status_code == 200, response.text
    return response.json()


async def put(client, tokens, org, flag, value, **kwargs):
    return await client.put(
        f"/v1/orgs/{org}/flags/{flag}", json={"value": value}, headers=kwargs.get("headers") or tokens.writer()
    )


async def test_default_when_nothing_is_set(client, tokens, chain6):
    body = await effective(client, tokens, chain6[-1], "dark-mode")
    assert body == {"org": chain6[-1], "flag": "dark-mode", "value": False, "reason": "default", "source_org": None}


async def test_value_set_on_root_reaches_depth_six(client, tokens, chain6):
    assert (await put(client, tokens, chain6[0], "dark-mode", True)).status_code == 200
    for depth, org in enumerate(chain6):
        body = await effective(client, tokens, org, "dark-mode")
        assert body["value"] is True
        assert body["source_org"] == chain6[0]
        assert body["reason"] == ("own" if depth == 0 else "inherited")


async def test_nearest_setting_wins_and_clearing_inherits_again(client, tokens, chain6):
    root, middle, leaf = chain6[0], chain6[3], chain6[6]
    await put(client, tokens, root, "theme", "dark")
    await put(client, tokens, middle, "theme", "light")
    assert (await effective(client, tokens, chain6[2], "theme"))["value"] == "dark"
    below = await effective(client, tokens, leaf, "theme")
    assert (below["value"], below["source_org"], below["reason"]) == ("light", middle, "inherited")
    own = await effective(client, tokens, middle, "theme")
    assert (own["value"], own["reason"]) == ("light", "own")

    cleared = await client.delete(f"/v1/orgs/{middle}/flags/theme", headers=tokens.writer())
    assert cleared.status_code == 204
    after = await effective(client, tokens, leaf, "theme")
    assert (after["value"], after["source_org"]) == ("dark", root)
    # Clearing again is idempotent.
    again = await client.delete(f"/v1/orgs/{middle}/flags/theme", headers=tokens.writer())
    assert again.status_code == 204


async def test_put_answers_previous_own_value(client, tokens, chain6):
    org = chain6[2]
    first = await put(client, tokens, org, "max-upload-mb", 20)
    assert first.json() == {"org": org, "flag": "max-upload-mb", "value": 20.0, "previous": None}
    second = await put(client, tokens, org, "max-upload-mb", 30.5)
    assert second.json()["previous"] == 20.0
    assert second.json()["value"] == 30.5


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("dark-mode", True),
        ("retention-days", 90),
        ("max-upload-mb", 12.5),
        ("theme", "dark"),
        ("banner", "Maintenance at 22:00 UTC"),
        ("limits", {"seats": 50, "tier": "gold"}),
    ],
)
async def test_every_type_round_trips(client, tokens, chain6, flag, value):
    await put(client, tokens, chain6[1], flag, value)
    body = await effective(client, tokens, chain6[5], flag)
    assert body["value"] == value
    assert type(body["value"]) is (float if flag == "max-upload-mb" else type(value))


async def test_list_values_covers_catalog_and_sets(client, tokens, chain6):
    await put(client, tokens, chain6[0], "beta", True)
    response = await client.get(f"/v1/orgs/{chain6[4]}/flags", headers=tokens.reader())
    assert response.status_code == 200
    flags = response.json()["flags"]
    assert set(flags) == {"dark-mode", "beta", "max-upload-mb", "retention-days", "theme", "banner", "limits"}
    assert flags["beta"] == {"value": True, "reason": "inherited", "source_org": chain6[0]}
    assert flags["limits"] == {"value": {"seats": 5}, "reason": "default", "source_org": None}

    only_storage = await client.get(f"/v1/orgs/{chain6[4]}/flags?set=storage", headers=tokens.reader())
    assert set(only_storage.json()["flags"]) == {"max-upload-mb", "retention-days"}
    by_header = await client.get(
        f"/v1/orgs/{chain6[4]}/flags", headers={**tokens.reader(), "X-Flag-Set": "ui, storage"}
    )
    assert set(by_header.json()["flags"]) == {"dark-mode", "beta", "theme", "max-upload-mb", "retention-days"}


async def test_explain_walks_the_chain(client, tokens, chain6):
    await put(client, tokens, chain6[1], "retention-days", 7)
    await put(client, tokens, chain6[4], "retention-days", 60)
    response = await client.get(f"/v1/orgs/{chain6[6]}/flags/retention-days/explain", headers=tokens.reader())
    assert response.status_code == 200
    body = response.json()
    assert (body["value"], body["reason"], body["source_org"]) == (60, "inherited", chain6[4])
    expected = [
        {
            "org": org,
            "value": {chain6[1]: 7, chain6[4]: 60}.get(org),
            "active": org in (chain6[1], chain6[4]),
            "sealed": False,
        }
        for org in reversed(chain6)
    ]
    assert body["chain"] == expected


class TestSeedPaths:
    async def test_get_alias_answers_like_v1(self, client, tokens, chain6):
        await put(client, tokens, chain6[0], "dark-mode", True)
        alias = await client.get(f"/{chain6[3]}/dark-mode", headers=tokens.reader())
        assert alias.status_code == 200
        assert alias.json() == await effective(client, tokens, chain6[3], "dark-mode")

    @pytest.mark.parametrize(
        ("flag", "segment", "stored"),
        [
            ("dark-mode", "TRUE", True),
            ("dark-mode", "false", False),
            ("retention-days", "42", 42),
            ("retention-days", "365", 365),
            ("max-upload-mb", "2.5e1", 25.0),
            ("theme", "dark", "dark"),
            ("banner", "Hello%20world%2Fagain", "Hello world/again"),
            ("limits", "%7B%22seats%22%3A9%7D", {"seats": 9}),
        ],
    )
    async def test_post_alias_parses_by_type(self, client, tokens, chain6, flag, segment, stored):
        response = await client.post(f"/{chain6[2]}/{flag}/{segment}", headers=tokens.writer())
        assert response.status_code == 200, response.text
        assert response.json()["value"] == stored
        assert (await effective(client, tokens, chain6[5], flag))["value"] == stored

    @pytest.mark.parametrize(
        ("flag", "segment"),
        [
            ("dark-mode", "yes"),
            ("dark-mode", "1"),
            ("retention-days", "1.5"),
            ("retention-days", "0"),
            ("retention-days", "99999"),
            ("max-upload-mb", "NaN"),
            ("max-upload-mb", "1e999"),
            ("theme", "blue"),
            ("limits", "%5B1%2C2%5D"),
            ("limits", "not-json"),
        ],
    )
    async def test_post_alias_refuses_values_that_do_not_fit(self, client, tokens, chain6, flag, segment):
        response = await client.post(f"/{chain6[2]}/{flag}/{segment}", headers=tokens.writer())
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith("/invalid-value")
        assert (await effective(client, tokens, chain6[2], flag))["reason"] == "default"


async def test_writing_the_same_value_again_changes_nothing(client, tokens, chain6):
    org = chain6[1]
    await put(client, tokens, org, "beta", True)
    again = await put(client, tokens, org, "beta", True)
    assert again.status_code == 200
    assert again.json()["previous"] is True
    events = (await client.get(f"/v1/audit?org={org}&flag=beta", headers=tokens.admin())).json()["events"]
    assert len(events) == 1


async def test_concurrent_writes_are_all_kept(client, tokens, uid, make_orgs):
    """Fifty orgs written in parallel, then each one read back: none lost, each audited once."""
    root = uid("root")
    leaves = [uid(f"leaf{i}") for i in range(50)]
    await make_orgs([(root, None), *((leaf, root) for leaf in leaves)])
    answers = await asyncio.gather(
        *(put(client, tokens, leaf, "retention-days", 100 + i) for i, leaf in enumerate(leaves))
    )
    assert [answer.status_code for answer in answers] == [200] * 50
    for i, leaf in enumerate(leaves):
        assert (await effective(client, tokens, leaf, "retention-days"))["value"] == 100 + i
    events = (
        await client.get(f"/v1/audit?org={root}&subtree=true&flag=retention-days&limit=1000", headers=tokens.admin())
    ).json()["events"]
    assert sorted(event["new"] for event in events) == list(range(100, 150))
    seqs = [event["seq"] for event in events]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 50


async def _hold_a_place(run) -> asyncio.Task:
    """A real transaction, started by `run` (db.read or db.write), that keeps its admission
    place for 1.5 s."""

    async def held(tx):
        await (await tx.run("MATCH (s:AuditSequence {name: 'audit'}) RETURN s.last")).consume()
        await asyncio.sleep(1.5)

    holder = asyncio.create_task(run(held))
    await asyncio.sleep(0.1)
    return holder


async def _expect_refused_for_load(request) -> None:
    """The request waits the queue timeout (0.3 s here), then gets 503 with Retry-After."""
    started = time.monotonic()
    refused = await request
    waited = time.monotonic() - started
    assert refused.status_code == 503, refused.text
    assert refused.json()["type"].endswith("/unavailable")
    assert refused.headers["retry-after"] == "1"
    assert 0.3 <= waited < 1.2


async def test_writes_beyond_the_admitted_are_refused_fast_and_write_nothing(settings_for, tokens, chain6):
    """With every write place taken, a toggle waits write_queue_timeout, then 503 + Retry-After."""
    org = chain6[2]
    application = create_app(settings_for(write_concurrency=1, write_queue_timeout=0.3))
    async with (
        LifespanManager(application, startup_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://test") as own,
    ):
        before = (await own.get(f"/v1/audit?org={org}&limit=1000", headers=tokens.admin())).json()["events"]
        holder = await _hold_a_place(application.state.services.db.write)
        await _expect_refused_for_load(put(own, tokens, org, "retention-days", 77))
        await holder
        assert (await effective(own, tokens, org, "retention-days"))["value"] != 77
        after = (await own.get(f"/v1/audit?org={org}&limit=1000", headers=tokens.admin())).json()["events"]
        assert after == before  # nothing of the refused write
        assert (await put(own, tokens, org, "retention-days", 77)).status_code == 200  # the place is free again


async def test_database_reads_beyond_the_admitted_are_refused_fast_while_cached_lookups_answer(
    settings_for, tokens, chain6
):
    """With every read place taken, a cache miss waits read_queue_timeout, then 503; hits still answer."""
    cached, uncached = chain6[3], chain6[4]
    application = create_app(settings_for(read_concurrency=1, read_queue_timeout=0.3))
    async with (
        LifespanManager(application, startup_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://test") as own,
    ):
        expected = await _once_admitted(own, tokens, cached)  # now in this instance's cache
        holder = await _hold_a_place(application.state.services.db.read)
        await _expect_refused_for_load(own.get(f"/v1/orgs/{uncached}/flags/retention-days", headers=tokens.reader()))
        assert await effective(own, tokens, cached, "retention-days") == expected  # from the cache
        await holder
        await _once_admitted(own, tokens, uncached)  # the place is free again


async def _once_admitted(client, tokens, org) -> dict:
    """A lookup of retention-days that needs the database, asked again while it is refused for load:
    with one read place and a 0.3 s queue, this instance's own background read (the schedule
    poller's count of pending changes) can hold the place that long on a busy machine. At most 5 s."""
    deadline = time.monotonic() + 5
    while (
        response := await client.get(f"/v1/orgs/{org}/flags/retention-days", headers=tokens.reader())
    ).status_code == 503:
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.1)
    assert response.status_code == 200, response.text
    return response.json()


async def test_concurrent_writes_to_one_value_audit_every_transition(client, tokens, chain6):
    """Racing writers on one org and flag: the audit trail chains old -> new without gaps."""
    org = chain6[3]
    values = [i % 7 + 1 for i in range(30)]
    await asyncio.gather(*(put(client, tokens, org, "retention-days", value) for value in values))
    events = (await client.get(f"/v1/audit?org={org}&flag=retention-days&limit=1000", headers=tokens.admin())).json()[
        "events"
    ]
    oldest_first = list(reversed(events))
    assert oldest_first[0]["old"] is None
    for before, after in zip(oldest_first, oldest_first[1:], strict=False):
        assert after["old"] == before["new"]
    final = (await effective(client, tokens, org, "retention-days"))["value"]
    assert oldest_first[-1]["new"] == final


# Group commit (app/services/group_commit.py): the writes waiting in a worker share one transaction.


def record_batches(values) -> list[int]:
    """The size of every batch `values` commits from now on."""
    sizes: list[int] = []
    run = values._write_batch

    async def recorded(requests):
        sizes.append(len(requests))
        return await run(requests)

    values.writes._run = values._write_batch = recorded
    return sizes


async def audit_of(client, tokens, root, flag):
    events = (
        await client.get(f"/v1/audit?org={root}&subtree=true&flag={flag}&limit=1000", headers=tokens.admin())
    ).json()["events"]
    return list(reversed(events))  # oldest first


async def test_one_batch_answers_each_write_with_its_own_outcome(settings_for, tokens, uid, make_orgs):
    """Writes waiting together go in one transaction; each gets its own answer: changes, a no-op,
    two writes to one value in order, and refusals (scope, no such org, no such flag) that write
    nothing and fail no one else."""
    root, other = uid("root"), uid("other")
    a, b, c = uid("a"), uid("b"), uid("c")
    await make_orgs([(root, None), (other, None), (a, root), (b, root), (c, root)])
    # The change feed is not followed here (an hour between polls): only the write itself tells the cache.
    application = create_app(settings_for(cache_follow_interval=3600, cache_max_lag=3600))
    async with (
        LifespanManager(application, startup_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://test") as own,
    ):
        values = application.state.services.values
        scoped = Principal("scoped-writer", Role.writer, frozenset({root}))
        unscoped = Principal("writer", Role.writer, frozenset({"*"}))
        await values.set(unscoped, b, "retention-days", 5)
        before = await audit_of(own, tokens, root, "retention-days")
        for org in (a, b, c, other):  # cached here before the batch
            await effective(own, tokens, org, "retention-days")
        sizes = record_batches(values)
        outcomes = await asyncio.gather(
            values.set(scoped, a, "retention-days", 10),
            values.set(scoped, b, "retention-days", 5),  # already 5: a no-op
            values.set(scoped, c, "retention-days", 7),
            values.set(scoped, other, "retention-days", 9),  # outside the token's subtree
            values.set(unscoped, uid("ghost"), "retention-days", 9),  # no such org
            values.set(unscoped, a, "no-such-flag", 9),  # no such flag
            values.set(unscoped, c, "retention-days", 8),  # after the 7 above, in the same batch
            values.clear(scoped, a, "retention-days"),  # after the 10 above
            return_exceptions=True,
        )
        assert sizes == [8]
        changed, noop, seven, outside, ghost, no_flag, eight, cleared = outcomes
        assert (changed.previous, changed.value, changed.changed) == (None, 10, True)
        assert (noop.previous, noop.changed, noop.seq) == (5, False, None)
        assert (seven.previous, seven.value) == (None, 7)
        assert (eight.previous, eight.value) == (7, 8)
        assert (cleared.previous, cleared.value) == (10, None)
        assert [changed.seq, seven.seq, eight.seq, cleared.seq] == list(range(changed.seq, changed.seq + 4))
        assert [(p.slug, p.status) for p in (outside, ghost, no_flag)] == [
            ("forbidden", 403),
            ("org-not-found", 404),
            ("flag-not-found", 404),
        ]

        events = (await audit_of(own, tokens, root, "retention-days"))[len(before) :]
        assert [(e["seq"], e["actor"], e["action"], e["org"], e["old"], e["new"]) for e in events] == [
            (changed.seq, "scoped-writer", "flag.set", a, None, 10),
            (seven.seq, "scoped-writer", "flag.set", c, None, 7),
            (eight.seq, "writer", "flag.set", c, 7, 8),
            (cleared.seq, "scoped-writer", "flag.clear", a, 10, None),
        ]
        assert await audit_of(own, tokens, other, "retention-days") == []
        for org, expected in ((a, ("default", 30)), (b, ("own", 5)), (c, ("own", 8)), (other, ("default", 30))):
            found = await effective(own, tokens, org, "retention-days")
            assert (found["reason"], found["value"]) == expected, org  # this instance's cache saw each change


async def test_a_write_the_database_refuses_fails_alone_in_its_batch(settings_for, tokens, uid, make_orgs):
    """A row Neo4j refuses (here a map as a property value) fails that write alone: the batch is
    retried one write at a time, the others are committed and acknowledged, it writes nothing."""
    from neo4j.exceptions import ClientError

    from app.services.values import _WriteRequest

    class Unstorable:
        """A flag whose stored form Neo4j refuses: a map is no property value."""

        def from_graph(self, stored):
            return stored

        def to_graph(self, value):
            return {"nested": value}

    root = uid("root")
    orgs = [uid(f"o{i}") for i in range(4)]
    await make_orgs([(root, None), *((org, root) for org in orgs)])
    application = create_app(settings_for())
    async with (
        LifespanManager(application, startup_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://test") as own,
    ):
        values = application.state.services.values
        writer = Principal("writer", Role.writer, frozenset({"*"}))
        flag = application.state.services.catalog.current.get("retention-days")
        sizes = record_batches(values)
        outcomes = await asyncio.gather(
            *(
                values.writes.submit(_WriteRequest(writer, org, "retention-days", flag, 20 + i))
                for i, org in enumerate(orgs[:3])
            ),
            values.writes.submit(_WriteRequest(writer, orgs[3], "retention-days", Unstorable(), 99)),
            return_exceptions=True,
        )
        assert sizes == [4, 1, 1, 1, 1]
        *good, bad = outcomes
        assert isinstance(bad, ClientError), bad
        assert [(w.value, w.changed) for w in good] == [(20, True), (21, True), (22, True)]
        events = await audit_of(own, tokens, root, "retention-days")
        assert [(e["org"], e["new"], e["seq"]) for e in events] == [
            (org, 20 + i, w.seq) for i, (org, w) in enumerate(zip(orgs, good))
        ]
        assert (await effective(own, tokens, orgs[3], "retention-days"))["reason"] == "default"


async def test_two_instances_writing_at_once_give_a_gap_free_feed_in_commit_order(
    client, settings_for, tokens, uid, make_orgs
):
    """Two instances commit batches concurrently while a follower pages /v1/changes: every page
    holds every seq from its `after` to its `last`, so a follower that trusts `last` misses nothing."""
    root = uid("root")
    orgs = [uid(f"o{i}") for i in range(40)]
    await make_orgs([(root, None), *((org, root) for org in orgs)])
    start = (await client.get("/v1/changes", params={"after": 10**15}, headers=tokens.admin())).json()["last"]
    second = create_app(settings_for())
    async with (
        LifespanManager(second, startup_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://second") as other,
    ):
        writing = True
        seen: list[int] = []

        async def follow() -> None:
            after = start
            while True:
                done = not writing  # one more page after the last write was answered
                page = (await client.get("/v1/changes", params={"after": after}, headers=tokens.admin())).json()
                seqs = [event["seq"] for event in page["events"]]
                assert seqs == list(range(after + 1, page["last"] + 1)), (after, page["last"], seqs)
                seen.extend(seqs)
                after = page["last"]
                if done:
                    return
                await asyncio.sleep(0)

        follower = asyncio.create_task(follow())
        answers = []
        for round_ in range(3):
            answers += await asyncio.gather(
                *(
                    put(client if i % 2 else other, tokens, org, "retention-days", 100 + 10 * round_ + i % 10)
                    for i, org in enumerate(orgs)
                )
            )
        writing = False
        await follower
    assert {answer.status_code for answer in answers} == {200}
    events = await audit_of(client, tokens, root, "retention-days")
    assert len(events) == 120
    assert {event["seq"] for event in events} <= set(seen)


async def test_writes_waiting_behind_a_stuck_batch_are_refused_fast_and_write_nothing(settings_for, tokens, chain6):
    """While a batch waits (here for the sequence lock another transaction holds), a write that
    finds no place in a batch within write_queue_timeout gets 503 + Retry-After; the batch goes on."""
    application = create_app(settings_for(write_queue_timeout=0.3))
    async with (
        LifespanManager(application, startup_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://test") as own,
    ):
        services = application.state.services
        locked, release = asyncio.Event(), asyncio.Event()

        async def hold_the_sequence(tx):
            await (await tx.run("MATCH (s:AuditSequence {name: 'audit'}) SET s.claims = s.claims + 1")).consume()
            locked.set()
            await release.wait()

        holder = asyncio.create_task(services.db.write(hold_the_sequence))
        await locked.wait()
        stuck = asyncio.create_task(put(own, tokens, chain6[1], "retention-days", 41))
        while len(services.values.writes) or not services.values.writes.busy:
            await asyncio.sleep(0.01)
        before = await audit_of(own, tokens, chain6[2], "retention-days")
        await _expect_refused_for_load(put(own, tokens, chain6[2], "retention-days", 42))
        release.set()
        await holder
        assert (await stuck).status_code == 200
        assert (await effective(own, tokens, chain6[1], "retention-days"))["value"] == 41
        assert (await effective(own, tokens, chain6[2], "retention-days"))["value"] != 42
        assert await audit_of(own, tokens, chain6[2], "retention-days") == before


# The group commit queue on its own (no database): a runner that records its batches.


class Recorder:
    def __init__(self, gate: asyncio.Event | None = None, fail: Exception | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate = gate
        self.fail = fail

    async def __call__(self, items: list[int]) -> list:
        self.batches.append(items)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return [item * 10 if item >= 0 else Problem("invalid-value", "negative") for item in items]


async def test_group_commit_answers_a_write_queued_just_as_the_last_batch_ends():
    """A write whose caller was ready to run as the flusher finished still gets a flusher (the
    queue once counted flushers by their tasks' done callbacks, which run a loop turn late, and
    such a write waited for the queue timeout, then got 503)."""
    later: list[asyncio.Task] = []

    async def runner(items: list[int]) -> list[int]:
        if not later:
            later.append(asyncio.create_task(writes.submit(2)))  # ready before this batch's end is known
        return [item * 10 for item in items]

    writes = GroupCommit(runner, max_batch=10, queue_timeout=0.5)
    assert await writes.submit(1) == 10
    assert await later[0] == 20


async def test_group_commit_batches_what_waits_and_answers_each_its_own():
    gate = asyncio.Event()
    runner = Recorder(gate)
    writes = GroupCommit(runner, max_batch=3, queue_timeout=5)
    answers = [asyncio.create_task(writes.submit(n)) for n in (1, 2, -3, 4, 5, 6, 7)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*answers, return_exceptions=True)
    assert runner.batches == [[1, 2, -3], [4, 5, 6], [7]]  # all queued before the flusher ran; max_batch each
    assert results[:2] + results[3:] == [10, 20, 40, 50, 60, 70]
    assert isinstance(results[2], Problem)  # its own failure, no one else's


async def test_group_commit_refuses_a_write_that_waits_too_long_and_never_sends_it():
    gate = asyncio.Event()
    runner = Recorder(gate)
    writes = GroupCommit(runner, max_batch=10, queue_timeout=0.2)
    stuck = asyncio.create_task(writes.submit(1))
    while not runner.batches:  # taken into a batch, which waits
        await asyncio.sleep(0)
    with pytest.raises(DatabaseUnavailable) as refused:
        await writes.submit(2)
    assert refused.value.retry_after == 1.0 and len(writes) == 0
    gate.set()
    assert await stuck == 10  # taken before the timeout: answered, however long its batch took
    assert runner.batches == [[1]]


async def test_group_commit_fails_every_write_of_a_failed_batch_and_goes_on():
    gate = asyncio.Event()
    runner = Recorder(gate, fail=ConnectionError("gone"))
    writes = GroupCommit(runner, max_batch=10, queue_timeout=5)
    answers = [asyncio.create_task(writes.submit(n)) for n in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*answers, return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    runner.fail = None
    assert await writes.submit(9) == 90


def test_a_write_terminated_while_waiting_for_a_lock_is_an_outage():
    # Neo4j 5 reports a transaction that timed out queued for the writers' lock as this ClientError;
    # as an outage it is a 503 with Retry-After (and fails its whole batch), not a 500.
    from neo4j.exceptions import Neo4jError

    def server_error(code: str) -> Neo4jError:  # built as the driver builds a server's FAILURE
        return Neo4jError._hydrate_neo4j(code=code, message="The transaction has been terminated.")

    assert is_outage(server_error("Neo.ClientError.Transaction.LockClientStopped"))
    assert is_outage(server_error("Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration"))
    assert not is_outage(server_error("Neo.ClientError.Statement.SyntaxError"))
