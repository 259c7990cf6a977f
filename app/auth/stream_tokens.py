"""The credential inside an OpenFeature event-stream URL (docs/api.md "OpenFeature event streams").

A browser's EventSource cannot send an Authorization header, so the URL a bulk evaluation
hands out carries its own token: short-lived, signed here (HS256 with the service's stream
key, never the key of the caller's tokens), bound to one org, the flag sets answered, and
the caller's scope. It is not a bearer token for the API: its audience is its own.

Claims: `sub`, `orgs` (the caller's scope), `org`, `sets`, `etag` (of the answer the client
holds: a change made before the stream opens is announced at once), `until` (the caller's
token expiry: the stream ends then), `cid` (a digest of the caller's token: the streams of
one caller token are capped together), `exp`. `exp` is min(the end of the next lifetime
window, the caller's expiry): rounded to a window, so that the URL stays the same from one
bulk answer to the next while nothing changes, and a provider keeps its connection open.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from app.auth.tokens import load_dev_key, unauthorized
from app.domain.access import Principal, Role
from app.settings import Settings

AUDIENCE = "graphflags-event-stream"
_ALGORITHMS = ["HS256"]


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """What a verified stream URL allows: one org's answer, for one caller, until `principal.expires`."""

    principal: Principal
    org: str
    sets: frozenset[str] | None
    etag: str
    caller: str  # digest of the caller's token: the key its open streams are counted under


class StreamCredentials:
    def __init__(self, settings: Settings) -> None:
        secret = settings.stream_key.get_secret_value() if settings.stream_key is not None else None
        self._key = OctKey.import_key(secret) if secret else load_dev_key(settings.stream_key_file)
        self.issuer = settings.jwt_issuer
        self.lifetime = settings.stream_url_lifetime
        self._claims = jwt.JWTClaimsRegistry(
            leeway=0,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": AUDIENCE},
            exp={"essential": True},
            sub={"essential": True},
            org={"essential": True},
            until={"essential": True},
            cid={"essential": True},
        )

    def mint(
        self,
        principal: Principal,
        caller_token: str,
        org: str,
        sets: frozenset[str] | None,
        etag: str,
        now: float | None = None,
    ) -> str:
        now = time.time() if now is None else now
        until = principal.expires if principal.expires is not None else now + self.lifetime
        window_end = (math.floor(now / self.lifetime) + 2) * self.lifetime
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": principal.subject,
            "orgs": sorted(principal.orgs),
            "org": org,
            "sets": None if sets is None else sorted(sets),
            "etag": etag,
            "until": until,
            "cid": hashlib.blake2b(caller_token.encode(), digest_size=12).hexdigest(),
            "exp": min(window_end, until),
        }
        return jwt.encode({"alg": "HS256"}, claims, self._key, algorithms=_ALGORITHMS)

    def verify(self, token: str) -> StreamGrant:
        """The grant a valid stream token carries, or `401 unauthorized` (the detail never quotes it)."""
        try:
            claims = jwt.decode(token, self._key, algorithms=_ALGORITHMS).claims
            self._claims.validate(claims)
        except (JoseError, ValueError) as error:
            raise unauthorized(
                f"invalid stream URL: {getattr(error, 'description', None) or error}", invalid=True
            ) from None
        if time.time() >= claims["exp"]:
            raise unauthorized("invalid stream URL: it has expired; evaluate again for a fresh one", invalid=True)
        orgs, sets = claims.get("orgs") or [], claims.get("sets")
        principal = Principal(
            subject=str(claims["sub"]),
            role=Role.reader,
            orgs=frozenset(org for org in orgs if isinstance(org, str)),
            expires=claims["until"],
        )
        return StreamGrant(
            principal=principal,
            org=str(claims["org"]),
            sets=None if sets is None else frozenset(sets),
            etag=str(claims.get("etag", "")),
            caller=str(claims["cid"]),
        )
