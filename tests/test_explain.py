"""`GET .../explain` at depth: the chain follows a moved subtree and shows a cleared value as null."""

from __future__ import annotations


async def explain(client, tokens, org, flag) -> dict:
    response = await client.get(f"/v1/orgs/{org}/flags/{flag}/explain", headers=tokens.reader())
    assert response.status_code == 200, response.text
    return response.json()


async def test_chain_after_a_clear_and_a_move(client, tokens, chain6, uid, make_orgs):
    writer = tokens.writer()
    other_root, other_mid = uid("r0"), uid("r1")
    await make_orgs([(other_root, None), (other_mid, other_root)])
    for org, value in ((chain6[1], "dark"), (chain6[4], "light"), (other_mid, "light")):
        response = await client.put(f"/v1/orgs/{org}/flags/theme", json={"value": value}, headers=writer)
        assert response.status_code == 200, response.text
    leaf = chain6[6]
    before = await explain(client, tokens, leaf, "theme")
    assert (before["value"], before["reason"], before["source_org"]) == ("light", "inherited", chain6[4])

    # Cleared on l4: the leaf inherits l1's value again, and the chain shows l4 unset.
    assert (await client.delete(f"/v1/orgs/{chain6[4]}/flags/theme", headers=writer)).status_code == 204
    cleared = await explain(client, tokens, leaf, "theme")
    assert (cleared["value"], cleared["source_org"]) == ("dark", chain6[1])
    assert cleared["chain"] == [
        {"org": org, "value": "dark" if org == chain6[1] else None, "active": org == chain6[1], "sealed": False}
        for org in reversed(chain6)
    ]

    # l5 (with the leaf below it) moves under the other tree: the chain is the new ancestry.
    moved = await client.patch(f"/v1/orgs/{chain6[5]}", json={"parent": other_mid}, headers=tokens.admin())
    assert moved.status_code == 200, moved.text
    after = await explain(client, tokens, leaf, "theme")
    assert after == {
        "org": leaf,
        "flag": "theme",
        "value": "light",
        "reason": "inherited",
        "source_org": other_mid,
        "chain": [
            {"org": leaf, "value": None, "active": False, "sealed": False},
            {"org": chain6[5], "value": None, "active": False, "sealed": False},
            {"org": other_mid, "value": "light", "active": True, "sealed": False},
            {"org": other_root, "value": None, "active": False, "sealed": False},
        ],
    }
    # The old ancestors' values no longer reach it; the flag's default applies when none is set.
    defaults = await explain(client, tokens, leaf, "banner")
    assert (defaults["value"], defaults["reason"], defaults["source_org"]) == ("", "default", None)
    assert [link["org"] for link in defaults["chain"]] == [leaf, chain6[5], other_mid, other_root]
    assert {link["value"] for link in defaults["chain"]} == {None}
