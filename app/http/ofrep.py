"""OpenFeature Remote Evaluation Protocol (OFREP): flag evaluation for OpenFeature SDKs.

The protocol is open-feature/protocol's `service/openapi.yaml`: the context's
`targetingKey` is the org id. Its errors are not problem documents but
`{"key", "errorCode", "errorDetails"}` (400 and 404), because OFREP providers read
`errorCode`; 401, 403, 413 and 503 stay problem documents, which providers only
judge by status. This is a hot path: the body is checked as a plain dict, and a
bulk answer is serialised once, for both its body and its ETag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from app.domain.access import Principal, Role
from app.domain.ids import is_flag_name, is_org_id
from app.domain.resolution import Resolution
from app.errors import Problem, ProblemType
from app.http import event_streams
from app.http.auth import authorized
from app.http.bodies import read_body
from app.http.responses import EncodedJSON
from app.http.values import requested_sets
from app.observability import metrics

# A value set on the org or an ancestor was chosen by the hierarchy: OpenFeature's
# TARGETING_MATCH. The catalog default applies to every org alike: STATIC.
_REASONS = {
    "own": "TARGETING_MATCH",
    "inherited": "TARGETING_MATCH",
    "default": "STATIC",
    "sealed": "TARGETING_MATCH",
    "split": "SPLIT",
}
_JSON = "application/json"


class Failure(Exception):
    """An OFREP evaluation failure: answered as `{"key"?, "errorCode", "errorDetails"}`."""

    def __init__(self, status: int, code: str, details: str) -> None:
        super().__init__(details)
        self.status, self.code, self.details = status, code, details

    def response(self, key: str | None) -> Response:
        body: dict[str, Any] = {"errorCode": self.code, "errorDetails": self.details}
        if key is not None:
            body = {"key": key, **body}
        return Response(orjson.dumps(body), status_code=self.status, media_type=_JSON)


def success(key: str, resolution: Resolution) -> dict[str, Any]:
    """One evaluation. `number` values are already floats (the catalog's from_graph)."""
    # OFREP metadata values are booleans, strings or numbers (no null): a default,
    # which comes from no org, carries neither source_org nor depth.
    metadata = {} if resolution.source_org is None else {"source_org": resolution.source_org, "depth": resolution.depth}
    if resolution.reason == "sealed":
        metadata["sealed"] = True
    elif resolution.unit is not None:  # a rollout (reason SPLIT): the unit that put the org in it
        metadata["unit"] = resolution.unit
    return {
        "key": key,
        "value": resolution.value,
        "reason": _REASONS[resolution.reason],
        "variant": resolution.reason,
        "metadata": metadata,
    }


async def targeting_key(request: Request) -> str:
    """The org id the evaluation is for, from `{"context": {"targetingKey": ...}}`."""
    raw = await read_body(request)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Failure(400, "PARSE_ERROR", f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise Failure(400, "PARSE_ERROR", "the body must be a JSON object with a context")
    context = document.get("context")
    if context is None:
        raise Failure(400, "TARGETING_KEY_MISSING", "the body has no context, so no targetingKey (the org id)")
    if not isinstance(context, dict):
        raise Failure(400, "INVALID_CONTEXT", "context must be a JSON object")
    org = context.get("targetingKey")
    if org is None or org == "":
        raise Failure(400, "TARGETING_KEY_MISSING", "context.targetingKey (the org id) is required")
    if not is_org_id(org):
        raise Failure(
            400, "INVALID_CONTEXT", "context.targetingKey must be an org id: 1-128 characters of A-Z a-z 0-9 . _ : -"
        )
    return org


def _failure_for(problem: Problem, org: str) -> Failure | None:
    """The OFREP failure a service problem stands for; None: answer the problem itself."""
    if problem.type is ProblemType.org_not_found:
        # Only reachable inside the caller's scope (outside it, scope answers 403 first).
        return Failure(400, "INVALID_CONTEXT", f"no organization {org!r} (context.targetingKey)")
    if problem.type is ProblemType.flag_not_found:
        return Failure(404, "FLAG_NOT_FOUND", problem.detail)
    return None


@authorized(Role.reader)
async def evaluate_flag(request: Request, principal: Principal) -> Response:
    """`POST /ofrep/v1/evaluate/flags/{key}`."""
    key = request.path_params["key"]
    try:
        org = await targeting_key(request)
        if not is_flag_name(key):
            raise Failure(404, "FLAG_NOT_FOUND", f"no flag named {key!r} in the catalog")
        try:
            body, reason = await request.app.state.answers.answer(
                principal, "ofrep", org, key, lambda found: orjson.dumps(success(key, found.resolution))
            )
        except Problem as problem:
            failure = _failure_for(problem, org)
            if failure is None:
                raise
            raise failure from None
    except Failure as failure:
        return failure.response(key)
    metrics.flag_evaluated(key, reason)
    return EncodedJSON(body)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match uses."""
    if if_none_match is None:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


@authorized(Role.reader)
async def evaluate_flags(request: Request, principal: Principal) -> Response:
    """`POST /ofrep/v1/evaluate/flags`: every catalog flag (of the requested sets) for one org."""
    try:
        org = await targeting_key(request)
        try:
            resolutions = await request.app.state.services.values.lookup_all(principal, org, requested_sets(request))
        except Problem as problem:
            failure = _failure_for(problem, org)
            if failure is None:
                raise
            raise failure from None
    except Failure as failure:
        return failure.response(None)
    metrics.flags_evaluated_in_bulk(len(resolutions))
    flags = flags_document(resolutions)
    etag = etag_of(flags)
    # ADR-0008: a re-fetch an event stream triggered names the ETag it heard as a query
    # parameter (browsers would need CORS for one more header); a header, if sent, wins.
    if _matches(request.headers.get("if-none-match") or request.query_params.get("flagConfigEtag"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    # The ETag covers the flags alone: the stream URL changes with its credential, the answer does not.
    streams = orjson.dumps(event_streams.described(request, principal, org, requested_sets(request), etag))
    return Response(flags[:-1] + b',"eventStreams":' + streams + b"}", media_type=_JSON, headers={"ETag": etag})


def flags_document(resolutions: dict[str, Resolution]) -> bytes:
    """`{"flags": [...]}`: the part of a bulk answer its ETag covers."""
    return orjson.dumps({"flags": [success(name, resolution) for name, resolution in resolutions.items()]})


# Encoded evaluations kept for reuse (a few hundred bytes each).
ENCODINGS_KEPT = 10_000
# Values whose type and equality say all there is to encode (no containers: those are unhashable).
_SCALARS = (bool, int, float, str)


class Encodings:
    """`orjson.dumps(success(name, resolution))`, kept per distinct (name, resolution): a change
    of the root reaches every stream below it, and most of them resolve the flag the same way
    (the same value from the same org at the same depth), so their bytes are made once."""

    def __init__(self, kept: int = ENCODINGS_KEPT) -> None:
        self.kept = kept
        self._bodies: dict[tuple[str, type, Resolution], bytes] = {}

    def encode(self, name: str, found: Resolution) -> bytes:
        if type(found.value) not in _SCALARS:
            return orjson.dumps(success(name, found))
        # The value's type in the key: True == 1 == 1.0 in Python, not in JSON.
        key = (name, type(found.value), found)
        body = self._bodies.get(key)
        if body is None:
            if len(self._bodies) >= self.kept:
                self._bodies.clear()  # rarely: the resolutions a fan-out repeats come back at once
            body = self._bodies[key] = orjson.dumps(success(name, found))
        return body


class BulkAnswers:
    """A bulk answer as event streams follow it (app/services/event_streams.py): its flags
    encoded one by one, so that a change of one flag re-resolves and re-encodes that flag only,
    and the ETag a bulk evaluation would carry, from those pieces."""

    def __init__(self, values: Any) -> None:
        self.values = values
        self._encodings = Encodings()

    async def entries(
        self, org: str, sets: frozenset[str] | None, only: frozenset[str] | None = None
    ) -> tuple[list[str], dict[str, bytes]]:
        """The org's chain and each flag's encoded evaluation (of `sets`; of those, `only`)."""
        chain, resolutions = await self.values.resolve_all(org, sets, only=only)
        encode = self._encodings.encode
        return chain, {name: encode(name, found) for name, found in resolutions.items()}

    @staticmethod
    def etag(entries: Iterable[bytes]) -> str:
        # Byte for byte what flags_document() serialises (orjson writes no spaces), hashed the same way.
        return etag_of(b'{"flags":[' + b",".join(entries) + b"]}")
