"""Audit and change-feed filters seek an index or scan a bounded window (issue 10), and a
scoped change feed answers the `last` of the caller's own events, not everyone's."""

from __future__ import annotations

import pytest

from app.domain.access import Principal, Role
from app.services.audit import AuditFilter, AuditService
from app.services.changes import ChangeFeed
from app.store import audit as audit_store
from app.store.audit import AuditQuery, Change
from app.store.cypher import cypher
from app.store.database import Database


@pytest.fixture
async def db(migrated):
    database = Database(migrated)
    yield database
    await database.close()


async def append(db: Database, actor: str, org: str, count: int = 1, path: list[str] | None = None) -> list[int]:
    """`count` flag.set events about `org` by `actor`, as a change writes them; their seqs."""

    async def work(tx):
        await audit_store.claim_sequence(tx)
        first = await audit_store.append(
            tx, actor, [Change("flag.set", org, path or [org], old=None, new=i, flag="beta") for i in range(count)]
        )
        return list(range(first, first + count))

    return await db.write(work)


def admin_of(*orgs: str) -> Principal:
    return Principal("auditor", Role.admin, frozenset(orgs))


def operators(plan) -> list[tuple[str, str]]:
    found = [(plan["operatorType"].split("@")[0], str(plan.get("args", {}).get("Details", "")))]
    for child in plan.get("children", []):
        found += operators(child)
    return found


async def plans_of(db: Database, monkeypatch, query: AuditQuery) -> list[list[tuple[str, str]]]:
    """The plans (EXPLAIN) of every statement the store runs to answer `query`."""
    ran: list[tuple[str, dict]] = []
    real_fetch = audit_store.fetch
    ours: list[object] = []  # this read's transaction: the session app's follower and pruner fetch too

    async def recording(tx, statement, **params):
        if tx in ours:
            ran.append((statement, params))
        return await real_fetch(tx, statement, **params)

    async def page(tx):
        ours.append(tx)
        return await audit_store.events(tx, query)

    monkeypatch.setattr(audit_store, "fetch", recording)
    await db.read(page)
    monkeypatch.undo()

    async def explain(tx, text, params):
        return (await (await tx.run("EXPLAIN " + text, params)).consume()).plan

    return [operators(await db.read(explain, cypher(statement), params)) for statement, params in ran]


class TestIndexes:
    async def test_the_actor_filter_seeks_an_index_in_seq_order(self, db, monkeypatch):
        plans = await plans_of(db, monkeypatch, AuditQuery(before=2**63 - 1, limit=100, actor="ann"))
        assert plans
        for plan in plans:
            kinds = [kind for kind, _ in plan]
            assert not {"NodeByLabelScan", "AllNodesScan"} & set(kinds), plan
            # Newest first straight from the index: no sort of every event the actor ever made.
            assert not {"Sort", "Top", "PartialSort", "PartialTop"} & set(kinds), plan
        seeks = [details for plan in plans for kind, details in plan if kind == "NodeIndexSeek"]
        assert any("actor" in details for details in seeks), plans

    @pytest.mark.parametrize("field", ["org", "flag"])
    async def test_org_and_flag_filters_seek_an_index_too(self, db, monkeypatch, field):
        plans = await plans_of(db, monkeypatch, AuditQuery(before=2**63 - 1, limit=100, **{field: "x"}))
        for plan in plans:
            kinds = {kind for kind, _ in plan}
            assert not {"NodeByLabelScan", "AllNodesScan", "Sort", "Top"} & kinds, plan
        assert any(field in details for plan in plans for kind, details in plan if kind == "NodeIndexSeek"), plans


class TestBoundedScans:
    async def test_a_scoped_audit_page_scans_a_window_and_says_where_to_go_on(self, db, uid):
        mine, theirs = uid("mine"), uid("theirs")
        own = await append(db, "ann", mine)
        await append(db, "bob", theirs, count=12)
        service = AuditService(db, scan=5)
        page, following = await service.page(admin_of(mine), AuditFilter(limit=100))
        # The newest five events are all theirs: nothing to show, but a cursor to go on with.
        assert page == [] and following is not None
        seen, pages = [], 1
        while following is not None and not seen:
            page, following = await service.page(admin_of(mine), AuditFilter(limit=100, cursor=following))
            seen += page
            pages += 1
        assert [e["seq"] for e in seen] == own
        assert pages == 3  # 13 events, 5 a request

    async def test_a_subtree_filter_is_bounded_the_same_way(self, db, uid):
        root, leaf = uid("root"), uid("leaf")
        own = await append(db, "ann", leaf, path=[leaf, root])
        await append(db, "bob", uid("elsewhere"), count=7)
        service = AuditService(db, scan=4)
        first, following = await service.page(admin_of("*"), AuditFilter(org=root, subtree=True, limit=100))
        assert first == [] and following is not None
        second, _ = await service.page(admin_of("*"), AuditFilter(org=root, subtree=True, limit=100, cursor=following))
        assert [e["seq"] for e in second] == own

    async def test_an_actor_filter_alone_needs_no_window(self, db, uid):
        actor = uid("actor")
        own = await append(db, actor, uid("org"))
        await append(db, "bob", uid("other"), count=9)
        page, following = await AuditService(db, scan=3).page(admin_of("*"), AuditFilter(actor=actor, limit=100))
        assert [e["seq"] for e in page] == own and following is None


class TestScopedFeed:
    async def test_last_is_the_callers_own_not_the_global_one(self, db, uid):
        a, b = uid("tenant-a"), uid("tenant-b")
        feed = ChangeFeed(db)
        start = (await feed.page(admin_of("*"), 10**15)).last
        own_a = await append(db, "ann", a)
        own_b = await append(db, "bob", b, count=3)
        page_a = await feed.page(admin_of(a), start)
        page_b = await feed.page(admin_of(b), start)
        assert [e["seq"] for e in page_a.events] == own_a
        assert page_a.last == own_a[-1]  # not own_b[-1], the newest: that is tenant b's activity
        assert [e["seq"] for e in page_b.events] == own_b
        assert page_b.last == own_b[-1]
        # Following from `last` skips nothing of the caller's own.
        later_a = await append(db, "ann", a, count=2)
        await append(db, "bob", b)
        assert [e["seq"] for e in (await feed.page(admin_of(a), page_a.last)).events] == later_a
        # A quiet caller's `last` stays where it was.
        assert (await feed.page(admin_of(a), later_a[-1])).last == later_a[-1]

    async def test_a_scoped_follower_gets_past_long_runs_of_others_events(self, db, uid):
        a, b = uid("tenant-a"), uid("tenant-b")
        feed = ChangeFeed(db, scan=5)
        start = (await feed.page(admin_of("*"), 10**15)).last
        await append(db, "bob", b, count=12)
        own = await append(db, "ann", a)
        seen, after = [], start
        for _ in range(10):
            page = await feed.page(admin_of(a), after)
            seen += page.events
            if page.last == after:
                break
            after = page.last
        assert [e["seq"] for e in seen] == own
        assert after == own[-1]

    async def test_a_since_search_stops_where_the_log_is_older(self, db, uid):
        from datetime import UTC, datetime, timedelta

        old = await append(db, "ann", uid("old"), count=6)

        async def age(tx):
            await tx.run(
                "MATCH (e:AuditEvent) WHERE e.seq IN $seqs SET e.at = datetime() - duration({days: 1})", seqs=old
            )

        await db.write(age)
        recent = await append(db, "ann", uid("recent"), count=2)
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        page, following = await AuditService(db, scan=4).page(admin_of("*"), AuditFilter(since=since, limit=100))
        assert [e["seq"] for e in page] == recent[::-1]
        # The window's oldest event is a day old: nothing below it can be newer than `since`.
        assert following is None
