"""Synthetic labelled states for the retrain tests, written into a real store."""

import numpy as np

from collectors.wire.events import LabelEvent, ScoredEvent

DIM, T0 = 16, 1_700_000_000.0
DIRECTION = np.random.default_rng(42).normal(size=DIM)


def synth(n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """States whose correctness follows a logistic model along DIRECTION (shifted by ``shift``)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM)) + shift
    p = 1 / (1 + np.exp(-(x @ DIRECTION - shift * DIRECTION.sum())))
    return x.astype(np.float32), rng.random(n) < p


def fill(store, states, correct, t0=T0, version="v1", prefix="e") -> tuple[float, float]:
    events = [
        ScoredEvent(
            event_id=f"{prefix}{i}", ts=t0 + i, model_id="m", probe_version=version, layer=1,
            pooling="last_prompt_token", raw_logit=0.0, confidence=0.5, decision="serve",
            answer="yes", tag="t", state=s.tolist(),
        )
        for i, s in enumerate(states)
    ]  # fmt: skip
    labels = [
        LabelEvent(f"{prefix}{i}", bool(c), t0 + i + 1, "test") for i, c in enumerate(correct)
    ]
    store.write_batch(events, labels)
    return (t0, t0 + len(states))
