"""The domain and the store are typed strictly: mypy, configured in pyproject.toml ([tool.mypy])."""

from __future__ import annotations

from pathlib import Path

from mypy import api

REPO = Path(__file__).resolve().parent.parent


def test_domain_and_store_pass_mypy_strict():
    report, errors, status = api.run(
        ["--config-file", str(REPO / "pyproject.toml"), str(REPO / "app" / "domain"), str(REPO / "app" / "store")]
    )
    assert status == 0, report + errors
