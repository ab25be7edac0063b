"""The ``vlm-monitor`` command line (typer): entry point and the core commands."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli import (  # noqa: F401 - importing a command module registers its commands
    alerts,  # vlm-monitor alerts
    ingest,  # vlm-monitor ingest, status, archive
    probes,  # vlm-monitor probes (lifecycle)
    report,  # vlm-monitor report --week
    retrain,  # vlm-monitor retrain, sweep
    review,  # vlm-monitor review (labelling budget, review queue)
    run,  # vlm-monitor run (the daemon)
    study,  # vlm-monitor study (reliability comparison)
)
from monitor.cli.common import ConfigOption, app, load_or_exit

__all__ = ["app"]


@app.command("check-config")
def check_config(config: ConfigOption = None) -> None:
    """Validate the configuration against the model it names, and print the resolved paths.

    Beyond the schema: the model directory must hold a config whose decoder depth has
    ``target_layer`` (and every ``retrain.layers``). Exit status 2 names the key.
    """
    cfg = load_or_exit(config)
    rm = cfg.reliability_monitor
    depth = _decoder_depth(rm.model.path)
    if depth is not None:
        for key, layer in [("target_layer", rm.target_layer)] + [
            (f"retrain.layers[{i}]", v) for i, v in enumerate(rm.retrain.layers or [])
        ]:
            if not -depth <= layer < depth:
                typer.echo(
                    f"error: reliability_monitor.{key}: layer {layer} is beyond the "
                    f"{depth} decoder layers of {rm.model.path}",
                    err=True,
                )
                raise typer.Exit(2)
    typer.echo(
        f"ok: model {rm.model.id} at {rm.model.path}"
        + (f" ({depth} decoder layers)" if depth is not None else " (not found here)")
        + f"; store {rm.store.path}; kafka {','.join(rm.kafka.bootstrap_servers)}"
    )


def _decoder_depth(path: object) -> int | None:
    """Decoder layers of the model's text config, from its ``config.json`` (None if absent)."""
    import json
    from pathlib import Path

    file = Path(str(path)) / "config.json"
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    for node in (data.get("text_config") or {}, data):
        if isinstance(node, dict) and isinstance(node.get("num_hidden_layers"), int):
            return node["num_hidden_layers"]
    return None


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0 picks a free one).")] = 9092,
) -> None:
    """Run the embedded Kafka-protocol broker (Tansu) on 127.0.0.1 until Ctrl-C / SIGTERM."""
    from monitor.service.broker import EmbeddedBroker

    embedded = EmbeddedBroker(port=port)
    embedded.start()
    typer.echo(
        f"embedded Kafka broker (Tansu, in-memory) listening on {embedded.bootstrap_servers[0]}; "
        "Ctrl-C to stop"
    )
    embedded.run_until_signal()
    typer.echo("broker stopped")


@app.command()
def demo(
    config: ConfigOption = None,
    events_per_window: Annotated[int, typer.Option(help="Requests per traffic window.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed for the generated traffic.")] = 0,
    verbose: Annotated[
        bool, typer.Option(help="Also print the INFO log lines the demo's narration replaces.")
    ] = False,
) -> None:
    """Run the bundled reference VLM under monitoring: reference, live and shifted traffic."""
    import logging

    from transformers.utils import logging as hf_logging

    from monitor.demo.run import run_demo

    cfg = load_or_exit(config)
    if not verbose and cfg.reliability_monitor.logging.level != "DEBUG":
        # the narration says what the INFO lines would (retrain, reload, broker, report)
        logging.getLogger().setLevel(logging.WARNING)
        hf_logging.disable_progress_bar()
    run_demo(cfg, events_per_window=events_per_window, seed=seed)


if __name__ == "__main__":  # pragma: no cover
    app()
