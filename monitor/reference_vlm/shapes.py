"""Procedural POPE-style data: coloured shapes and yes/no existence questions.

Each image holds 1-3 distinct (colour, shape) objects on a dark background,
each drawn inside its own cell of a 4x4 grid of 8x8 px cells: the cells are the
reference VLM's vision patches, so every object is seen whole by one image token
(objects placed anywhere left the tiny CLIP tower unable to learn shape in a
training budget of minutes: the model then answered from colour alone, 77 %).
Each question asks "Is there a {colour} {shape} in the image?". Answers are
balanced 50/50; negatives are adversarial with probability ``p_adversarial``
(the asked colour or the asked shape belongs to an object that is present,
the combination is not, as in POPE's adversarial split, Li et al. 2023,
"Evaluating Object Hallucination in Large Vision-Language Models") and random
otherwise (any absent combination).

A ``shift`` option produces a shifted generator for drift experiments:

- ``"noise"``: additive Gaussian pixel noise (sigma ``NOISE_SIGMA`` grey levels);
- ``"small"``: objects of radius ``SMALL_RADIUS`` px instead of ``RADIUS``;
- ``"background"``: bright, coloured, gradient backgrounds instead of dark ones;
- ``"all"``: the three together.

Examples
--------
>>> s = make_samples(2, seed=0)
>>> s[0].image.shape, s[0].image.dtype
((32, 32, 3), dtype('uint8'))
>>> sorted({x.answer for x in make_samples(100, seed=1)})
['no', 'yes']
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 32
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 80, 230),
    "yellow": (230, 220, 40),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SHIFTS: tuple[str, ...] = ("noise", "small", "background", "all")
CELL = 8  # px; one object per cell, cells aligned with the 8 px vision patches
RADIUS = (2, 4)  # inclusive range of object half-size in pixels, in distribution
SMALL_RADIUS = (1, 1)  # the "small" shift
COLOUR_JITTER = 45  # max per-channel colour jitter, grey levels
NOISE_SIGMA = 40.0  # the "noise" shift, grey levels (0-255 scale)
QUESTION_TEMPLATE = "Is there a {colour} {shape} in the image?"
CAPTION_QUESTION = "Describe the image."


@dataclass(frozen=True)
class ShapeObject:
    """One drawn object: colour and shape names, centre (x, y) and half-size, pixels."""

    colour: str
    shape: str
    x: int
    y: int
    radius: int


@dataclass(frozen=True)
class Sample:
    """One image-question-answer triple.

    Attributes
    ----------
    image : ndarray of shape (32, 32, 3), dtype uint8
        RGB image.
    question : str
        ``"Is there a {colour} {shape} in the image?"``.
    answer : str
        ``"yes"`` or ``"no"``.
    colour, shape : str
        The asked colour and shape.
    objects : tuple of ShapeObject
        What is drawn, 1 to 3 objects with distinct (colour, shape).
    negative_kind : str or None
        ``"adversarial"`` or ``"random"`` for a "no" answer, None for "yes".
    shift : str or None
        The shift the image was drawn under.
    """

    image: np.ndarray
    question: str
    answer: str
    colour: str
    shape: str
    objects: tuple[ShapeObject, ...]
    negative_kind: str | None
    shift: str | None


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column index grids, each of shape (size, size)."""
    yy, xx = np.mgrid[0:size, 0:size]
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def _shape_mask(shape: str, x: int, y: int, r: int, size: int) -> np.ndarray:
    """Boolean mask of shape (size, size) for one object centred at (x, y)."""
    yy, xx = _grid(size)
    dx, dy = xx - x, yy - y
    if shape == "circle":
        return dx * dx + dy * dy <= r * r + r  # +r rounds the rim at small radii
    if shape == "square":  # full corners: what tells it from a circle at small radii
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if shape == "triangle":
        # apex at the top, base at the bottom: half-width grows linearly with depth
        depth = dy + r
        return (depth >= 0) & (dy <= r) & (2 * np.abs(dx) <= depth + 1)
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def _background(rng: np.random.Generator, shifted: bool, size: int) -> np.ndarray:
    """Float background of shape (size, size, 3), grey levels 0-255."""
    if not shifted:
        level = rng.uniform(0, 40)
        return np.full((size, size, 3), level) + rng.uniform(-5, 5, size=3)
    a, b = rng.uniform(90, 230, size=3), rng.uniform(90, 230, size=3)
    t = np.linspace(0.0, 1.0, size)
    ramp = t[None, :, None] if rng.random() < 0.5 else t[:, None, None]
    return np.broadcast_to(a + (b - a) * ramp, (size, size, 3)).copy()


def _place(rng: np.random.Generator, radii: list[int], size: int) -> list[tuple[int, int]]:
    """Centres (x, y): distinct grid cells, each centre one of the cell's two middle pixels."""
    n_cells = size // CELL
    if len(radii) > n_cells * n_cells:
        raise ValueError(f"{len(radii)} objects do not fit in {n_cells * n_cells} cells")
    cells = rng.choice(n_cells * n_cells, size=len(radii), replace=False)
    centres = []
    for cell in cells:
        row, col = divmod(int(cell), n_cells)
        dx, dy = (int(v) for v in rng.integers(0, 2, size=2))
        centres.append((col * CELL + CELL // 2 - 1 + dx, row * CELL + CELL // 2 - 1 + dy))
    return centres


def _question(
    rng: np.random.Generator, present: list[tuple[str, str]], positive: bool, p_adversarial: float
) -> tuple[str, str, str, str | None]:
    """Pick (colour, shape, answer, negative_kind) for the objects present."""
    if positive:
        colour, shape = present[rng.integers(len(present))]
        return colour, shape, "yes", None
    combos = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
    present_colours = {c for c, _ in present}
    present_shapes = {s for _, s in present}
    adversarial = [(c, s) for c, s in combos if c in present_colours or s in present_shapes]
    if rng.random() < p_adversarial:
        colour, shape = adversarial[rng.integers(len(adversarial))]
        return colour, shape, "no", "adversarial"
    colour, shape = combos[rng.integers(len(combos))]
    kind = "adversarial" if (colour, shape) in adversarial else "random"
    return colour, shape, "no", kind


def _one_sample(
    rng: np.random.Generator, shift: str | None, positive: bool, p_adversarial: float
) -> Sample:
    size = IMAGE_SIZE
    n_objects = int(rng.integers(1, 4))
    all_combos = [(c, s) for c in COLOURS for s in SHAPES]
    picks = rng.choice(len(all_combos), size=n_objects, replace=False)
    present = [all_combos[i] for i in picks]
    lo, hi = SMALL_RADIUS if shift in ("small", "all") else RADIUS
    radii = [int(r) for r in rng.integers(lo, hi + 1, size=n_objects)]
    centres = _place(rng, radii, size)

    canvas = _background(rng, shift in ("background", "all"), size)
    objects = []
    for (colour, shape), (x, y), r in zip(present, centres, radii):
        rgb = np.asarray(COLOURS[colour], dtype=float)
        rgb = rgb + rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, size=3)
        canvas[_shape_mask(shape, x, y, r, size)] = rgb
        objects.append(ShapeObject(colour, shape, x, y, r))
    if shift in ("noise", "all"):
        canvas = canvas + rng.normal(0.0, NOISE_SIGMA, size=canvas.shape)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)

    colour, shape, answer, kind = _question(rng, present, positive, p_adversarial)
    return Sample(
        image=image,
        question=QUESTION_TEMPLATE.format(colour=colour, shape=shape),
        answer=answer,
        colour=colour,
        shape=shape,
        objects=tuple(objects),
        negative_kind=kind,
        shift=shift,
    )


def describe(sample: Sample) -> str:
    """Caption of a sample's objects, left to right (then top to bottom).

    Used as an auxiliary training target (LLaVA's stage-1 captioning); the
    answer to :data:`CAPTION_QUESTION`.

    >>> describe(make_samples(2, seed=0)[1])
    'a red circle and a green circle .'
    """
    ordered = sorted(sample.objects, key=lambda o: (o.x, o.y))
    return " and ".join(f"a {o.colour} {o.shape}" for o in ordered) + " ."


def make_samples(
    n: int, seed: int, shift: str | None = None, p_adversarial: float = 0.75
) -> list[Sample]:
    """Draw ``n`` seeded samples.

    Parameters
    ----------
    n : int
        Number of samples, >= 0.
    seed : int
        Seed of ``numpy.random.default_rng``; the same (n, seed, shift,
        p_adversarial) always gives the same samples.
    shift : {None, "noise", "small", "background", "all"}
        None draws the training distribution; the others the shifted generators.
    p_adversarial : float
        Probability, in [0, 1], that a negative is forced adversarial; the rest
        are drawn from every absent combination (often adversarial too).

    Returns
    -------
    list of Sample
        Exactly ``n // 2`` answers are "yes" and ``n // 2`` are "no" (the odd
        one out, if any, is a fair coin), in a seeded random order.

    Raises
    ------
    ValueError
        If ``n`` is negative, ``shift`` is unknown or ``p_adversarial`` is
        outside [0, 1].
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if shift is not None and shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; expected None or one of {SHIFTS}")
    if not 0.0 <= p_adversarial <= 1.0:
        raise ValueError(f"p_adversarial must be in [0, 1], got {p_adversarial!r}")
    rng = np.random.default_rng(seed)
    n = int(n)
    positive = np.zeros(n, dtype=bool)
    positive[: n // 2] = True
    if n % 2:
        positive[-1] = rng.random() < 0.5
    positive = rng.permutation(positive)
    return [_one_sample(rng, shift, bool(p), p_adversarial) for p in positive]
