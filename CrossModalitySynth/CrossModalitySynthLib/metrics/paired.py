"""Paired synthetic-CT metrics, defined as the SynthRAD challenges compute them.

All functions take the real CT and the synthetic CT (in HU) as SimpleITK images on one grid or
as numpy arrays of one shape, and an optional body mask. ``mask=None`` uses
:func:`body_mask` of the real CT; ``mask="all"`` uses every voxel.

Definitions (see docs/metrics.md for the full text):

- MAE (SynthRAD2023/2025): ``sum(|ct - sct| * m) / sum(m)`` on raw HU (no clipping), in HU.
- PSNR (SynthRAD2023/2025): both clipped to ``[-1024, 3000]``, ``data_range = 4024``,
  ``10 log10(data_range**2 / MSE)`` with the MSE over mask voxels only, in dB.
- SSIM (SynthRAD2023): clip to ``[-1024, 3000]``, outside-mask voxels set to -1024, shift by
  +1024, 3D SSIM map with a 7-voxel uniform window, sample covariance, K1 0.01, K2 0.03,
  ``data_range = 4024``; the score is the mean of the map over the mask voxels that are at
  least 3 voxels away from the volume border (SynthRAD crops the border of both the map and
  the mask by 3 voxels; the mask itself is not eroded).
- MS-SSIM (SynthRAD2025): range ``[-1024, 3071]``, 5 scales with weights
  ``0.0448 0.2856 0.3001 0.2363 0.1333`` (see :func:`ms_ssim_synthrad2025`).

The SSIM maps are computed here in float64 with scipy (scikit-image is not a dependency); the
tests check equality with ``skimage.metrics.structural_similarity`` configured as SynthRAD does.
"""

from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError
from ._inputs import ArrayOrImage, binary, check_pair, require_nonempty, to_array

HU_RANGE_SYNTHRAD2023 = (-1024.0, 3000.0)
HU_RANGE_SYNTHRAD2025 = (-1024.0, 3071.0)
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_SIZE = 97

MaskArg = Union[None, str, ArrayOrImage]


class MaskVanishesError(InputError):
    """The mask keeps no voxel inside the cropped volume at one MS-SSIM scale (a small mask)."""

    def __init__(self, scale: int, n_scales: int):
        self.scale = scale
        self.n_scales = n_scales
        super().__init__(
            "The mask vanishes at MS-SSIM scale {} of {}; give a larger mask.".format(scale, n_scales))


# --------------------------------------------------------------------------------------------
# body mask
# --------------------------------------------------------------------------------------------


def _axial_axis(image: Optional[sitk.Image]) -> int:
    """Numpy axis of the (z, y, x) array whose direction is closest to the patient's S axis."""
    if image is None:
        return 0
    d = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    itk_axis = int(np.argmax(np.abs(d[2, :])))  # column = index axis, row 2 = S component
    return 2 - itk_axis


def body_mask(
    ct: ArrayOrImage,
    threshold: float = -500.0,
    fill_holes: bool = True,
) -> Union[np.ndarray, sitk.Image]:
    """Body mask of a CT: ``ct > threshold`` HU, largest 26-connected component, holes filled.

    Holes are filled in 3D and then slice by slice in the axial planes (the axis closest to the
    patient's superior-inferior direction; axis 0 for arrays), so that lungs or bowel gas open
    to the volume border are filled too. Returns a bool array for an array input and a UInt8
    image on the same grid for an image input.
    """
    arr = to_array(ct, "CT")
    if arr.ndim != 3:
        raise InputError("The CT must be a 3D volume; it has {} dimensions.".format(arr.ndim))
    fg = arr > threshold
    labels, n = ndimage.label(fg, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0:
        raise InputError(
            "No voxel of the CT is above {} HU, so no body mask can be made; check that the image "
            "is a CT in HU or give a mask.".format(threshold)
        )
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    mask = labels == int(np.argmax(sizes))
    if fill_holes:
        mask = ndimage.binary_fill_holes(mask)
        axis = _axial_axis(ct if isinstance(ct, sitk.Image) else None)
        moved = np.moveaxis(mask, axis, 0)
        for i in range(moved.shape[0]):
            moved[i] = ndimage.binary_fill_holes(moved[i])
        mask = np.moveaxis(moved, 0, axis)
    if isinstance(ct, sitk.Image):
        out = sitk.GetImageFromArray(mask.astype(np.uint8))
        out.CopyInformation(ct)
        return out
    return mask


def _prepare(ct: ArrayOrImage, sct: ArrayOrImage, mask: MaskArg) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    check_pair(ct, sct, ("CT", "synthetic CT"))
    a = to_array(ct, "CT")
    b = to_array(sct, "synthetic CT")
    if a.ndim != 3:
        raise InputError("The CT must be a 3D volume; it has {} dimensions.".format(a.ndim))
    if isinstance(mask, str):
        if mask != "all":
            raise InputError('The mask must be an image, an array, None (body mask) or "all"; got {!r}.'.format(mask))
        m = np.ones(a.shape, dtype=bool)
    elif mask is None:
        m = binary(body_mask(ct), "body mask")
    else:
        check_pair(ct, mask, ("CT", "mask"))
        m = binary(mask)
    require_nonempty(m)
    return a, b, m


# --------------------------------------------------------------------------------------------
# MAE, PSNR
# --------------------------------------------------------------------------------------------


def mae(ct: ArrayOrImage, sct: ArrayOrImage, mask: MaskArg = None) -> float:
    """Mean absolute error in HU inside the mask, on raw HU (no clipping)."""
    a, b, m = _prepare(ct, sct, mask)
    return float(np.abs(a[m] - b[m]).sum(dtype=np.float64) / m.sum())


def psnr(
    ct: ArrayOrImage,
    sct: ArrayOrImage,
    mask: MaskArg = None,
    hu_range: Tuple[float, float] = HU_RANGE_SYNTHRAD2023,
) -> float:
    """PSNR in dB: both clipped to ``hu_range``, peak = range width, MSE over mask voxels only.

    Returns ``inf`` when the clipped volumes agree on every mask voxel.
    """
    a, b, m = _prepare(ct, sct, mask)
    lo, hi = float(hu_range[0]), float(hu_range[1])
    diff = np.clip(a[m], lo, hi) - np.clip(b[m], lo, hi)
    mse = float(np.mean(diff * diff, dtype=np.float64))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10((hi - lo) ** 2 / mse))


# --------------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------------


def _crop_border(x: np.ndarray, pad: int) -> np.ndarray:
    return x[tuple(slice(pad, s - pad) for s in x.shape)]


def _local_moments(x: np.ndarray, y: np.ndarray, win_size: int, sample_covariance: bool):
    """Uniform-window means, variances and covariance (reflect boundary, as scikit-image)."""
    ux = ndimage.uniform_filter(x, size=win_size)
    uy = ndimage.uniform_filter(y, size=win_size)
    uxx = ndimage.uniform_filter(x * x, size=win_size)
    uyy = ndimage.uniform_filter(y * y, size=win_size)
    uxy = ndimage.uniform_filter(x * y, size=win_size)
    npix = win_size ** x.ndim
    cov_norm = npix / (npix - 1.0) if sample_covariance else 1.0
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    return ux, uy, vx, vy, vxy


def ssim_map(
    x: np.ndarray,
    y: np.ndarray,
    data_range: float,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
    sample_covariance: bool = True,
) -> np.ndarray:
    """SSIM map of two arrays (any dimension) with a uniform window, as scikit-image computes it.

    ``((2 ux uy + C1)(2 vxy + C2)) / ((ux^2 + uy^2 + C1)(vx + vy + C2))`` with
    ``C1 = (k1 R)^2``, ``C2 = (k2 R)^2``, ``R = data_range``; moments over a ``win_size``-wide
    uniform window with reflected borders; sample (N-1) covariance by default.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if any(s < win_size for s in x.shape):
        raise InputError(
            "The volume ({}) is smaller than the {}-voxel SSIM window in some dimension; SSIM needs "
            "at least {} voxels along every axis.".format(x.shape, win_size, win_size)
        )
    ux, uy, vx, vy, vxy = _local_moments(x, y, win_size, sample_covariance)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    num = (2.0 * ux * uy + c1) * (2.0 * vxy + c2)
    den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return num / den


def _masked_hu(a: np.ndarray, m: np.ndarray, hu_range: Tuple[float, float]) -> np.ndarray:
    """Clip to the range, set outside-mask voxels to its lower end, shift to start at 0."""
    lo, hi = float(hu_range[0]), float(hu_range[1])
    out = np.clip(a, lo, hi)
    out[~m] = lo
    return out - lo


def ssim_synthrad2023(
    ct: ArrayOrImage,
    sct: ArrayOrImage,
    mask: MaskArg = None,
    hu_range: Tuple[float, float] = HU_RANGE_SYNTHRAD2023,
    win_size: int = 7,
) -> float:
    """Masked 3D SSIM as in the SynthRAD2023 evaluation.

    Clip both to ``hu_range``; set voxels outside the mask to ``hu_range[0]``; shift by
    ``-hu_range[0]``; SSIM map with a ``win_size`` uniform window, sample covariance and
    ``data_range = hu_range[1] - hu_range[0]``; mean of the map over mask voxels inside the
    volume cropped by ``(win_size - 1) // 2`` voxels at every border (this crop is what the
    reference code does; it does not erode the mask).
    """
    a, b, m = _prepare(ct, sct, mask)
    data_range = float(hu_range[1] - hu_range[0])
    smap = ssim_map(_masked_hu(a, m, hu_range), _masked_hu(b, m, hu_range), data_range, win_size)
    pad = (win_size - 1) // 2
    inner = _crop_border(m, pad)
    if not inner.any():
        raise InputError(
            "The mask has no voxel at least {} voxels away from the volume border, so the masked "
            "SSIM is undefined; give a larger mask or volume.".format(pad)
        )
    return float(_crop_border(smap, pad)[inner].mean(dtype=np.float64))


# --------------------------------------------------------------------------------------------
# MS-SSIM
# --------------------------------------------------------------------------------------------


def _ssim_components(x: np.ndarray, y: np.ndarray, data_range: float, win_size: int = 7):
    """Luminance, contrast and structure maps (each clipped at 0), C3 = C2 / 2."""
    ux, uy, vx, vy, vxy = _local_moments(x, y, win_size, True)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    c3 = c2 / 2.0
    sx = np.sqrt(np.clip(vx, 0.0, None))
    sy = np.sqrt(np.clip(vy, 0.0, None))
    lum = np.clip((2.0 * ux * uy + c1) / (ux * ux + uy * uy + c1), 0.0, None)
    con = np.clip((2.0 * sx * sy + c2) / (vx + vy + c2), 0.0, None)
    struct = np.clip((vxy + c3) / (sx * sy + c3), 0.0, None)
    return lum, con, struct


def _downsample2(x: np.ndarray) -> np.ndarray:
    """2x2x2 mean of each voxel and its lower neighbours (zero outside), then every 2nd voxel.

    This equals SynthRAD2025's ``fftconvolve(x, ones((2, 2, 2)) / 8, mode='same')[::2, ::2, ::2]``.
    """
    y = ndimage.uniform_filter(x, size=2, mode="constant", cval=0.0)
    return y[tuple(slice(None, None, 2) for _ in range(x.ndim))]


def ms_ssim_synthrad2025(
    ct: ArrayOrImage,
    sct: ArrayOrImage,
    mask: MaskArg = None,
    hu_range: Tuple[float, float] = HU_RANGE_SYNTHRAD2025,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    luminance_all_scales: bool = True,
    min_size: int = MS_SSIM_MIN_SIZE,
    win_size: int = 7,
) -> float:
    """Masked 3D MS-SSIM as in the SynthRAD2025 evaluation.

    1. Clip both to ``hu_range``, set outside-mask voxels to ``hu_range[0]``, shift to start at 0;
       ``data_range = hu_range[1] - hu_range[0]`` (4095).
    2. Pad every axis shorter than ``min_size`` (97) to ``min_size`` by edge replication (half
       before, the rest after), images and mask alike, so 5 scales of a 7-voxel window fit.
    3. At scale ``j`` (weight ``w_j``): luminance ``l``, contrast ``c`` and structure ``s`` maps
       (7-voxel uniform window, sample covariance, ``C3 = C2 / 2``, each clipped at 0); the
       scale's map is ``l^w_j c^w_j s^w_j`` (``luminance_all_scales=True``, as the SynthRAD2025
       code does) or ``c^w_j s^w_j`` with ``l`` only at the coarsest scale (Wang et al. 2003,
       ``luminance_all_scales=False``); its score is the mean over mask voxels inside the volume
       cropped by 3 voxels at each border.
    4. Downsample the images by a 2x2x2 mean (zero outside) and keep every 2nd voxel; the mask
       by keeping every 2nd voxel.
    5. MS-SSIM = product over scales of the scores, each clipped to [0, 1].

    A mask that keeps no voxel at some scale raises :class:`MaskVanishesError`;
    :func:`paired_metrics` turns it into NaN, as SynthRAD2025's code does.
    """
    a, b, m = _prepare(ct, sct, mask)
    data_range = float(hu_range[1] - hu_range[0])
    x = _masked_hu(a, m, hu_range)
    y = _masked_hu(b, m, hu_range)
    pads = [((max(min_size - s, 0)) // 2, max(min_size - s, 0) - (max(min_size - s, 0)) // 2) for s in x.shape]
    x = np.pad(x, pads, mode="edge")
    y = np.pad(y, pads, mode="edge")
    mm = np.pad(m, pads, mode="edge")
    weights = [float(w) for w in weights]
    n = len(weights)
    pad = (win_size - 1) // 2
    scores = []
    for j, w in enumerate(weights):
        if any(s < win_size for s in x.shape):
            raise InputError(
                "The volume is too small for {} MS-SSIM scales ({} at scale {}); use fewer scales "
                "or a larger min_size.".format(n, x.shape, j + 1)
            )
        lum, con, struct = _ssim_components(x, y, data_range, win_size)
        wl = w if (luminance_all_scales or j == n - 1) else 0.0
        smap = lum ** wl * con ** w * struct ** w
        inner = _crop_border(mm, pad)
        if not inner.any():
            raise MaskVanishesError(j + 1, n)
        scores.append(float(_crop_border(smap, pad)[inner].mean(dtype=np.float64)))
        if j < n - 1:
            x = _downsample2(x)
            y = _downsample2(y)
            mm = mm[tuple(slice(None, None, 2) for _ in range(mm.ndim))]
    return float(np.prod(np.clip(scores, 0.0, 1.0)))


# --------------------------------------------------------------------------------------------
# all together
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedMetrics:
    """SynthRAD-style paired metrics of one case."""

    mae: float  #: HU, raw values inside the mask
    psnr: float  #: dB, range [-1024, 3000]
    ssim: float  #: SynthRAD2023 masked SSIM, range [-1024, 3000]
    ms_ssim: Optional[float]  #: SynthRAD2025 masked MS-SSIM, range [-1024, 3071] (None if skipped)
    n_mask_voxels: int
    mask_source: str  #: "given", "body" (threshold of the CT) or "all"
    #: why ms_ssim is NaN ("the mask vanishes at scale 3 of 5"), else None
    ms_ssim_note: Optional[str] = None

    def as_dict(self) -> dict:
        return asdict(self)


def paired_metrics(
    ct: ArrayOrImage,
    sct: ArrayOrImage,
    mask: MaskArg = None,
    with_ms_ssim: bool = True,
) -> PairedMetrics:
    """MAE, PSNR, SSIM (SynthRAD2023) and MS-SSIM (SynthRAD2025) of one case.

    A mask too small for the 5 MS-SSIM scales gives ``ms_ssim`` NaN with the reason in
    ``ms_ssim_note`` (SynthRAD2025's code gives NaN there too); the other metrics are computed.
    """
    _, _, m = _prepare(ct, sct, mask)  # validates once, computes the body mask once
    source = "all" if isinstance(mask, str) else ("body" if mask is None else "given")
    ms, note = None, None
    if with_ms_ssim:
        try:
            ms = ms_ssim_synthrad2025(ct, sct, m)
        except MaskVanishesError as exc:
            ms, note = float("nan"), "the mask vanishes at scale {} of {}".format(exc.scale, exc.n_scales)
    return PairedMetrics(
        mae=mae(ct, sct, m),
        psnr=psnr(ct, sct, m),
        ssim=ssim_synthrad2023(ct, sct, m),
        ms_ssim=ms,
        n_mask_voxels=int(m.sum()),
        mask_source=source,
        ms_ssim_note=note,
    )
