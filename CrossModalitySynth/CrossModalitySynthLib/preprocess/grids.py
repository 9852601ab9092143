"""Small grid helpers shared by the preprocessing steps.

An array is wrapped as an image only on the grid it was computed on
(:func:`~CrossModalitySynthLib.geometry.image_on_grid`); a grid is compared with a tolerance before
an exact inverse step relies on it (``require_grid``).
"""

from typing import Tuple

import numpy as np
import SimpleITK as sitk

from ..geometry import Grid

#: Absolute tolerance (mm, and unitless for direction cosines) used to decide that two grids agree.
GRID_TOL = 1e-6


def grids_close(a: Grid, b: Grid, tol: float = GRID_TOL) -> bool:
    """True when both grids have the same size and origin/spacing/direction agree within ``tol``."""
    return (
        tuple(a.size) == tuple(b.size)
        and np.allclose(a.origin, b.origin, atol=tol, rtol=0)
        and np.allclose(a.spacing, b.spacing, atol=tol, rtol=0)
        and np.allclose(a.direction, b.direction, atol=tol, rtol=0)
    )


def require_grid(image: sitk.Image, grid: Grid, what: str) -> None:
    """Raise ValueError when ``image`` is not on ``grid`` (programming error, not user input)."""
    if not grids_close(Grid.of(image), grid):
        raise ValueError(f"{what}: the image is not on the expected grid ({Grid.of(image)} != {grid})")


def physical_point(grid: Grid, index_xyz) -> np.ndarray:
    """Physical (LPS, mm) position of a continuous index (x, y, z) on ``grid``."""
    d = grid.direction_matrix
    return np.asarray(grid.origin, float) + d @ (np.asarray(grid.spacing, float) * np.asarray(index_xyz, float))


def as_tuple3(values) -> Tuple:
    values = tuple(values)
    if len(values) != 3:
        raise ValueError(f"expected 3 values (x, y, z), got {values}")
    return values
