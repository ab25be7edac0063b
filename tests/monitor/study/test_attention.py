import numpy as np
import pytest

from monitor.study.attention import (
    patch_grid,
    secondary_components,
    spatial_entropy,
    top_mass_mask,
)


def test_spatial_entropy_bounds():
    a = np.array([[1.0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 0, 0]])
    np.testing.assert_allclose(spatial_entropy(a), [0.0, np.log(4), np.log(2)])


def test_spatial_entropy_rejects_bad_rows():
    with pytest.raises(ValueError, match="non-negative"):
        spatial_entropy(np.array([[0.0, 0.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        spatial_entropy(np.array([[-1.0, 2.0]]))


def test_top_mass_mask_keeps_fewest_patches():
    a = np.array([0.5, 0.3, 0.15, 0.05])
    assert top_mass_mask(a, 0.5).tolist() == [True, False, False, False]
    assert top_mass_mask(a, 0.6).tolist() == [True, True, False, False]
    assert top_mass_mask(a, 1.0).all()


def _grid(cells):
    a = np.full(16, 1e-3)
    a[list(cells)] = 1.0
    return a[None]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ((5,), 0),  # one focus
        ((5, 6), 0),  # horizontal neighbours: one component
        ((5, 9), 0),  # vertical neighbours
        ((5, 10), 1),  # diagonal: two components under 4-neighbour adjacency
        ((0, 3, 12, 15), 3),  # four corners
    ],
)
def test_secondary_components_4_neighbour(cells, expected):
    assert secondary_components(_grid(cells), (4, 4), mass=0.9)[0] == expected


def test_secondary_components_validates():
    with pytest.raises(ValueError, match="mass"):
        secondary_components(_grid((1,)), (4, 4), mass=0.0)
    with pytest.raises(ValueError, match="grid"):
        secondary_components(_grid((1,)), (3, 3))
    assert patch_grid(16) == (4, 4)
    with pytest.raises(ValueError, match="square"):
        patch_grid(15)
