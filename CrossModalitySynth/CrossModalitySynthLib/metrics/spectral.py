"""Radial (azimuthally averaged) power spectra of 2D slices and their comparison.

For one slice ``x`` of H x W pixels:

1. ``P = |FFT2(x)|^2 / (H W)`` (power; white noise of variance s^2 has ``E[P] = s^2`` at every
   frequency), then ``log10(P + eps)``.
2. Every frequency ``(ky / H, kx / W)`` in cycles per pixel gets the radius
   ``f = sqrt((ky / H)^2 + (kx / W)^2)`` and the integer bin ``r = round(f * N)``,
   ``N = min(H, W)``; bins ``0 .. N // 2`` are kept (up to the Nyquist frequency 0.5; the corners
   beyond it are dropped).
3. The profile is the mean of the log power in each bin (log, then azimuthal average), against
   the normalised frequency ``r / N`` (cycles per pixel, 0 .. 0.5).

Profiles of many slices are averaged (on a common frequency grid if the slice sizes differ).
Real and synthetic mean profiles are compared over a band of normalised frequency
(default 0.25 .. 0.5, the upper half of the spectrum, where generator artefacts such as
checkerboards live): the mean absolute difference of log10 power there, and the slope of a
straight-line fit of log10 power against log10 frequency over the band (0 for white noise,
about -2 to -4 for smooth anatomy).
"""

from dataclasses import dataclass
from typing import Iterable, Tuple

import numpy as np

from ..errors import InputError

DEFAULT_BAND = (0.25, 0.5)


@dataclass(frozen=True)
class RadialProfile:
    """Mean radial log10-power profile of a set of slices."""

    freq: np.ndarray  #: normalised frequency, cycles per pixel, 0 .. 0.5
    log_power: np.ndarray  #: mean log10 power per frequency bin
    n_slices: int


def _radial_bins(h: int, w: int) -> Tuple[np.ndarray, int]:
    n = min(h, w)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    r = np.rint(np.sqrt(fy * fy + fx * fx) * n).astype(np.int64)
    return r, n


def radial_profile(image: np.ndarray, eps: float = 1e-12) -> Tuple[np.ndarray, np.ndarray]:
    """Radial profile of one 2D slice: ``(freq, mean log10 power)``, ``N // 2 + 1`` bins."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2 or min(x.shape) < 4:
        raise InputError("A radial spectrum needs a 2D slice of at least 4 x 4 pixels; got shape {}.".format(x.shape))
    h, w = x.shape
    power = np.abs(np.fft.fft2(x)) ** 2 / float(h * w)
    logp = np.log10(power + eps)
    r, n = _radial_bins(h, w)
    nb = n // 2 + 1
    keep = r < nb
    sums = np.bincount(r[keep], weights=logp[keep], minlength=nb)
    counts = np.bincount(r[keep], minlength=nb)
    return np.arange(nb) / float(n), sums / counts


def mean_radial_profile(slices: Iterable[np.ndarray], eps: float = 1e-12) -> RadialProfile:
    """Mean radial profile of a set of 2D slices (an (N, H, W) array or a list of 2D arrays).

    Slices of one size are averaged bin by bin; if sizes differ, each profile is interpolated
    (linearly) onto the grid of the smallest slice before averaging.
    """
    profiles = []
    for s in slices:
        profiles.append(radial_profile(s, eps))
    if not profiles:
        raise InputError("No slices were given for the radial spectrum.")
    grid = min((p[0] for p in profiles), key=len)
    stack = np.stack([p[1] if len(p[0]) == len(grid) else np.interp(grid, p[0], p[1]) for p in profiles])
    return RadialProfile(freq=grid, log_power=stack.mean(axis=0), n_slices=len(profiles))


def _band(freq: np.ndarray, band: Tuple[float, float]) -> np.ndarray:
    sel = (freq >= band[0]) & (freq <= band[1]) & (freq > 0)
    if sel.sum() < 2:
        raise InputError(
            "The band {} holds fewer than 2 frequency bins of this spectrum; use larger slices or a "
            "wider band.".format(band)
        )
    return sel


def spectral_slope(profile: RadialProfile, band: Tuple[float, float] = DEFAULT_BAND) -> float:
    """Slope of the least-squares line log10 power = a + slope * log10 frequency over the band."""
    sel = _band(profile.freq, band)
    slope, _ = np.polyfit(np.log10(profile.freq[sel]), profile.log_power[sel], 1)
    return float(slope)


@dataclass(frozen=True)
class SpectralComparison:
    """Real vs synthetic radial spectra."""

    freq: np.ndarray
    real: np.ndarray  #: mean log10 power of the real slices on ``freq``
    synth: np.ndarray  #: mean log10 power of the synthetic slices on ``freq``
    band: Tuple[float, float]
    distance: float  #: mean |real - synth| of log10 power over the band (decades)
    slope_real: float
    slope_synth: float
    n_real: int
    n_synth: int

    @property
    def slope_difference(self) -> float:
        return self.slope_synth - self.slope_real


def compare_spectra(
    real_slices: Iterable[np.ndarray],
    synth_slices: Iterable[np.ndarray],
    band: Tuple[float, float] = DEFAULT_BAND,
    eps: float = 1e-12,
) -> SpectralComparison:
    """Mean radial profiles of real and synthetic slices, their band distance and slopes.

    The synthetic profile is interpolated onto the real profile's frequency grid when the grids
    differ. Give both sets the same intensity scaling (e.g. raw HU for CT).
    """
    pr = mean_radial_profile(real_slices, eps)
    ps = mean_radial_profile(synth_slices, eps)
    freq = pr.freq
    synth = ps.log_power if len(ps.freq) == len(freq) else np.interp(freq, ps.freq, ps.log_power)
    sel = _band(freq, band)
    return SpectralComparison(
        freq=freq,
        real=pr.log_power,
        synth=synth,
        band=(float(band[0]), float(band[1])),
        distance=float(np.mean(np.abs(pr.log_power[sel] - synth[sel]))),
        slope_real=spectral_slope(pr, band),
        slope_synth=spectral_slope(RadialProfile(freq, synth, ps.n_slices), band),
        n_real=pr.n_slices,
        n_synth=ps.n_slices,
    )


def resample_profile(freq: np.ndarray, log_power: np.ndarray, n_points: int) -> np.ndarray:
    """A profile interpolated onto ``n_points`` equally spaced frequencies in (0, 0.5]."""
    grid = np.linspace(0.5 / n_points, 0.5, n_points)
    return np.interp(grid, freq, log_power)
