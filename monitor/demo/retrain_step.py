"""Demo part 6: the shift alert triggers an automatic retrain on labelled shifted traffic.

Called by :func:`monitor.demo.run.run_demo` after the detectors ran. The demo's
probe becomes the champion of a fresh registry (one per demo run, so an
earlier run's cooldown does not apply); the first calibration-drift or KL
alert on the shifted window goes through :func:`monitor.retraining.triggers.maybe_retrain_on_alert`
exactly as the daemon would, on the labelled states ingested into DuckDB; the
champion and the challenger are compared on the same held-out test split.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from collectors.probe.linear import LinearProbe
from monitor.config.settings import Config
from monitor.retraining.triggers import is_trigger_alert, maybe_retrain_on_alert
from retrain.job import RetrainOutcome
from retrain.registry import ProbeRegistry

DEMO_MIN_SAMPLES = 200


def demo_auto_retrain(
    cfg: Config,
    store: Any,
    window: Any,
    alerts: Sequence[Any],
    champion: LinearProbe,
    console: Console,
) -> RetrainOutcome | None:
    """Retrain on the shifted window after its alert; print ECE and AUROC before and after.

    Parameters
    ----------
    cfg : Config
    store : monitor.store.database.Store
        Holds the ingested events, states and labels.
    window : monitor.demo.traffic.Window
        The shifted window (name, start, end).
    alerts : sequence of Alert
        Alerts raised by the detectors.
    champion : LinearProbe
        The probe that served the traffic.
    console : Console

    Returns
    -------
    RetrainOutcome or None
        None when no calibration-drift or KL alert was raised on the window.
    """
    console.rule("Part 6: automatic retrain after the shift alert")
    trigger = next(
        (a for a in alerts if a.subject.endswith(window.name) and is_trigger_alert(a)), None
    )
    if trigger is None:
        console.print(f"No calibration-drift or KL alert on '{window.name}': nothing to retrain.")
        return None
    rm = cfg.reliability_monitor
    run_dir = rm.store.path.parent / "demo-registry" / time.strftime("run-%Y%m%d-%H%M%S")
    min_samples = min(rm.retrain.min_labelled_samples, DEMO_MIN_SAMPLES)
    retrain = rm.retrain.model_copy(
        update={"registry_dir": run_dir, "min_labelled_samples": min_samples}
    )
    monitoring = rm.monitoring.model_copy(update={"retrain_trigger": "auto"})
    rm = rm.model_copy(update={"retrain": retrain, "monitoring": monitoring})
    cfg = cfg.model_copy(update={"reliability_monitor": rm})
    registry = ProbeRegistry(run_dir)
    registry.publish(champion)
    registry.promote(champion.version, reason="demo probe")
    console.print(
        f"Alert [bold]{trigger.kind}[/] ({trigger.message}) -> auto-retrain on the labelled "
        f"'{window.name}' traffic in DuckDB (registry {run_dir}; min_labelled_samples "
        f"{min_samples} for the demo)"
    )
    outcome = maybe_retrain_on_alert(cfg, store, trigger, window=(window.start, window.end + 1.0))
    if outcome is None or outcome.decision is None:
        console.print(f"No retrain: {outcome.reason if outcome else 'cooldown'}")
        return outcome
    d = outcome.decision
    table = Table(title=f"Held-out test split of '{window.name}' ({d.challenger.n} requests)")
    for col in ("probe", "AUROC [95 % CI]", "ECE [95 % CI]", "Brier"):
        table.add_column(col)
    rows = [
        (f"before: champion {outcome.champion_version}", d.champion),
        (f"after: challenger {outcome.version} ({outcome.calibration_method})", d.challenger),
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
    verdict = "[green]promoted[/]" if outcome.promoted else "[yellow]not promoted[/]"
    console.print(
        f"Challenger {outcome.version} {verdict}: {d.reason}; champion now "
        f"{registry.champion_version()} (collectors following {run_dir} switch at their next "
        "request)"
    )
    return outcome
