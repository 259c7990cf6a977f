"""An application's view: the OpenFeature Python SDK with the OFREP provider, no adapter.

The provider speaks `requests` to a base URL, so these tests use the service served
over real HTTP (the `live_server` fixture). Values are set through that same instance:
another instance would see them only after its cache follows the change feed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from app.domain import rollouts


@pytest.fixture
def feature_client(live_server):
    """An OpenFeature client whose provider calls graphflags; `feature_client(headers)`."""
    domains = []

    def build(headers: dict[str, str]):
        domain = f"graphflags-{uuid.uuid4().hex[:8]}"
        api.set_provider(OFREPProvider(live_server, headers_factory=lambda: dict(headers), timeout=10), domain)
        domains.append(domain)
        return api.get_client(domain)

    yield build
    api.clear_providers()


@pytest.fixture
async def live(live_server):
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        yield http


@pytest.fixture
def reader_client(feature_client, tokens):
    return feature_client(tokens.reader())


def org(org_id: str) -> EvaluationContext:
    return EvaluationContext(targeting_key=org_id)


async def put(live, tokens, org_id, flag, value):
    response = await live.put(f"/v1/orgs/{org_id}/flags/{flag}", json={"value": value}, headers=tokens.writer())
    assert response.status_code == 200, response.text


async def test_boolean_inherited_from_an_ancestor(live, tokens, chain6, reader_client):
    await put(live, tokens, chain6[1], "dark-mode", True)
    details = reader_client.get_boolean_details("dark-mode", False, org(chain6[5]))
    assert details.value is True
    assert details.error_code is None, details.error_message
    assert details.reason == Reason.TARGETING_MATCH
    assert details.variant == "inherited"
    assert details.flag_metadata == {"source_org": chain6[1], "depth": 4}
    own = reader_client.get_boolean_details("dark-mode", False, org(chain6[1]))
    assert (own.value, own.variant, own.flag_metadata["depth"]) == (True, "own", 0)


async def test_catalog_default_is_static(chain6, reader_client):
    details = reader_client.get_string_details("theme", "fallback", org(chain6[3]))
    assert (details.value, details.reason, details.variant) == ("light", Reason.STATIC, "default")
    assert details.error_code is None
    # The code default is used only when evaluation fails: the catalog's default wins here.
    assert reader_client.get_boolean_value("beta", True, org(chain6[3])) is False


async def test_number_flags_are_floats_and_integer_flags_integers(live, tokens, chain6, reader_client):
    default = reader_client.get_float_value("max-upload-mb", 1.5, org(chain6[2]))
    assert default == 10.0 and type(default) is float
    await put(live, tokens, chain6[0], "max-upload-mb", 256)
    inherited = reader_client.get_float_details("max-upload-mb", 1.5, org(chain6[2]))
    assert inherited.value == 256.0 and type(inherited.value) is float
    assert inherited.error_code is None
    retention = reader_client.get_integer_value("retention-days", 1, org(chain6[2]))
    assert retention == 30 and type(retention) is int
    # Typed calls mean what they say: a number flag is not an integer.
    mismatch = reader_client.get_integer_details("max-upload-mb", 7, org(chain6[2]))
    assert (mismatch.value, mismatch.error_code) == (7, ErrorCode.TYPE_MISMATCH)


async def test_object_flag(live, tokens, chain6, reader_client):
    assert reader_client.get_object_value("limits", {}, org(chain6[4])) == {"seats": 5}
    await put(live, tokens, chain6[4], "limits", {"seats": 12, "tier": "gold"})
    details = reader_client.get_object_details("limits", {}, org(chain6[4]))
    assert details.value == {"seats": 12, "tier": "gold"}
    assert details.reason == Reason.TARGETING_MATCH


async def test_unknown_flag_gives_the_code_default(chain6, reader_client):
    details = reader_client.get_boolean_details("no-such-flag", True, org(chain6[0]))
    assert details.value is True
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND
    assert details.reason == Reason.ERROR


async def test_context_errors_reach_the_sdk(uid, reader_client):
    unknown = reader_client.get_string_details("theme", "x", org(uid("nowhere")))
    assert (unknown.value, unknown.error_code) == ("x", ErrorCode.INVALID_CONTEXT)
    missing = reader_client.get_string_details("theme", "x", EvaluationContext())
    assert (missing.value, missing.error_code) == ("x", ErrorCode.TARGETING_KEY_MISSING)


async def test_org_outside_the_tokens_scope(tokens, uid, make_orgs, feature_client):
    mine, theirs = uid("mine"), uid("theirs")
    await make_orgs([(mine, None), (theirs, None)])
    scoped = feature_client(tokens.reader(mine))
    assert scoped.get_boolean_details("beta", True, org(mine)).error_code is None
    for target in (theirs, uid("missing")):
        denied = scoped.get_boolean_details("beta", True, org(target))
        assert denied.value is True  # the code default
        assert denied.error_code == ErrorCode.GENERAL
        assert denied.error_message == "forbidden"


async def test_x_api_key_and_bad_credentials(live, tokens, chain6, feature_client):
    await put(live, tokens, chain6[0], "banner", "Maintenance tonight")
    by_api_key = feature_client({"X-API-Key": tokens.mint("reader")})
    assert by_api_key.get_string_value("banner", "", org(chain6[6])) == "Maintenance tonight"
    anonymous = feature_client({})
    refused = anonymous.get_string_details("banner", "none", org(chain6[6]))
    assert (refused.value, refused.error_code, refused.error_message) == ("none", ErrorCode.GENERAL, "unauthorized")


async def test_a_sealed_value_reaches_the_sdk_with_its_metadata(live, tokens, chain6, reader_client):
    """The seal nearest the root wins over a value set below it, and the SDK sees metadata.sealed."""
    await put(live, tokens, chain6[4], "theme", "light")
    sealed = await live.put(
        f"/v1/orgs/{chain6[1]}/flags/theme", json={"value": "dark", "sealed": True}, headers=tokens.admin()
    )
    assert sealed.status_code == 200, sealed.text
    details = reader_client.get_string_details("theme", "fallback", org(chain6[5]))
    assert details.error_code is None, details.error_message
    assert (details.value, details.reason, details.variant) == ("dark", Reason.TARGETING_MATCH, "sealed")
    assert details.flag_metadata == {"source_org": chain6[1], "depth": 4, "sealed": True}
    unsealed = await live.put(
        f"/v1/orgs/{chain6[1]}/flags/theme", json={"value": "dark", "sealed": False}, headers=tokens.admin()
    )
    assert unsealed.status_code == 200, unsealed.text
    again = reader_client.get_string_details("theme", "fallback", org(chain6[5]))
    assert (again.value, again.variant, again.flag_metadata) == (
        "light",
        "inherited",
        {"source_org": chain6[4], "depth": 1},
    )


# --- rollouts along the tree (docs/api.md, "Rollouts along the tree") ------------------


@pytest.fixture
async def ten_thousand_units(uid, make_orgs) -> tuple[str, list[str]]:
    """A root with 10,000 customers below it: the units of a rollout with unit_depth 1."""
    root = uid("root")
    units = [uid(f"u{i}") for i in range(10_000)]
    await make_orgs([(root, None)])
    for start in range(0, len(units), 1000):  # in slices: one 10,000-org transaction timed out on a busy machine
        await make_orgs([(unit, root) for unit in units[start : start + 1000]])
    return root, units


def _evaluated(client, unit: str):
    """The SDK's details for `beta`; evaluated again, as an application would, while the service
    sheds load (503: every unit is a cache miss here, on a busy machine), at most 20 times."""
    for _ in range(20):
        details = client.get_boolean_details("beta", False, org(unit))
        if details.error_code is None or "503" not in (details.error_message or ""):
            break
        time.sleep(0.2)
    assert details.error_code is None, details.error_message
    return details


def _in_rollout(clients, units: list[str], percent: float) -> set[str]:
    """The units the SDK answers True for, checking each answer on the way: its reason and metadata,
    and that it is the one the contract's bucket function gives (app/domain/rollouts.py). Four
    threads, each with its own OpenFeature client (a provider's HTTP session is not shared)."""

    def evaluate(client, chunk: list[str]) -> set[str]:
        inside = set()
        for unit in chunk:
            details = _evaluated(client, unit)
            assert details.value is (rollouts.bucket("beta", unit) < percent), (unit, percent)
            if details.value:
                assert (details.reason, details.variant, details.flag_metadata["unit"]) == (Reason.SPLIT, "split", unit)
                inside.add(unit)
            else:
                assert details.reason == Reason.STATIC
        return inside

    with ThreadPoolExecutor(len(clients)) as pool:
        parts = pool.map(evaluate, clients, [units[i :: len(clients)] for i in range(len(clients))])
        return set().union(*parts)


async def test_a_rollout_splits_10000_units_within_a_point_and_a_half_and_raising_it_only_adds(
    live, tokens, ten_thousand_units, feature_client
):
    """Every unit's answer through the SDK is its bucket's; at 20 % the share over 10,000 units is
    within 1.5 points. Raised to 35.5 %, everyone who was in stays in and some who were out come in:
    the second pass asks the units that were in, and 2,000 that were not (the share at other
    percents, over 100,000 units, is tests/test_rollouts.py's, on the same bucket function)."""
    root, units = ten_thousand_units

    async def roll_out(percent: float, asked: list[str]) -> set[str]:
        response = await live.put(
            f"/v1/orgs/{root}/flags/beta",
            headers=tokens.writer(),
            json={"rollout": {"percent": percent, "value": True, "unit_depth": 1}},
        )
        assert response.status_code == 200, response.text
        # Fresh tokens for each pass: on a busy machine both passes outlast one token's lifetime.
        clients = [feature_client(tokens.reader()) for _ in range(4)]
        return await asyncio.to_thread(_in_rollout, clients, asked, percent)

    at_20 = await roll_out(20, units)
    # Distribution: the share of units in the rollout is the percent, within 1.5 points.
    assert abs(100 * len(at_20) / len(units) - 20) <= 1.5, len(at_20)
    outside = [unit for unit in units if unit not in at_20][:2000]
    at_35_5 = await roll_out(35.5, sorted(at_20) + outside)
    # Stickiness: raising the percent only adds units; nobody who had the feature loses it.
    assert at_20 < at_35_5
    assert at_35_5 - at_20 == {unit for unit in outside if rollouts.bucket("beta", unit) < 35.5}
