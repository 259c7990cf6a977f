"""Verified tokens are remembered, but expiry still holds to the second."""

from __future__ import annotations

import asyncio
import time


async def test_a_remembered_token_still_expires(client, tokens, chain6):
    token = tokens.mint("reader", ttl=2)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/v1/orgs/{chain6[0]}/flags/beta"
    assert (await client.get(url, headers=headers)).status_code == 200
    assert (await client.get(url, headers=headers)).status_code == 200  # now served from the verified-token cache
    expiry = int(time.time()) + 2
    await asyncio.sleep(max(0.0, expiry - time.time()) + 0.05)
    expired = await client.get(url, headers=headers)
    assert expired.status_code == 401
    assert "invalid_token" in expired.headers["www-authenticate"]


async def test_a_tampered_copy_of_a_remembered_token_is_refused(client, tokens, chain6):
    token = tokens.mint("reader")
    url = f"/v1/orgs/{chain6[0]}/flags/beta"
    assert (await client.get(url, headers={"Authorization": f"Bearer {token}"})).status_code == 200
    header, payload, signature = token.split(".")
    tampered = ".".join([header, payload, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")])
    assert (await client.get(url, headers={"Authorization": f"Bearer {tampered}"})).status_code == 401
