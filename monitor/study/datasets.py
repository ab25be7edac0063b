"""Study datasets: the bundled shapes benchmark, POPE JSON Lines, a generic JSON Lines format.

- shapes: :func:`monitor.reference_vlm.shapes.make_samples`, in distribution or shifted.
- POPE (Li et al. 2023): one JSON object per line with ``question_id``, ``image``
  (a file name inside a local COCO image directory), ``text`` (the question) and
  ``label`` (``"yes"`` / ``"no"``).
- generic: one JSON object per line with ``image`` (a path, absolute or relative
  to the file's directory), ``question`` and ``answer``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Item:
    """One example: an RGB image (ndarray of shape (H, W, 3), uint8), a question, its answer."""

    image: np.ndarray
    question: str
    answer: str


def load_shapes(n: int, seed: int = 0, shift: str | None = None) -> list[Item]:
    """``n`` shapes-benchmark items (``shift``: None or one of ``shapes.SHIFTS``)."""
    from monitor.reference_vlm.shapes import make_samples

    return [Item(s.image, s.question, s.answer) for s in make_samples(n, seed=seed, shift=shift)]


def _image(path: Path) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _records(path: Path, keys: tuple[str, ...]) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from exc
        missing = [k for k in keys if k not in rec]
        if missing:
            raise ValueError(f"{path}:{number}: missing field(s) {missing}")
        out.append(rec)
    return out


def load_pope(path: str | Path, image_dir: str | Path, limit: int | None = None) -> list[Item]:
    """POPE JSON Lines with images from ``image_dir``.

    Raises
    ------
    FileNotFoundError
        The file or an image is missing (the message names the path).
    ValueError
        A line is not JSON or lacks a field.
    """
    recs = _records(Path(path), ("question_id", "image", "text", "label"))[:limit]
    root = Path(image_dir)
    return [Item(_image(root / r["image"]), r["text"], str(r["label"]).lower()) for r in recs]


def load_jsonl(path: str | Path, limit: int | None = None) -> list[Item]:
    """Generic JSON Lines (``image``, ``question``, ``answer``).

    Raises
    ------
    FileNotFoundError
        The file or an image is missing (the message names the path).
    ValueError
        A line is not JSON or lacks a field.
    """
    path = Path(path)
    recs = _records(path, ("image", "question", "answer"))[:limit]
    items = []
    for r in recs:
        img = Path(r["image"])
        items.append(
            Item(
                _image(img if img.is_absolute() else path.parent / img),
                r["question"],
                str(r["answer"]),
            )
        )
    return items
