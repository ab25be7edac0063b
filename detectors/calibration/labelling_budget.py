"""How many labels bound an accuracy to a margin: the labelling budget of a window.

The sample size for estimating a proportion :math:`p` to within :math:`\\pm d` at
confidence level :math:`1 - \\alpha`, drawn without replacement from a window of
:math:`N` events (Cochran 1977, *Sampling Techniques*, 3rd ed., Eqs. 4.2 and 4.3):

.. math::

    n_0 = \\frac{z_{1-\\alpha/2}^2 \\, p (1 - p)}{d^2}, \\qquad
    n = \\frac{n_0}{1 + (n_0 - 1) / N}.

With no trustworthy guess of :math:`p` (the label-free estimate is unreliable),
:math:`p = 0.5` gives the largest :math:`n`.
"""

from __future__ import annotations

import math

from scipy.stats import norm


def labels_needed(
    n_window: int, accuracy: float | None = None, margin: float = 0.03, level: float = 0.95
) -> int:
    """Labels, drawn at random from the window, that bound its accuracy to ``+-margin``.

    Parameters
    ----------
    n_window : int
        Events in the window, :math:`N` (>= 1).
    accuracy : float or None
        A guess of the accuracy (probability); None: 0.5, the worst case.
    margin : float
        Half-width :math:`d`, probability units, in (0, 1).
    level : float
        Confidence level, in (0, 1).

    Returns
    -------
    int
        At most ``n_window``.

    Raises
    ------
    ValueError
        A parameter outside its range.
    """
    p = 0.5 if accuracy is None else float(accuracy)
    if int(n_window) < 1 or not 0.0 <= p <= 1.0 or not 0 < margin < 1 or not 0 < level < 1:
        raise ValueError(
            f"need n_window >= 1, accuracy in [0, 1], margin and level in (0, 1); got "
            f"{n_window}, {accuracy}, {margin}, {level}"
        )
    z = norm.ppf(0.5 + level / 2.0)
    n0 = z * z * max(p * (1.0 - p), 1e-12) / (margin * margin)
    n = n0 / (1.0 + (n0 - 1.0) / int(n_window))
    return min(int(n_window), max(1, math.ceil(n)))
