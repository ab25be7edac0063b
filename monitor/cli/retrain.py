"""``vlm-monitor retrain`` (champion/challenger by hand) and ``vlm-monitor sweep`` (layer sweep)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from monitor.cli._store import open_store
from monitor.cli.common import ConfigOption, app, load_or_exit


def _layers(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        typer.echo(f"error: --layers: expected comma-separated integers, got {text!r}", err=True)
        raise typer.Exit(2) from None


@app.command()
def retrain(
    config: ConfigOption = None,
    window: Annotated[
        str | None, typer.Option(help="Labelled traffic of this last duration, e.g. 7d.")
    ] = None,
    probe: Annotated[
        str | None, typer.Option(help="l2 | l1 | layernorm_linear (default: retrain.probe).")
    ] = None,
    calibration: Annotated[
        str | None, typer.Option(help="auto | temperature | isotonic (default: from config).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Fit a challenger on labelled states, compare it with the champion, promote if better.

    Exit status: 0 promoted or rejected, 3 skipped (too few labelled states), 1 error.
    """
    import dataclasses
    import time

    from monitor.config.durations import parse_duration
    from monitor.retraining.triggers import retrain_now, settings_from_config
    from retrain.challenger import PROBE_KINDS

    cfg = load_or_exit(config)
    settings = settings_from_config(cfg)
    if probe is not None:
        if probe not in PROBE_KINDS:
            typer.echo(f"error: --probe must be one of {PROBE_KINDS}, got {probe!r}", err=True)
            raise typer.Exit(2)
        settings = dataclasses.replace(settings, kind=probe)
    if calibration is not None:
        if calibration not in ("auto", "temperature", "isotonic"):
            typer.echo(f"error: --calibration: unknown method {calibration!r}", err=True)
            raise typer.Exit(2)
        settings = dataclasses.replace(settings, calibration=calibration)
    bounds = None
    if window is not None:
        try:
            now = time.time()
            bounds = (now - parse_duration(window), now)
        except ValueError as exc:
            typer.echo(f"error: --window: {exc}", err=True)
            raise typer.Exit(2) from None
    with open_store(cfg) as store:
        try:
            outcome = retrain_now(cfg, store, reason="manual", window=bounds, settings=settings)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(outcome.as_dict(), default=str, indent=2))
    else:
        typer.echo(outcome.summary())
        if outcome.version:
            typer.echo(f"registry: {cfg.reliability_monitor.retrain.registry_dir}")
    if outcome.status == "skipped":
        raise typer.Exit(3)


@app.command()
def sweep(
    config: ConfigOption = None,
    n: Annotated[int, typer.Option(help="Labelled requests to generate for the sweep.")] = 1000,
    shift: Annotated[
        str | None, typer.Option(help="Generator shift: noise | small | background | all.")
    ] = None,
    npz: Annotated[
        Path | None,
        typer.Option(help="Sweep a saved dataset instead: states[L, n, d], correct[n], layers[L]."),
    ] = None,
    tolerance: Annotated[float, typer.Option(help="Plateau tolerance, AUROC units.")] = 0.01,
    out: Annotated[Path, typer.Option(help="Directory for sweep.png and sweep.md.")] = Path(
        "vlm-monitor-data/sweep"
    ),
    seed: int = 0,
) -> None:
    """Probe AUROC at every decoder layer; pick the plateau; write a PNG curve and a table."""
    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from monitor.demo.traffic import capture_all_layers
    from retrain.sweep import layer_sweep, plot_sweep

    cfg = load_or_exit(config)
    rm = cfg.reliability_monitor
    if npz is not None:
        try:
            data = np.load(npz, allow_pickle=False)
            stacked, correct = data["states"], data["correct"]
            layers = data["layers"] if "layers" in data else np.arange(stacked.shape[0])
        except (OSError, KeyError, ValueError) as exc:
            typer.echo(f"error: --npz {npz}: {exc}", err=True)
            raise typer.Exit(2) from None
        states = {int(i): stacked[k] for k, i in enumerate(layers)}
        title = f"{npz.name}"
    else:
        from monitor.reference_vlm.model import load_reference_model
        from monitor.reference_vlm.shapes import make_samples

        torch.manual_seed(seed)
        try:
            model, processor = load_reference_model(rm.model.path, device=rm.model.device)
        except FileNotFoundError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        samples = make_samples(n, seed=seed, shift=shift)
        states, correct = capture_all_layers(model, processor, samples, pooling=rm.probe.pooling)
        title = f"{rm.model.id}, {rm.probe.pooling}, shift={shift}"
    try:
        result = layer_sweep(states, correct, tolerance=tolerance, seed=seed)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    png = plot_sweep(result, out / "sweep.png", title=title)
    (out / "sweep.md").write_text(result.markdown() + "\n")
    table = Table(title=f"Layer sweep: {title}")
    for col in ("layer", "AUROC", "std", ""):
        table.add_column(col, justify="right" if col else "left")
    for layer, m, s, mark in result.rows():
        table.add_row(str(layer), f"{m:.4f}", f"{s:.4f}", mark)
    Console().print(table)
    typer.echo(
        f"plateau: layer {result.plateau_layer} (best {result.best_layer}, tolerance "
        f"{tolerance}); configured target_layer {rm.target_layer}"
    )
    typer.echo(f"figure: {png}\ntable: {out / 'sweep.md'}")
