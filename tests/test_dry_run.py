"""Dry runs (docs/api.md, "Safe changes"): every check, nothing written, the orgs a change reaches."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.http.app import create_app


@pytest.fixture
async def tree(uid, make_orgs) -> dict[str, str]:
    """root -> a -> a1, a -> a2 -> a21, root -> b -> b1; a2 sets dark-mode (true) itself."""
    names = {name: uid(name) for name in ("root", "a", "a1", "a2", "a21", "b", "b1")}
    parent = {"root": None, "a": "root", "a1": "a", "a2": "a", "a21": "a2", "b": "root", "b1": "b"}
    await make_orgs([(names[name], names[above] if above else None) for name, above in parent.items()])
    return names


async def _set(client, tokens, org, flag, value):
    response = await client.put(f"/v1/orgs/{org}/flags/{flag}", json={"value": value}, headers=tokens.writer())
    assert response.status_code == 200, response.text


async def _events(client, tokens, org) -> list:
    response = await client.get("/v1/audit", params={"org": org, "subtree": "true"}, headers=tokens.admin())
    assert response.status_code == 200, response.text
    return response.json()["events"]


async def test_set_counts_the_target_and_unshielded_descendants_and_writes_nothing(client, tokens, tree):
    await _set(client, tokens, tree["a2"], "dark-mode", True)
    before = await _events(client, tokens, tree["root"])
    response = await client.put(
        f"/v1/orgs/{tree['root']}/flags/dark-mode?dry_run=true", json={"value": True}, headers=tokens.writer()
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True
    # a2 sets its own value: it and a21 below it keep theirs.
    reached = {tree[name] for name in ("root", "a", "a1", "b", "b1")}
    assert body["affected"]["orgs"] == 5 and body["affected"]["exact"] is True
    assert set(body["affected"]["sample"]) == reached
    value = await client.get(f"/v1/orgs/{tree['b1']}/flags/dark-mode", headers=tokens.reader())
    assert value.json()["value"] is False
    assert await _events(client, tokens, tree["root"]) == before


async def test_a_change_of_own_value_that_keeps_the_effective_one_reaches_nobody(client, tokens, tree):
    # dark-mode defaults to false: setting false on the root changes no org's effective value.
    response = await client.put(
        f"/v1/orgs/{tree['root']}/flags/dark-mode?dry_run=true", json={"value": False}, headers=tokens.writer()
    )
    assert response.json()["affected"] == {"orgs": 0, "exact": True, "sample": []}


async def test_delete_and_seed_toggle_dry_runs(client, tokens, tree):
    await _set(client, tokens, tree["a"], "theme", "dark")
    cleared = await client.delete(f"/v1/orgs/{tree['a']}/flags/theme?dry_run=true", headers=tokens.writer())
    assert cleared.status_code == 200, cleared.text
    # a's whole subtree goes back from dark to the default (light).
    assert cleared.json()["affected"]["orgs"] == 4
    assert set(cleared.json()["affected"]["sample"]) == {tree[n] for n in ("a", "a1", "a2", "a21")}
    still = await client.get(f"/v1/orgs/{tree['a21']}/flags/theme", headers=tokens.reader())
    assert still.json()["value"] == "dark"
    nothing = await client.delete(f"/v1/orgs/{tree['b']}/flags/theme?dry_run=true", headers=tokens.writer())
    assert nothing.json()["affected"] == {"orgs": 0, "exact": True, "sample": []}
    seed = await client.post(f"/{tree['b']}/dark-mode/true?dry_run=true", headers=tokens.writer())
    assert seed.status_code == 200, seed.text
    assert seed.json()["affected"]["orgs"] == 2
    assert set(seed.json()["affected"]["sample"]) == {tree["b"], tree["b1"]}
    assert (await client.get(f"/v1/orgs/{tree['b']}/flags/dark-mode", headers=tokens.reader())).json()["value"] is False


async def test_move_counts_orgs_whose_value_of_any_flag_changes(client, tokens, tree):
    await _set(client, tokens, tree["a2"], "dark-mode", True)
    await _set(client, tokens, tree["b1"], "dark-mode", False)
    before = await _events(client, tokens, tree["root"])
    # b and b1 move under a2: b takes dark-mode true from a2; b1 sets false itself.
    response = await client.patch(
        f"/v1/orgs/{tree['b']}?dry_run=true", json={"parent": tree["a2"]}, headers=tokens.admin()
    )
    assert response.status_code == 200, response.text
    assert response.json()["affected"] == {"orgs": 1, "exact": True, "sample": [tree["b"]]}
    # Under a sibling with the same values, nothing changes.
    same = await client.patch(f"/v1/orgs/{tree['b']}?dry_run=true", json={"parent": tree["a"]}, headers=tokens.admin())
    assert same.json()["affected"]["orgs"] == 0
    org = await client.get(f"/v1/orgs/{tree['b']}", headers=tokens.reader())
    assert org.json()["parent"] == tree["root"]
    assert await _events(client, tokens, tree["root"]) == before


async def test_counting_stops_at_the_configured_limit(settings_for, tokens, tree):
    application = create_app(settings_for(dry_run_max=3))
    async with LifespanManager(application, startup_timeout=60):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://limited.test") as limited:
            response = await limited.put(
                f"/v1/orgs/{tree['root']}/flags/beta?dry_run=true", json={"value": True}, headers=tokens.writer()
            )
    assert response.status_code == 200, response.text
    affected = response.json()["affected"]
    assert (affected["orgs"], affected["exact"]) == (3, False)
    assert 1 <= len(affected["sample"]) <= 3


async def test_large_subtree_sample_holds_at_most_twenty(client, tokens, uid, make_orgs):
    root = uid("wide")
    await make_orgs([(root, None)] + [(uid(f"c{i}"), root) for i in range(30)])
    response = await client.put(
        f"/v1/orgs/{root}/flags/beta?dry_run=true", json={"value": True}, headers=tokens.writer()
    )
    affected = response.json()["affected"]
    assert (affected["orgs"], affected["exact"], len(affected["sample"])) == (31, True, 20)


def _bad_requests(tree):
    root, a, b = tree["root"], tree["a"], tree["b"]
    return [
        ("PUT", f"/v1/orgs/{root}/flags/dark-mode", {"value": "yes"}, "writer", ()),  # invalid-value
        ("PUT", f"/v1/orgs/{root}/flags/no-such-flag", {"value": True}, "writer", ()),  # flag-not-found
        ("PUT", f"/v1/orgs/{root}-nope/flags/dark-mode", {"value": True}, "writer", ()),  # org-not-found
        ("PUT", f"/v1/orgs/{root}/flags/dark-mode", {"value": True}, "writer", (b,)),  # outside scope
        ("PUT", f"/v1/orgs/{root}/flags/dark-mode", {"value": True}, "reader", ()),  # role
        ("PUT", f"/v1/orgs/{root}/flags/dark-mode", {"wrong": True}, "writer", ()),  # invalid-body
        ("PUT", "/v1/orgs/bad%20id/flags/dark-mode", {"value": True}, "writer", ()),  # invalid-id
        ("DELETE", f"/v1/orgs/{root}/flags/no-such-flag", None, "writer", ()),
        ("DELETE", f"/v1/orgs/{root}/flags/dark-mode", None, "writer", (b,)),
        ("POST", f"/{root}/retention-days/99999", None, "writer", ()),  # above max
        ("POST", f"/{root}-nope/dark-mode/true", None, "writer", ()),
        ("PATCH", f"/v1/orgs/{a}", {"parent": tree["a21"]}, "admin", ()),  # cycle
        ("PATCH", f"/v1/orgs/{a}", {"parent": f"{root}-nope"}, "admin", ()),  # parent-not-found
        ("PATCH", f"/v1/orgs/{a}", {"parent": b}, "writer", ()),  # role
        ("PATCH", f"/v1/orgs/{a}", {"parent": b}, "admin", (a,)),  # the new parent is outside scope
        ("PATCH", f"/v1/orgs/{a}", {"parent": None}, "admin", (root,)),  # only '*' makes roots
    ]


async def test_a_dry_run_of_a_bad_request_answers_the_real_requests_error(client, tokens, tree):
    before = await _events(client, tokens, tree["root"])
    for method, path, body, role, scope in _bad_requests(tree):
        headers = tokens.headers(role, *scope)
        real = await client.request(method, path, json=body, headers=headers)
        dry = await client.request(method, path, params={"dry_run": "true"}, json=body, headers=headers)
        assert real.status_code >= 400, (method, path, real.text)
        assert (dry.status_code, dry.json()["type"]) == (real.status_code, real.json()["type"]), (method, path)
    assert await _events(client, tokens, tree["root"]) == before


async def test_dry_run_must_be_true_or_false(client, tokens, tree):
    response = await client.put(
        f"/v1/orgs/{tree['root']}/flags/beta?dry_run=maybe", json={"value": True}, headers=tokens.writer()
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("invalid-query")
    real = await client.put(
        f"/v1/orgs/{tree['root']}/flags/beta?dry_run=false", json={"value": True}, headers=tokens.writer()
    )
    assert real.status_code == 200 and real.json()["value"] is True


async def test_counting_by_subtraction_finds_the_same_orgs(client, tokens, tree, monkeypatch):
    """Large subtrees are counted as the subtree minus what setters below shield (two plain walks)."""
    from app.services import dry_run as dry_runs

    monkeypatch.setattr(dry_runs, "SMALL_SUBTREE", 0)
    await _set(client, tokens, tree["a2"], "dark-mode", True)
    await _set(client, tokens, tree["b1"], "dark-mode", False)  # shields itself only
    response = await client.put(
        f"/v1/orgs/{tree['root']}/flags/dark-mode?dry_run=true", json={"value": True}, headers=tokens.writer()
    )
    affected = response.json()["affected"]
    assert (affected["orgs"], affected["exact"]) == (4, True)  # root, a, a1, b
    assert set(affected["sample"]) == {tree[name] for name in ("root", "a", "a1", "b")}
    # A setter under another setter is shielded already: counted once.
    await _set(client, tokens, tree["a21"], "dark-mode", False)
    again = await client.put(
        f"/v1/orgs/{tree['a']}/flags/dark-mode?dry_run=true", json={"value": True}, headers=tokens.writer()
    )
    assert again.json()["affected"]["orgs"] == 2  # a, a1
    monkeypatch.setattr(dry_runs, "FEW_SETTERS", -1)  # a popular flag: the pruned walk, same answer
    pruned = await client.put(
        f"/v1/orgs/{tree['a']}/flags/dark-mode?dry_run=true", json={"value": True}, headers=tokens.writer()
    )
    assert pruned.json()["affected"] == again.json()["affected"]


async def test_a_popular_flag_is_counted_without_sizing_the_subtree_first(client, tokens, tree, monkeypatch):
    """The setters are counted first (a degree): a flag set on more than FEW_SETTERS orgs takes the
    pruned walk whatever the subtree's size, so the walk that sizes it is not made at all."""
    from app.services import dry_run as dry_runs
    from app.store import dry_run as dry_run_store

    sized: list[list[str]] = []
    real_subtrees = dry_run_store.subtrees

    async def counting_subtrees(tx, roots, cap, sample):
        sized.append(roots)
        return await real_subtrees(tx, roots, cap, sample)

    monkeypatch.setattr(dry_run_store, "subtrees", counting_subtrees)
    await _set(client, tokens, tree["a2"], "dark-mode", True)
    monkeypatch.setattr(dry_runs, "FEW_SETTERS", -1)
    popular = await client.put(
        f"/v1/orgs/{tree['root']}/flags/dark-mode?dry_run=true", json={"value": True}, headers=tokens.writer()
    )
    assert popular.json()["affected"]["orgs"] == 5  # root, a, a1, b, b1 (a2 and a21 keep a2's own)
    assert sized == []
    monkeypatch.setattr(dry_runs, "FEW_SETTERS", 200_000)
    few = await client.put(
        f"/v1/orgs/{tree['root']}/flags/dark-mode?dry_run=true", json={"value": True}, headers=tokens.writer()
    )
    assert few.json()["affected"] == popular.json()["affected"]
    assert sized == [[tree["root"]]]  # a flag set on few orgs: the size decides the way
