"""Verified tokens are remembered, but expiry still holds to the second."""

from __future__ import annotations

import pytest

from app.auth.tokens import TokenVerifier, mint_dev_token
from app.errors import Problem
from app.settings import Settings
from tests.support.clock import ManualClock


def test_a_remembered_token_still_expires_to_the_second(tmp_path):
    settings = Settings(jwt_dev_key_file=tmp_path / "dev-jwt.key")
    clock = ManualClock()
    issued = int(clock())
    verifier = TokenVerifier(settings, clock=clock)
    token = mint_dev_token(settings, subject="reader", roles=["reader"], orgs=["*"], ttl=2, now=issued)
    assert verifier.verify(token).subject == "reader"
    assert token in verifier._verified  # remembered: the next use skips the signature
    clock.advance(issued + 2 - clock() - 0.001)  # the last instant before exp
    assert verifier.verify(token).subject == "reader"
    clock.advance(0.001)  # exp itself: no leeway at all
    with pytest.raises(Problem) as refused:
        verifier.verify(token)
    assert "invalid_token" in refused.value.headers["WWW-Authenticate"]


async def test_a_tampered_copy_of_a_remembered_token_is_refused(client, tokens, chain6):
    token = tokens.mint("reader")
    url = f"/v1/orgs/{chain6[0]}/flags/beta"
    assert (await client.get(url, headers={"Authorization": f"Bearer {token}"})).status_code == 200
    header, payload, signature = token.split(".")
    tampered = ".".join([header, payload, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")])
    assert (await client.get(url, headers={"Authorization": f"Bearer {tampered}"})).status_code == 401
