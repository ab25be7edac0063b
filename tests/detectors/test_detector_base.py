"""DetectorResult invariants, input helpers, parameter handling and the doctests."""

from __future__ import annotations

import dataclasses
import doctest

import numpy as np
import pytest

import detectors.calibration.calibration_error
import detectors.scores.kl
from detectors.base import DetectorResult, as_binary, as_probability
from detectors.scores.kl import KLDivergence


def _result(**overrides) -> DetectorResult:
    fields = dict(
        detector="kl_divergence",
        statistic=0.2,
        threshold=0.15,
        is_drift=True,
        p_value=None,
        n_reference=100,
        n_current=120,
        window_start=0.0,
        window_end=60.0,
        insufficient_data=False,
        details={"unit": "nats"},
    )
    fields.update(overrides)
    return DetectorResult(**fields)


def test_result_coerces_numpy_scalars_to_python_types():
    r = _result(statistic=np.float64(0.2), is_drift=np.bool_(True), n_current=np.int64(120))
    assert type(r.statistic) is float and type(r.is_drift) is bool and type(r.n_current) is int


def test_result_is_frozen_and_details_read_only():
    r = _result()
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.statistic = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        r.details["unit"] = "bits"  # type: ignore[index]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"insufficient_data": True}, "insufficient"),
        ({"statistic": None}, "statistic is None"),
        ({"statistic": float("nan")}, "NaN"),
        ({"window_start": 61.0}, "window_start"),
        ({"n_current": -1}, "negative"),
    ],
)
def test_result_rejects_inconsistent_fields(overrides, match):
    with pytest.raises(ValueError, match=match):
        _result(**overrides)


def test_bad_window_is_rejected_by_score():
    det = KLDivergence(min_samples=1).fit(np.linspace(0, 1, 20))
    with pytest.raises(ValueError, match="window"):
        det.score(np.linspace(0, 1, 20), window=(10.0, 5.0))
    with pytest.raises(ValueError, match="window"):
        det.score(np.linspace(0, 1, 20), window=("a", "b"))


def test_get_params_and_repr_come_from_the_signature():
    det = KLDivergence(threshold=0.3, n_bins=20)
    assert det.get_params() == {
        "threshold": 0.3,
        "n_bins": 20,
        "epsilon": 1e-4,
        "value_range": (0.0, 1.0),
        "min_samples": 100,
        "alpha": None,
        "null_resamples": 1000,
        "random_state": 0,
    }
    assert repr(det).startswith("KLDivergence(threshold=0.3, n_bins=20,")


def test_input_helpers():
    np.testing.assert_array_equal(as_binary([True, False, 1, 0], "y"), [1.0, 0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match=r"y must be binary.*index 1"):
        as_binary([1, 3], "y")
    with pytest.raises(ValueError, match=r"2 value\(s\) outside, first 1.5 at index 1"):
        as_probability([0.5, 1.5, -1.0], "conf")


@pytest.mark.parametrize("module", [detectors.scores.kl, detectors.calibration.calibration_error])
def test_doctests(module):
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
