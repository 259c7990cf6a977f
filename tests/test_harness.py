"""The test harness's own promises (tests/conftest.py): `make unit` selects the tests that need
no Neo4j, and they run first, while the session's server boots."""

from __future__ import annotations

import pytest


def test_tests_without_a_database_fixture_are_marked_unit_and_run_first(request: pytest.FixtureRequest):
    items = request.session.items
    is_unit = [item.get_closest_marker("unit") is not None for item in items]
    assert request.node.get_closest_marker("unit") is not None  # this test asks for no database
    assert 0 < sum(is_unit) < len(items)
    assert is_unit == sorted(is_unit, reverse=True), "a test that needs Neo4j runs before a unit test"
    for item in items:
        if item.get_closest_marker("slow") is not None or {"client", "neo4j_server"} & set(item.fixturenames):
            assert item.get_closest_marker("unit") is None, item.nodeid
