"""The alerting rules in ops/: valid for Prometheus, and each one fires on the pattern it is for.

promtool (Debian's `prometheus` package) is required, not optional: without it this test
fails and says how to install it (.ci/run installs it on a fresh machine).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

OPS = Path(__file__).resolve().parent.parent / "ops"


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: apt-get install prometheus (Debian ships promtool in it)"
    return path


def test_alert_rules_are_valid():
    result = subprocess.run([promtool(), "check", "rules", "alerts.yml"], cwd=OPS, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_each_alert_rule_fires_on_its_pattern():
    result = subprocess.run([promtool(), "test", "rules", "alerts.test.yml"], cwd=OPS, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_rule_has_a_unit_test_that_expects_it_to_fire():
    rules = set(re.findall(r"^\s*- alert: (\w+)", (OPS / "alerts.yml").read_text(), re.M))
    tests = (OPS / "alerts.test.yml").read_text()
    # An alertname followed by a non-empty exp_alerts list: a case where the rule must fire.
    firing = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels", tests))
    assert rules and rules == firing, rules ^ firing


def test_the_compose_prometheus_config_is_valid_and_loads_the_rules():
    result = subprocess.run([promtool(), "check", "config", "prometheus.yml"], cwd=OPS, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    rules = re.findall(r"^\s*- alert: \w+", (OPS / "alerts.yml").read_text(), re.M)
    assert f"{len(rules)} rules found" in result.stdout  # the compose config loads every rule
