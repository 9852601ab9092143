"""Slice ordering along the normal and geometry validation of a stack of slices."""

import os
import warnings
from typing import List, Tuple

import numpy as np

from ...errors import InputError
from .types import (
    _DUPLICATE_TOL_MM,
    _INPLANE_REL,
    _ORIENTATION_TOL,
    _ORTHOGONALITY_TOL,
    _SPACING_TOL_MM,
    _UNIFORM_ABS_MM,
    _UNIFORM_REL,
    DicomWarning,
    _Slice,
)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _geometry(slices: List[_Slice], what: str) -> Tuple[List[_Slice], np.ndarray, Tuple[float, float, float], np.ndarray]:
    """Sort slices by position and check consistency; returns (sorted, origin, spacing, direction 3x3)."""
    first = slices[0]
    sizes = {(s.rows, s.columns) for s in slices}
    if len(sizes) > 1:
        raise InputError(
            f"{what} mixes slices of different sizes ({', '.join(f'{c}x{r}' for r, c in sorted(sizes))}); "
            "it is not one volume: select a single series (--series) or separate the files."
        )
    missing_geo = [s for s in slices if s.position is None or s.orientation is None]
    if missing_geo:
        if len(slices) > 1:
            raise InputError(
                f"{what}: {os.path.basename(missing_geo[0].path)} has no ImagePositionPatient/"
                "ImageOrientationPatient, so its slices cannot be stacked in space; export the original series."
            )
        warnings.warn(
            f"{first.path} has no position/orientation; using origin 0 and identity direction.", DicomWarning
        )
    ori = first.orientation if first.orientation is not None else np.array([1.0, 0, 0, 0, 1.0, 0])
    for s in slices[1:]:
        if np.max(np.abs(s.orientation - ori)) > _ORIENTATION_TOL:
            raise InputError(
                f"{what} mixes slice orientations ({os.path.basename(first.path)} and {os.path.basename(s.path)} "
                "differ); it is not one volume: select a single series (--series) or separate the files."
            )
    row = _unit(np.asarray(ori[:3], dtype=float))
    col = _unit(np.asarray(ori[3:], dtype=float))
    if abs(float(np.dot(row, col))) > _ORTHOGONALITY_TOL or np.linalg.norm(row) == 0 or np.linalg.norm(col) == 0:
        raise InputError(f"{what}: ImageOrientationPatient {list(ori)} is not two orthogonal unit vectors; the file is corrupt.")
    col = _unit(col - np.dot(col, row) * row)
    normal = np.cross(row, col)
    spacings = {s.pixel_spacing for s in slices}
    ps = first.pixel_spacing
    if spacings == {None}:
        warnings.warn(f"{what} has no PixelSpacing; assuming 1 mm pixels.", DicomWarning)
        ps = (1.0, 1.0)
        spacings = {ps}
    for other in spacings:
        if other is None or ps is None or max(abs(other[0] - ps[0]), abs(other[1] - ps[1])) > _SPACING_TOL_MM:
            raise InputError(
                f"{what} mixes pixel spacings ({sorted(str(v) for v in spacings)}); it is not one volume: "
                "select a single series (--series)."
            )
    direction = np.column_stack([row, col, normal])
    if len(slices) == 1:
        origin = first.position if first.position is not None else np.zeros(3)
        dz = first.thickness if first.thickness and first.thickness > 0 else 1.0
        return slices, np.asarray(origin, dtype=float), (ps[1], ps[0], float(dz)), direction

    dist = np.array([float(np.dot(s.position, normal)) for s in slices])
    order = np.argsort(dist, kind="stable")
    slices = [slices[i] for i in order]
    dist = dist[order]
    gaps = np.diff(dist)
    dup = np.nonzero(gaps < _DUPLICATE_TOL_MM)[0]
    if dup.size:
        a, b = slices[dup[0]], slices[dup[0] + 1]
        raise InputError(
            f"{what} has {dup.size} slice(s) at a position already taken by another "
            f"(e.g. {os.path.basename(a.path)} and {os.path.basename(b.path)} at {dist[dup[0]]:.3f} mm along the "
            "normal): it mixes several acquisitions (time points, echoes, repeats); select one series (--series) "
            "or separate the files."
        )
    n = len(slices)
    dz = (dist[-1] - dist[0]) / (n - 1)
    deviation = np.abs(dist - (dist[0] + dz * np.arange(n)))
    tol = max(_UNIFORM_ABS_MM, _UNIFORM_REL * dz)
    if deviation.max() > tol:
        raise InputError(
            f"{what} has non-uniform slice gaps ({gaps.min():.3f} to {gaps.max():.3f} mm; a slice is missing or "
            "the spacing varies), so it cannot be read onto a regular grid without misplacing slices; "
            "export the complete series with constant spacing."
        )
    p0 = slices[0].position
    inplane = np.array([np.linalg.norm((s.position - p0) - np.dot(s.position - p0, normal) * normal) for s in slices])
    tol_inplane = max(_UNIFORM_ABS_MM, _INPLANE_REL * min(ps))
    if inplane.max() > tol_inplane:
        raise InputError(
            f"{what}: slice positions shift sideways by up to {inplane.max():.3f} mm (gantry tilt or a mixed "
            "series), so the slices do not stack into a box; resample the series (e.g. in 3D Slicer) first."
        )
    return slices, np.asarray(p0, dtype=float), (ps[1], ps[0], float(dz)), direction
