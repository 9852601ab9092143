"""Slices from volumes and pluggable per-slice feature extractors for FID / KID.

Slices: :func:`extract_slices` reorients an image to LPS (``SimpleITK.DICOMOrient``), so that
every volume is cut the same way whatever its direction matrix, and returns the 2D slices of
one plane as an ``(N, H, W)`` float32 array:

- ``axial``: rows anterior -> posterior, columns right -> left (radiological view);
- ``coronal``: rows superior -> inferior, columns right -> left;
- ``sagittal``: rows superior -> inferior, columns anterior -> posterior.

Numpy arrays are taken as already in (S, P, L) index order (SimpleITK's array of an LPS image).
Slices are cut on the voxel grid; anisotropic volumes give stretched coronal/sagittal slices,
so resample to isotropic spacing first when comparing those planes across data sets.
The 2.5D option uses the three planes and averages the per-plane scores.

Intensities are mapped to [0, 1] by ``window``: ``"ct"`` = [-1024, 3071] HU, a ``(lo, hi)``
pair, ``"percentile"`` = the volume's 0.5 and 99.5 percentiles (inside the mask if given;
for MRI), or ``None`` (raw values, e.g. for spectra).

Extractors map ``(N, H, W)`` images in [0, 1] to ``(N, d)`` float64 features:

- :class:`InceptionExtractor` (``"inception"``): the standard FID InceptionV3, 2048-d; needs
  the pytorch-fid weights file. Grey slices are repeated to 3 channels.
- :class:`HistogramSpectrumExtractor` (``"histspec"``): 32-bin intensity histogram + 32-point
  radial log-power profile, 64-d; deterministic, no weights, cheap. Not comparable with
  published FIDs: use it for tests and for relative comparisons within one study.
- :class:`RandomProjectionExtractor` (``"randproj"``): the image resized to 32 x 32 and
  projected by a fixed seeded Gaussian matrix to 64-d; deterministic, no weights.
"""

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError
from . import spectral

PLANES = ("axial", "coronal", "sagittal")
CT_WINDOW = (-1024.0, 3071.0)

WindowArg = Union[None, str, Tuple[float, float]]


def _canonical(volume, name: str) -> np.ndarray:
    if isinstance(volume, sitk.Image):
        if volume.GetDimension() != 3:
            raise InputError("The {} must be a 3D volume; it has {} dimensions.".format(name, volume.GetDimension()))
        return sitk.GetArrayFromImage(sitk.DICOMOrient(volume, "LPS"))
    arr = np.asarray(volume)
    if arr.ndim != 3:
        raise InputError("The {} must be a 3D volume; it has {} dimensions.".format(name, arr.ndim))
    return arr


def _plane_view(arr: np.ndarray, plane: str) -> np.ndarray:
    """(N, H, W) view of an (S, P, L)-ordered array for one plane."""
    if plane == "axial":
        return arr
    if plane == "coronal":
        return np.transpose(arr, (1, 0, 2))[:, ::-1, :]
    if plane == "sagittal":
        return np.transpose(arr, (2, 0, 1))[:, ::-1, :]
    raise InputError("Unknown plane {!r}; use one of {}.".format(plane, ", ".join(PLANES)))


def _window_bounds(arr: np.ndarray, window: WindowArg, mask: Optional[np.ndarray]) -> Optional[Tuple[float, float]]:
    if window is None:
        return None
    if isinstance(window, str):
        if window == "ct":
            return CT_WINDOW
        if window == "percentile":
            vals = arr[mask] if mask is not None and mask.any() else arr
            lo, hi = np.percentile(vals, [0.5, 99.5])
            return float(lo), float(max(hi, lo + 1e-6))
        raise InputError('Unknown window {!r}; use "ct", "percentile", a (low, high) pair or None.'.format(window))
    lo, hi = float(window[0]), float(window[1])
    if not hi > lo:
        raise InputError("The intensity window ({}, {}) must have high > low.".format(lo, hi))
    return lo, hi


def extract_slices(
    volume,
    plane: str = "axial",
    window: WindowArg = "ct",
    mask=None,
    min_mask_fraction: float = 0.0,
    step: int = 1,
) -> np.ndarray:
    """2D slices of one plane as an ``(N, H, W)`` float32 array (see the module text).

    ``mask`` (same grid as ``volume``) sets the percentile window region and, with
    ``min_mask_fraction > 0``, drops slices whose mask covers less than that fraction.
    ``step`` keeps every ``step``-th slice.
    """
    arr = _canonical(volume, "volume").astype(np.float32, copy=False)
    m = None
    if mask is not None:
        if isinstance(volume, sitk.Image) != isinstance(mask, sitk.Image):
            raise InputError(
                "Give the volume and its mask both as SimpleITK images or both as arrays, so that both "
                "are cut the same way."
            )
        if isinstance(volume, sitk.Image):
            from ..geometry import same_grid

            if not same_grid(volume, mask, tol=1e-4):
                raise InputError("The mask is not on the volume's grid; resample it onto the volume first.")
        m = _canonical(mask, "mask") > 0
        if m.shape != arr.shape:
            raise InputError("The mask (shape {}) and the volume (shape {}) differ in shape.".format(m.shape, arr.shape))
    bounds = _window_bounds(arr, window, m)
    if bounds is not None:
        lo, hi = bounds
        arr = np.clip((arr - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    view = _plane_view(arr, plane)
    keep = np.arange(0, view.shape[0], max(int(step), 1))
    if m is not None and min_mask_fraction > 0:
        frac = _plane_view(m, plane).reshape(view.shape[0], -1).mean(axis=1)
        keep = keep[frac[keep] >= min_mask_fraction]
    return np.ascontiguousarray(view[keep])


def _images(images) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise InputError("Feature extractors take (N, H, W) images; got shape {}.".format(x.shape))
    return x


class FeatureExtractor:
    """Base class: ``extractor(images)`` maps ``(N, H, W)`` images in [0, 1] to ``(N, dim)``."""

    name = "base"
    dim = 0

    def __call__(self, images) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class HistogramSpectrumExtractor(FeatureExtractor):
    """Intensity histogram (fractions of pixels in ``n_hist`` bins on [0, 1]) + radial spectrum
    (mean log10 power resampled to ``n_freq`` points on (0, 0.5] cycles/pixel)."""

    name = "histspec"

    def __init__(self, n_hist: int = 32, n_freq: int = 32):
        self.n_hist = int(n_hist)
        self.n_freq = int(n_freq)
        self.dim = self.n_hist + self.n_freq

    def __call__(self, images) -> np.ndarray:
        x = _images(images)
        out = np.empty((x.shape[0], self.dim), dtype=np.float64)
        edges = np.linspace(0.0, 1.0, self.n_hist + 1)
        for i, img in enumerate(x):
            h, _ = np.histogram(np.clip(img, 0.0, 1.0), bins=edges)
            out[i, : self.n_hist] = h / float(img.size)
            f, p = spectral.radial_profile(img)
            out[i, self.n_hist:] = spectral.resample_profile(f, p, self.n_freq)
        return out


class RandomProjectionExtractor(FeatureExtractor):
    """Image resized (bilinear) to ``size`` x ``size``, times a fixed N(0, 1/size^2) matrix."""

    name = "randproj"

    def __init__(self, size: int = 32, dim: int = 64, seed: int = 0):
        self.size = int(size)
        self.dim = int(dim)
        rng = np.random.default_rng(seed)
        self.matrix = rng.normal(0.0, 1.0 / self.size, size=(self.size * self.size, self.dim))

    def __call__(self, images) -> np.ndarray:
        x = _images(images)
        small = np.empty((x.shape[0], self.size, self.size), dtype=np.float64)
        for i, img in enumerate(x):
            zoom = (self.size / img.shape[0], self.size / img.shape[1])
            z = ndimage.zoom(img.astype(np.float64), zoom, order=1, grid_mode=True, mode="nearest")
            small[i] = z[: self.size, : self.size]
        return small.reshape(x.shape[0], -1) @ self.matrix


class InceptionExtractor(FeatureExtractor):
    """Standard FID features: pytorch-fid InceptionV3 pool3, 2048-d (see :mod:`.inception`).

    The weights file is located when the extractor is made (a clear error if it is missing);
    the network is built at the first call.
    """

    name = "inception"
    dim = 2048

    def __init__(self, weights_path: Optional[str] = None, device: str = "cpu", batch_size: int = 16):
        from .inception import resolve_weights_path

        self.weights_path = resolve_weights_path(weights_path)
        self.device = device
        self.batch_size = int(batch_size)
        self._net = None

    def __call__(self, images) -> np.ndarray:
        import torch

        from .inception import build_fid_inception

        if self._net is None:
            self._net = build_fid_inception(self.weights_path).to(self.device)
        x = _images(images)
        out = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], self.batch_size):
                t = torch.from_numpy(np.ascontiguousarray(x[i: i + self.batch_size])).to(self.device)
                t = t[:, None].expand(-1, 3, -1, -1).float()
                out.append(self._net(t).double().cpu().numpy())
        return np.concatenate(out, axis=0)


EXTRACTORS = {
    "inception": InceptionExtractor,
    "histspec": HistogramSpectrumExtractor,
    "randproj": RandomProjectionExtractor,
}


def get_extractor(name_or_extractor: Union[str, FeatureExtractor] = "histspec", **kwargs) -> FeatureExtractor:
    """An extractor by name (``inception``, ``histspec``, ``randproj``) or the object given."""
    if not isinstance(name_or_extractor, str):
        return name_or_extractor  # any callable mapping (N, H, W) -> (N, d)
    try:
        cls = EXTRACTORS[name_or_extractor]
    except KeyError:
        raise InputError(
            "Unknown feature extractor {!r}; use one of {}.".format(name_or_extractor, ", ".join(EXTRACTORS))
        )
    return cls(**kwargs)


def volume_features(
    volumes: Sequence,
    extractor: Union[str, FeatureExtractor] = "histspec",
    plane: str = "axial",
    window: WindowArg = "ct",
    masks: Optional[Sequence] = None,
    min_mask_fraction: float = 0.0,
    step: int = 1,
) -> np.ndarray:
    """Features of all slices of one plane of all volumes, stacked: ``(total slices, d)``."""
    ex = get_extractor(extractor)
    if masks is not None and len(masks) != len(volumes):
        raise InputError("{} masks were given for {} volumes.".format(len(masks), len(volumes)))
    feats = []
    for i, vol in enumerate(volumes):
        sl = extract_slices(vol, plane, window, None if masks is None else masks[i], min_mask_fraction, step)
        if len(sl):
            feats.append(ex(sl))
    if not feats:
        raise InputError("No slices were left to compute features from (check the masks and min_mask_fraction).")
    return np.concatenate(feats, axis=0)
