"""Radial power spectra: white noise is flat, rotation does not change the profile."""

import numpy as np
import pytest
from scipy import ndimage

from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.metrics.spectral import (
    compare_spectra,
    mean_radial_profile,
    radial_profile,
    spectral_slope,
)


def test_white_noise_profile_is_flat():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 3.0, size=(8, 128, 128))
    prof = mean_radial_profile(noise)
    assert prof.freq[0] == 0 and prof.freq[-1] == 0.5 and len(prof.freq) == 65
    assert abs(spectral_slope(prof)) < 0.1
    band = (prof.freq >= 0.05)
    # log of an exponential variable has mean log10(s^2) - gamma / ln 10
    expected = np.log10(9.0) - np.euler_gamma / np.log(10)
    assert np.abs(prof.log_power[band] - expected).max() < 0.15
    smooth = np.stack([ndimage.gaussian_filter(n, 2.0) for n in noise])
    assert spectral_slope(mean_radial_profile(smooth)) < -2.0


@pytest.mark.parametrize("shape", [(64, 64), (48, 80), (63, 64)])
def test_profile_unchanged_by_90_degree_rotation(shape):
    rng = np.random.default_rng(1)
    img = ndimage.gaussian_filter(rng.normal(size=shape), 1.0) + rng.normal(size=shape) * 0.1
    f0, p0 = radial_profile(img)
    f1, p1 = radial_profile(np.rot90(img))
    np.testing.assert_array_equal(f0, f1)
    np.testing.assert_allclose(p0, p1, rtol=0, atol=1e-9)


def _power_law_field(rng, n, exponent):
    """Random field with E|F(f)|^2 proportional to f**exponent."""
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    f = np.sqrt(fy ** 2 + fx ** 2)
    f[0, 0] = 1.0
    amp = f ** (exponent / 2.0)
    amp[0, 0] = 0.0
    spec = (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) * amp
    return np.real(np.fft.ifft2(spec))


def test_power_law_slope_and_compare_spectra():
    rng = np.random.default_rng(2)
    real = [_power_law_field(rng, 96, -3.0) for _ in range(6)]
    assert spectral_slope(mean_radial_profile(real)) == pytest.approx(-3.0, abs=0.15)
    same = compare_spectra(real, real)
    assert same.distance == 0.0 and same.slope_difference == 0.0
    scale = np.std(real)
    noisy = [r + rng.normal(0.0, 0.5 * scale, r.shape) for r in real]  # high-frequency excess
    diff = compare_spectra(real, noisy)
    assert diff.distance > 0.3 and diff.slope_synth > diff.slope_real + 1.0
    # different slice sizes are put on a common frequency grid
    mixed = compare_spectra(real, [rng.normal(size=(128, 128))])
    assert len(mixed.synth) == len(mixed.freq) == 49
    with pytest.raises(InputError):
        radial_profile(np.zeros((2, 2)))
