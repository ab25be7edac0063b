import numpy as np
import pytest
from scipy.stats import pointbiserialr
from sklearn.metrics import roc_auc_score

from monitor.study.stats import signal_stats


def test_matches_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.6
    score = y + rng.normal(0, 1.0, 300)
    st = signal_stats(score, y, n_resamples=200, seed=0)
    assert st.n == 300
    assert st.auroc == pytest.approx(roc_auc_score(y, score))
    assert st.r_pb == pytest.approx(pointbiserialr(y, score).statistic)
    assert st.auroc_ci[0] < st.auroc < st.auroc_ci[1]
    assert st.r_pb_ci[0] < st.r_pb < st.r_pb_ci[1]
    assert st.auroc_ci[0] > 0.6  # informative signal: interval above chance


def test_noise_interval_covers_chance_and_resamples_matter():
    rng = np.random.default_rng(1)
    y = rng.random(200) < 0.5
    noise = rng.normal(size=200)
    st = signal_stats(noise, y, n_resamples=500, seed=0)
    assert st.auroc_ci[0] < 0.5 < st.auroc_ci[1]
    assert st.r_pb_ci[0] < 0.0 < st.r_pb_ci[1]
    other = signal_stats(noise, y, n_resamples=500, seed=1)
    assert other.auroc == st.auroc and other.auroc_ci != st.auroc_ci


def test_undefined_and_bad_input():
    st = signal_stats(np.ones(10), np.arange(10) < 5, n_resamples=50)
    assert np.isnan(st.r_pb) and st.auroc == 0.5
    assert np.isnan(signal_stats(np.arange(10.0), np.ones(10, bool), n_resamples=50).auroc)
    with pytest.raises(ValueError, match="equal 1-d"):
        signal_stats(np.ones(3), np.ones(4, bool))
    with pytest.raises(ValueError, match="n_resamples"):
        signal_stats(np.ones(3), np.ones(3, bool), n_resamples=0)
