"""Labels that bound an accuracy to +-3 points (Cochran 1977, Eqs. 4.2-4.3)."""

import numpy as np
import pytest

from detectors.calibration.labelling_budget import labels_needed


def test_known_sizes():
    assert labels_needed(10**9) == 1068  # 1.96^2 * 0.25 / 0.03^2 = 1067.1
    assert labels_needed(500) == 341  # finite population: 1067.1 / (1 + 1066.1 / 500)
    assert labels_needed(10**9, accuracy=0.9) == 385
    assert labels_needed(50) <= 50 and labels_needed(1) == 1


def test_the_bound_holds_when_drawing_that_many_at_random():
    rng = np.random.default_rng(0)
    window = rng.random(20_000) < 0.7  # the truth: which answers in the window were right
    n = labels_needed(window.size)
    errors = [abs(rng.choice(window, n, replace=False).mean() - window.mean()) for _ in range(400)]
    assert np.mean(np.array(errors) <= 0.03) > 0.93  # 95 % nominal


@pytest.mark.parametrize("args", [(0,), (10, 1.5), (10, 0.5, 0.0), (10, 0.5, 0.03, 1.0)])
def test_bad_input_is_named(args):
    with pytest.raises(ValueError, match="n_window"):
        labels_needed(*args)
