"""JWT bearer tokens: verification (joserfc) and development tokens.

Two kinds of key source, never mixed (mixing HMAC and public keys invites algorithm
confusion): RS256/ES256 public keys in production, from a JWKS file or a JWKS URL, or
else a local HS256 development key, generated on first use into an ignored file.

Keys from a URL are fetched when first needed, and again when a token names a `kid`
this process does not hold (the provider may have rotated), at most once per
`jwt_jwks_refetch_interval`. A failed fetch keeps the keys already held, so tokens of
known keys keep verifying while the provider is away.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, OctKey
from loguru import logger

from app.domain.access import Principal, principal_from_claims
from app.errors import Problem, ProblemType
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


class KeysMayHaveRotated(Exception):
    """A token names a key not held here, and the JWKS URL may be asked again: await
    `TokenVerifier.refresh_keys()`, then authenticate once more with `may_refetch=False`."""


class RemoteKeys:
    """The key set published at a JWKS URL, as last fetched."""

    def __init__(self, url: str, refetch_interval: float, timeout: float) -> None:
        self.url = url
        self.refetch_interval = refetch_interval
        self.timeout = timeout
        self.keys = KeySet([])  # nothing until the first token asks
        self.fetches = 0
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()

    def may_fetch(self) -> bool:
        return self._last_attempt is None or time.monotonic() - self._last_attempt >= self.refetch_interval

    async def refresh(self) -> None:
        """Fetch the keys again unless that was tried within the interval (by this or a
        concurrent request: those waiting here share the one fetch)."""
        attempts = self.fetches
        async with self._lock:
            if self.fetches != attempts or not self.may_fetch():
                return
            self._last_attempt = time.monotonic()
            self.fetches += 1
            try:
                async with httpx.AsyncClient(timeout=self.timeout) as http:
                    response = await http.get(self.url, headers={"Accept": "application/json"})
                    response.raise_for_status()
                    keys = KeySet.import_key_set(orjson.loads(response.content))
            except Exception as error:  # whatever the provider sends or fails with: the keys held stay in force
                logger.warning(
                    "JWKS fetch from {} failed, the {} keys held stay: {}: {}",
                    self.url,
                    len(self.keys.keys),
                    type(error).__name__,
                    error,
                )
                return
            self.keys = keys
            logger.bind(kids=[key.kid for key in keys.keys]).info("JWKS: {} keys from {}", len(keys.keys), self.url)


class TokenVerifier:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        # Wall-clock seconds, compared with `exp`: a parameter so that tests move time instead of sleeping.
        self.clock = clock
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.remote: RemoteKeys | None = None
        if settings.jwt_jwks_url is not None:
            self.remote = RemoteKeys(
                settings.jwt_jwks_url, settings.jwt_jwks_refetch_interval, settings.jwt_jwks_fetch_timeout
            )
            self.key: KeySet | OctKey = self.remote.keys
            self.algorithms = ASYMMETRIC_ALGORITHMS
        elif settings.jwt_jwks_file is not None:
            self.key = KeySet.import_key_set(_read_json(settings.jwt_jwks_file))
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

    async def refresh_keys(self) -> None:
        if self.remote is not None:
            await self.remote.refresh()
            if self.remote.keys is not self.key:
                self.key = self.remote.keys
                # A key withdrawn from the JWKS must stop verifying the tokens remembered with it.
                self._verified.clear()

    def verify(self, token: str, *, may_refetch: bool = True) -> Principal:
        """The principal a valid token names, or `401 unauthorized`.

        Verifying a signature and its claims costs more than a cached lookup itself, and
        clients send the same token for its whole lifetime: a verified token is kept
        (bounded) with its expiry, which is still checked on every use, to the second.
        """
        known = self._verified.get(token)
        if known is not None:
            if self.clock() < known.expires:  # type: ignore[operator]  # always set from a verified exp
                return known
            del self._verified[token]
        try:
            claims = jwt.decode(token, self.key, algorithms=self.algorithms).claims
            self._claims.validate(claims)
        except InvalidKeyIdError as error:
            if may_refetch and self.remote is not None and self.remote.may_fetch():
                raise KeysMayHaveRotated() from None
            raise unauthorized(f"invalid token: {error.description}", invalid=True) from None
        except (JoseError, ValueError) as error:
            raise unauthorized(f"invalid token: {getattr(error, 'description', None) or error}", invalid=True) from None
        # joserfc compares exp with the current whole second, which lets a fractional exp
        # (T + 0.5) pass until T + 1; the contract has no leeway at all.
        if self.clock() >= claims["exp"]:
            raise unauthorized("invalid token: the token has expired", invalid=True)
        principal = principal_from_claims(claims)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()
        self._verified[token] = principal
        return principal

    def authenticate(self, headers: Mapping[str, str], *, may_refetch: bool = True) -> Principal:
        authorization = headers.get("authorization")
        if authorization is None:
            # OFREP clients send their credential as `X-API-Key`; here it is the same JWT.
            api_key = headers.get("x-api-key")
            if api_key is not None:
                if not api_key.strip():
                    raise unauthorized("the X-API-Key header is empty", invalid=True)
                return self.verify(api_key.strip(), may_refetch=may_refetch)
            raise unauthorized("an Authorization: Bearer token (or an X-API-Key header) is required")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("the Authorization header must be 'Bearer <token>'", invalid=True)
        return self.verify(token.strip(), may_refetch=may_refetch)


def unauthorized(detail: str, *, invalid: bool = False) -> Problem:
    challenge = 'Bearer realm="graphflags"' + (', error="invalid_token"' if invalid else "")
    return Problem(ProblemType.unauthorized, detail, headers={"WWW-Authenticate": challenge})


def mint_dev_token(
    settings: Settings,
    *,
    subject: str,
    roles: list[str],
    orgs: list[str],
    ttl: int = 3600,
    now: int | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
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
