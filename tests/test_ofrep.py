"""OFREP over plain HTTP: the answers, every error code, credentials, sets and ETags."""

from __future__ import annotations

import pytest

SINGLE = "/ofrep/v1/evaluate/flags/{}"
BULK = "/ofrep/v1/evaluate/flags"


def context(org: str, **extra) -> dict:
    return {"context": {"targetingKey": org, **extra}}


async def evaluate(client, headers, org, flag):
    return await client.post(SINGLE.format(flag), json=context(org), headers=headers)


def expect_failure(response, status: int, code: str, key: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["errorCode"] == code
    assert isinstance(body["errorDetails"], str) and body["errorDetails"]
    if key is None:
        assert "key" not in body
    else:
        assert body["key"] == key
    return body


async def put(client, tokens, org, flag, value):
    response = await client.put(f"/v1/orgs/{org}/flags/{flag}", json={"value": value}, headers=tokens.writer())
    assert response.status_code == 200, response.text


class TestSingleEvaluation:
    async def test_own_inherited_and_default(self, client, tokens, chain6):
        await put(client, tokens, chain6[2], "dark-mode", True)
        own = await evaluate(client, tokens.reader(), chain6[2], "dark-mode")
        assert own.status_code == 200, own.text
        assert own.json() == {
            "key": "dark-mode",
            "value": True,
            "reason": "TARGETING_MATCH",
            "variant": "own",
            "metadata": {"source_org": chain6[2], "depth": 0},
        }
        inherited = (await evaluate(client, tokens.reader(), chain6[6], "dark-mode")).json()
        assert inherited == {
            "key": "dark-mode",
            "value": True,
            "reason": "TARGETING_MATCH",
            "variant": "inherited",
            "metadata": {"source_org": chain6[2], "depth": 4},
        }
        default = (await evaluate(client, tokens.reader(), chain6[1], "dark-mode")).json()
        assert default == {"key": "dark-mode", "value": False, "reason": "STATIC", "variant": "default", "metadata": {}}

    async def test_numbers_are_floats_and_integers_are_integers(self, client, tokens, chain6):
        default_number = await evaluate(client, tokens.reader(), chain6[0], "max-upload-mb")
        assert b'"value":10.0' in default_number.content
        await put(client, tokens, chain6[0], "max-upload-mb", 64)
        set_number = await evaluate(client, tokens.reader(), chain6[3], "max-upload-mb")
        assert b'"value":64.0' in set_number.content
        assert set_number.json()["metadata"] == {"source_org": chain6[0], "depth": 3}
        integer = await evaluate(client, tokens.reader(), chain6[3], "retention-days")
        assert b'"value":30,' in integer.content
        assert type(integer.json()["value"]) is int

    async def test_string_and_object(self, client, tokens, chain6):
        await put(client, tokens, chain6[1], "limits", {"seats": 40, "tier": "gold"})
        body = (await evaluate(client, tokens.reader(), chain6[5], "limits")).json()
        assert body["value"] == {"seats": 40, "tier": "gold"}
        assert (await evaluate(client, tokens.reader(), chain6[5], "theme")).json()["value"] == "light"

    async def test_extra_context_is_ignored(self, client, tokens, chain6):
        response = await client.post(
            SINGLE.format("beta"), json=context(chain6[0], email="a@b.c", plan="gold"), headers=tokens.reader()
        )
        assert response.status_code == 200
        assert response.json()["value"] is False


class TestErrors:
    @pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"text"', b"null"])
    async def test_unreadable_body_is_parse_error(self, client, tokens, raw):
        response = await client.post(SINGLE.format("beta"), content=raw, headers=tokens.reader())
        expect_failure(response, 400, "PARSE_ERROR", key="beta")
        bulk = await client.post(BULK, content=raw, headers=tokens.reader())
        expect_failure(bulk, 400, "PARSE_ERROR")

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"context": {}},
            {"context": {"email": "x"}},
            {"context": {"targetingKey": ""}},
            {"context": {"targetingKey": None}},
        ],
    )
    async def test_missing_targeting_key(self, client, tokens, body):
        response = await client.post(SINGLE.format("beta"), json=body, headers=tokens.reader())
        expect_failure(response, 400, "TARGETING_KEY_MISSING", key="beta")
        bulk = await client.post(BULK, json=body, headers=tokens.reader())
        expect_failure(bulk, 400, "TARGETING_KEY_MISSING")

    @pytest.mark.parametrize(
        "body",
        [
            {"context": "acme"},
            {"context": []},
            {"context": {"targetingKey": 7}},
            {"context": {"targetingKey": "has space"}},
            {"context": {"targetingKey": ".."}},
            {"context": {"targetingKey": "x" * 129}},
        ],
    )
    async def test_malformed_context_is_invalid_context(self, client, tokens, body):
        response = await client.post(SINGLE.format("beta"), json=body, headers=tokens.reader())
        expect_failure(response, 400, "INVALID_CONTEXT", key="beta")
        bulk = await client.post(BULK, json=body, headers=tokens.reader())
        expect_failure(bulk, 400, "INVALID_CONTEXT")

    async def test_unknown_org_inside_scope_is_invalid_context(self, client, tokens, uid):
        missing = uid("nowhere")
        expect_failure(await evaluate(client, tokens.reader(), missing, "beta"), 400, "INVALID_CONTEXT", key="beta")
        bulk = await client.post(BULK, json=context(missing), headers=tokens.reader())
        expect_failure(bulk, 400, "INVALID_CONTEXT")

    async def test_org_outside_scope_is_403_whether_or_not_it_exists(self, client, tokens, uid, make_orgs):
        mine, theirs = uid("mine"), uid("theirs")
        await make_orgs([(mine, None), (theirs, None)])
        scoped = tokens.reader(mine)
        assert (await evaluate(client, scoped, mine, "beta")).status_code == 200
        for org in (theirs, uid("does-not-exist")):
            single = await evaluate(client, scoped, org, "beta")
            bulk = await client.post(BULK, json=context(org), headers=scoped)
            for response in (single, bulk):
                assert response.status_code == 403, response.text
                assert response.json()["type"].endswith("/forbidden")
        # Not even an unknown flag tells a scoped token whether a foreign org exists.
        assert (await evaluate(client, scoped, theirs, "no-such-flag")).status_code == 403

    @pytest.mark.parametrize("key", ["no-such-flag", "Bad_Key", "x" * 200])
    async def test_unknown_flag_is_404(self, client, tokens, chain6, key):
        response = await evaluate(client, tokens.reader(), chain6[0], key)
        expect_failure(response, 404, "FLAG_NOT_FOUND", key=key)

    async def test_credentials(self, client, tokens, chain6):
        missing = await evaluate(client, {}, chain6[0], "beta")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        garbage = await evaluate(client, {"Authorization": "Bearer not-a-jwt"}, chain6[0], "beta")
        assert garbage.status_code == 401
        no_role = await evaluate(client, tokens.headers(None), chain6[0], "beta")
        assert no_role.status_code == 403
        bulk = await client.post(BULK, json=context(chain6[0]))
        assert bulk.status_code == 401

    async def test_x_api_key_carries_the_same_jwt(self, client, tokens, chain6):
        key = tokens.mint("reader")
        single = await evaluate(client, {"X-API-Key": key}, chain6[0], "beta")
        assert single.status_code == 200, single.text
        bulk = await client.post(BULK, json=context(chain6[0]), headers={"X-API-Key": key})
        assert bulk.status_code == 200
        for bad in ("nonsense", "", tokens.mint("reader", ttl=-10)):
            response = await evaluate(client, {"X-API-Key": bad}, chain6[0], "beta")
            assert response.status_code == 401, bad
        scoped = tokens.mint("reader", chain6[3])
        assert (await evaluate(client, {"X-API-Key": scoped}, chain6[1], "beta")).status_code == 403
        assert (await evaluate(client, {"X-API-Key": scoped}, chain6[4], "beta")).status_code == 200

    async def test_wrong_method(self, client, tokens):
        response = await client.get(SINGLE.format("beta"), headers=tokens.reader())
        assert response.status_code == 405


class TestBulkEvaluation:
    async def test_every_flag_for_the_org(self, client, tokens, chain6):
        await put(client, tokens, chain6[0], "beta", True)
        await put(client, tokens, chain6[4], "retention-days", 90)
        response = await client.post(BULK, json=context(chain6[4]), headers=tokens.reader())
        assert response.status_code == 200, response.text
        flags = {item["key"]: item for item in response.json()["flags"]}
        assert set(flags) == {"dark-mode", "beta", "max-upload-mb", "retention-days", "theme", "banner", "limits"}
        assert flags["beta"] == {
            "key": "beta",
            "value": True,
            "reason": "TARGETING_MATCH",
            "variant": "inherited",
            "metadata": {"source_org": chain6[0], "depth": 4},
        }
        assert flags["retention-days"]["metadata"] == {"source_org": chain6[4], "depth": 0}
        assert flags["limits"] == {
            "key": "limits",
            "value": {"seats": 5},
            "reason": "STATIC",
            "variant": "default",
            "metadata": {},
        }
        assert b'"value":10.0' in response.content

    async def test_sets_by_header_or_query(self, client, tokens, chain6):
        by_query = await client.post(BULK, params={"set": "storage"}, json=context(chain6[0]), headers=tokens.reader())
        assert {item["key"] for item in by_query.json()["flags"]} == {"max-upload-mb", "retention-days"}
        by_header = await client.post(
            BULK, json=context(chain6[0]), headers={**tokens.reader(), "X-Flag-Set": "ui,storage"}
        )
        assert {item["key"] for item in by_header.json()["flags"]} == {
            "dark-mode",
            "beta",
            "theme",
            "max-upload-mb",
            "retention-days",
        }
        unknown_set = await client.post(
            BULK, params={"set": "nothing-here"}, json=context(chain6[0]), headers=tokens.reader()
        )
        # Bulk answers also name their event stream (docs/api.md "OpenFeature event streams").
        assert unknown_set.json()["flags"] == [] and unknown_set.json().keys() == {"flags", "eventStreams"}
        assert by_query.headers["etag"] != by_header.headers["etag"]

    async def test_etag_answers_304_until_something_changes(self, client, tokens, chain6):
        org = chain6[5]
        first = await client.post(BULK, json=context(org), headers=tokens.reader())
        etag = first.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        same = await client.post(BULK, json=context(org), headers={**tokens.reader(), "If-None-Match": etag})
        assert same.status_code == 304
        assert same.content == b""
        assert same.headers["etag"] == etag
        listed = await client.post(
            BULK, json=context(org), headers={**tokens.reader(), "If-None-Match": f'"other", W/{etag}'}
        )
        assert listed.status_code == 304
        # The tag covers what was answered: another set answers in full.
        narrower = await client.post(
            BULK, params={"set": "ui"}, json=context(org), headers={**tokens.reader(), "If-None-Match": etag}
        )
        assert narrower.status_code == 200
        # A change on an ancestor changes this org's answer, so its tag.
        await put(client, tokens, chain6[2], "theme", "dark")
        changed = await client.post(BULK, json=context(org), headers={**tokens.reader(), "If-None-Match": etag})
        assert changed.status_code == 200
        assert changed.headers["etag"] != etag
        assert {item["key"]: item["value"] for item in changed.json()["flags"]}["theme"] == "dark"
        # A re-fetch triggered by an event stream may carry the spec's metadata parameters.
        refetch = await client.post(
            BULK,
            params={"flagConfigEtag": "abc", "flagConfigLastModified": "1771622898"},
            json=context(org),
            headers={**tokens.reader(), "If-None-Match": changed.headers["etag"]},
        )
        assert refetch.status_code == 304


class TestDocumented:
    """Real answers validate against the schemas /openapi.json serves for them."""

    @pytest.fixture
    async def check(self, client):
        import jsonschema

        document = (await client.get("/openapi.json")).json()

        def validate(instance, path: str, method: str, status: int, media: str = "application/json") -> None:
            schema = document["paths"][path][method]["responses"][str(status)]["content"][media]["schema"]
            jsonschema.Draft202012Validator({**schema, "components": document["components"]}).validate(instance)

        return validate

    async def test_ofrep_answers_match_the_document(self, client, tokens, chain6, check):
        await put(client, tokens, chain6[0], "max-upload-mb", 3)
        single_path, bulk_path = "/ofrep/v1/evaluate/flags/{key}", "/ofrep/v1/evaluate/flags"
        for flag in ("max-upload-mb", "limits"):
            check((await evaluate(client, tokens.reader(), chain6[2], flag)).json(), single_path, "post", 200)
        bulk = await client.post(BULK, json=context(chain6[2]), headers=tokens.reader())
        check(bulk.json(), bulk_path, "post", 200)
        check(
            (await client.post(SINGLE.format("beta"), json={}, headers=tokens.reader())).json(),
            single_path,
            "post",
            400,
        )
        check((await evaluate(client, tokens.reader(), chain6[2], "nope")).json(), single_path, "post", 404)
        check((await client.post(BULK, content=b"{", headers=tokens.reader())).json(), bulk_path, "post", 400)
        check(
            (await evaluate(client, {}, chain6[2], "beta")).json(), single_path, "post", 401, "application/problem+json"
        )

    async def test_change_feed_answers_match_the_document(self, client, tokens, chain6, check):
        ahead = await client.get("/v1/changes", params={"after": 10**15}, headers=tokens.admin())
        check(ahead.json(), "/v1/changes", "get", 200)
        await put(client, tokens, chain6[1], "beta", True)
        page = await client.get("/v1/changes", params={"after": ahead.json()["last"]}, headers=tokens.admin())
        assert [event["org"] for event in page.json()["events"]] == [chain6[1]]
        check(page.json(), "/v1/changes", "get", 200)
        explained = await client.get(f"/v1/orgs/{chain6[3]}/flags/beta/explain", headers=tokens.reader())
        check(explained.json(), "/v1/orgs/{org}/flags/{flag}/explain", "get", 200)
