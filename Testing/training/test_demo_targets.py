"""The demo targets' spectrum figure: a checkerboard raises the power above half the Nyquist
frequency, smoothing lowers it, the same image scores 1."""

import numpy as np
from scipy import ndimage

from cmsynth_training.demo_targets import high_frequency_power


def test_high_frequency_power_sees_a_checkerboard_and_smoothing():
    rng = np.random.default_rng(0)
    ct = ndimage.gaussian_filter(rng.normal(0.0, 100.0, (4, 64, 64)), 1.0) + rng.normal(0.0, 10.0, (4, 64, 64))
    body = np.ones(ct.shape, dtype=bool)
    i = np.indices(ct.shape)
    # a 2 x 2-pixel checkerboard (the stride-2 upsampling artefact; frequency 0.25, 0.25 cycles/pixel,
    # above half the Nyquist frequency in radius)
    checker = ct + 30.0 * ((i[1] // 2 + i[2] // 2) % 2)
    smooth = ndimage.gaussian_filter(ct, (0, 2, 2))
    ref = high_frequency_power(ct, body)
    assert high_frequency_power(ct.copy(), body) / ref == 1.0
    assert high_frequency_power(checker, body) / ref > 2.0
    assert high_frequency_power(smooth, body) / ref < 0.5
    body[:2] = False  # slices without body are left out
    assert high_frequency_power(np.concatenate([checker[:2], ct[2:]]), body) == high_frequency_power(ct[2:], body[2:])
