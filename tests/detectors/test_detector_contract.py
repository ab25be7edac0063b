"""One contract test over every detector: sklearn-style fit/score and the result fields.

Every concrete :class:`detectors.base.Detector` subclass in the ``detectors``
package must have a case in ``CASES`` (``test_every_detector_has_a_case`` fails
otherwise): how to fit it on a reference, and a drifted and a too-small window.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import math
import pkgutil
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import detectors
from detectors.base import Detector, DetectorResult, NotFittedError
from detectors.calibration.calibration_error import CalibrationError
from detectors.calibration.label_free import EstimatedAccuracyDrop
from detectors.scores.js import JensenShannonDistance
from detectors.scores.kl import KLDivergence
from detectors.scores.ks import KolmogorovSmirnov
from detectors.scores.psi import PopulationStabilityIndex
from detectors.states.domain_classifier import DomainClassifierAUROC
from detectors.states.mmd import MaximumMeanDiscrepancy

Args = tuple[Any, ...]


def _kl_case(rng: np.random.Generator) -> tuple[Args, Args, Args]:
    return (rng.beta(5, 2, 1000),), (rng.beta(2, 3, 500),), (rng.beta(5, 2, 10),)


def _calibration_case(rng: np.random.Generator) -> tuple[Args, Args, Args]:
    ref_conf = rng.uniform(0.5, 1, 1000)
    cur_conf = rng.uniform(0.5, 1, 500)
    return (
        (ref_conf, rng.uniform(size=1000) < ref_conf),
        (cur_conf, rng.uniform(size=500) < cur_conf - 0.3),
        (cur_conf[:10], np.ones(10, dtype=bool)),
    )


def _states_case(rng: np.random.Generator) -> tuple[Args, Args, Args]:
    ref = rng.normal(size=(400, 48))
    return (ref,), (rng.normal(size=(300, 48)) + 0.4,), (rng.normal(size=(10, 48)),)


def _accuracy_case(rng: np.random.Generator) -> tuple[Args, Args, Args]:
    return (rng.beta(8, 2, 1000),), (rng.beta(4, 3, 500),), (rng.beta(8, 2, 10),)


# class -> rng -> (fit args, drifted current args, too-small current args)
CASES: dict[type[Detector], Callable[[np.random.Generator], tuple[Args, Args, Args]]] = {
    KLDivergence: _kl_case,
    PopulationStabilityIndex: _kl_case,
    JensenShannonDistance: _kl_case,
    KolmogorovSmirnov: _kl_case,
    CalibrationError: _calibration_case,
    MaximumMeanDiscrepancy: _states_case,
    DomainClassifierAUROC: _states_case,
    EstimatedAccuracyDrop: _accuracy_case,
}


def _all_detector_classes() -> set[type[Detector]]:
    for info in pkgutil.iter_modules(detectors.__path__):
        importlib.import_module(f"detectors.{info.name}")
    found, todo = set(), [Detector]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if not inspect.isabstract(sub) and sub.__module__.startswith("detectors."):
                found.add(sub)
    return found


def test_every_detector_has_a_case():
    missing = {c.__name__ for c in _all_detector_classes()} - {c.__name__ for c in CASES}
    assert not missing, f"add these detectors to CASES in {__file__}: {sorted(missing)}"


@pytest.fixture(params=list(CASES), ids=lambda c: c.__name__)
def case(request):
    cls = request.param
    fit_args, drift_args, small_args = CASES[cls](np.random.default_rng(12345))
    return cls, fit_args, drift_args, small_args


def test_init_only_stores_parameters(case):
    cls, *_ = case
    det = cls()
    params = inspect.signature(cls.__init__).parameters
    assert set(vars(det)) == set(params) - {"self"}
    assert not [a for a in vars(det) if a.endswith("_")]
    assert isinstance(cls.name, str) and cls.name != Detector.name


def test_fit_returns_self_and_learns_underscore_attributes(case):
    cls, fit_args, *_ = case
    det = cls()
    assert det.fit(*fit_args) is det
    learned = [a for a in vars(det) if a.endswith("_")]
    assert "n_reference_" in learned


def test_score_before_fit_raises(case):
    cls, _, drift_args, _ = case
    with pytest.raises(NotFittedError):
        cls().score(*drift_args)


def test_result_fields(case):
    cls, fit_args, drift_args, _ = case
    det = cls().fit(*fit_args)
    r = det.score(*drift_args, window=(1000.0, 2000.0))
    assert isinstance(r, DetectorResult)
    assert r.detector == cls.name
    assert isinstance(r.statistic, float) and r.statistic >= 0.0
    assert r.is_drift is True and r.is_drift == (r.statistic > r.threshold)
    assert r.p_value is None or 0.0 <= r.p_value <= 1.0
    if getattr(det, "alpha", None) is not None:  # a test: the threshold is its critical value
        assert r.p_value is not None and (r.p_value < det.alpha) == r.is_drift
        assert r.details["alpha"] == det.alpha
        null = det.score(*CASES[cls](np.random.default_rng(7))[0])  # a fresh reference draw
        assert (null.p_value < det.alpha) == null.is_drift == (null.statistic > null.threshold)
    else:
        assert r.threshold == det.threshold
    assert r.n_reference == det.n_reference_ and r.n_current == len(drift_args[0])
    assert math.isfinite(r.threshold)
    assert (r.window_start, r.window_end) == (1000.0, 2000.0)
    assert r.insufficient_data is False
    assert "unit" in r.details
    plain = json.loads(json.dumps(r.as_dict()))  # storable as JSON
    assert plain["statistic"] == r.statistic and plain["details"]["unit"] == r.details["unit"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.is_drift = False  # type: ignore[misc]


def test_insufficient_data(case):
    cls, fit_args, _, small_args = case
    r = cls(min_samples=100).fit(*fit_args).score(*small_args)
    assert r.insufficient_data is True
    assert r.statistic is None and r.is_drift is False and r.p_value is None
    assert r.n_current == len(small_args[0])
    assert r.window_start is None and r.window_end is None
