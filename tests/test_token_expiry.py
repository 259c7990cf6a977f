"""Expiry with no leeway (docs/api.md "Authentication"): a token is refused from its `exp` on.

The clock is ours: `time.time` is replaced for the verifier and for joserfc's claim
checks alike, so the boundary is tested exactly, without sleeping.
"""

from __future__ import annotations

import time

import pytest
from joserfc import jwt

from app.auth.tokens import DEV_ALGORITHMS, TokenVerifier, load_dev_key
from app.errors import Problem

T = 2_000_000_000  # a whole second, well in the future of any real clock


@pytest.fixture
def clock(monkeypatch):
    now = [T - 10.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


def token_expiring_at(settings, exp: float) -> str:
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "alice",
        "iat": T - 100,
        "exp": exp,
        "roles": ["reader"],
        "orgs": ["*"],
    }
    return jwt.encode({"alg": "HS256"}, claims, load_dev_key(settings.jwt_dev_key_file), algorithms=DEV_ALGORITHMS)


def refused(verifier: TokenVerifier, token: str) -> bool:
    try:
        verifier.verify(token)
    except Problem as problem:
        assert problem.status == 401
        return True
    return False


def test_a_token_is_refused_from_its_exp_second_on(migrated, clock):
    token = token_expiring_at(migrated, T)
    remembering = TokenVerifier(migrated, clock=lambda: clock[0])
    clock[0] = T - 0.001
    assert not refused(remembering, token)
    assert not refused(remembering, token)  # the remembered copy, still valid
    clock[0] = T
    assert refused(remembering, token)  # remembered, but expired now
    assert refused(TokenVerifier(migrated, clock=lambda: clock[0]), token)  # never seen: refused just the same
    clock[0] = T + 0.999
    assert refused(TokenVerifier(migrated, clock=lambda: clock[0]), token)


def test_a_fractional_exp_is_not_rounded_in_the_tokens_favour(migrated, clock):
    # exp = T + 0.5: at T + 0.6 the token has expired, although both fall in second T.
    token = token_expiring_at(migrated, T + 0.5)
    remembering = TokenVerifier(migrated, clock=lambda: clock[0])
    clock[0] = T + 0.4
    assert not refused(remembering, token)
    clock[0] = T + 0.6
    assert refused(TokenVerifier(migrated, clock=lambda: clock[0]), token)
    assert refused(remembering, token)
