"""Scoring one subject's window with every detector (used by drift runs and the weekly report).

For a subject (:class:`monitor.store.queries.Subject`), a reference window and a current
window, :func:`score_window` runs:

- on the calibrated confidence and on the raw probe logit: KL divergence, PSI,
  Jensen-Shannon distance (bins fixed on the reference: [0, 1] for the
  confidence, the reference's range for the logit) and the KS test;
- on the window's labelled events: calibration (ECE, adaptive ECE, MCE, Brier
  with bootstrap intervals);
- the label-free accuracy estimate and its drop, with the labelled accuracy;
- on pooled hidden states, when captured: MMD and the domain-classifier AUROC.

A detector that raises is logged with its traceback and returned as a
:class:`Failure`; the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.base import DetectorResult
from detectors.calibration.calibration_error import CalibrationError
from detectors.calibration.label_free import EstimatedAccuracyDrop
from detectors.scores.js import JensenShannonDistance
from detectors.scores.kl import KLDivergence
from detectors.scores.ks import KolmogorovSmirnov
from detectors.scores.psi import PopulationStabilityIndex
from detectors.states.domain_classifier import DomainClassifierAUROC
from detectors.states.mmd import MaximumMeanDiscrepancy
from monitor.config.settings import Config
from monitor.detection.trust import judge_estimate
from monitor.store import aggregates, queries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """One detector result with what it was about.

    Attributes
    ----------
    subject : Subject
        Model, probe version and tag.
    signal : str
        ``"confidence"``, ``"raw_logit"`` or ``"state"``.
    result : DetectorResult
    """

    subject: queries.Subject
    signal: str
    result: DetectorResult

    @property
    def name(self) -> str:
        """The subject string stored in ``detector_runs``: ``model/probe/tag/signal``."""
        return f"{self.subject.name}/{self.signal}"


@dataclass(frozen=True)
class Failure:
    """A detector that raised on a subject.

    Attributes
    ----------
    subject : Subject
    signal : str
    detector : str
    error : BaseException
    """

    subject: queries.Subject
    signal: str
    detector: str
    error: BaseException

    @property
    def name(self) -> str:
        """``model/probe/tag/signal``, as :attr:`Scored.name`."""
        return f"{self.subject.name}/{self.signal}"


def score_window(
    cfg: Config,
    store: Any,
    subject: queries.Subject,
    reference: tuple[float, float],
    current: tuple[float, float],
    states: bool = True,
    state_reference: tuple[queries.Subject, tuple[float, float]] | None = None,
) -> list[Scored | Failure]:
    """Run every detector on one subject's current window against its reference window.

    A detector that raises is logged with its traceback and returned as a
    :class:`Failure`; the others still run. Pooled-state detectors run only with
    ``states=True`` and when the collector captured states.

    ``state_reference`` is ``(subject, window)`` of the pooled-state detectors'
    reference (:func:`monitor.detection.reference.state_reference`: pinned per model,
    across probe versions); default the subject's own ``reference``.

    Returns
    -------
    list of Scored or Failure
        In a fixed order: score detectors on ``confidence`` then ``raw_logit``,
        calibration, label-free accuracy, then MMD and the domain classifier.
    """
    mon = cfg.reliability_monitor.monitoring
    ref, cur = reference, current
    out: list[Scored | Failure] = []

    def attempt(signal: str, detector: str, compute: Callable[[], DetectorResult | None]) -> None:
        try:
            result = compute()
        except Exception as exc:  # noqa: BLE001 - one detector must not stop the others
            log.exception("detector %s failed on %s/%s", detector, subject.name, signal)
            out.append(Failure(subject, signal, detector, exc))
            return
        if result is not None:
            out.append(Scored(subject, signal, result))

    n_min, limit = mon.min_window_events, mon.sample_rows
    summaries = {}
    for signal in queries.SCORE_COLUMNS:
        ref_sum = aggregates.score_summary(store, subject, *ref, column=signal)
        summaries[signal] = ref_sum
        value_range = (0.0, 1.0) if signal == "confidence" else None
        binned = {
            KLDivergence: mon.kl_divergence_threshold,
            PopulationStabilityIndex: mon.psi_threshold,
            JensenShannonDistance: mon.js_threshold,
        }
        shared: dict[str, Any] = {}  # both windows are binned once, in SQL, for all three
        for cls, threshold in binned.items():
            det = cls(
                threshold=threshold,
                n_bins=mon.kl_bins,
                epsilon=mon.kl_epsilon,
                value_range=value_range,
                min_samples=n_min,
                alpha=mon.false_alarm_rate,
                null_resamples=mon.null_resamples,
            )
            attempt(signal, cls.name, lambda d=det, b=shared, s=signal, r=ref_sum: _divergence(
                d, store, subject, s, r, ref, cur, b))  # fmt: skip
        ks = KolmogorovSmirnov(alpha=mon.ks_alpha, min_samples=n_min)
        attempt(signal, ks.name, lambda d=ks, s=signal: _ks(d, store, subject, s, ref, cur, limit))

    ece = CalibrationError(
        threshold=mon.ece_threshold,
        n_bins=mon.ece_bins,
        min_samples=n_min,
        n_bootstrap=mon.bootstrap_resamples,
    )
    acc = EstimatedAccuracyDrop(threshold=mon.accuracy_drop_threshold, min_samples=n_min)
    bins = aggregates.reliability_bins(store, subject, *cur, n_bins=mon.ece_bins)

    def calibration() -> DetectorResult:
        _fit_calibration(ece, aggregates.labelled_sample(store, subject, *ref, limit=limit))
        cur_sample = aggregates.labelled_sample(store, subject, *cur, limit=limit)
        return ece.score_bins(
            bins.counts, bins.confidence_sum, bins.correct_sum, bins.squared_error_sum,
            sample=cur_sample, window=cur,
        )  # fmt: skip

    def label_free() -> DetectorResult:
        ref_conf = summaries["confidence"]
        now = aggregates.score_summary(store, subject, *cur, column="confidence")
        labelled = (bins.n, round(float(bins.correct_sum.sum())), float(bins.confidence_sum.sum()))
        acc.fit_summary(ref_conf.n, ref_conf.total)
        return acc.score_summary(
            now.n, now.total, now.total_variance, window=cur, labelled=labelled
        )

    attempt("confidence", ece.name, calibration)
    attempt("confidence", acc.name, label_free)
    if states:
        ref_subject, state_ref = state_reference or (subject, ref)
        for det in _state_detectors(cfg):
            attempt("state", det.name, lambda d=det: _state_result(
                store, subject, state_ref, cur, d, ref_subject))  # fmt: skip
    return judge_estimate(out)  # unreliable where the inputs moved


def _fit_calibration(ece: Any, reference: tuple[Any, Any]) -> Any:
    """Fit on the reference's labelled events, or without a reference ECE while it has none
    (labels arrive late; the window's own ECE is judged regardless)."""
    return ece.fit(*reference) if len(reference[0]) else ece.fit()


def _ks(
    det: KolmogorovSmirnov,
    store: Any,
    subject: queries.Subject,
    signal: str,
    ref: tuple[float, float],
    cur: tuple[float, float],
    limit: int,
) -> DetectorResult:
    """The KS test on at most ``limit`` values of each window (a fixed hash sample)."""
    det.fit(aggregates.sample(store, subject, *ref, column=signal, limit=limit))
    return det.score(aggregates.sample(store, subject, *cur, column=signal, limit=limit), cur)


def _divergence(
    det: Any,
    store: Any,
    subject: queries.Subject,
    signal: str,
    ref_summary: aggregates.ScoreSummary,
    ref: tuple[float, float],
    cur: tuple[float, float],
    shared: dict[str, Any],
) -> DetectorResult:
    """Fit and score a histogram detector on counts binned in SQL, once for all three.

    The bins are ``det.value_range`` or, without one, the reference window's range.

    Raises
    ------
    ValueError
        An empty reference, or (without ``value_range``) a constant one.
    """
    if not shared:
        if ref_summary.n == 0:
            raise ValueError("reference is empty: need at least one sample to fix the bins")
        lo, hi = det.value_range or (ref_summary.low, ref_summary.high)
        if lo == hi:
            raise ValueError(f"reference is constant ({lo}): pass value_range explicitly")
        edges = np.linspace(float(lo), float(hi), det.n_bins + 1)
        shared.update(
            edges=edges,
            ref=aggregates.histogram(store, subject, *ref, column=signal, edges=edges)[0],
            cur=aggregates.histogram(store, subject, *cur, column=signal, edges=edges),
        )
    det.fit_counts(shared["ref"], shared["edges"])
    counts, n_clipped = shared["cur"]
    return det.score_counts(counts, window=cur, n_clipped=n_clipped)


def _state_detectors(cfg: Config) -> tuple[Any, ...]:
    mon = cfg.reliability_monitor.monitoring
    n_min, limit, k = mon.min_window_events, mon.state_max_samples, mon.state_pca_components
    return (
        MaximumMeanDiscrepancy(
            alpha=mon.mmd_alpha,
            n_components=k,
            n_permutations=mon.mmd_permutations,
            max_samples=limit,
            random_state=0,
            min_samples=n_min,
        ),
        DomainClassifierAUROC(
            threshold=mon.domain_auroc_threshold,
            alpha=mon.false_alarm_rate,
            n_components=k,
            n_folds=5,
            max_samples=limit,
            random_state=0,
            min_samples=n_min,
        ),
    )


def _state_result(
    store: Any,
    subject: queries.Subject,
    ref: tuple[float, float],
    cur: tuple[float, float],
    det: Any,
    ref_subject: queries.Subject | None = None,
) -> DetectorResult | None:
    """Fit and score a pooled-state detector; None when no state was captured.

    The reference states are ``ref_subject``'s (default ``subject``'s) in ``ref``.
    """
    ref_s = queries.states(store, ref_subject or subject, *ref, limit=4 * det.max_samples)
    cur_s = queries.states(store, subject, *cur, limit=det.max_samples)
    if ref_s.shape[0] == 0 and cur_s.shape[0] == 0:
        return None  # the collector does not capture states for this subject
    if ref_s.shape[0] < max(4, det.min_samples):  # e.g. states captured only after the reference
        return DetectorResult(
            detector=det.name,
            statistic=None,
            threshold=getattr(det, "threshold", 0.0),
            is_drift=False,
            p_value=None,
            n_reference=ref_s.shape[0],
            n_current=cur_s.shape[0],
            window_start=cur[0],
            window_end=cur[1],
            insufficient_data=True,
            details={"reason": f"reference window holds {ref_s.shape[0]} state(s)"},
        )
    return det.fit(ref_s).score(cur_s, window=cur)
