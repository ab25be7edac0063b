"""Tests of the procedural POPE-style shapes generator."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.reference_vlm.shapes import (
    COLOUR_JITTER,
    COLOURS,
    IMAGE_SIZE,
    QUESTION_TEMPLATE,
    SHAPES,
    SHIFTS,
    make_samples,
)


@pytest.fixture(scope="module")
def samples():
    return make_samples(1000, seed=7)


def test_images_are_rgb_uint8(samples):
    for s in samples[:50]:
        assert s.image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
        assert s.image.dtype == np.uint8


def test_answers_exactly_balanced():
    for n in (2, 10, 1000):
        answers = [s.answer for s in make_samples(n, seed=n)]
        assert answers.count("yes") == answers.count("no") == n // 2


def test_answers_in_random_order(samples):
    first_half = [s.answer for s in samples[:500]]
    assert 200 < first_half.count("yes") < 300


def test_answer_matches_drawn_objects(samples):
    for s in samples:
        present = {(o.colour, o.shape) for o in s.objects}
        assert 1 <= len(s.objects) <= 3
        assert len(present) == len(s.objects), "objects must be distinct combinations"
        assert s.question == QUESTION_TEMPLATE.format(colour=s.colour, shape=s.shape)
        assert s.answer == ("yes" if (s.colour, s.shape) in present else "no")


def test_adversarial_negatives_really_adversarial(samples):
    negatives = [s for s in samples if s.answer == "no"]
    adversarial = [s for s in negatives if s.negative_kind == "adversarial"]
    assert len(adversarial) >= 0.75 * len(negatives)
    for s in negatives:
        colours = {o.colour for o in s.objects}
        shapes = {o.shape for o in s.objects}
        shares = s.colour in colours or s.shape in shapes
        assert shares == (s.negative_kind == "adversarial")
    assert all(s.negative_kind is None for s in samples if s.answer == "yes")


def test_all_colours_and_shapes_asked(samples):
    assert {s.colour for s in samples} == set(COLOURS)
    assert {s.shape for s in samples} == set(SHAPES)


def test_objects_drawn_in_their_colour(samples):
    for s in samples[:100]:
        for o in s.objects:
            pixel = s.image[o.y, o.x].astype(int)
            expected = np.array(COLOURS[o.colour])
            assert np.abs(pixel - expected).max() <= COLOUR_JITTER + 1, (o, pixel)


def test_seeded_reproducibility():
    a, b = make_samples(20, seed=3), make_samples(20, seed=3)
    c = make_samples(20, seed=4)
    for x, y in zip(a, b):
        assert np.array_equal(x.image, y.image)
        assert (x.question, x.answer, x.objects) == (y.question, y.answer, y.objects)
    assert any(not np.array_equal(x.image, z.image) for x, z in zip(a, c))


def _roughness(samples) -> float:
    """Mean absolute difference between horizontally adjacent pixels, grey levels."""
    return float(np.mean([np.abs(np.diff(s.image.astype(int), axis=1)).mean() for s in samples]))


def _corner_level(samples) -> float:
    """Mean grey level of the top-left pixel (background: objects never reach it often)."""
    return float(np.mean([s.image[0, 0].mean() for s in samples]))


@pytest.mark.parametrize("shift", SHIFTS)
def test_shifted_images_differ(shift):
    base = make_samples(300, seed=11)
    shifted = make_samples(300, seed=11, shift=shift)
    assert all(s.shift == shift for s in shifted)
    if shift in ("noise", "all"):
        assert _roughness(shifted) > 3 * _roughness(base)
    if shift in ("small", "all"):
        assert max(o.radius for s in shifted for o in s.objects) < min(
            o.radius for s in base for o in s.objects
        )
    if shift in ("background", "all"):
        assert _corner_level(shifted) > _corner_level(base) + 50
    answers = [s.answer for s in shifted]
    assert answers.count("yes") == 150


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": -1, "seed": 0}, "n must be"),
        ({"n": 2.5, "seed": 0}, "n must be"),
        ({"n": 2, "seed": 0, "shift": "blur"}, "unknown shift 'blur'"),
        ({"n": 2, "seed": 0, "p_adversarial": 1.5}, "p_adversarial"),
    ],
)
def test_bad_input_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_samples(**kwargs)


def test_zero_samples():
    assert make_samples(0, seed=0) == []
