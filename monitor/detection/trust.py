"""When the label-free accuracy estimate cannot be trusted, and what it would take to know.

The estimate is the mean calibrated confidence
(:class:`detectors.calibration.label_free.EstimatedAccuracyDrop`): valid only while
the probe is calibrated on the current inputs. When the pooled hidden states have
moved (MMD or the domain classifier flags the window), the calibration measured
on the reference says nothing about the new inputs, and peers built on the same
confidences fail the same way (CBPE, ATC, importance weighting). So then the
estimate is reported as unreliable, with no interval, and with the labelling
budget that would replace it: how many labels, drawn at random from the window,
bound the accuracy to +-3 points (:func:`detectors.calibration.labelling_budget.labels_needed`,
at the worst case p = 0.5), and which events to send first
(:mod:`monitor.detection.review`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from detectors.calibration.label_free import EstimatedAccuracyDrop
from detectors.calibration.labelling_budget import labels_needed
from detectors.states.domain_classifier import DomainClassifierAUROC
from detectors.states.mmd import MaximumMeanDiscrepancy

MARGIN = 0.03
STATE_DETECTORS = (MaximumMeanDiscrepancy.name, DomainClassifierAUROC.name)


def judge_estimate(results: list[Any]) -> list[Any]:
    """``results`` of one subject with its label-free estimate marked reliable or not.

    Parameters
    ----------
    results : list of monitor.detection.scoring.Scored or Failure
        One subject's results (any order); failures pass through.

    Returns
    -------
    list of Scored or Failure
        The same, the ``estimated_accuracy_drop`` result's ``details`` extended with
        ``reliable`` (bool), ``unreliable_because`` (str or None) and
        ``labels_for_3_points`` (int); an unreliable estimate loses its interval.
    """
    scored_only = [s.result for s in results if hasattr(s, "result")]
    moved = [r for r in scored_only if r.detector in STATE_DETECTORS and r.is_drift]
    out = []
    for scored in results:
        r = getattr(scored, "result", None)
        if r is None or r.detector != EstimatedAccuracyDrop.name or r.insufficient_data:
            out.append(scored)
            continue
        details = dict(r.details)
        reliable = not moved
        guess = details.get("estimated_accuracy") if reliable else None
        details.update(
            reliable=reliable,
            unreliable_because=None if reliable else "pooled states moved: " + ", ".join(
                f"{m.detector} {m.statistic:.3f}" for m in moved),
            labels_for_3_points=labels_needed(r.n_current, guess, MARGIN),
        )  # fmt: skip
        if not reliable:
            details["estimated_interval"] = None
        out.append(replace(scored, result=replace(r, details=details)))
    return out
