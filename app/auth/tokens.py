"""JWT bearer tokens: verification (joserfc) and development tokens.

Two key sources, never mixed (mixing HMAC and public keys invites algorithm
confusion): a JWKS file of RS256/ES256 public keys in production, or else a local
HS256 development key, generated on first use into an ignored file.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from app.domain.access import Principal, principal_from_claims
from app.errors import Problem
from app.settings import Settings

ASYMMETRIC_ALGORITHMS = ["RS256", "ES256"]
DEV_ALGORITHMS = ["HS256"]
# Verified tokens remembered per process; past this many the memory starts over.
VERIFIED_TOKENS_KEPT = 10_000


def load_dev_key(path: Path) -> OctKey:
    """The local development signing key, created (mode 600) the first time it is needed."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Several workers start at once. The key is written whole to a file of this process's
        # own, then linked into place: a link never replaces an existing file, so the first
        # process's key wins, and nobody ever reads a key file that is still being written
        # (an empty key failed a worker's startup, and uvicorn then stopped every worker).
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
                file.write(secrets.token_urlsafe(48))
            os.link(draft, path)
        except FileExistsError:
            pass  # another process linked its key first; that one is read below
        finally:
            draft.unlink(missing_ok=True)
    return OctKey.import_key(path.read_text().strip())


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        if settings.jwt_jwks_file is not None:
            self.key: KeySet | OctKey = KeySet.import_key_set(_read_json(settings.jwt_jwks_file))
            self.algorithms = ASYMMETRIC_ALGORITHMS
        else:
            self.key = load_dev_key(settings.jwt_dev_key_file)
            self.algorithms = DEV_ALGORITHMS
        self._claims = jwt.JWTClaimsRegistry(
            leeway=0,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        self._verified: dict[str, Principal] = {}

    def verify(self, token: str) -> Principal:
        """The principal a valid token names, or `401 unauthorized`.

        Verifying a signature and its claims costs more than a cached lookup itself, and
        clients send the same token for its whole lifetime: a verified token is kept
        (bounded) with its expiry, which is still checked on every use, to the second.
        """
        known = self._verified.get(token)
        if known is not None:
            if time.time() < known.expires:  # type: ignore[operator]  # always set from a verified exp
                return known
            del self._verified[token]
        try:
            claims = jwt.decode(token, self.key, algorithms=self.algorithms).claims
            self._claims.validate(claims)
        except (JoseError, ValueError) as error:
            raise unauthorized(f"invalid token: {getattr(error, 'description', None) or error}", invalid=True) from None
        # joserfc compares exp with the current whole second, which lets a fractional exp
        # (T + 0.5) pass until T + 1; the contract has no leeway at all.
        if time.time() >= claims["exp"]:
            raise unauthorized("invalid token: the token has expired", invalid=True)
        principal = principal_from_claims(claims)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()
        self._verified[token] = principal
        return principal

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        authorization = headers.get("authorization")
        if authorization is None:
            # OFREP clients send their credential as `X-API-Key`; here it is the same JWT.
            api_key = headers.get("x-api-key")
            if api_key is not None:
                if not api_key.strip():
                    raise unauthorized("the X-API-Key header is empty", invalid=True)
                return self.verify(api_key.strip())
            raise unauthorized("an Authorization: Bearer token (or an X-API-Key header) is required")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("the Authorization header must be 'Bearer <token>'", invalid=True)
        return self.verify(token.strip())


def unauthorized(detail: str, *, invalid: bool = False) -> Problem:
    challenge = 'Bearer realm="graphflags"' + (', error="invalid_token"' if invalid else "")
    return Problem("unauthorized", detail, headers={"WWW-Authenticate": challenge})


def mint_dev_token(settings: Settings, *, subject: str, roles: list[str], orgs: list[str], ttl: int = 3600,
                   now: int | None = None, extra: dict[str, Any] | None = None) -> str:
    """A token signed with the local development key (`graphflags token`)."""
    issued = int(time.time()) if now is None else now
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "iat": issued,
        "exp": issued + ttl,
        "roles": roles,
        "orgs": orgs,
        **(extra or {}),
    }
    return jwt.encode({"alg": "HS256"}, claims, load_dev_key(settings.jwt_dev_key_file), algorithms=DEV_ALGORITHMS)


def _read_json(path: Path) -> dict:
    return orjson.loads(path.read_bytes())
