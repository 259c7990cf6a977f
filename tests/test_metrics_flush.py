"""What the hot path counts reaches prometheus_client's histograms intact: each bucket's count and the sum."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from app.observability import metrics

NAME = "graphflags_http_request_duration_seconds"


def sample(suffix: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(NAME + suffix, labels) or 0.0


@pytest.fixture
def enabled():
    metrics.configure(True)
    metrics.flush()  # start from nothing pending
    yield
    metrics.flush()


def test_flush_hands_over_each_bucket_and_the_exact_sum(enabled) -> None:
    labels = {"method": "GET", "route": "/flush-test/{x}", "status": "200"}
    before = {le: sample("_bucket", **labels, le=le) for le in ("0.001", "0.005", "0.01", "+Inf")}
    seconds = [0.0004, 0.0009, 0.003, 0.004, 0.004, 0.0075, 30.0]
    for value in seconds:
        metrics.request_observed("GET", "/flush-test/{x}", 200, value)
    metrics.flush()
    # Buckets are cumulative: le=0.001 holds the two below a millisecond, le=0.005 five, ...
    assert sample("_bucket", **labels, le="0.001") - before["0.001"] == 2
    assert sample("_bucket", **labels, le="0.005") - before["0.005"] == 5
    assert sample("_bucket", **labels, le="0.01") - before["0.01"] == 6
    assert sample("_bucket", **labels, le="+Inf") - before["+Inf"] == 7
    assert sample("_count", **labels) == sample("_bucket", **labels, le="+Inf")
    assert sample("_sum", **labels) == pytest.approx(sum(seconds), rel=1e-12)


def test_a_value_on_a_bucket_bound_stays_in_that_bucket(enabled) -> None:
    labels = {"method": "GET", "route": "/flush-test/bound", "status": "200"}
    for _ in range(3):
        metrics.request_observed("GET", "/flush-test/bound", 200, 0.1)
    metrics.flush()
    assert sample("_bucket", **labels, le="0.05") == 0
    assert sample("_bucket", **labels, le="0.1") == 3
