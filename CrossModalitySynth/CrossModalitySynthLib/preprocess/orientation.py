"""Reorientation to a canonical axis order, by an exact permutation/flip of the voxel axes.

Convention (the same as SimpleITK's ``DICOMOrient``): a 3-letter code names, for index axes
x, y, z in turn, the patient direction toward which the index *increases* (L/R, P/A, S/I).
The canonical orientation is **LPS** (ITK's own physical frame): after reorientation, x runs to
the patient's left, y to posterior, z to superior, so an array ``[z, y, x]`` holds axial slices
as a radiologist views them (anterior at the top, patient right on the image left).

Nothing is interpolated: the voxels are permuted and flipped, and origin/spacing/direction are
updated so every voxel keeps its physical position. For an oblique scan the closest orientation
is chosen (the axis permutation maximising the sum of |cosines| with the canonical axes); the
direction stays oblique. :meth:`OrientationChange.invert` is the exact inverse: values come back
bit for bit and the grid is the original one.
"""

import itertools
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import SimpleITK as sitk

from ..geometry import Grid, image_on_grid
from .grids import physical_point, require_grid

CANONICAL_ORIENTATION = "LPS"

# letter -> (physical LPS axis, sign)
_LETTERS = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}
_AXIS_LETTERS = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "S", (2, -1): "I"}


def parse_orientation(code: str) -> Tuple[Tuple[int, int], ...]:
    """``"LPS"`` -> ((0, 1), (1, 1), (2, 1)): per index axis, the physical axis and sign."""
    code = str(code).upper()
    if len(code) != 3 or any(c not in _LETTERS for c in code):
        raise ValueError(f"orientation code {code!r}: use three letters from L/R, P/A, S/I, e.g. 'LPS'")
    axes = [_LETTERS[c] for c in code]
    if sorted(a for a, _ in axes) != [0, 1, 2]:
        raise ValueError(f"orientation code {code!r} names a patient axis twice")
    return tuple(axes)


def _closest_permutation(direction: np.ndarray, axes) -> Tuple[int, ...]:
    """Index axis p[k] of ``direction`` best aligned with the physical axis of target axis k."""
    best, best_score = None, -1.0
    for perm in itertools.permutations(range(3)):
        score = sum(abs(direction[axes[k][0], perm[k]]) for k in range(3))
        if score > best_score + 1e-12:
            best, best_score = perm, score
    return tuple(best)


def orientation_code(direction) -> str:
    """The closest orientation code of a direction matrix (9 numbers or 3x3), e.g. ``"LPS"``."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    perm = _closest_permutation(d, parse_orientation("LPS"))  # perm[physical axis] = index axis
    letters = [""] * 3
    for phys, idx in enumerate(perm):
        sign = 1 if d[phys, idx] >= 0 else -1
        letters[idx] = _AXIS_LETTERS[(phys, sign)]
    return "".join(letters)


@dataclass(frozen=True)
class OrientationChange:
    """An exact axis permutation + flips from grid ``source`` to grid ``target``.

    ``permutation[k]`` is the source index axis that becomes target axis k (x, y, z order);
    ``flips[k]`` tells whether that axis is reversed.
    """

    permutation: Tuple[int, int, int]
    flips: Tuple[bool, bool, bool]
    source: Grid
    target: Grid

    @property
    def is_identity(self) -> bool:
        return self.permutation == (0, 1, 2) and not any(self.flips)

    def apply_array(self, array_zyx: np.ndarray) -> np.ndarray:
        """Source-grid array ``[z, y, x(, c)]`` -> target-grid array (a contiguous copy)."""
        vec = array_zyx.ndim == 4
        xyz = np.transpose(array_zyx, (2, 1, 0, 3) if vec else (2, 1, 0))
        out = np.transpose(xyz, tuple(self.permutation) + ((3,) if vec else ()))
        for k, f in enumerate(self.flips):
            if f:
                out = np.flip(out, axis=k)
        return np.ascontiguousarray(np.transpose(out, (2, 1, 0, 3) if vec else (2, 1, 0)))

    def invert_array(self, array_zyx: np.ndarray) -> np.ndarray:
        """Target-grid array -> source-grid array (exact inverse of :meth:`apply_array`)."""
        vec = array_zyx.ndim == 4
        xyz = np.transpose(array_zyx, (2, 1, 0, 3) if vec else (2, 1, 0))
        for k, f in enumerate(self.flips):
            if f:
                xyz = np.flip(xyz, axis=k)
        inv = [0, 0, 0]
        for k, p in enumerate(self.permutation):
            inv[p] = k
        out = np.transpose(xyz, tuple(inv) + ((3,) if vec else ()))
        return np.ascontiguousarray(np.transpose(out, (2, 1, 0, 3) if vec else (2, 1, 0)))

    def apply(self, image: sitk.Image) -> sitk.Image:
        """Reorient an image on ``source`` onto ``target`` (no interpolation)."""
        require_grid(image, self.source, "OrientationChange.apply")
        if self.is_identity:
            return image
        return image_on_grid(self.apply_array(sitk.GetArrayFromImage(image)), self.target)

    def invert(self, image: sitk.Image) -> sitk.Image:
        """Bring an image on ``target`` back onto ``source`` exactly (values and grid)."""
        require_grid(image, self.target, "OrientationChange.invert")
        if self.is_identity:
            # same voxels; give it the source grid's exact numbers
            return image_on_grid(sitk.GetArrayFromImage(image), self.source)
        return image_on_grid(self.invert_array(sitk.GetArrayFromImage(image)), self.source)


def plan_orientation(grid: Grid, code: str = CANONICAL_ORIENTATION) -> OrientationChange:
    """The exact permutation/flip that brings ``grid`` to the orientation closest to ``code``."""
    if len(grid.size) != 3:
        raise ValueError("plan_orientation: a 3D grid is needed")
    axes = parse_orientation(code)
    d = grid.direction_matrix
    perm = _closest_permutation(d, axes)
    flips = []
    new_cols = np.zeros((3, 3))
    corner = [0.0, 0.0, 0.0]  # source index that becomes target index (0, 0, 0)
    for k in range(3):
        phys, sign = axes[k]
        j = perm[k]
        flip = sign * d[phys, j] < 0
        flips.append(bool(flip))
        new_cols[:, k] = -d[:, j] if flip else d[:, j]
        corner[j] = grid.size[j] - 1 if flip else 0
    target = Grid(
        size=tuple(int(grid.size[p]) for p in perm),
        origin=tuple(float(v) for v in physical_point(grid, corner)),
        spacing=tuple(float(grid.spacing[p]) for p in perm),
        direction=tuple(float(v) for v in new_cols.ravel()),
    )
    return OrientationChange(tuple(int(p) for p in perm), tuple(flips), grid, target)


def reorient(image: sitk.Image, code: str = CANONICAL_ORIENTATION):
    """Reorient ``image`` to ``code`` exactly. Returns ``(reoriented_image, change)``;
    ``change.invert(result)`` gives the original back."""
    change = plan_orientation(Grid.of(image), code)
    return change.apply(image), change
