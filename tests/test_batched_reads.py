"""Cache misses read in batches (app/cache/batched_reads.py): right answers, fewer round trips.

Correctness only: how fast batching is belongs to `make bench` (bench/cold.py).
"""

from __future__ import annotations

import asyncio

import pytest

from app.cache.batched_reads import BatchedReads
from app.store.database import DatabaseUnavailable

# --- the batcher alone, over a plain function ----------------------------------------


async def test_one_bad_key_does_not_fail_the_others():
    sent: list[list[str]] = []

    async def read_batch(keys):
        sent.append(list(keys))
        if "bad" in keys:
            raise ValueError("cannot read 'bad'")
        return {key: key.upper() for key in keys if key != "missing"}

    batched = BatchedReads(read_batch, batch_size=10, in_flight=1)
    keys = ["a", "b", "bad", "c", "missing"]
    answers = await asyncio.gather(*(batched.read(key) for key in keys), return_exceptions=True)
    assert answers[:2] == ["A", "B"] and answers[3:] == ["C", None]
    assert isinstance(answers[2], ValueError)
    assert sorted(sent[0]) == sorted(keys)  # all together first, then each on its own


async def test_an_outage_fails_the_whole_batch_at_once():
    calls = 0

    async def read_batch(keys):
        nonlocal calls
        calls += 1
        raise DatabaseUnavailable(1.0)

    batched = BatchedReads(read_batch, batch_size=10, in_flight=1)
    answers = await asyncio.gather(*(batched.read(key) for key in "abc"), return_exceptions=True)
    assert all(isinstance(answer, DatabaseUnavailable) for answer in answers)
    assert calls == 1  # not retried key by key: the database is away for all of them


async def test_beyond_what_may_wait_reads_are_refused_at_once():
    release = asyncio.Event()

    async def read_batch(keys):
        await release.wait()
        return {key: key for key in keys}

    batched = BatchedReads(read_batch, batch_size=1, in_flight=1, max_waiting=2)
    first = asyncio.create_task(batched.read("sent"))
    while not batched.batches:
        await asyncio.sleep(0)  # the first batch is out
    waiting = [asyncio.create_task(batched.read(key)) for key in ("w1", "w2")]
    await asyncio.sleep(0)
    with pytest.raises(DatabaseUnavailable):
        await batched.read("w3")
    release.set()
    assert await first == "sent"
    assert [await task for task in waiting] == ["w1", "w2"]


async def test_a_key_that_waited_past_the_queue_timeout_is_refused_not_sent():
    release = asyncio.Event()
    sent: list[str] = []

    async def read_batch(keys):
        sent.extend(keys)
        await release.wait()
        return {key: key for key in keys}

    batched = BatchedReads(read_batch, batch_size=1, in_flight=1, queue_timeout=0.05)
    first = asyncio.create_task(batched.read("first"))
    while not batched.batches:
        await asyncio.sleep(0)
    late = asyncio.create_task(batched.read("late"))
    await asyncio.sleep(0.1)  # longer than the queue timeout, behind a batch that does not return
    release.set()
    assert await first == "first"
    with pytest.raises(DatabaseUnavailable):
        await late
    assert sent == ["first"]


# --- over the real graph -----------------------------------------------------------


async def test_concurrent_misses_of_many_orgs_take_fewer_round_trips_and_answer_right(
    app, client, tokens, uid, make_orgs, monkeypatch
):
    services = app.state.services
    root = uid("root")
    orgs = [uid(f"o{n}") for n in range(50)]
    await make_orgs([(root, None), *((org, root) for org in orgs)])
    await client.put(f"/v1/orgs/{root}/flags/retention-days", json={"value": 90}, headers=tokens.writer())
    for org in orgs[::5]:
        await client.put(f"/v1/orgs/{org}/flags/retention-days", json={"value": 7}, headers=tokens.writer())
    services.cache.clear()
    reads: list[int] = []
    real_read = services.db.read_autocommit

    async def counted_read(work, *args, **kwargs):
        reads.append(len(args[0]))
        await asyncio.sleep(0.05)  # a round trip long enough for the others to queue behind it
        return await real_read(work, *args, **kwargs)

    monkeypatch.setattr(services.db, "read_autocommit", counted_read)
    missing = uid("missing")
    answers = await asyncio.gather(
        *(client.get(f"/v1/orgs/{org}/flags/retention-days", headers=tokens.reader()) for org in orgs),
        *(client.get(f"/v1/orgs/{org}/flags", headers=tokens.reader()) for org in orgs[:10]),
        client.get(f"/v1/orgs/{missing}/flags/retention-days", headers=tokens.admin()),
    )
    singles, bulk, absent = answers[:50], answers[50:60], answers[60]
    assert [(a.status_code, a.json()["value"]) for a in singles] == [(200, 7 if n % 5 == 0 else 90) for n in range(50)]
    assert [a.json()["flags"]["retention-days"]["value"] for a in bulk] == [7 if n % 5 == 0 else 90 for n in range(10)]
    assert absent.status_code == 404
    print(f"{sum(reads)} lookups in {len(reads)} round trips: {reads}")
    assert sum(reads) == 61
    assert len(reads) < 61 / 2


async def test_a_batch_in_flight_across_a_write_here_never_fills_the_older_value(
    app, client, tokens, uid, make_orgs, monkeypatch, request
):
    services = app.state.services
    # A move heard mid-scenario (the shared app follows the feed, and earlier tests moved orgs
    # through other instances) drops every cached chain, as any move must, and this batch's fill
    # of the target's chain with it: then nothing is left to check, and the scenario runs again.
    # It is seen, not guessed: a heard move bumps the cache's chain epoch.
    # (A move pending when the test starts is waited for by conftest's shared_app_settled.)
    for attempt in range(3):
        target, moves_heard, cached = await _batch_across_a_write(
            services, client, tokens, uid, make_orgs, monkeypatch, request, attempt
        )
        if not moves_heard:
            break
    else:
        pytest.fail("a move was heard during each of three attempts")
    # The batch began before the write: its "dark" must not replace the written value. (stale_ok:
    # what the cache holds, whether or not the feed answered in the last 2 s on a loaded machine.)
    assert cached == [(target, "light")]
    answer = await client.get(f"/v1/orgs/{target}/flags/theme", headers=tokens.reader())
    assert answer.json()["value"] == "light"


async def _batch_across_a_write(services, client, tokens, uid, make_orgs, monkeypatch, request, attempt):
    """A batch of cold reads that reads "dark" for the target, held until a write here commits
    "light". Answers the target, whether a move was heard meanwhile, and what the cache holds for it."""
    orgs = [uid(f"b{attempt}-{n}") for n in range(5)]
    await make_orgs([(org, None) for org in orgs])
    target = orgs[2]
    await client.put(f"/v1/orgs/{target}/flags/theme", json={"value": "dark"}, headers=tokens.writer())
    services.cache.clear()
    chain_epoch = services.cache.epochs()[1]
    release, read_done = asyncio.Event(), asyncio.Event()
    real_read = services.db.read_autocommit

    async def held_read(work, *args, **kwargs):  # the real read, handed back only when released
        result = await real_read(work, *args, **kwargs)
        read_done.set()
        await release.wait()
        return result

    monkeypatch.setattr(services.db, "read_autocommit", held_read)
    # Released whatever happens, so a failure here cannot leave reads hanging for later tests.
    request.addfinalizer(release.set)
    before = [asyncio.create_task(client.get(f"/v1/orgs/{org}/flags/theme", headers=tokens.reader())) for org in orgs]
    await read_done.wait()  # the batch has read "dark" for the target
    monkeypatch.setattr(services.db, "read_autocommit", real_read)
    written = await client.put(f"/v1/orgs/{target}/flags/theme", json={"value": "light"}, headers=tokens.writer())
    assert written.status_code == 200
    release.set()
    for task in before:
        assert (await task).status_code == 200
    moves_heard = services.cache.epochs()[1] != chain_epoch
    return target, moves_heard, services.cache.flag_chain(target, "theme", stale_ok=True)


async def test_the_batch_statement_starts_from_the_org_index_never_a_scan(app, chain6):
    """EXPLAIN: each org found by the unique index seek; no label, index or all-nodes scan anywhere."""
    from app.store.cypher import cypher

    async with app.state.services.db.driver.session() as session:
        result = await session.run(
            "EXPLAIN " + cypher("lookup_chains"), lookups=[[org, "theme"] for org in chain6] + [[chain6[0], None]]
        )
        plan = (await result.consume()).plan
    operators: list[str] = []

    def walk(node: dict) -> None:
        operators.append(node["operatorType"].split("@")[0])
        for child in node.get("children", []):
            walk(child)

    walk(plan)
    assert "NodeUniqueIndexSeek" in operators, operators
    assert not [op for op in operators if "Scan" in op], operators
