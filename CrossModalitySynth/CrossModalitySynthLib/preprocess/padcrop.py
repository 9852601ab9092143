"""In-plane padding/cropping to a size the network accepts, and its exact inverse.

Only x and y change (the generator is 2D and runs on axial slices); z is kept. The change is
symmetric: of a total change t voxels along an axis, ``t // 2`` (rounded toward zero) goes
before index 0 and the rest after. Padding before index 0 by p voxels moves the origin by
``-p * spacing`` along that axis's direction column (cropping by c moves it by ``+c * spacing``),
so every kept voxel stays where it was in space. Padded voxels get a stated value (the pipeline
pads normalised images with -1, i.e. air/background, and labels with 0).

Two ways to choose the size: ``multiple`` pads x and y up to the next multiple (never crops),
e.g. 4 for a ResNet generator with two stride-2 layers, 16 for a 4-level U-Net;
``size_xy`` pads or centre-crops to a fixed size, e.g. (256, 256).
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from ..geometry import Grid, image_on_grid
from .grids import physical_point, require_grid


@dataclass(frozen=True)
class PadCrop:
    """Per index axis (x, y, z): voxels added before index 0 and after the last index
    (negative = cropped), from grid ``source`` to grid ``target``."""

    before: Tuple[int, int, int]
    after: Tuple[int, int, int]
    source: Grid
    target: Grid

    @property
    def is_identity(self) -> bool:
        return not any(self.before) and not any(self.after)

    @property
    def crops(self) -> bool:
        """True when some voxels of the source are cut away (then the inverse cannot restore them)."""
        return any(v < 0 for v in self.before + self.after)

    def apply_array(self, array_zyx: np.ndarray, value: float) -> np.ndarray:
        """Source-grid array ``[z, y, x, ...]`` -> target-grid array, new voxels set to ``value``."""
        return _shift(array_zyx, self.before, self.target.size, value)

    def invert_array(self, array_zyx: np.ndarray, value: float) -> np.ndarray:
        """Target-grid array -> source-grid array; voxels that were cropped come back as ``value``."""
        return _shift(array_zyx, tuple(-b for b in self.before), self.source.size, value)

    def apply(self, image: sitk.Image, value: float) -> sitk.Image:
        require_grid(image, self.source, "PadCrop.apply")
        if self.is_identity:
            return image
        return image_on_grid(self.apply_array(sitk.GetArrayFromImage(image), value), self.target)

    def invert(self, image: sitk.Image, value: float = 0.0) -> sitk.Image:
        require_grid(image, self.target, "PadCrop.invert")
        return image_on_grid(self.invert_array(sitk.GetArrayFromImage(image), value), self.source)


def _split(total: int) -> Tuple[int, int]:
    before = int(np.sign(total)) * (abs(total) // 2)
    return before, total - before


def plan_pad_crop(
    grid: Grid, multiple: Optional[int] = None, size_xy: Optional[Sequence[int]] = None
) -> PadCrop:
    """Plan the symmetric in-plane pad (``multiple``) or pad/crop (``size_xy``); give at most one.
    With neither, nothing changes."""
    if multiple is not None and size_xy is not None:
        raise ValueError("give either multiple or size_xy, not both")
    before, after = [0, 0, 0], [0, 0, 0]
    for k in range(2):
        n = int(grid.size[k])
        if multiple is not None:
            m = int(multiple)
            if m < 1:
                raise ValueError(f"multiple must be >= 1, got {m}")
            target = -(-n // m) * m
        elif size_xy is not None:
            target = int(size_xy[k])
            if target < 1:
                raise ValueError(f"size_xy must be positive, got {tuple(size_xy)}")
        else:
            target = n
        before[k], after[k] = _split(target - n)
    size = tuple(int(n + b + a) for n, b, a in zip(grid.size, before, after))
    origin = physical_point(grid, [-b for b in before])
    target_grid = Grid(size, tuple(float(v) for v in origin), tuple(grid.spacing), tuple(grid.direction))
    return PadCrop(tuple(before), tuple(after), grid, target_grid)


def pad_crop(image: sitk.Image, multiple: Optional[int] = None, size_xy=None, value: float = 0.0):
    """Pad/crop ``image`` in-plane; returns ``(result, plan)``; ``plan.invert(result, value)`` undoes it."""
    plan = plan_pad_crop(Grid.of(image), multiple, size_xy)
    return plan.apply(image, value), plan


def _shift(array_zyx: np.ndarray, before_xyz, size_xyz, value) -> np.ndarray:
    """out[i'] = in[i' - before] where that index exists, else ``value`` (index order x, y, z)."""
    out_shape = tuple(int(s) for s in reversed(tuple(size_xyz))) + array_zyx.shape[3:]
    out = np.full(out_shape, value, dtype=array_zyx.dtype)
    src, dst = [], []
    for axis_zyx in range(3):
        k = 2 - axis_zyx
        b = int(before_xyz[k])
        n_in, n_out = array_zyx.shape[axis_zyx], out_shape[axis_zyx]
        lo_out = max(0, b)
        hi_out = min(n_out, n_in + b)
        if hi_out <= lo_out:
            return out
        dst.append(slice(lo_out, hi_out))
        src.append(slice(lo_out - b, hi_out - b))
    out[tuple(dst)] = array_zyx[tuple(src)]
    return out
