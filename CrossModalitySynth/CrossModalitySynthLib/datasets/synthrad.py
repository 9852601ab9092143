"""SynthRAD2025 Task 1 (MR -> CT) loader: paired, registered MR and CT with a body mask.

Layout (``root`` is the folder holding ``Task1/``; passing ``Task1/`` itself or one region
folder such as ``Task1/AB`` also works)::

    Task1/AB/<id>/mr.mha     MR, deformably registered to the CT
    Task1/AB/<id>/ct.mha     CT in HU
    Task1/AB/<id>/mask.mha   body mask (0/1)
    Task1/HN/<id>/...        head and neck
    Task1/TH/<id>/...        thorax

A case folder is any sub-folder of a region that holds ``mr.mha``; other folders (overviews,
documentation) are ignored. Validation/test releases without ``ct.mha`` load with ``ct=None``.

Conventions
    * mr, ct and mask must lie on one voxel grid. Float noise below 1e-3 mm / 1e-5 is removed by
      giving mr and mask the grid of ct exactly; larger differences are an InputError.
    * The mask is returned as uint8 0/1 (any non-zero voxel counts as body).
"""

import os
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..io.reader import read_volume
from ._common import natural_sorted, on_same_grid, require_dir

__all__ = ["SynthradCase", "REGIONS", "list_regions", "list_cases", "load_case"]

REGIONS = ("AB", "HN", "TH")
TASK_FOLDER = "Task1"


@dataclass
class SynthradCase:
    """One SynthRAD2025 Task 1 case; ``mr``, ``ct`` and ``mask`` share one grid exactly.

    Attributes:
        case_id: the case folder name (e.g. "1ABA005").
        region: "AB", "HN" or "TH".
        mr: the MR image.
        ct: the CT image in HU, or None when the release has no ct.mha (validation/test).
        mask: uint8 body mask (0/1).
    """

    case_id: str
    region: str
    mr: sitk.Image
    ct: Optional[sitk.Image]
    mask: sitk.Image


def _task_dir(root: str) -> str:
    root = require_dir(root, f"the SynthRAD2025 folder holding {TASK_FOLDER}/AB/<id>/mr.mha")
    candidate = os.path.join(root, TASK_FOLDER)
    if os.path.isdir(candidate):
        return candidate
    if any(os.path.isdir(os.path.join(root, r)) for r in REGIONS):
        return root
    parent = os.path.dirname(os.path.normpath(root))
    if os.path.basename(os.path.normpath(root)) in REGIONS:
        return parent
    raise InputError(
        f"{candidate} not found: expected the SynthRAD2025 layout {TASK_FOLDER}/<region>/<id>/{{mr,ct,mask}}.mha "
        f"with regions {', '.join(REGIONS)}; point to the folder that holds {TASK_FOLDER}."
    )


def _region(region: str) -> str:
    r = str(region).upper()
    if r not in REGIONS:
        raise InputError(f"Unknown SynthRAD2025 region '{region}'; use one of {', '.join(REGIONS)}.")
    return r


def list_regions(root: str) -> List[str]:
    """Regions present under ``root`` (subset of "AB", "HN", "TH")."""
    task = _task_dir(root)
    return [r for r in REGIONS if os.path.isdir(os.path.join(task, r))]


def list_cases(root: str, region: str = "AB") -> List[str]:
    """Case ids (folder names holding mr.mha, natural order) of one region.

    Raises:
        InputError: the root or the region folder is missing.
    """
    region = _region(region)
    task = _task_dir(root)
    folder = require_dir(os.path.join(task, region), f"SynthRAD2025 {region} cases as {TASK_FOLDER}/{region}/<id>/mr.mha")
    ids = [
        n for n in os.listdir(folder)
        if not n.startswith(".") and os.path.isfile(os.path.join(folder, n, "mr.mha"))
    ]
    return natural_sorted(ids)


def _find_region(task: str, case_id: str) -> str:
    hits = [r for r in REGIONS if os.path.isdir(os.path.join(task, r, case_id))]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise InputError(
            f"SynthRAD2025 case {case_id} not found under {task}: expected {task}/<region>/{case_id}/mr.mha "
            f"with region one of {', '.join(REGIONS)}."
        )
    raise InputError(f"SynthRAD2025 case {case_id} exists in several regions ({', '.join(hits)}); pass region=.")


def load_case(root: str, case_id: str, region: Optional[str] = None) -> SynthradCase:
    """Load SynthRAD2025 Task 1 case ``case_id`` (region found automatically when not given).

    Raises:
        InputError: missing case folder or mr.mha / mask.mha, unreadable files, or images that
            are not on one grid.
    """
    task = _task_dir(root)
    case_id = str(case_id)
    region = _region(region) if region is not None else _find_region(task, case_id)
    folder = require_dir(os.path.join(task, region, case_id), f"the case folder {TASK_FOLDER}/{region}/{case_id}/")
    paths = {name: os.path.join(folder, f"{name}.mha") for name in ("mr", "ct", "mask")}
    for name in ("mr", "mask"):
        if not os.path.isfile(paths[name]):
            raise InputError(
                f"{paths[name]} not found: expected {name}.mha in every SynthRAD2025 case folder ({folder})."
            )
    mr = read_volume(paths["mr"])
    ct = read_volume(paths["ct"]) if os.path.isfile(paths["ct"]) else None
    mask = read_volume(paths["mask"])
    reference, ref_path = (ct, paths["ct"]) if ct is not None else (mr, paths["mr"])
    if ct is not None:
        mr = on_same_grid(mr, reference, paths["mr"], ref_path)
    mask = on_same_grid(mask, reference, paths["mask"], ref_path)
    mask_arr = sitk.GetArrayViewFromImage(mask)
    binary = sitk.GetImageFromArray((mask_arr != 0).astype(np.uint8))
    binary.CopyInformation(reference)
    return SynthradCase(case_id=case_id, region=region, mr=mr, ct=ct, mask=binary)
