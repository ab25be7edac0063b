"""Domain-classifier AUROC on pooled states: chance under no shift, high under a shift."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import detectors.states.domain_classifier
from detectors.states.domain_classifier import DomainClassifierAUROC


@pytest.fixture(scope="module")
def fitted() -> DomainClassifierAUROC:
    rng = np.random.default_rng(17)
    return DomainClassifierAUROC(n_components=8).fit(rng.normal(size=(600, 40)))


def test_no_shift_gives_chance_auroc(fitted):
    rng = np.random.default_rng(18)
    aurocs = [fitted.score(rng.normal(size=(300, 40))).statistic for _ in range(5)]
    assert all(0.35 < a < 0.65 for a in aurocs), aurocs
    assert not any(fitted.score(rng.normal(size=(300, 40))).is_drift for _ in range(3))


def test_shift_in_a_few_directions_is_found(fitted):
    rng = np.random.default_rng(19)
    shifted = rng.normal(size=(300, 40))
    shifted[:, :8] += 0.8
    r = fitted.score(shifted, window=(10.0, 20.0))
    assert r.statistic > 0.8 and r.is_drift and r.p_value is None
    assert r.details["n_used_reference"] == 300 and r.details["n_folds"] == 5


def test_statistic_is_the_out_of_fold_auroc():
    # A perfectly separable pair gives AUROC 1 exactly; the value is sklearn's roc_auc_score.
    rng = np.random.default_rng(20)
    det = DomainClassifierAUROC(n_components=2, n_folds=3).fit(rng.normal(size=(300, 6)))
    r = det.score(rng.normal(size=(150, 6)) + 50.0)
    assert r.statistic == 1.0
    assert roc_auc_score([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0


def test_errors(fitted):
    with pytest.raises(ValueError, match="features"):
        fitted.score(np.zeros((200, 8)))
    with pytest.raises(ValueError, match="n_folds"):
        DomainClassifierAUROC(n_folds=1).fit(np.zeros((20, 4)))


def test_doctests():
    failures, tried = doctest.testmod(detectors.states.domain_classifier)
    assert tried > 0 and failures == 0


def test_with_alpha_a_held_out_test_decides_with_the_floor():
    """Lopez-Paz and Oquab's classifier two-sample test: separable but within chance is no
    alert; a small, significant shift above the floor is one."""
    rng = np.random.default_rng(11)
    det = DomainClassifierAUROC(threshold=0.55, n_components=8, alpha=0.01)
    det.fit(rng.normal(size=(1200, 32)))
    quiet = [det.score(rng.normal(size=(300, 32))) for _ in range(5)]
    assert not any(r.is_drift for r in quiet) and all(r.p_value > 0.01 for r in quiet)
    moved = det.score(rng.normal(size=(300, 32)) + 0.25)
    assert moved.is_drift and moved.p_value < 0.01 and moved.statistic > 0.55
    assert moved.details["p_value_test"] == "held-out Mann-Whitney U"
