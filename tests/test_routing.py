"""The service through `neo4j://` routing (what a cluster needs), on the suite's server.

A single Neo4j 5 server answers routing requests, naming itself as leader and reader, so
this runs the routing driver's real code paths: routing table, reads sent as READ,
bookmarks. Toggles then lookups through the app: a lookup that follows a toggle on the same
instance sees it (read-your-writes by bookmarks, app/store/database.py).
"""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.http.app import create_app

FLAG = "retention-days"


@pytest.fixture
async def routed(settings_for):
    """A second app instance on the same server, through neo4j:// instead of bolt://."""
    settings = settings_for()
    uri = settings.neo4j_uri.replace("bolt://", "neo4j://", 1)
    assert uri.startswith("neo4j://"), f"the suite's server URI {settings.neo4j_uri} cannot be routed"
    application = create_app(settings.model_copy(update={"neo4j_uri": uri}))
    async with LifespanManager(application, startup_timeout=60):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://routed") as http:
            yield application, http


async def test_a_lookup_after_a_toggle_on_the_same_instance_sees_it(routed, tokens, uid):
    application, http = routed
    db = application.state.services.db
    root, mid, leaf, other_leaf = uid("root"), uid("mid"), uid("leaf"), uid("leaf2")
    created = await http.post(
        "/v1/orgs/bulk",
        headers=tokens.admin(),
        json=[
            {"id": root, "parent": None},
            {"id": mid, "parent": root},
            {"id": leaf, "parent": mid},
            {"id": other_leaf, "parent": mid},
        ],
    )
    assert created.status_code == 200, created.text
    # Reads through db.read right after the write that created the orgs.
    assert (await http.get(f"/v1/orgs/{leaf}", headers=tokens.admin())).status_code == 200

    assert (await http.get(f"/v1/orgs/{leaf}/flags/{FLAG}", headers=tokens.reader())).json()["value"] == 30
    before = set(await db.bookmarks.get_bookmarks())
    for value in (90, 7, 365):
        toggled = await http.put(f"/v1/orgs/{root}/flags/{FLAG}", json={"value": value}, headers=tokens.writer())
        assert toggled.status_code == 200, toggled.text
        # The cached leaf, and a leaf never asked before (a cold read on a READ session).
        assert (await http.get(f"/v1/orgs/{leaf}/flags/{FLAG}", headers=tokens.reader())).json()["value"] == value
    assert (await http.get(f"/v1/orgs/{other_leaf}/flags/{FLAG}", headers=tokens.reader())).json()["value"] == 365
    after = set(await db.bookmarks.get_bookmarks())
    assert after and after != before, "the writes left no bookmark in the instance's manager"


async def test_reads_start_from_the_bookmarks_of_the_writes_before_them(routed, tokens, uid, monkeypatch):
    """The real driver asks the instance's manager for bookmarks when a read begins, and gets
    some: the write's, or a newer one from the instance's pollers (a later bookmark covers it)."""
    application, http = routed
    db = application.state.services.db
    handed_out: list[set[str]] = []
    real_get = db.bookmarks.get_bookmarks

    async def recording_get():
        bookmarks = await real_get()
        handed_out.append(set(bookmarks))
        return bookmarks

    monkeypatch.setattr(db.bookmarks, "get_bookmarks", recording_get)
    root = uid("root")
    assert (
        await http.post("/v1/orgs/bulk", headers=tokens.admin(), json=[{"id": root, "parent": None}])
    ).status_code == 200
    assert await real_get(), "the write left no bookmark"
    handed_out.clear()
    response = await http.get(f"/v1/orgs/{root}", headers=tokens.admin())
    assert response.status_code == 200, response.text
    assert handed_out, "the read did not consult the bookmark manager"
    assert all(handed_out), f"a read began without bookmarks: {handed_out}"
