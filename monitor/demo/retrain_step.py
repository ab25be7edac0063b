"""The demo's automatic retrain: a window's alert -> challenger -> promotion or refusal.

The first calibration-drift or KL alert on a window goes through
:func:`monitor.retraining.triggers.maybe_retrain_on_alert` exactly as the daemon
would, on the labelled states ingested into DuckDB, against the demo's own
registry (one per demo run, so an earlier run's cooldown does not apply, and no
cooldown between the demo's windows). A promotion is announced on the control
topic, where the serving collector's :class:`collectors.probe.reload.ProbeWatcher`
picks it up. A refusal says what the operator should do instead.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from detectors.calibration.labelling_budget import labels_needed
from monitor.config.settings import Config
from monitor.demo.windows import WindowScore
from monitor.retraining.triggers import is_trigger_alert, maybe_retrain_on_alert
from retrain.job import RetrainOutcome

DEMO_MIN_SAMPLES = 200


def demo_config(cfg: Config, registry_dir: Any) -> Config:
    """``cfg`` with the demo's registry, auto-retrain, no retrain cooldown and a smaller
    ``min_labelled_samples`` (at most :data:`DEMO_MIN_SAMPLES`)."""
    rm = cfg.reliability_monitor
    retrain = rm.retrain.model_copy(
        update={
            "registry_dir": registry_dir,
            "min_labelled_samples": min(rm.retrain.min_labelled_samples, DEMO_MIN_SAMPLES),
            "cooldown": "0s",
        }
    )
    monitoring = rm.monitoring.model_copy(update={"retrain_trigger": "auto"})
    rm = rm.model_copy(update={"retrain": retrain, "monitoring": monitoring})
    return cfg.model_copy(update={"reliability_monitor": rm})


def demo_auto_retrain(
    cfg: Config, store: Any, score: WindowScore, since: float, console: Console
) -> RetrainOutcome | None:
    """Retrain after the first trigger alert of ``score``'s window; print what happened.

    The retrain reads the labelled traffic from ``since`` to the window's end, as
    the daemon reads its ``retrain.window``; when the champion's log loss changed
    inside it (:mod:`retrain.change_point`), the challenger is fitted on what
    follows the change only.

    Parameters
    ----------
    cfg : Config
        From :func:`demo_config`.
    store : monitor.store.database.Store
        Holds the ingested events, states and labels.
    score : WindowScore
        The scored window and its alerts.
    since : float
        Start of the retrain's window, seconds since the Unix epoch.
    console : Console

    Returns
    -------
    RetrainOutcome or None
        None when the window raised no calibration-drift or KL alert.
    """
    window = score.window
    trigger = next((a for a in score.alerts if is_trigger_alert(a)), None)
    if trigger is None:
        return None
    console.print(
        f"  Alert [bold]{trigger.kind}[/] ({trigger.message}) -> automatic retrain on the "
        "labelled traffic in DuckDB"
    )
    outcome = maybe_retrain_on_alert(cfg, store, trigger, window=(since, window.end + 1.0))
    if outcome is None or outcome.decision is None:
        console.print(f"  No retrain: {outcome.reason if outcome else 'cooldown'}")
        return outcome
    if outcome.window[0] > since + 1.0:
        console.print(
            f"  {outcome.champion_version}'s log loss changed "
            f"{outcome.window[0] - since:.0f} s into the window: the challenger is fitted on "
            f"the {outcome.n_samples} labelled requests after the change"
        )
    d = outcome.decision
    table = Table(title=f"Held-out test split ({d.challenger.n} requests)", title_justify="left")
    for col in ("probe", "AUROC [95 % CI]", "ECE [95 % CI]", "Brier"):
        table.add_column(col)
    rows = [
        (f"champion {outcome.champion_version}", d.champion),
        (f"challenger {outcome.version} ({outcome.calibration_method})", d.challenger),
    ]
    for name, ev in rows:
        if ev is not None:
            table.add_row(
                name,
                f"{ev.auroc:.3f} [{ev.auroc_ci[0]:.3f}, {ev.auroc_ci[1]:.3f}]",
                f"{ev.ece:.3f} [{ev.ece_ci[0]:.3f}, {ev.ece_ci[1]:.3f}]",
                f"{ev.brier:.3f}",
            )
    console.print(table)
    if outcome.promoted:
        console.print(
            f"  Challenger {outcome.version} [green]promoted[/]: {d.reason}; announced on "
            f"{cfg.reliability_monitor.kafka.topics.control}"
        )
    else:
        console.print(f"  Challenger {outcome.version} [yellow]refused[/]: {d.reason}")
        console.print(operator_advice(cfg, score, outcome))
    return outcome


def operator_advice(cfg: Config, score: WindowScore, outcome: RetrainOutcome) -> str:
    """What to do when no probe on this traffic can be promoted."""
    rm = cfg.reliability_monitor
    d = outcome.decision
    n = len(score.window.events)
    chance = d is not None and not d.rules.get("above_chance", True)
    why = (
        f"no probe on decoder layer {rm.target_layer} tells right from wrong answers on this "
        f"traffic (challenger AUROC {d.challenger.auroc:.2f}); the model itself fails here "
        f"(accuracy {score.window.accuracy:.0%})"
        if chance and d is not None
        else "the challenger is not better than the serving probe on this traffic"
    )
    return (
        f"  [bold]What to do:[/] {why}. Keep {outcome.champion_version} serving, and send "
        f"this traffic to the fallback (raise routing.confidence_threshold, or route its "
        f"tag); label {labels_needed(n, None, 0.03)} of its {n} requests at random to bound "
        "the accuracy to +-3 points, starting with `vlm-monitor review`'s most novel ones; "
        "then fine-tune or replace the model for these inputs."
    )
