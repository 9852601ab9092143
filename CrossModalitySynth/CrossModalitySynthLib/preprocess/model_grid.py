"""The composed preprocessing shared by training and inference, and its exact way back.

Forward, :func:`prepare` (one function per step, each in its own module)::

    check (3D, scalar, finite, not constant; channels overlap, onto channel 0's grid)
    -> reorient to the spec's orientation (exact axis permutation/flip)
    -> resample to the spec's spacing (only when some axis differs; keeps direction and FOV centre)
    -> normalise each channel to [-1, 1] (MRI: body percentiles; CT: HU window)
    -> pad/crop in-plane (x, y) symmetrically to a multiple or a fixed size, pad value -1
    -> array (C, Z, Y, X) float32 on the *model grid*

Back, :meth:`Prepared.restore`: the model output (Z, Y, X) on the model grid is de-normalised
(CT -> HU through the window, MRI -> the stored scale), un-padded exactly, and then, when
resampling was needed, resampled onto the input's grid (one interpolation, in physical
coordinates, which also undoes the reorientation); otherwise un-oriented exactly (no
interpolation). Either way the result has exactly the input's size,
origin, spacing and direction.
"""

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import SimpleITK as sitk

from ..errors import ConfigError, InputError
from ..geometry import Grid, image_on_grid
from .checks import check_channels, check_distinct_channels, overlap_fraction, MIN_OVERLAP_FRACTION
from .grids import grids_close
from .intensity import DEFAULT_CT_WINDOW, DEFAULT_MRI_PERCENTILES, IntensityScale, ct_scale, mr_scale
from .modality import normalise_modality, warn_if_modality_mismatch
from .orientation import CANONICAL_ORIENTATION, OrientationChange, parse_orientation, plan_orientation
from .padcrop import PadCrop, plan_pad_crop
from .resample import IMAGE_INTERPOLATORS, LABEL_INTERPOLATORS, needs_resampling, resample_to_grid, resampled_grid

SPEC_VERSION = 1

#: Normalised value given to padded voxels: the bottom of the range, i.e. air/background.
PAD_VALUE = -1.0


@dataclass(frozen=True)
class ModelGridSpec:
    """How a model wants its input: the part of a model bundle's spec about grid and intensities.

    Attributes:
        orientation: canonical orientation code (index increases toward these letters), "LPS".
        spacing: target spacing in mm along the *reoriented* axes (x, y, z); None keeps an axis.
        inplane_multiple: pad x and y up to a multiple of this (4 for a ResNet generator with two
            stride-2 layers, 16 for a 4-level U-Net); None for no constraint.
        inplane_size: pad/centre-crop x and y to this fixed (x, y) size instead (e.g. (256, 256)).
        mri_percentiles: MRI clip percentiles (low, high) over the body.
        ct_window: CT window (low, high) in HU mapped to [-1, 1].
        image_interpolator: "linear" or "bspline" (forward and back for images).
        label_interpolator: "nearest", "label_gaussian" or "label_linear".
        mr_output_range: MRI scale of a synthetic MRI made from a CT (no MRI scale was measured).
    """

    orientation: str = CANONICAL_ORIENTATION
    spacing: Tuple[Optional[float], Optional[float], Optional[float]] = (None, None, None)
    inplane_multiple: Optional[int] = 4
    inplane_size: Optional[Tuple[int, int]] = None
    mri_percentiles: Tuple[float, float] = DEFAULT_MRI_PERCENTILES
    ct_window: Tuple[float, float] = DEFAULT_CT_WINDOW
    image_interpolator: str = "linear"
    label_interpolator: str = "nearest"
    mr_output_range: Tuple[float, float] = (0.0, 1000.0)

    def __post_init__(self):
        try:
            self._normalise_types()
        except (TypeError, ValueError):
            raise ConfigError("Model spec: a grid spec value has the wrong type; see ModelGridSpec for the expected fields.") from None
        try:
            parse_orientation(self.orientation)
        except ValueError as exc:
            raise ConfigError(f"Model spec: {exc}.") from None
        sp = tuple(self.spacing)
        if len(sp) != 3 or any(s is not None and not (np.isfinite(float(s)) and float(s) > 0) for s in sp):
            raise ConfigError(f"Model spec: spacing must be 3 positive numbers or null (x, y, z), got {list(sp)}.")
        if self.inplane_multiple is not None and self.inplane_size is not None:
            raise ConfigError("Model spec: give inplane_multiple or inplane_size, not both; set the other to null.")
        if self.inplane_multiple is not None and int(self.inplane_multiple) < 1:
            raise ConfigError(f"Model spec: inplane_multiple must be >= 1, got {self.inplane_multiple}.")
        if self.inplane_size is not None and (len(tuple(self.inplane_size)) != 2 or min(self.inplane_size) < 1):
            raise ConfigError(f"Model spec: inplane_size must be two positive integers (x, y), got {self.inplane_size}.")
        lo, hi = self.mri_percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise ConfigError(f"Model spec: mri_percentiles must satisfy 0 <= low < high <= 100, got {list(self.mri_percentiles)}.")
        for key in ("ct_window", "mr_output_range"):
            lo, hi = getattr(self, key)
            if not float(lo) < float(hi):
                raise ConfigError(f"Model spec: {key} must satisfy low < high, got {list(getattr(self, key))}.")
        if self.image_interpolator not in IMAGE_INTERPOLATORS:
            raise ConfigError(
                f"Model spec: image_interpolator {self.image_interpolator!r} is unknown; use {' or '.join(IMAGE_INTERPOLATORS)}."
            )
        if self.label_interpolator not in LABEL_INTERPOLATORS:
            raise ConfigError(
                f"Model spec: label_interpolator {self.label_interpolator!r} is unknown; use one of {', '.join(LABEL_INTERPOLATORS)}."
            )

    def _normalise_types(self) -> None:
        """Lists -> tuples, numbers -> float/int, so equal specs compare equal (frozen: via object.__setattr__)."""
        def put(name, value):
            object.__setattr__(self, name, value)

        put("orientation", str(self.orientation).upper())
        put("spacing", tuple(None if s is None else float(s) for s in self.spacing))
        if self.inplane_multiple is not None:
            if isinstance(self.inplane_multiple, bool) or int(self.inplane_multiple) != self.inplane_multiple:
                raise TypeError("inplane_multiple")
            put("inplane_multiple", int(self.inplane_multiple))
        if self.inplane_size is not None:
            put("inplane_size", tuple(int(v) for v in self.inplane_size))
        for key in ("mri_percentiles", "ct_window", "mr_output_range"):
            value = tuple(float(v) for v in getattr(self, key))
            if len(value) != 2:
                raise ValueError(key)
            put(key, value)

    def to_dict(self) -> dict:
        """JSON-ready dict (lists, floats, nulls) for a model bundle's spec."""
        return {
            "version": SPEC_VERSION,
            "orientation": self.orientation.upper(),
            "spacing": [None if s is None else float(s) for s in self.spacing],
            "inplane_multiple": None if self.inplane_multiple is None else int(self.inplane_multiple),
            "inplane_size": None if self.inplane_size is None else [int(v) for v in self.inplane_size],
            "mri_percentiles": [float(v) for v in self.mri_percentiles],
            "ct_window": [float(v) for v in self.ct_window],
            "image_interpolator": self.image_interpolator,
            "label_interpolator": self.label_interpolator,
            "mr_output_range": [float(v) for v in self.mr_output_range],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ModelGridSpec":
        """Inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys are an error.
        Giving ``inplane_size`` without ``inplane_multiple`` switches the multiple off."""
        if not isinstance(d, dict):
            raise ConfigError("Model spec: the grid spec must be a JSON object.")
        d = dict(d)
        version = d.pop("version", SPEC_VERSION)
        if not isinstance(version, int) or version > SPEC_VERSION:
            raise ConfigError(f"Model spec: grid spec version {version} is newer than this software ({SPEC_VERSION}); update CrossModalitySynth.")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"Model spec: unknown grid spec keys {unknown}; check the bundle's spec.json.")
        if d.get("inplane_size") is not None and "inplane_multiple" not in d:
            d["inplane_multiple"] = None
        kw = {}
        try:
            for key, value in d.items():
                if key == "spacing":
                    value = tuple(None if s is None else float(s) for s in value)
                elif key in ("mri_percentiles", "ct_window", "mr_output_range"):
                    value = tuple(float(v) for v in value)
                elif key == "inplane_size":
                    value = None if value is None else tuple(int(v) for v in value)
                elif key == "inplane_multiple":
                    value = None if value is None else int(value)
                else:
                    value = str(value)
                kw[key] = value
        except (TypeError, ValueError):
            raise ConfigError(f"Model spec: grid spec value for {key!r} has the wrong type ({value!r}).") from None
        return cls(**kw)


def _label_pixel_type(array: np.ndarray) -> np.dtype:
    lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if lo >= 0 and hi < 256:
        return np.dtype(np.uint8)
    if lo >= 0 and hi < 65536:
        return np.dtype(np.uint16)
    return np.dtype(np.int32)


def _as_label_array(array: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise InputError(f"{what} is not a label map: it holds non-integer values; give integer label ids.")
    elif a.dtype.kind not in "iub":
        raise InputError(f"{what} is not a label map ({a.dtype}); give integer label ids.")
    return a.astype(_label_pixel_type(a))


@dataclass
class Prepared:
    """The network input on the model grid plus everything needed to go back.

    Attributes:
        array: (C, Z, Y, X) float32 in [-1, 1] (padding = -1), C = number of channels.
        input_grid: the input's grid (channel 0); :meth:`restore` returns images on it.
        orientation: the exact reorientation from ``input_grid``.
        resampled: whether a resampling to the spec's spacing was needed.
        resampled_grid: the oriented (and resampled) grid before padding.
        padcrop: the in-plane pad/crop from ``resampled_grid`` to the model grid.
        scales: per channel, the intensity scale used (store it; it inverts the normalisation).
        warnings: modality-check warnings (a CT given as MRI ...), for the user.
    """

    array: np.ndarray
    spec: ModelGridSpec
    modality: str
    input_grid: Grid
    orientation: OrientationChange
    resampled: bool
    resampled_grid: Grid
    padcrop: PadCrop
    scales: Tuple[IntensityScale, ...]
    warnings: Tuple[str, ...] = field(default_factory=tuple)

    @property
    def model_grid(self) -> Grid:
        """The grid the network sees: size (x, y, z) = (X, Y, Z) of ``array``."""
        return self.padcrop.target

    def output_scale(self, output: str, channel: int = 0) -> IntensityScale:
        """The scale that maps a network output in [-1, 1] to ``output`` units."""
        if output == "CT":
            return ct_scale(self.spec.ct_window)
        if output == "MR":
            if self.modality == "MR":
                return self.scales[channel]
            lo, hi = self.spec.mr_output_range
            return IntensityScale(float(lo), float(hi), "mr_output_range")
        raise ValueError(f"output must be 'CT' or 'MR', got {output!r}")

    def restore(
        self,
        array_zyx: np.ndarray,
        kind: str = "image",
        output: str = "CT",
        channel: int = 0,
        interpolator: Optional[str] = None,
    ) -> sitk.Image:
        """Bring a network output on the model grid back onto the input's exact grid.

        Args:
            array_zyx: (Z, Y, X) (or (1, Z, Y, X)) on :attr:`model_grid`: for ``kind="image"``
                values in [-1, 1]; for ``kind="label"`` integer label ids; for
                ``kind="probability"`` one class's probabilities in [0, 1].
            kind: "image" (de-normalised, Float32 result), "label" (integer result) or
                "probability" (Float32 result, linear interpolation unless ``interpolator`` says
                otherwise; the label is taken afterwards on the input grid, see
                :func:`..inference.slice_runner.restore_label`).
            output: for images, "CT" (-> HU through the spec's window) or "MR" (-> the stored scale
                of ``channel`` when the input was MRI, else the spec's ``mr_output_range``).
            interpolator: overrides the spec's image/label interpolator for the way back.

        Returns:
            a SimpleITK image with exactly the input's size, origin, spacing and direction. Voxels
            outside the model grid's field of view (only when cropping) get air (window/scale
            low) for images and 0 for labels and probabilities.
        """
        a = np.asarray(array_zyx)
        if a.ndim == 4 and a.shape[0] == 1:
            a = a[0]
        expected = tuple(reversed(self.model_grid.size))
        if a.shape != expected:
            raise ValueError(f"restore: array of shape {a.shape} is not on the model grid (Z, Y, X) = {expected}")
        if kind == "image":
            scale = self.output_scale(output, channel)
            values = scale.inverse(a)
            default = scale.low
            interp = interpolator or self.spec.image_interpolator
            pixel = sitk.sitkFloat32
        elif kind == "label":
            values = _as_label_array(a, "The label output")
            default = 0
            interp = interpolator or self.spec.label_interpolator
            pixel = None
        elif kind == "probability":
            values = a.astype(np.float32, copy=False)
            default = 0.0
            interp = interpolator or "linear"
            pixel = sitk.sitkFloat32
        else:
            raise ValueError(f"kind must be 'image', 'label' or 'probability', got {kind!r}")
        on_model = image_on_grid(values, self.model_grid)  # the network computed these voxels
        # drop the padding first (exact), so padded voxels never blend into the result
        unpadded = self.padcrop.invert(on_model, default)
        if self.resampled:
            return resample_to_grid(unpadded, self.input_grid, interp, default, pixel)
        return self.orientation.invert(unpadded)

    def describe(self) -> dict:
        """JSON-ready summary (spec, grids, the intensity scales used) for logs and bundles."""
        def g(grid: Grid) -> dict:
            return {"size": list(grid.size), "origin": list(grid.origin), "spacing": list(grid.spacing), "direction": list(grid.direction)}

        return {
            "spec": self.spec.to_dict(),
            "modality": self.modality,
            "input_grid": g(self.input_grid),
            "model_grid": g(self.model_grid),
            "resampled": self.resampled,
            "orientation_permutation": list(self.orientation.permutation),
            "orientation_flips": list(self.orientation.flips),
            "pad_before": list(self.padcrop.before),
            "pad_after": list(self.padcrop.after),
            "scales": [s.to_dict() for s in self.scales],
            "warnings": list(self.warnings),
        }


def prepare(
    images: Union[sitk.Image, Sequence[sitk.Image]],
    spec: Optional[ModelGridSpec] = None,
    modality: str = "MR",
    names: Optional[Sequence[str]] = None,
) -> Prepared:
    """Turn 1-3 input volumes into the network's input array on the model grid.

    Args:
        images: one volume or a list (MRI channels in the model's order); later channels on
            another grid are resampled onto channel 0's grid.
        spec: the model's grid spec (default :class:`ModelGridSpec()`).
        modality: "MR" (per-channel body-percentile scaling) or "CT" (HU window).
        names: channel names for error messages.

    Returns:
        :class:`Prepared` with ``array`` (C, Z, Y, X) float32 in [-1, 1].

    Raises:
        InputError: a bad volume, or channels that do not overlap.
    """
    spec = spec or ModelGridSpec()
    modality = normalise_modality(modality)
    if isinstance(images, sitk.Image):
        images = [images]
    images = list(images)
    if names is None and modality == "CT" and len(images) == 1:
        names = ["CT volume"]
    channels = check_channels(images, names)
    warnings = check_distinct_channels(channels, names or [f"channel {i + 1}" for i in range(len(channels))])
    for i, img in enumerate(channels):
        msg = warn_if_modality_mismatch(img, modality)
        if msg and msg not in warnings:
            warnings.append(msg)
    input_grid = Grid.of(channels[0])
    orientation = plan_orientation(input_grid, spec.orientation)
    resampled = needs_resampling(orientation.target, spec.spacing)
    grid = resampled_grid(orientation.target, spec.spacing) if resampled else orientation.target
    padcrop = plan_pad_crop(grid, spec.inplane_multiple, spec.inplane_size)

    arrays: List[np.ndarray] = []
    scales: List[IntensityScale] = []
    for i, img in enumerate(channels):
        if resampled:
            outside = float(spec.ct_window[0]) if modality == "CT" else 0.0
            # one interpolation, straight from the input grid onto the oriented, resampled grid
            arr = sitk.GetArrayFromImage(resample_to_grid(img, grid, spec.image_interpolator, outside, sitk.sitkFloat32))
        else:
            arr = orientation.apply_array(sitk.GetArrayFromImage(img))
        if modality == "CT":
            scale = ct_scale(spec.ct_window)
        else:
            scale = mr_scale(arr, spec.mri_percentiles, name=(names[i] if names else f"MRI channel {i + 1}"))
        arrays.append(padcrop.apply_array(scale.forward(arr), PAD_VALUE))
        scales.append(scale)
    return Prepared(
        array=np.stack(arrays).astype(np.float32, copy=False),
        spec=spec,
        modality=modality,
        input_grid=input_grid,
        orientation=orientation,
        resampled=resampled,
        resampled_grid=grid,
        padcrop=padcrop,
        scales=tuple(scales),
        warnings=tuple(warnings),
    )


def prepare_label(label_image: sitk.Image, prepared: Prepared, interpolator: Optional[str] = None) -> np.ndarray:
    """Put a label map on the model grid of ``prepared`` (for training).

    A label on the input's grid follows the images exactly (reorientation, then the same
    resampling with a label interpolator); a label on another grid is resampled straight onto
    the model grid. Padding is 0 (background).

    Returns:
        (Z, Y, X) integer array (uint8/uint16/int32) on ``prepared.model_grid``.
    """
    if not isinstance(label_image, sitk.Image) or label_image.GetDimension() != 3:
        raise InputError("The label map must be a 3D image; give a 3D label volume.")
    if label_image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("The label map is a vector image; give one label id per voxel.")
    arr = _as_label_array(sitk.GetArrayFromImage(label_image), "The label map")
    label = sitk.GetImageFromArray(arr)
    label.CopyInformation(label_image)  # same voxels, integer type
    interp = interpolator or prepared.spec.label_interpolator
    on_input = grids_close(Grid.of(label_image), prepared.input_grid)
    if not on_input and overlap_fraction(label_image, prepared.input_grid) <= MIN_OVERLAP_FRACTION:
        raise InputError("The label map and the image do not overlap in space; check you picked the label of this scan.")
    if on_input and not prepared.resampled:
        out = prepared.orientation.apply_array(arr)
    else:
        out = sitk.GetArrayFromImage(resample_to_grid(label, prepared.resampled_grid, interp, 0))
    return prepared.padcrop.apply_array(out, 0)
