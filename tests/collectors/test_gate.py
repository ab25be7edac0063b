import pytest

from collectors.gate import FALLBACK, SELF_CONSISTENCY, SERVE, RoutingGate


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
