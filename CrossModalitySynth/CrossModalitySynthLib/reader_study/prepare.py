"""Identical preparation of every reader-study image, real or synthetic.

Every image, whatever its input grid, format or origin, goes through the same steps, so that
nothing but the voxel values can tell a real image from a synthetic one:

1. read (any supported format), check it is a usable 3D scalar volume, cast to float32;
2. find the body: voxels above ``body_threshold`` (-500 HU), largest connected component; its
   axis-aligned physical (LPS) bounding box gives the centre of the field of view and, in slices
   mode, the extent along the slice normal;
3. anti-alias where the output is coarser than the input: along each input axis a Gaussian with
   FWHM = sqrt(t^2 - s^2) mm (s = input spacing, t = output spacing along that direction);
4. resample (linear; outside the input's field of view = -1024 HU, air) onto a fixed grid with
   identity direction (axial, LPS), centred on the body centre:

   * volumes mode: ``size`` voxels at ``spacing`` mm;
   * slices mode: one ``slice_size`` x ``slice_size`` plane at ``slice_spacing`` mm in-plane and
     ``slice_thickness`` mm across (also the anti-aliasing width across), stored as a 1-slice 3D
     volume (axial: x, y, 1; coronal: x, 1, z; sagittal: 1, y, z); its position along the normal is
     ``lo + L * ((1 - f) / 2 + f * u)``: inside the middle ``f`` = ``body_fraction`` (60 %) of the
     body extent ``[lo, lo + L]``, at the drawn fraction ``u`` (see :mod:`.design`);

5. clip to ``hu_range`` (-1024, 3071), round to the nearest integer, store as int16;
6. give it a canonical header: identity direction, the fixed spacing, and an origin that only
   depends on the grid (in-plane centre at 0; the slice itself at 0 along its normal), so neither
   the patient's position nor the slice position is in the file;
7. write it uncompressed (``.nrrd`` raw, or ``.nii``), with no metadata: every file of a study
   then has exactly the same size. ``.nii.gz`` is possible but its size depends on the content
   (smooth images compress better), which can hint at the answer.
"""

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import ConfigError, InputError
from ..preprocess.checks import check_volume
from .design import MODES, PLANES

FILE_FORMATS = {"nrrd": ".nrrd", "nii": ".nii", "nii.gz": ".nii.gz"}

AIR_HU = -1024.0
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
#: the body mask is computed on at most about this many voxels (coarser stride on larger volumes)
_MASK_VOXELS = 4_000_000
#: plane -> index (x=0, y=1, z=2) of its normal
NORMAL_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}


@dataclass(frozen=True)
class PrepareSettings:
    """How every image of a study is prepared (stored in ``study.json``)."""

    mode: str = "slices"
    size: Tuple[int, int, int] = (320, 320, 96)  #: volumes mode: voxels (x, y, z)
    spacing: Tuple[float, float, float] = (1.25, 1.25, 3.0)  #: volumes mode: mm (x, y, z)
    slice_size: int = 320  #: slices mode: in-plane voxels per side
    slice_spacing: float = 1.25  #: slices mode: in-plane mm
    slice_thickness: float = 3.0  #: slices mode: mm across the plane
    hu_range: Tuple[float, float] = (-1024.0, 3071.0)
    body_threshold: float = -500.0
    body_fraction: float = 0.6
    file_format: str = "nrrd"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"Unknown mode '{self.mode}'; use one of {', '.join(MODES)}.")
        if self.file_format not in FILE_FORMATS:
            raise ConfigError(f"Unknown image format '{self.file_format}'; use one of {', '.join(FILE_FORMATS)}.")
        if len(self.size) != 3 or any(int(n) < 1 for n in self.size):
            raise ConfigError(f"--size needs three positive voxel counts; got {tuple(self.size)}.")
        if len(self.spacing) != 3 or any(not float(s) > 0 for s in self.spacing):
            raise ConfigError(f"--spacing needs three positive values in mm; got {tuple(self.spacing)}.")
        if int(self.slice_size) < 1 or not self.slice_spacing > 0 or not self.slice_thickness > 0:
            raise ConfigError("--slice-size, --slice-spacing and --slice-thickness must be positive.")
        lo, hi = self.hu_range
        if not hi > lo:
            raise ConfigError(f"--hu-range needs LOW < HIGH; got {lo} {hi}.")
        if lo < -32768 or hi > 32767:
            raise ConfigError("--hu-range must fit the int16 range [-32768, 32767].")
        if not 0.0 < self.body_fraction <= 1.0:
            raise ConfigError(f"--body-fraction must lie in (0, 1]; got {self.body_fraction}.")

    @property
    def suffix(self) -> str:
        return FILE_FORMATS[self.file_format]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["size"] = [int(v) for v in self.size]
        d["spacing"] = [float(v) for v in self.spacing]
        d["hu_range"] = [float(v) for v in self.hu_range]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PrepareSettings":
        d = dict(d)
        for k in ("size", "spacing", "hu_range"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


# --------------------------------------------------------------------------- body


def body_box(image: sitk.Image, threshold: float = -500.0) -> Tuple[np.ndarray, np.ndarray]:
    """Physical (LPS, mm) bounding box ``(low, high)`` of the body: the largest connected
    component of voxels above ``threshold``. Raises InputError when there is none."""
    arr = sitk.GetArrayViewFromImage(image)
    stride = max(1, int(math.ceil((arr.size / _MASK_VOXELS) ** (1.0 / 3.0))))
    mask = np.asarray(arr[::stride, ::stride, ::stride]) > threshold
    labels, n = ndimage.label(mask)
    if n == 0:
        raise InputError(
            f"No body was found in the image (no voxel above {threshold:g} HU); give CT volumes in Hounsfield units."
        )
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == int(np.argmax(sizes))
    zyx = np.nonzero(mask)
    lo_idx = np.array([zyx[2].min(), zyx[1].min(), zyx[0].min()], dtype=float) * stride - 0.5 * stride
    hi_idx = np.array([zyx[2].max(), zyx[1].max(), zyx[0].max()], dtype=float) * stride + 0.5 * stride
    corners = []
    for bits in range(8):
        idx = [hi_idx[d] if (bits >> d) & 1 else lo_idx[d] for d in range(3)]
        corners.append(image.TransformContinuousIndexToPhysicalPoint([float(v) for v in idx]))
    corners = np.asarray(corners)
    return corners.min(axis=0), corners.max(axis=0)


# --------------------------------------------------------------------------- resampling


def _antialias(image: sitk.Image, target_spacing_lps: Sequence[float]) -> sitk.Image:
    """Gaussian along each input axis whose target (along its closest LPS axis) is coarser."""
    d = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    variances = []
    for j, s in enumerate(image.GetSpacing()):
        t = float(target_spacing_lps[int(np.argmax(np.abs(d[:, j])))])
        fwhm2 = t * t - float(s) * float(s)
        variances.append((math.sqrt(fwhm2) * _FWHM_TO_SIGMA) ** 2 if fwhm2 > 1e-6 * t * t else 0.0)
    if not any(variances):
        return image
    return sitk.DiscreteGaussian(image, variances, 64, 0.01, True)


def _fixed_grid_image(size, spacing, origin) -> sitk.Image:
    ref = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
    ref.SetSpacing([float(s) for s in spacing])
    ref.SetOrigin([float(o) for o in origin])
    ref.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return ref


def _finish(resampled: sitk.Image, settings: PrepareSettings, origin) -> sitk.Image:
    """Clip, round to int16, and put on the canonical header."""
    lo, hi = settings.hu_range
    arr = np.rint(np.clip(sitk.GetArrayViewFromImage(resampled), lo, hi)).astype(np.int16)
    out = sitk.GetImageFromArray(arr)
    out.SetSpacing(resampled.GetSpacing())
    out.SetOrigin([float(v) for v in origin])
    out.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return out


def _canonical_origin(size, spacing, normal: Optional[int] = None):
    """Centre of the grid at 0 (a slice's own axis at 0 too)."""
    return [0.0 if k == normal else -0.5 * (int(n) - 1) * float(s) for k, (n, s) in enumerate(zip(size, spacing))]


class SourcePreparer:
    """Prepares the images of one input volume: read and checked once, body box found once,
    anti-aliased once per output spacing (several slices of one volume share that work)."""

    def __init__(self, image: sitk.Image, settings: PrepareSettings, name: str = "image"):
        check_volume(image, name)
        self.settings = settings
        self.image = sitk.Cast(image, sitk.sitkFloat32)
        self.body_low, self.body_high = body_box(self.image, settings.body_threshold)
        self._smooth = {}

    @property
    def body_centre(self) -> np.ndarray:
        return 0.5 * (self.body_low + self.body_high)

    def _smoothed(self, spacing) -> sitk.Image:
        key = tuple(float(s) for s in spacing)
        if key not in self._smooth:
            self._smooth[key] = _antialias(self.image, key)
        return self._smooth[key]

    def _resample(self, size, spacing, centre) -> sitk.Image:
        origin = np.asarray(centre, dtype=float) - 0.5 * (np.asarray(size, dtype=float) - 1.0) * np.asarray(spacing, dtype=float)
        ref = _fixed_grid_image(size, spacing, origin)
        return sitk.Resample(self._smoothed(spacing), ref, sitk.Transform(), sitk.sitkLinear, AIR_HU, sitk.sitkFloat32)

    def volume(self) -> sitk.Image:
        """Volumes mode: the fixed ``size`` x ``spacing`` grid around the body centre."""
        size, spacing = self.settings.size, self.settings.spacing
        resampled = self._resample(size, spacing, self.body_centre)
        return _finish(resampled, self.settings, _canonical_origin(size, spacing))

    def slice(self, plane: str, fraction: float) -> Tuple[sitk.Image, float]:
        """Slices mode: one plane through the body (see the module docstring).

        Returns ``(slice_image, position_mm)``; ``position_mm`` is the LPS coordinate of the slice
        along its normal in the input's space (for the answer key; it is not in the file).
        """
        if not 0.0 <= float(fraction) <= 1.0:
            raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
        size, spacing = slice_grid(self.settings, plane)
        normal = NORMAL_AXIS[plane]
        position = slice_position_mm(
            self.body_low[normal], self.body_high[normal], fraction, self.settings.body_fraction
        )
        centre = self.body_centre.copy()
        centre[normal] = position
        resampled = self._resample(size, spacing, centre)
        return _finish(resampled, self.settings, _canonical_origin(size, spacing, normal)), position


def slice_grid(settings: PrepareSettings, plane: str):
    """(size, spacing) of a 1-slice volume of ``plane`` (x, y, z order)."""
    if plane not in PLANES:
        raise ConfigError(f"Unknown plane '{plane}'; use axial, coronal or sagittal.")
    normal = NORMAL_AXIS[plane]
    n, s = int(settings.slice_size), float(settings.slice_spacing)
    size = [1 if k == normal else n for k in range(3)]
    spacing = [float(settings.slice_thickness) if k == normal else s for k in range(3)]
    return size, spacing


def slice_position_mm(lo: float, hi: float, fraction: float, body_fraction: float) -> float:
    """Position along the normal: fraction ``u`` of the middle ``body_fraction`` of [lo, hi]."""
    length = float(hi) - float(lo)
    return float(lo) + length * ((1.0 - body_fraction) / 2.0 + body_fraction * float(fraction))

