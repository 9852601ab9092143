"""Grid geometry helpers for :class:`SimpleITK.Image` volumes.

A *grid* is size + origin + spacing + direction (ITK/LPS convention: physical point =
origin + direction @ (spacing * index)). Outputs must lie exactly on their input's grid; these
helpers compare and copy grids without ever touching voxel values, and wrap an array computed
on a grid as an image on that grid.
"""

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import SimpleITK as sitk


@dataclass(frozen=True)
class Grid:
    """The geometry of a volume, independent of its voxel values."""

    size: Tuple[int, ...]
    origin: Tuple[float, ...]
    spacing: Tuple[float, ...]
    direction: Tuple[float, ...]

    @classmethod
    def of(cls, image: sitk.Image) -> "Grid":
        return cls(
            tuple(int(s) for s in image.GetSize()),
            tuple(float(v) for v in image.GetOrigin()),
            tuple(float(v) for v in image.GetSpacing()),
            tuple(float(v) for v in image.GetDirection()),
        )

    @property
    def direction_matrix(self) -> np.ndarray:
        n = len(self.size)
        return np.asarray(self.direction, dtype=float).reshape(n, n)

    def index_to_physical_matrix(self) -> np.ndarray:
        """Homogeneous (n+1)x(n+1) matrix mapping continuous index -> physical LPS point."""
        n = len(self.size)
        m = np.eye(n + 1)
        m[:n, :n] = self.direction_matrix @ np.diag(self.spacing)
        m[:n, n] = self.origin
        return m

    def reference_image(self, pixel_type: int = sitk.sitkUInt8) -> sitk.Image:
        """An empty image on this grid (for resampling onto it)."""
        ref = sitk.Image([int(s) for s in self.size], pixel_type)
        ref.SetOrigin(self.origin)
        ref.SetSpacing(self.spacing)
        ref.SetDirection(self.direction)
        return ref

    def corners(self) -> np.ndarray:
        """Physical positions of the 2**n outer voxel corners (half a voxel outside centres)."""
        n = len(self.size)
        m = self.index_to_physical_matrix()
        pts = []
        for bits in range(2 ** n):
            idx = [(-0.5 if not (bits >> d) & 1 else self.size[d] - 0.5) for d in range(n)]
            pts.append((m @ np.array(idx + [1.0]))[:n])
        return np.array(pts)


def same_grid(a: sitk.Image, b: sitk.Image, tol: float = 1e-6) -> bool:
    """True when ``a`` and ``b`` have the same size and, within ``tol``, origin, spacing, direction."""
    ga, gb = Grid.of(a), Grid.of(b)
    if ga.size != gb.size:
        return False
    return (
        np.allclose(ga.origin, gb.origin, atol=tol, rtol=0)
        and np.allclose(ga.spacing, gb.spacing, atol=tol, rtol=0)
        and np.allclose(ga.direction, gb.direction, atol=tol, rtol=0)
    )


def grid_difference(a: sitk.Image, b: sitk.Image) -> dict:
    """Largest absolute differences between two grids (for messages and tests)."""
    ga, gb = Grid.of(a), Grid.of(b)
    return {
        "size": (ga.size, gb.size),
        "origin": float(np.max(np.abs(np.subtract(ga.origin, gb.origin)))) if ga.size and len(ga.origin) == len(gb.origin) else float("inf"),
        "spacing": float(np.max(np.abs(np.subtract(ga.spacing, gb.spacing)))) if len(ga.spacing) == len(gb.spacing) else float("inf"),
        "direction": float(np.max(np.abs(np.subtract(ga.direction, gb.direction)))) if len(ga.direction) == len(gb.direction) else float("inf"),
    }


def copy_grid(src: sitk.Image, dst: sitk.Image) -> sitk.Image:
    """Give ``dst`` (an array-only image of the same size) the grid of ``src``.

    Only for arrays computed voxel-for-voxel *on* ``src``'s grid (e.g. a threshold of it); never
    use it to re-attach geometry after a resampling.
    """
    if tuple(src.GetSize()) != tuple(dst.GetSize()):
        raise ValueError(f"copy_grid: size {dst.GetSize()} differs from {src.GetSize()}")
    dst.CopyInformation(src)
    return dst


def image_on_grid(array_zyx: np.ndarray, grid: Grid) -> sitk.Image:
    """A scalar image holding ``array_zyx`` (shape = reversed ``grid.size``) on ``grid``.

    Only for arrays whose voxels *are* that grid's voxels (a model output on the model grid, an
    exact permutation); never to re-attach geometry after a resampling.
    """
    array_zyx = np.asarray(array_zyx)
    expected = tuple(reversed(grid.size))
    if array_zyx.shape[:3] != expected:
        raise ValueError(f"array of shape {array_zyx.shape} does not match grid size (z, y, x) = {expected}")
    img = sitk.GetImageFromArray(array_zyx, isVector=array_zyx.ndim == 4)
    img.SetOrigin(grid.origin)
    img.SetSpacing(grid.spacing)
    img.SetDirection(grid.direction)
    return img
