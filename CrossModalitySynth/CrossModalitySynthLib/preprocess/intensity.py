"""Intensity normalisation to the network's range [-1, 1], and its exact inverse.

- MRI (per channel): clip to the ``[p_low, p_high]`` percentiles (default 0.5 and 99.5) of the
  voxels *inside the body* and map that range linearly to [-1, 1]. The body (foreground) is the
  set of voxels above an Otsu threshold with holes filled slice by slice (so dark tissue such as
  fat-suppressed fat or bowel gas inside the body still counts; the air around it does not).
  The two values used are returned in an :class:`IntensityScale` to be stored and inverted.
- CT: clip to an HU window (default [-1024, 3071]) and map it linearly to [-1, 1].

The inverse maps [-1, 1] back linearly (to HU for CT, to the stored MRI scale for MRI); it is
exact (up to float rounding) for every value that was inside the clipping range.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from ..errors import InputError

DEFAULT_MRI_PERCENTILES = (0.5, 99.5)
DEFAULT_CT_WINDOW = (-1024.0, 3071.0)

#: Fewer foreground voxels than this: the percentiles are taken over the whole volume instead.
MIN_FOREGROUND_VOXELS = 64


@dataclass(frozen=True)
class IntensityScale:
    """The linear map ``[low, high] -> [-1, 1]`` (values outside are clipped).

    ``kind`` is ``"mr_percentiles"`` (then ``percentiles`` holds the percentiles used) or
    ``"ct_window"``.
    """

    low: float
    high: float
    kind: str = "ct_window"
    percentiles: Optional[Tuple[float, float]] = None

    def __post_init__(self):
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.high > self.low):
            raise ValueError(f"intensity range must satisfy low < high, got [{self.low}, {self.high}]")

    def forward(self, array: np.ndarray) -> np.ndarray:
        """Clip to [low, high] and map to [-1, 1]; float32."""
        a = np.clip(np.asarray(array, dtype=np.float64), self.low, self.high)
        return (2.0 * (a - self.low) / (self.high - self.low) - 1.0).astype(np.float32)

    def inverse(self, array: np.ndarray) -> np.ndarray:
        """[-1, 1] -> [low, high] (no clipping: values outside map linearly beyond); float32."""
        a = np.asarray(array, dtype=np.float64)
        return ((a + 1.0) * 0.5 * (self.high - self.low) + self.low).astype(np.float32)

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "low": float(self.low), "high": float(self.high)}
        if self.percentiles is not None:
            d["percentiles"] = [float(p) for p in self.percentiles]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "IntensityScale":
        p = d.get("percentiles")
        return cls(float(d["low"]), float(d["high"]), str(d.get("kind", "ct_window")), tuple(p) if p else None)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a set of values (maximises the between-class variance)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    hist, edges = np.histogram(v, bins=bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    m = np.cumsum(hist * centres)
    mu0 = m / np.maximum(w0, 1)
    mu1 = (m[-1] - m) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def foreground_mask(array_zyx: np.ndarray) -> np.ndarray:
    """Boolean body mask of an MRI array ``[z, y, x]``.

    Otsu's threshold on log intensities (air noise and tissue differ by a *ratio*, so a dark
    tissue such as fat on a fat-suppressed T2 still separates from air, which a linear Otsu
    threshold misses), then the largest connected component, holes filled in each axial slice
    (axis 0) so lungs and bowel gas count as inside.
    """
    a = np.asarray(array_zyx, dtype=np.float64)
    step = max(1, a.size // 2_000_000)
    shifted = np.log1p(a - a.min())
    t = otsu_threshold(shifted.ravel()[::step])
    mask = shifted > t
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == int(np.argmax(sizes))
    return fill_holes_per_slice(mask)


#: 4-connectivity inside each axial slice, none across slices.
_SLICE_CONNECTIVITY = np.zeros((3, 3, 3), dtype=bool)
_SLICE_CONNECTIVITY[1] = ndimage.generate_binary_structure(2, 1)


def fill_holes_per_slice(mask_zyx: np.ndarray) -> np.ndarray:
    """``binary_fill_holes`` of every axial slice (axis 0), in one pass over the volume.

    A background voxel is a hole when its 4-connected background component within its slice does
    not touch the slice's edge: the same result as ``ndimage.binary_fill_holes`` slice by slice
    (tested), in one labelling pass instead of one call per slice.
    """
    mask = np.asarray(mask_zyx, dtype=bool)
    background, n = ndimage.label(~mask, structure=_SLICE_CONNECTIVITY)
    open_to_edge = np.zeros(n + 1, dtype=bool)
    for edge in (background[:, 0, :], background[:, -1, :], background[:, :, 0], background[:, :, -1]):
        open_to_edge[edge] = True
    open_to_edge[0] = True  # label 0 = the mask itself
    return mask | ~open_to_edge[background]


def mr_scale(
    array_zyx: np.ndarray,
    percentiles: Sequence[float] = DEFAULT_MRI_PERCENTILES,
    mask: Optional[np.ndarray] = None,
    name: str = "MRI volume",
) -> IntensityScale:
    """The MRI scale of one channel: its percentiles inside ``mask`` (default: the
    :func:`foreground_mask`; the whole volume when the mask has under 64 voxels). When those
    percentiles coincide (a flat body) the volume's min and max are used. Raises InputError
    when even those coincide."""
    p_lo, p_hi = (float(p) for p in percentiles)
    a = np.asarray(array_zyx)
    if mask is None:
        mask = foreground_mask(a)
    values = a[mask] if np.count_nonzero(mask) >= MIN_FOREGROUND_VOXELS else a.ravel()
    lo, hi = (float(v) for v in np.percentile(values, [p_lo, p_hi]))
    if not hi > lo:  # a flat body (e.g. a phantom): use the whole volume's range instead
        lo, hi = float(a.min()), float(a.max())
    if not hi > lo:
        raise InputError(f"{name} shows no intensity range inside the body; check that the scan is not blank.")
    return IntensityScale(lo, hi, "mr_percentiles", (p_lo, p_hi))


def ct_scale(window: Sequence[float] = DEFAULT_CT_WINDOW) -> IntensityScale:
    """The CT scale: an HU window ``(low, high)``."""
    lo, hi = (float(v) for v in window)
    return IntensityScale(lo, hi, "ct_window", None)


def normalise_mr(array_zyx: np.ndarray, percentiles=DEFAULT_MRI_PERCENTILES, mask=None):
    """One MRI channel -> ``(array in [-1, 1] float32, IntensityScale used)``."""
    scale = mr_scale(array_zyx, percentiles, mask)
    return scale.forward(array_zyx), scale


def normalise_ct(array_zyx: np.ndarray, window=DEFAULT_CT_WINDOW):
    """A CT in HU -> ``(array in [-1, 1] float32, IntensityScale used)``."""
    scale = ct_scale(window)
    return scale.forward(array_zyx), scale


def denormalise(array: np.ndarray, scale: IntensityScale) -> np.ndarray:
    """[-1, 1] -> the scale's units (HU for CT, the stored MRI scale for MRI); float32."""
    return scale.inverse(array)
