"""Contract fuzzing (schemathesis) of the served app, bounded for `make test`.

Every operation in /openapi.json gets a few generated requests, each with every
schemathesis check: no 5xx, every status documented, bodies and headers as the
document says, problem documents as application/problem+json, invalid input refused,
valid input accepted (save the data-dependent refusals tests/fuzzing/schemathesis.toml
lists). Requests rotate through an unscoped admin and reader, writer and admin tokens
scoped to subtrees of a seeded tree, whose ids the generator is biased toward.
`make fuzz` runs the same contract far longer through the schemathesis CLI.
"""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from fuzzing.contract import CONFIG, SEED, plant
from hypothesis import HealthCheck, settings

from app.http.openapi import spec

# Per operation: enough to reach the scoped and the unscoped paths of each, well under a
# minute for all of them together.
EXAMPLES = 12


@pytest.fixture(scope="module")
def fuzz_tokens(migrated) -> dict[str, str]:
    return SEED.tokens(migrated)


@pytest.fixture(scope="module")
def fuzz_target(live_server, fuzz_tokens) -> str:
    plant(live_server, fuzz_tokens["admin"])
    return live_server


# The document the app serves, built by the same code: the operations are known when
# pytest collects, so each one is its own test.
schema = schemathesis.openapi.from_dict(spec(), config=schemathesis.Config.from_path(CONFIG))
_turns = itertools.count()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_every_operation_keeps_the_contract(case, fuzz_target, fuzz_tokens):
    kinds = list(fuzz_tokens)
    kind = kinds[next(_turns) % len(kinds)]
    try:
        case.call_and_validate(base_url=fuzz_target, headers={"Authorization": f"Bearer {fuzz_tokens[kind]}"})
    except Exception as failure:
        failure.add_note(f"token: {kind}")
        raise


def test_the_served_document_is_the_one_fuzzed(fuzz_target):
    import httpx

    assert httpx.get(f"{fuzz_target}/openapi.json").json() == spec()
