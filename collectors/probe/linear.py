"""The serving-side linear probe: logit, temperature-scaled confidence, safetensors I/O.

A probe maps the pooled hidden state ``h`` of one decoder layer to the
probability that the model's answer is correct::

    z = w . h + b                 (raw logit, nats of log-odds)
    z = w . n(h) + b              (with ``input_norm``: n = LayerNorm without affine,
                                   Ba et al. 2016, Eq. 4; its gain and bias are
                                   folded into ``w`` and ``b``)
    p = sigmoid(z / T)            (temperature scaling, Guo et al. 2017, Sec. 4.2)
    p = iso(z)                    (or isotonic regression as a lookup table)

A stacked probe (``layers=(l1, l2, ...)``) reads the concatenation of the
pooled states of several decoder layers, in that order (the paper's "stacked
probe", Table 6).

Probes are stored as two files, never pickle: ``<name>.safetensors`` (tensors
``weight`` of shape ``(hidden_dim,)``, ``bias`` of shape ``(1,)``, and when
present ``isotonic_x`` / ``isotonic_y`` and ``projection_basis`` /
``projection_mean``) and ``<name>.json`` (version, layer(s), pooling,
temperature, calibration method, projection, metrics, ...). Files of format
``/1`` have no ``input_norm``; a probe with ``input_norm`` is written as format
``/2`` so that an older reader refuses it instead of scoring without the norm.
A ``.safetensors`` file that starts like a pickle or a zip (``torch.save``) is
refused before it is parsed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from collectors.probe.calibration import IsotonicTable, TemperatureScaling
from collectors.probe.projection import Projection

FORMATS = ("vlm-monitor.linear-probe/1", "vlm-monitor.linear-probe/2")
_PICKLE_OR_ZIP = (b"\x80", b"PK\x03\x04")  # pickle protocol >= 2 opcode PROTO; torch.save zip


class ProbeFileError(ValueError):
    """A probe file is missing, corrupt, or does not match its metadata."""


def _check_not_pickle(path: Path) -> None:
    """Refuse anything but a safetensors layout: 8-byte little-endian header size, then ``{``."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    size = path.stat().st_size
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return
    if head.startswith(_PICKLE_OR_ZIP):
        raise ProbeFileError(
            f"{path} looks like a pickle/torch.save payload; refused, never unpickled"
        )
    raise ProbeFileError(f"{path} is not a safetensors file")


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
    layers : tuple of int, optional
        Stacked probe: the decoder layers whose pooled states are concatenated
        (``hidden_dim = len(layers) * width``); ``None`` reads ``layer`` only.
    isotonic : IsotonicTable, optional
        Isotonic calibration on the raw logit; replaces temperature scaling.
    projection : Projection, optional
        Basis for captured states (``logging.capture_states``), stored with the probe.
    input_norm : float, optional
        When set, the epsilon of a LayerNorm without affine applied to each
        state before the dot product, ``n(h) = (h - mean(h)) / sqrt(var(h) + eps)``
        (the reference article's LayerNorm + Linear probe, affine folded in).
    """

    weight: np.ndarray
    bias: float
    temperature: float = 1.0
    layer: int = -1
    pooling: str = "last_prompt_token"
    version: str = "v0"
    metadata: dict[str, Any] = field(default_factory=dict)
    layers: tuple[int, ...] | None = None
    isotonic: IsotonicTable | None = None
    projection: Projection | None = None
    input_norm: float | None = None

    def __post_init__(self) -> None:
        self.weight = np.asarray(self.weight, dtype=np.float32).reshape(-1)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.layers is not None:
            self.layers = tuple(int(i) for i in self.layers)
            if not self.layers or self.hidden_dim % len(self.layers):
                raise ValueError(
                    f"stacked probe: {self.hidden_dim} weights do not split over {self.layers}"
                )
            self.layer = self.layers[0]
        self._cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    @property
    def read_layers(self) -> tuple[int, ...]:
        """Decoder layers this probe reads, in concatenation order."""
        return self.layers if self.layers is not None else (self.layer,)

    @property
    def calibration(self) -> TemperatureScaling | IsotonicTable:
        """The calibration map from raw logit to probability."""
        return self.isotonic if self.isotonic is not None else TemperatureScaling(self.temperature)

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
        if self.input_norm is not None:
            x = states.float()
            mu = x.mean(dim=-1, keepdim=True)
            var = x.var(dim=-1, unbiased=False, keepdim=True)
            states = ((x - mu) * torch.rsqrt(var + self.input_norm)).to(states.dtype)
        return (states @ self._weight_on(states)).float() + self.bias

    def logits(self, states: np.ndarray) -> np.ndarray:
        """Raw logits, shape ``(n_samples,)``, of ``states`` (``(n_samples, hidden_dim)``)."""
        states = np.asarray(states, dtype=np.float32)
        if states.ndim != 2 or states.shape[1] != self.hidden_dim:
            raise ValueError(f"states must have shape (n, {self.hidden_dim}), got {states.shape}")
        if self.input_norm is not None:
            mu = states.mean(axis=1, keepdims=True)
            var = states.var(axis=1, keepdims=True)
            states = (states - mu) / np.sqrt(var + self.input_norm)
        return states @ self.weight + self.bias

    def confidence_torch(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated probability on the logits' device, float32, no host sync."""
        return self.calibration.apply_torch(logits)

    def confidence_from_logits(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probability that the answer is correct, shape as ``logits``."""
        return self.calibration.apply(logits)

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
        if self.isotonic is not None:
            tensors["isotonic_x"] = torch.from_numpy(self.isotonic.x.copy())
            tensors["isotonic_y"] = torch.from_numpy(self.isotonic.y.copy())
        if self.projection is not None:
            tensors.update(self.projection.to_tensors())
        save_file(tensors, str(directory / f"{name}.safetensors"))
        meta = {
            "format": FORMATS[0] if self.input_norm is None else FORMATS[1],
            "input_norm": self.input_norm,
            "version": self.version,
            "hidden_dim": self.hidden_dim,
            "temperature": self.temperature,
            "layer": self.layer,
            "pooling": self.pooling,
            "layers": None if self.layers is None else list(self.layers),
            "calibration_method": self.calibration.method,
            "projection": None if self.projection is None else self.projection.to_meta(),
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
            _check_not_pickle(tensor_path)
            tensors = load_file(str(tensor_path))
            weight, bias = tensors["weight"].float().numpy(), float(tensors["bias"][0])
        except (OSError, ValueError, KeyError) as exc:
            raise ProbeFileError(f"cannot load probe {json_path}: {exc}") from exc
        except Exception as exc:  # safetensors raises its own error types on corrupt headers
            raise ProbeFileError(f"cannot load probe {tensor_path}: {exc}") from exc
        if meta.get("format") not in FORMATS or weight.shape != (meta.get("hidden_dim"),):
            raise ProbeFileError(f"{json_path}: format or hidden_dim does not match the tensors")
        try:
            isotonic = projection = None
            if meta.get("calibration_method", "temperature") == "isotonic":
                x, y = tensors["isotonic_x"], tensors["isotonic_y"]
                isotonic = IsotonicTable(x=x.double().numpy(), y=y.double().numpy())
            if meta.get("projection"):
                projection = Projection(
                    basis=tensors["projection_basis"].numpy(),
                    mean=tensors["projection_mean"].numpy(),
                    kind=str(meta["projection"]["kind"]),
                    seed=meta["projection"].get("seed"),
                )
            return cls(
                weight=weight,
                bias=bias,
                temperature=float(meta["temperature"]),
                layer=int(meta["layer"]),
                pooling=str(meta["pooling"]),
                version=str(meta["version"]),
                metadata=meta.get("metadata", {}),
                layers=meta.get("layers"),
                isotonic=isotonic,
                projection=projection,
                input_norm=None if meta.get("input_norm") is None else float(meta["input_norm"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProbeFileError(f"{json_path}: inconsistent probe files: {exc!r}") from exc
