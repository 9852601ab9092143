"""The 2D slices one DICOM dataset contributes, with their geometry and rescale (single- or multi-frame)."""

from typing import List, Tuple

import numpy as np

from ...errors import InputError
from .types import _Slice
from .values import _float_or_none, _floats, _int_or_none


def _rescale_of(ds) -> Tuple[float, float]:
    slope = _float_or_none(ds.get("RescaleSlope"))
    intercept = _float_or_none(ds.get("RescaleIntercept"))
    return (1.0 if slope is None or slope == 0 else slope), (0.0 if intercept is None else intercept)


def _first_item(ds, seq_name: str):
    seq = ds.get(seq_name)
    if seq is None or len(seq) == 0:
        return None
    return seq[0]


def _functional(frame_group, shared, seq_name: str):
    """The first item of ``seq_name`` in the per-frame group, else in the shared group."""
    for group in (frame_group, shared):
        if group is not None:
            item = _first_item(group, seq_name)
            if item is not None:
                return item
    return None


def _slices_of_dataset(ds, path: str) -> List[_Slice]:
    """The 2D slices one file contributes (one for single-frame files, one per frame otherwise)."""
    rows, columns = int(ds.Rows), int(ds.Columns)
    frames = _int_or_none(ds.get("NumberOfFrames")) or 1
    instance = _int_or_none(ds.get("InstanceNumber"))
    if frames == 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        slope, intercept = _rescale_of(ds)
        pos = _floats(ds.get("ImagePositionPatient"), 3)
        ori = _floats(ds.get("ImageOrientationPatient"), 6)
        return [
            _Slice(
                path=path, frame=0, instance_number=instance,
                position=None if pos is None else np.array(pos),
                orientation=None if ori is None else np.array(ori),
                pixel_spacing=_floats(ds.get("PixelSpacing"), 2),
                rows=rows, columns=columns, slope=slope, intercept=intercept,
                thickness=_float_or_none(ds.get("SpacingBetweenSlices")) or _float_or_none(ds.get("SliceThickness")),
            )
        ]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = _first_item(ds, "SharedFunctionalGroupsSequence")
    if per_frame is None or len(per_frame) != frames:
        raise InputError(
            f"{path} is a multi-frame DICOM file without per-frame positions; only enhanced CT/MR "
            "multi-frame files can be read, or export the series as single-frame files."
        )
    slope0, intercept0 = _rescale_of(ds)
    slices = []
    for k, group in enumerate(per_frame):
        plane_pos = _functional(group, shared, "PlanePositionSequence")
        plane_ori = _functional(group, shared, "PlaneOrientationSequence")
        measures = _functional(group, shared, "PixelMeasuresSequence")
        pvt = _functional(group, shared, "PixelValueTransformationSequence")
        pos = _floats(plane_pos.get("ImagePositionPatient"), 3) if plane_pos is not None else None
        ori = _floats(plane_ori.get("ImageOrientationPatient"), 6) if plane_ori is not None else None
        if pos is None or ori is None:
            raise InputError(
                f"{path}: frame {k + 1} has no plane position or orientation; the multi-frame file "
                "cannot be placed in space, export it as single-frame files."
            )
        slope, intercept = _rescale_of(pvt) if pvt is not None else (slope0, intercept0)
        slices.append(
            _Slice(
                path=path, frame=k, instance_number=instance,
                position=np.array(pos), orientation=np.array(ori),
                pixel_spacing=_floats(measures.get("PixelSpacing"), 2) if measures is not None else None,
                rows=rows, columns=columns, slope=slope, intercept=intercept,
                thickness=_float_or_none(measures.get("SliceThickness")) if measures is not None else None,
            )
        )
    return slices
