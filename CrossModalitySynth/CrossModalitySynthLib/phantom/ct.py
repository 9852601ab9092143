"""CT image formation: tissue HU with partial volume, slight blur, correlated noise, int16.

Input is the HU channel painted by :mod:`.render` (partial volume already mixed linearly, as
attenuation mixes). The scanner is modelled by white Gaussian noise added to the HU and one
in-plane Gaussian blur of the sum, of ``blur_mm`` or at least 0.7 voxel: the blur is the
system resolution and makes the noise grain about a voxel wide, the look of filtered back
projection. The noise amplitude is set so that the *blurred* noise has ``noise_hu`` standard
deviation. Air outside the body is -1000 HU plus noise. Values are rounded and clipped to
[-1024, 3071] and stored as int16 HU.
"""

import numpy as np
from scipy import ndimage

CT_NOISE_HU = 12.0
CT_BLUR_MM = 0.6
HU_MIN, HU_MAX = -1024, 3071


def ct_tissue_values(tissues) -> dict:
    """tissue name -> [HU] (the one render channel of a CT)."""
    return {name: [t.hu] for name, t in tissues.items()}


def _blur_sigma(spacing_xyz, blur_mm: float):
    """In-plane Gaussian sigma (voxels) for (z, y, x) arrays: blur_mm, at least 0.7 voxel."""
    sx, sy = float(spacing_xyz[0]), float(spacing_xyz[1])
    return (0.0, max(blur_mm / sy, 0.7), max(blur_mm / sx, 0.7))


def _gain(sigma: float, truncate: float = 3.0) -> float:
    """Standard deviation of white unit noise after scipy's 1-D Gaussian of ``sigma`` voxels."""
    delta = np.zeros(2 * int(truncate * sigma + 0.5) + 1 + 8)
    delta[len(delta) // 2] = 1.0
    kernel = ndimage.gaussian_filter1d(delta, sigma, truncate=truncate, mode="constant")
    return float(np.sqrt(np.sum(kernel ** 2)))


def finish_ct(hu: np.ndarray, spacing_xyz, rng: np.random.Generator, noise_hu: float = CT_NOISE_HU,
              blur_mm: float = CT_BLUR_MM) -> np.ndarray:
    """Add noise, blur, round and clip a rendered HU array (z, y, x); returns int16 HU.

    ``hu`` may be modified in place (it is the renderer's scratch array).
    """
    sigma = _blur_sigma(spacing_xyz, blur_mm)
    if noise_hu > 0:
        noise = rng.standard_normal(size=hu.shape, dtype=np.float32)
        noise *= np.float32(noise_hu / (_gain(sigma[1]) * _gain(sigma[2])))
        hu += noise
        del noise
    hu = ndimage.gaussian_filter(hu, sigma=sigma, truncate=3.0)
    np.rint(hu, out=hu)
    np.clip(hu, HU_MIN, HU_MAX, out=hu)
    return hu.astype(np.int16)
