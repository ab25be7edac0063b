"""Demo part 1: the product's premise on the served model, probe against output confidence.

On held-out labelled requests, the AUROC with which each signal separates right
from wrong answers, with paired bootstrap 95 % intervals (the same resamples for
both, :func:`retrain.evaluate.evaluate`): the probe's calibrated confidence, read
from one decoder layer's hidden state, and the model's own output confidence,
the probability of the emitted first token (what a monitor without a probe
would use; "Where Reliability Lives", Table 6).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from detectors.bootstrap import resample_indices
from monitor.reference_vlm.model import encode_batch
from monitor.reference_vlm.shapes import Sample
from retrain.evaluate import Evaluation, evaluate


@torch.inference_mode()
def output_confidence(
    model: torch.nn.Module, processor: object, samples: Sequence[Sample], batch_size: int = 256
) -> np.ndarray:
    """Probability of the greedy first answer token, per sample.

    Returns
    -------
    ndarray of shape (n_samples,)
        Softmax maximum of the logits at the last prompt position (probability).
    """
    device = next(model.parameters()).device
    parts = []
    for start in range(0, len(samples), batch_size):
        batch = encode_batch(processor, samples[start : start + batch_size]).to(device)
        logits = model(**batch).logits[:, -1, :].float()  # [batch, vocab]
        parts.append(logits.softmax(-1).amax(-1).cpu().numpy())
    return np.concatenate(parts)


def compare_signals(
    probe_conf: np.ndarray,
    output_conf: np.ndarray,
    correct: np.ndarray,
    n_resamples: int = 500,
    seed: int = 0,
) -> tuple[Evaluation, Evaluation]:
    """Probe and output-confidence evaluations on the same rows and bootstrap resamples.

    Parameters
    ----------
    probe_conf, output_conf : ndarray of shape (n_samples,)
        Probabilities.
    correct : ndarray of shape (n_samples,), bool

    Returns
    -------
    (Evaluation, Evaluation)
        Probe, then output confidence.
    """
    resamples = resample_indices(len(correct), n_resamples, seed)
    return (
        evaluate(probe_conf, correct, resamples=resamples),
        evaluate(output_conf, correct, resamples=resamples),
    )


def print_premise(
    console: Console, probe: Evaluation, output: Evaluation, layer: int, accuracy: float
) -> bool:
    """Print both signals' AUROC with intervals; return whether the probe's is above, apart."""
    table = Table(
        title=f"Which signal knows when the model is wrong ({probe.n} held-out requests, "
        f"model accuracy {accuracy:.1%})",
        title_justify="left",
    )
    for col in ("signal", "AUROC [95 % CI]", "ECE"):
        table.add_column(col)
    for name, ev in ((f"probe on decoder layer {layer}", probe), ("output confidence", output)):
        table.add_row(name, f"{ev.auroc:.3f} [{ev.auroc_ci[0]:.3f}, {ev.auroc_ci[1]:.3f}]",
                      f"{ev.ece:.3f}")  # fmt: skip
    console.print(table)
    apart = probe.auroc_ci[0] > output.auroc_ci[1]
    if apart:
        console.print(
            "  The model says 'yes' to absent objects with high confidence; the hidden state "
            "still knows: the probe's interval lies above the output's."
        )
    else:
        console.print("  [yellow]The probe's interval does not lie above the output's here.[/]")
    return apart
