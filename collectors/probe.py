"""The serving-side linear probe: logit, temperature-scaled confidence, safetensors I/O.

A probe maps the pooled hidden state ``h`` of one decoder layer to the
probability that the model's answer is correct::

    z = w . h + b                 (raw logit, nats of log-odds)
    p = sigmoid(z / T)            (temperature scaling, Guo et al. 2017, Sec. 4.2)

Probes are stored as two files, never pickle: ``<name>.safetensors`` (tensors
``weight`` of shape ``(hidden_dim,)`` and ``bias`` of shape ``(1,)``) and
``<name>.json`` (version, layer, pooling, temperature, metrics, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file


class ProbeFileError(ValueError):
    """A probe file is missing, corrupt, or does not match its metadata."""


@dataclass
class LinearProbe:
    """A linear correctness probe with temperature scaling.

    Parameters
    ----------
    weight : ndarray of shape (hidden_dim,)
    bias : float
    temperature : float
        Calibration temperature ``T > 0``; confidence is ``sigmoid(logit / T)``.
    layer : int
        Decoder layer index the probe reads.
    pooling : str
        Pooling of the hidden state the probe was fitted on.
    version : str
        Registry version (e.g. ``"v1"``).
    metadata : dict
        Free-form facts (training window, metrics, ...), stored in the JSON file.
    """

    weight: np.ndarray
    bias: float
    temperature: float = 1.0
    layer: int = -1
    pooling: str = "last_prompt_token"
    version: str = "v0"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.weight = np.asarray(self.weight, dtype=np.float32).reshape(-1)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        self._cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    @property
    def hidden_dim(self) -> int:
        return int(self.weight.shape[0])

    def _weight_on(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.device, like.dtype)
        w = self._cache.get(key)
        if w is None:
            w = torch.from_numpy(self.weight).to(device=like.device, dtype=like.dtype)
            self._cache[key] = w
        return w

    def logits_torch(self, states: torch.Tensor) -> torch.Tensor:
        """Raw logits on the states' device, no host sync.

        Parameters
        ----------
        states : Tensor of shape (batch, hidden_dim)

        Returns
        -------
        Tensor of shape (batch,), float32.
        """
        if states.shape[-1] != self.hidden_dim:
            raise ValueError(f"probe expects hidden_dim {self.hidden_dim}, got {states.shape[-1]}")
        return (states @ self._weight_on(states)).float() + self.bias

    def logits(self, states: np.ndarray) -> np.ndarray:
        """Raw logits, shape ``(n_samples,)``, of ``states`` (``(n_samples, hidden_dim)``)."""
        states = np.asarray(states, dtype=np.float32)
        if states.ndim != 2 or states.shape[1] != self.hidden_dim:
            raise ValueError(f"states must have shape (n, {self.hidden_dim}), got {states.shape}")
        return states @ self.weight + self.bias

    def confidence_from_logits(self, logits: np.ndarray) -> np.ndarray:
        """Temperature-scaled probability that the answer is correct, shape as ``logits``."""
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64) / self.temperature))

    def predict_proba(self, states: np.ndarray) -> np.ndarray:
        """Calibrated confidence (probability) of ``states``, shape ``(n_samples, hidden_dim)``."""
        return self.confidence_from_logits(self.logits(states))

    def save(self, directory: str | Path, name: str | None = None) -> Path:
        """Write ``<name>.safetensors`` and ``<name>.json`` into ``directory``; return the JSON."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        name = name or self.version
        tensors = {
            "weight": torch.from_numpy(self.weight.copy()),
            "bias": torch.tensor([self.bias], dtype=torch.float32),
        }
        save_file(tensors, str(directory / f"{name}.safetensors"))
        meta = {
            "format": "vlm-monitor.linear-probe/1",
            "version": self.version,
            "hidden_dim": self.hidden_dim,
            "temperature": self.temperature,
            "layer": self.layer,
            "pooling": self.pooling,
            "metadata": self.metadata,
        }
        path = directory / f"{name}.json"
        path.write_text(json.dumps(meta, indent=2, sort_keys=True))
        return path

    @classmethod
    def load(cls, json_path: str | Path) -> LinearProbe:
        """Load a probe from its JSON metadata and the safetensors file beside it.

        Raises
        ------
        ProbeFileError
            Either file is missing or unreadable, or shapes disagree with the metadata.
        """
        json_path = Path(json_path)
        tensor_path = json_path.with_suffix(".safetensors")
        try:
            meta = json.loads(json_path.read_text())
            tensors = load_file(str(tensor_path))
            weight, bias = tensors["weight"].float().numpy(), float(tensors["bias"][0])
        except (OSError, ValueError, KeyError) as exc:
            raise ProbeFileError(f"cannot load probe {json_path}: {exc}") from exc
        except Exception as exc:  # safetensors raises its own error types on corrupt headers
            raise ProbeFileError(f"cannot load probe {tensor_path}: {exc}") from exc
        if meta.get("format") != "vlm-monitor.linear-probe/1" or weight.shape != (
            meta.get("hidden_dim"),
        ):
            raise ProbeFileError(f"{json_path}: format or hidden_dim does not match the tensors")
        return cls(
            weight=weight,
            bias=bias,
            temperature=float(meta["temperature"]),
            layer=int(meta["layer"]),
            pooling=str(meta["pooling"]),
            version=str(meta["version"]),
            metadata=meta.get("metadata", {}),
        )
