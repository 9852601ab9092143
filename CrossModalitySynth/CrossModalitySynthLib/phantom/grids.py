"""The CT and MR grids of a phantom case.

Sizes are (x, y, z) voxels, spacings millimetres, ITK/LPS convention (physical point =
origin + direction @ (spacing * index)); with the identity direction the index axes run to the
patient's left, posterior and superior. Both grids are centred near the trunk axis at about the
level of the renal hila and the liver dome is inside both.

- ``small`` (fast tests): MR 64 x 64 x 28 at 6 x 6 x 8.5 mm, CT 96 x 96 x 48 at 4 x 4 x 5 mm
  (different grids on purpose, so code that needs the MR grid cannot silently use the CT one).
- ``chaos`` (like the CHAOS challenge): MR 256 x 256, 1.40-1.60 mm in-plane, 6-8 mm slices,
  30-40 slices; CT 512 x 512, 0.70-0.80 mm in-plane, 3 mm slices, 80-100 slices. Spacings and
  slice counts are drawn per case.

``oblique`` rotates each grid by 5-10 degrees about a random axis through its centre (MR and
CT independently, as two scans are), which changes neither the anatomy nor the spacing.
"""

from typing import Optional, Tuple

import numpy as np

from ..errors import ConfigError
from ..geometry import Grid

SIZES = ("small", "chaos")


def _grid(size, spacing, center, rot: Optional[np.ndarray]) -> Grid:
    size = np.asarray(size, dtype=int)
    spacing = np.asarray(spacing, dtype=float)
    r = np.eye(3) if rot is None else np.asarray(rot, dtype=float)
    half = r @ (spacing * (size - 1) / 2.0)
    origin = np.asarray(center, dtype=float) - half
    return Grid(
        tuple(int(v) for v in size),
        tuple(round(float(v), 6) for v in origin),
        tuple(round(float(v), 6) for v in spacing),
        tuple(float(v) for v in r.ravel()),
    )


def random_rotation(rng: np.random.Generator, min_deg: float = 5.0, max_deg: float = 10.0) -> np.ndarray:
    """A rotation by a random angle in [min_deg, max_deg] about a random axis (Rodrigues)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(min_deg, max_deg)) * (1 if rng.random() < 0.5 else -1)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def case_grids(size: str, rng: np.random.Generator, oblique: bool = False,
               orient_rng: Optional[np.random.Generator] = None) -> Tuple[Grid, Grid]:
    """(mr_grid, ct_grid) for one case; ``orient_rng`` draws the oblique rotations only."""
    if size not in SIZES:
        raise ConfigError(f"Unknown phantom size {size!r}; use one of {', '.join(SIZES)}.")
    center = np.array([rng.normal(0.0, 4.0), rng.normal(5.0, 4.0), rng.normal(8.0, 5.0)])
    ct_center = center + np.array([rng.normal(0.0, 3.0), rng.normal(0.0, 3.0), rng.normal(0.0, 6.0)])
    if size == "small":
        mr = ((64, 64, 28), (6.0, 6.0, 8.5))
        ct = ((96, 96, 48), (4.0, 4.0, 5.0))
    else:
        mr_xy = round(float(rng.uniform(1.40, 1.60)), 4)
        mr_dz = float(rng.choice([6.0, 6.5, 7.0, 7.5, 8.0]))
        mr_n = int(np.clip(round(float(rng.uniform(235.0, 265.0)) / mr_dz), 30, 40))
        ct_xy = round(float(rng.uniform(0.70, 0.80)), 4)
        ct_n = int(rng.integers(80, 101))
        mr = ((256, 256, mr_n), (mr_xy, mr_xy, mr_dz))
        ct = ((512, 512, ct_n), (ct_xy, ct_xy, 3.0))
    rot_mr = rot_ct = None
    if oblique:
        orng = orient_rng if orient_rng is not None else rng
        rot_mr = random_rotation(orng)
        rot_ct = random_rotation(orng)
    return _grid(*mr, center, rot_mr), _grid(*ct, ct_center, rot_ct)


def grid_dict(g: Grid) -> dict:
    """JSON-friendly description of a grid (sizes x, y, z; mm; direction row-major)."""
    return {
        "size": list(g.size),
        "spacing_mm": [round(v, 6) for v in g.spacing],
        "origin_mm": [round(v, 4) for v in g.origin],
        "direction": [round(v, 8) for v in g.direction],
    }
