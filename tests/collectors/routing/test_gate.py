import numpy as np
import pytest

from collectors.routing.gate import FALLBACK, SELF_CONSISTENCY, SERVE, RoutingGate


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [
        (0.95, SERVE),
        (0.81, SERVE),
        (0.80, SELF_CONSISTENCY),
        (0.72, SELF_CONSISTENCY),
        (0.65, SELF_CONSISTENCY),
        (0.64, FALLBACK),
        (0.0, FALLBACK),
    ],
)
def test_article_defaults(confidence, expected):
    assert RoutingGate(0.72, (0.65, 0.80)).decide(confidence) == expected


def test_threshold_decides_outside_gray_zone():
    gate = RoutingGate(0.9, (0.2, 0.3))
    assert gate.decide(0.5) == FALLBACK
    assert gate.decide(0.25) == SELF_CONSISTENCY
    assert gate.decide(0.9) == SERVE


def test_bad_bounds_rejected():
    with pytest.raises(ValueError, match="ordered"):
        RoutingGate(0.5, (0.8, 0.2))
    with pytest.raises(ValueError, match="confidence_threshold"):
        RoutingGate(1.5)


@pytest.mark.parametrize(
    ("threshold", "bounds"), [(0.72, (0.65, 0.80)), (0.9, (0.3, 0.5)), (0.5, (0.5, 0.5))]
)
def test_decisions_follow_the_configured_bounds(threshold, bounds):
    from monitor.config.load import parse_config

    cfg = parse_config(
        {
            "reliability_monitor": {
                "routing": {"confidence_threshold": threshold, "gray_zone_bounds": list(bounds)}
            }
        }
    )
    gate = RoutingGate.from_config(cfg.reliability_monitor.routing)
    grid = np.linspace(0, 1, 201)
    decisions = gate.decide_many(grid)
    lo, hi = bounds
    for p, d in zip(grid, decisions):
        if lo <= p <= hi:
            assert d == SELF_CONSISTENCY
        else:
            assert d == (SERVE if p >= threshold else FALLBACK)
    assert gate.decide(float("nan")) == FALLBACK  # an unscored request is never served


def test_resolve_after_self_consistency():
    gate = RoutingGate()
    assert gate.resolve(SELF_CONSISTENCY, 0.8, threshold=0.6) == SERVE
    assert gate.resolve(SELF_CONSISTENCY, 0.4, threshold=0.6) == FALLBACK
    assert gate.resolve(SERVE, 0.0, threshold=0.6) == SERVE
    assert gate.resolve(SELF_CONSISTENCY, None, threshold=0.6) == SELF_CONSISTENCY
