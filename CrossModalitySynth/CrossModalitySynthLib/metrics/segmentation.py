"""Per-case overlap and surface-distance metrics of binary segmentations, distances in mm.

- Dice = 2 |A n B| / (|A| + |B|); IoU = |A n B| / |A u B| (so Dice = 2 IoU / (1 + IoU)).
- Surface distances follow MONAI (``compute_hausdorff_distance``,
  ``compute_average_surface_distance``; computed here from one call of MONAI's
  ``get_edge_surface_distance``) with the voxel spacing: the surface of a mask is its
  voxels that have a background 6-neighbour (or lie on the volume border); each surface voxel's
  distance is the Euclidean distance in mm to the nearest surface voxel of the other mask.
  HD = the larger of the two directed maxima; HD95 = the larger of the two directed 95th
  percentiles (linear interpolation); MSD (average symmetric surface distance) = the mean of
  both directions' distances pooled.
- Empty masks: both empty = perfect (Dice 1, IoU 1, HD = HD95 = MSD = 0); exactly one empty =
  worst (Dice 0, IoU 0, distances ``inf`` by default, or the image diagonal in mm with
  ``one_empty="diagonal"``, which keeps means finite).

Masks are SimpleITK images (spacing from the image) or arrays (``spacing`` in numpy axis order;
1 mm if not given). Voxels > 0 (or equal to ``label``) are foreground.
"""

import math
import warnings
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from ._inputs import ArrayOrImage, check_pair, to_array


@dataclass(frozen=True)
class SegmentationScores:
    """Overlap and surface metrics of one case (distances in mm)."""

    dice: float
    iou: float
    hd95: float
    hd: float
    msd: float  #: average symmetric surface distance
    n_pred: int  #: foreground voxels
    n_ref: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _foreground(x: ArrayOrImage, label: Optional[int], name: str) -> np.ndarray:
    arr = to_array(x, name, dtype=None)
    if label is None:
        return np.asarray(arr) > 0
    return np.asarray(arr) == label


def _surface_distances(a: np.ndarray, b: np.ndarray, spacing: Tuple[float, ...]) -> Tuple[float, float, float]:
    """HD95, HD and MSD of two non-empty masks, as MONAI's ``compute_hausdorff_distance``
    (``percentile=95`` / ``None``) and ``compute_average_surface_distance(symmetric=True)``
    define them, from one surface extraction (MONAI's ``get_edge_surface_distance``)."""
    import torch
    from monai.metrics.utils import get_edge_surface_distance

    with warnings.catch_warnings():
        # MONAI 1.5-1.6 passes its own deprecated argument internally
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
        _, (d_ab, d_ba), _ = get_edge_surface_distance(
            torch.from_numpy(a), torch.from_numpy(b), distance_metric="euclidean", spacing=spacing, symmetric=True
        )
    d_ab = d_ab.double()
    d_ba = d_ba.double()
    hd = max(float(d_ab.max()), float(d_ba.max()))
    hd95 = max(float(torch.quantile(d_ab, 0.95)), float(torch.quantile(d_ba, 0.95)))
    msd = float(torch.cat([d_ab, d_ba]).mean())
    return hd95, hd, msd


def segmentation_scores(
    pred: ArrayOrImage,
    ref: ArrayOrImage,
    spacing: Optional[Sequence[float]] = None,
    label: Optional[int] = None,
    one_empty: str = "inf",
    distances: bool = True,
) -> SegmentationScores:
    """Dice, IoU, HD95, HD and MSD of a predicted mask against a reference mask.

    ``spacing`` (numpy axis order, mm) overrides the images' spacing; ``one_empty`` is
    ``"inf"`` or ``"diagonal"`` (the distance given when exactly one mask is empty);
    ``distances=False`` skips the surface distances (NaN) when only overlap is needed.
    """
    img_spacing = check_pair(ref, pred, ("reference segmentation", "predicted segmentation"))
    a = _foreground(pred, label, "predicted segmentation")
    b = _foreground(ref, label, "reference segmentation")
    sp = spacing if spacing is not None else img_spacing
    sp = tuple(float(s) for s in (sp if sp is not None else (1.0,) * a.ndim))
    if len(sp) != a.ndim:
        raise InputError("The spacing {} does not match the {}D masks.".format(sp, a.ndim))
    if one_empty not in ("inf", "diagonal"):
        raise InputError('one_empty must be "inf" or "diagonal", not {!r}.'.format(one_empty))
    na, nb = int(a.sum()), int(b.sum())
    if na == 0 and nb == 0:
        return SegmentationScores(1.0, 1.0, 0.0, 0.0, 0.0, 0, 0)
    if na == 0 or nb == 0:
        if one_empty == "inf":
            worst = math.inf
        else:
            worst = float(np.sqrt(np.sum((np.asarray(a.shape) * np.asarray(sp)) ** 2)))
        return SegmentationScores(0.0, 0.0, worst, worst, worst, na, nb)
    inter = int(np.logical_and(a, b).sum())
    union = na + nb - inter
    dice = 2.0 * inter / (na + nb)
    iou = inter / union

    if not distances:
        nan = float("nan")
        return SegmentationScores(float(dice), float(iou), nan, nan, nan, na, nb)
    hd95, hd, msd = _surface_distances(a, b, sp)
    return SegmentationScores(float(dice), float(iou), hd95, hd, msd, na, nb)


def multilabel_scores(
    pred: ArrayOrImage,
    ref: ArrayOrImage,
    labels: Sequence[int],
    spacing: Optional[Sequence[float]] = None,
    one_empty: str = "inf",
) -> Dict[int, SegmentationScores]:
    """:func:`segmentation_scores` for each label value of two label maps."""
    return {int(l): segmentation_scores(pred, ref, spacing, int(l), one_empty) for l in labels}


def inplane_outline_distances(pred: np.ndarray, ref: np.ndarray, spacing_xyz: Sequence[float]):
    """In-plane outline distances of two (Z, Y, X) masks, over the axial slices holding both:
    ``(d_pred, d_ref)``, the distance in mm from each outline pixel of ``pred`` to the outline of
    ``ref`` and from each outline pixel of ``ref`` to that of ``pred`` (outline: the mask minus
    its erosion; spacing in SimpleITK's x, y, z order). The mean of both together is the
    in-plane mean outline distance; a staircase has more outline pixels per mm of outline."""
    from scipy import ndimage

    a, b = np.asarray(pred, dtype=bool), np.asarray(ref, dtype=bool)
    if a.shape != b.shape or a.ndim != 3:
        raise InputError("The in-plane outline distance needs two 3D masks of one shape; got {} and {}.".format(
            a.shape, b.shape))
    sampling = (float(spacing_xyz[1]), float(spacing_xyz[0]))
    to_ref, to_pred = [np.zeros(0)], [np.zeros(0)]
    for p, r in zip(a, b):
        if p.any() and r.any():
            bp, br = p & ~ndimage.binary_erosion(p), r & ~ndimage.binary_erosion(r)
            to_ref.append(ndimage.distance_transform_edt(~br, sampling=sampling)[bp])
            to_pred.append(ndimage.distance_transform_edt(~bp, sampling=sampling)[br])
    return np.concatenate(to_ref), np.concatenate(to_pred)
