"""metrics.inplane_outline_distances: outline-to-outline distances slice by slice."""

import numpy as np
import pytest

from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.metrics import inplane_outline_distances


def discs(radius, shape=(3, 64, 64), centre=(32, 32)):
    y, x = np.mgrid[:shape[1], :shape[2]]
    disc = (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius ** 2
    return np.repeat(disc[None], shape[0], axis=0)


def test_concentric_discs_are_their_radius_difference_apart_in_mm():
    pred, ref = discs(12), discs(16)
    d_pred, d_ref = inplane_outline_distances(pred, ref, (0.5, 0.5, 4.0))
    # 4 pixels of 0.5 mm apart (within a pixel's rasterisation of the circles)
    assert np.mean(d_pred) == pytest.approx(2.0, abs=0.4) and np.mean(d_ref) == pytest.approx(2.0, abs=0.4)
    same_a, same_b = inplane_outline_distances(ref, ref, (0.5, 0.5, 4.0))
    assert same_a.max() == 0.0 and same_b.max() == 0.0


def test_only_slices_holding_both_masks_count_and_spacing_is_per_axis():
    pred, ref = discs(12), discs(16)
    ref[0] = False  # slice 0: liver in one mask only, left out
    d_pred, _ = inplane_outline_distances(pred, ref, (1.0, 1.0, 1.0))
    d_all, _ = inplane_outline_distances(discs(12), discs(16), (1.0, 1.0, 1.0))
    assert d_pred.size == d_all.size * 2 // 3
    # x spacing doubled: the horizontal gaps double, the vertical ones do not
    d_wide, _ = inplane_outline_distances(pred, ref, (2.0, 1.0, 1.0))
    assert d_pred.mean() < d_wide.mean() < 2 * d_pred.mean()


def test_masks_of_different_shapes_are_refused():
    with pytest.raises(InputError, match="one shape"):
        inplane_outline_distances(discs(5), discs(5, shape=(2, 64, 64)), (1.0, 1.0, 1.0))
