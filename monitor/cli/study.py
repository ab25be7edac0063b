"""``vlm-monitor study``: the paper's reliability comparison (Table 6) on a model and dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.common import app

DATASETS = ("shapes", "shapes-shifted", "pope", "jsonl")


def _items(dataset: str, n: int, seed: int, shift: str, data: Path | None, image_dir: Path | None):
    from monitor.study.datasets import load_jsonl, load_pope, load_shapes

    if dataset == "shapes":
        return load_shapes(n, seed=seed)
    if dataset == "shapes-shifted":
        return load_shapes(n, seed=seed, shift=shift)
    if data is None:
        raise ValueError(f"--data is required with --dataset {dataset}")
    if dataset == "pope":
        if image_dir is None:
            raise ValueError("--image-dir (the local COCO image directory) is required for pope")
        return load_pope(data, image_dir, limit=n)
    return load_jsonl(data, limit=n)


@app.command()
def study(
    dataset: Annotated[str, typer.Option(help="shapes | shapes-shifted | pope | jsonl")] = "shapes",
    model: Annotated[
        Path | None,
        typer.Option(help="Local model directory (default: the hallucinating reference VLM)."),
    ] = None,
    data: Annotated[Path | None, typer.Option(help="JSON Lines file (pope, jsonl).")] = None,
    image_dir: Annotated[Path | None, typer.Option(help="COCO image directory (pope).")] = None,
    n: Annotated[int, typer.Option(help="Examples (shapes: generated; files: first n).")] = 1000,
    shift: Annotated[str, typer.Option(help="Shift for shapes-shifted.")] = "all",
    k: Annotated[int, typer.Option(help="Self-consistency samples.")] = 10,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    top_p: Annotated[float, typer.Option(help="Nucleus mass.")] = 0.9,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 10_000,
    mass: Annotated[float, typer.Option(help="Top attention mass for Eq. 2.")] = 0.5,
    prompt: Annotated[
        str | None, typer.Option(help="Prompt template with {question} (default: LLaVA-1.5 style).")
    ] = None,
    causal: Annotated[bool, typer.Option(help="Neuron ablation and patch masking checks.")] = True,
    ablate_k: Annotated[int, typer.Option(help="Neurons ablated (top-k and k random).")] = 5,
    seed: Annotated[
        int, typer.Option(help="Seed of data, split, probes, sampling, bootstrap.")
    ] = 0,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("study-out"),
) -> None:
    """Compare reliability signals (attention, confidence, truth margin, probes, self-consistency).

    Writes study.md, study.csv, study.png, layers.png and causal.csv into --out.
    Exit status: 0 done, 2 bad input (the message names what was wrong).
    """
    import torch

    from monitor.reference_vlm.build import PROMPT_TEMPLATE
    from monitor.reference_vlm.hallucinate import HALLUCINATING_DIR
    from monitor.reference_vlm.model import load_reference_model
    from monitor.reference_vlm.shapes import SHIFTS
    from monitor.study.output import markdown, write_all
    from monitor.study.run import StudySettings, compare

    torch.set_num_threads(1)
    if dataset not in DATASETS:
        typer.echo(f"error: --dataset must be one of {DATASETS}, got {dataset!r}", err=True)
        raise typer.Exit(2)
    if dataset == "shapes-shifted" and shift not in SHIFTS:
        typer.echo(f"error: --shift must be one of {SHIFTS}, got {shift!r}", err=True)
        raise typer.Exit(2)
    template = prompt or PROMPT_TEMPLATE
    if "{question}" not in template:
        typer.echo("error: --prompt must contain {question}", err=True)
        raise typer.Exit(2)
    try:
        settings = StudySettings(
            k=k,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            n_resamples=resamples,
            mass=mass,
            causal=causal,
            ablate_k=ablate_k,
        )
        items = _items(dataset, n, seed, shift, data, image_dir)
        vlm, processor = load_reference_model(model or HALLUCINATING_DIR)
        result = compare(vlm, processor, items, lambda q: template.format(question=q), settings)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    title = f"Reliability study: {dataset}" + (f" ({shift})" if dataset == "shapes-shifted" else "")
    paths = write_all(result, out, title)
    typer.echo(markdown(result, title))
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
