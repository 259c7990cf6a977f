"""Flag values against the real graph: inheritance at depth, sets, clears, seed paths."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.http.app import create_app


async def effective(client, tokens, org, flag):
    response = await client.get(f"/v1/orgs/{org}/flags/{flag}", headers=tokens.reader())
    assert response.status_code == 200, response.text
    return response.json()


async def put(client, tokens, org, flag, value, **kwargs):
    return await client.put(f"/v1/orgs/{org}/flags/{flag}", json={"value": value},
                            headers=kwargs.get("headers") or tokens.writer())


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
    [("dark-mode", True), ("retention-days", 90), ("max-upload-mb", 12.5), ("theme", "dark"),
     ("banner", "Maintenance at 22:00 UTC"), ("limits", {"seats": 50, "tier": "gold"})],
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
    by_header = await client.get(f"/v1/orgs/{chain6[4]}/flags",
                                 headers={**tokens.reader(), "X-Flag-Set": "ui, storage"})
    assert set(by_header.json()["flags"]) == {"dark-mode", "beta", "theme", "max-upload-mb", "retention-days"}


async def test_explain_walks_the_chain(client, tokens, chain6):
    await put(client, tokens, chain6[1], "retention-days", 7)
    await put(client, tokens, chain6[4], "retention-days", 60)
    response = await client.get(f"/v1/orgs/{chain6[6]}/flags/retention-days/explain", headers=tokens.reader())
    assert response.status_code == 200
    body = response.json()
    assert (body["value"], body["reason"], body["source_org"]) == (60, "inherited", chain6[4])
    expected = [{"org": org, "value": {chain6[1]: 7, chain6[4]: 60}.get(org), "active": org in (chain6[1], chain6[4]),
                 "sealed": False} for org in reversed(chain6)]
    assert body["chain"] == expected


class TestSeedPaths:
    async def test_get_alias_answers_like_v1(self, client, tokens, chain6):
        await put(client, tokens, chain6[0], "dark-mode", True)
        alias = await client.get(f"/{chain6[3]}/dark-mode", headers=tokens.reader())
        assert alias.status_code == 200
        assert alias.json() == await effective(client, tokens, chain6[3], "dark-mode")

    @pytest.mark.parametrize(
        ("flag", "segment", "stored"),
        [("dark-mode", "TRUE", True), ("dark-mode", "false", False), ("retention-days", "42", 42),
         ("retention-days", "365", 365), ("max-upload-mb", "2.5e1", 25.0), ("theme", "dark", "dark"),
         ("banner", "Hello%20world%2Fagain", "Hello world/again"),
         ("limits", "%7B%22seats%22%3A9%7D", {"seats": 9})],
    )
    async def test_post_alias_parses_by_type(self, client, tokens, chain6, flag, segment, stored):
        response = await client.post(f"/{chain6[2]}/{flag}/{segment}", headers=tokens.writer())
        assert response.status_code == 200, response.text
        assert response.json()["value"] == stored
        assert (await effective(client, tokens, chain6[5], flag))["value"] == stored

    @pytest.mark.parametrize(
        ("flag", "segment"),
        [("dark-mode", "yes"), ("dark-mode", "1"), ("retention-days", "1.5"), ("retention-days", "0"),
         ("retention-days", "99999"), ("max-upload-mb", "NaN"), ("max-upload-mb", "1e999"), ("theme", "blue"),
         ("limits", "%5B1%2C2%5D"), ("limits", "not-json")],
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
    answers = await asyncio.gather(*(put(client, tokens, leaf, "retention-days", 100 + i)
                                     for i, leaf in enumerate(leaves)))
    assert [answer.status_code for answer in answers] == [200] * 50
    for i, leaf in enumerate(leaves):
        assert (await effective(client, tokens, leaf, "retention-days"))["value"] == 100 + i
    events = (await client.get(f"/v1/audit?org={root}&subtree=true&flag=retention-days&limit=1000",
                               headers=tokens.admin())).json()["events"]
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
    async with LifespanManager(application, startup_timeout=60), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://test") as own:
        before = (await own.get(f"/v1/audit?org={org}&limit=1000", headers=tokens.admin())).json()["events"]
        holder = await _hold_a_place(application.state.services.db.write)
        await _expect_refused_for_load(put(own, tokens, org, "retention-days", 77))
        await holder
        assert (await effective(own, tokens, org, "retention-days"))["value"] != 77
        after = (await own.get(f"/v1/audit?org={org}&limit=1000", headers=tokens.admin())).json()["events"]
        assert after == before  # nothing of the refused write
        assert (await put(own, tokens, org, "retention-days", 77)).status_code == 200  # the place is free again


async def test_database_reads_beyond_the_admitted_are_refused_fast_while_cached_lookups_answer(
        settings_for, tokens, chain6):
    """With every read place taken, a cache miss waits read_queue_timeout, then 503; hits still answer."""
    cached, uncached = chain6[3], chain6[4]
    application = create_app(settings_for(read_concurrency=1, read_queue_timeout=0.3))
    async with LifespanManager(application, startup_timeout=60), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://test") as own:
        expected = await effective(own, tokens, cached, "retention-days")  # now in this instance's cache
        holder = await _hold_a_place(application.state.services.db.read)
        await _expect_refused_for_load(own.get(f"/v1/orgs/{uncached}/flags/retention-days", headers=tokens.reader()))
        assert await effective(own, tokens, cached, "retention-days") == expected  # from the cache
        await holder
        assert (await own.get(f"/v1/orgs/{uncached}/flags/retention-days", headers=tokens.reader())).status_code == 200


async def test_concurrent_writes_to_one_value_audit_every_transition(client, tokens, chain6):
    """Racing writers on one org and flag: the audit trail chains old -> new without gaps."""
    org = chain6[3]
    values = [i % 7 + 1 for i in range(30)]
    await asyncio.gather(*(put(client, tokens, org, "retention-days", value) for value in values))
    events = (await client.get(f"/v1/audit?org={org}&flag=retention-days&limit=1000",
                               headers=tokens.admin())).json()["events"]
    oldest_first = list(reversed(events))
    assert oldest_first[0]["old"] is None
    for before, after in zip(oldest_first, oldest_first[1:], strict=False):
        assert after["old"] == before["new"]
    final = (await effective(client, tokens, org, "retention-days"))["value"]
    assert oldest_first[-1]["new"] == final
