"""Test helper: writes REAL DICOM files with pydicom (CT and MR Image Storage).

Every file is a complete Part-10 file (128-byte preamble, "DICM", file meta group, explicit VR
little endian) that pydicom, GDCM (SimpleITK) and DCMTK read. Geometry is given the ITK way and
converted to DICOM attributes:

    direction  3x3 matrix whose COLUMNS are the row direction (along increasing column index),
               the column direction (along increasing row index) and the slice normal
    spacing    (x, y, z) = (PixelSpacing[1], PixelSpacing[0], distance between slices)
    origin     ImagePositionPatient of the slice with z index 0

    slice k:   ImagePositionPatient = origin + k * spacing_z * direction[:, 2]
               ImageOrientationPatient = direction[:, 0] + direction[:, 1]

Volumes are passed as numpy arrays indexed [z, y, x] (the SimpleITK convention) in *real*
values (HU for CT); the factory stores ``round((value - intercept) / slope)`` with the requested
stored dtype, so a reader that forgets the rescale gets visibly wrong numbers.

File names are deliberately NOT in position order (a seeded shuffle by default), and
InstanceNumber can be given freely, so a reader that sorts by name or number is caught.
"""

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


def _ds(value: float) -> str:
    """A float as a valid DICOM DS string (at most 16 characters, full available precision)."""
    return format_number_as_ds(float(value))


def oblique_direction(angles_deg=(20.0, -35.0, 10.0)) -> np.ndarray:
    """A proper rotation matrix (det +1) from three rotation angles about x, y, z, in degrees."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass
class WrittenSeries:
    """What :func:`write_series` wrote, in slice-position order (z index 0 first)."""

    folder: str
    paths: List[str]
    positions: np.ndarray  # (n, 3) ImagePositionPatient per z index
    instance_numbers: List[int]
    series_instance_uid: str
    description: str
    origin: tuple
    spacing: tuple
    direction: tuple  # 9 numbers, row-major, ITK convention
    stored_dtype: str
    extra: Dict[str, object] = field(default_factory=dict)


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
    return meta


def _base_dataset(modality: str, sop_class: str, study_uid: str, series_uid: str, frame_uid: str,
                  description: str, series_number: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.Modality = modality
    ds.PatientName = "Phantom^Test"
    ds.PatientID = "CMSYNTH-TEST"
    ds.StudyDate = "20240101"
    ds.SeriesDate = "20240101"
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


def _stored_values(values: np.ndarray, slope: float, intercept: float, stored_dtype: str) -> np.ndarray:
    stored = np.round((np.asarray(values, dtype=np.float64) - intercept) / slope)
    info = np.iinfo(np.dtype(stored_dtype))
    if stored.min() < info.min or stored.max() > info.max:
        raise ValueError(f"values do not fit {stored_dtype} with slope {slope} and intercept {intercept}")
    return stored.astype(stored_dtype)


def _set_pixels(ds: Dataset, stored: np.ndarray) -> None:
    """stored: (rows, cols) or (frames, rows, cols) integer array."""
    dtype = stored.dtype
    ds.Rows = int(stored.shape[-2])
    ds.Columns = int(stored.shape[-1])
    ds.BitsAllocated = 8 * dtype.itemsize
    ds.BitsStored = 8 * dtype.itemsize
    ds.HighBit = 8 * dtype.itemsize - 1
    ds.PixelRepresentation = 1 if dtype.kind == "i" else 0
    ds.PixelData = np.ascontiguousarray(stored.astype(dtype.newbyteorder("<"))).tobytes()


def _save(ds: Dataset, meta: FileMetaDataset, path: str) -> None:
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def write_series(
    folder: str,
    values: np.ndarray,
    *,
    origin=(0.0, 0.0, 0.0),
    spacing=(1.0, 1.0, 1.0),
    direction=None,
    modality: str = "CT",
    rescale_slope: float = 1.0,
    rescale_intercept: Optional[float] = None,
    stored_dtype: str = "uint16",
    series_uid: Optional[str] = None,
    study_uid: Optional[str] = None,
    frame_uid: Optional[str] = None,
    description: str = "test series",
    series_number: int = 1,
    instance_numbers: Optional[Sequence[int]] = None,
    names: Optional[Sequence[str]] = None,
    name_pattern: str = "IMG{:04d}.dcm",
    shuffle_names: bool = True,
    seed: int = 0,
    slice_thickness: Optional[float] = None,
    positions: Optional[np.ndarray] = None,
    echo_time: Optional[float] = None,
    write_rescale: bool = True,
    omit_series_uid: bool = False,
) -> WrittenSeries:
    """Write ``values`` ([z, y, x], real units) as one single-frame-per-file DICOM series.

    Args:
        origin, spacing, direction: the ITK grid the series encodes (see module docstring);
            ``direction`` is a 3x3 matrix or 9 numbers (row-major), identity by default.
        modality: "CT" (CT Image Storage) or "MR" (MR Image Storage).
        rescale_slope, rescale_intercept: written as RescaleSlope/RescaleIntercept; the default
            intercept is -1024 for CT and 0 for MR.
        stored_dtype: "uint16" or "int16".
        instance_numbers: InstanceNumber per z index (default 1..n in position order).
        names: file name per z index; default ``name_pattern`` numbered by a seeded permutation
            (``shuffle_names``), so name order differs from position order.
        positions: explicit (n, 3) ImagePositionPatient per z index (to build irregular series);
            overrides origin/spacing for the positions.
        echo_time: EchoTime for MR files.
        write_rescale: False writes no RescaleSlope/Intercept attributes at all.
        series_uid: the SeriesInstanceUID (default a new one); ``""`` writes it empty (as some
            anonymisers and exports do).
        omit_series_uid: True leaves the SeriesInstanceUID attribute out of every file.
    """
    values = np.asarray(values)
    if values.ndim != 3:
        raise ValueError("values must be [z, y, x]")
    n = values.shape[0]
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=float).reshape(3, 3)
    row_dir, col_dir, normal = d[:, 0], d[:, 1], d[:, 2]
    origin = np.asarray(origin, dtype=float)
    if positions is None:
        positions = np.array([origin + k * spacing[2] * normal for k in range(n)])
    positions = np.asarray(positions, dtype=float)
    if rescale_intercept is None:
        rescale_intercept = -1024.0 if modality == "CT" else 0.0
    if not write_rescale:
        rescale_slope, rescale_intercept = 1.0, 0.0
    stored = _stored_values(values, rescale_slope, rescale_intercept, stored_dtype)
    sop_class = CT_IMAGE_STORAGE if modality == "CT" else MR_IMAGE_STORAGE
    series_uid = generate_uid() if series_uid is None else series_uid
    study_uid = study_uid or generate_uid()
    frame_uid = frame_uid or generate_uid()
    if instance_numbers is None:
        instance_numbers = list(range(1, n + 1))
    if names is None:
        order = np.random.default_rng(seed).permutation(n) if shuffle_names else np.arange(n)
        names = [name_pattern.format(int(order[k]) + 1) for k in range(n)]
    os.makedirs(folder, exist_ok=True)
    paths = []
    for k in range(n):
        ds = _base_dataset(modality, sop_class, study_uid, series_uid, frame_uid, description, series_number)
        if omit_series_uid:
            del ds.SeriesInstanceUID
        ds.InstanceNumber = int(instance_numbers[k])
        ds.ImagePositionPatient = [_ds(v) for v in positions[k]]
        ds.ImageOrientationPatient = [_ds(v) for v in list(row_dir) + list(col_dir)]
        ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
        ds.SliceThickness = _ds(slice_thickness if slice_thickness is not None else spacing[2])
        ds.SliceLocation = _ds(float(np.dot(positions[k], normal)))
        if write_rescale:
            ds.RescaleIntercept = _ds(rescale_intercept)
            ds.RescaleSlope = _ds(rescale_slope)
            if modality == "CT":
                ds.RescaleType = "HU"
        if modality == "CT":
            ds.KVP = "120"
        else:
            ds.MagneticFieldStrength = "1.5"
            ds.RepetitionTime = "150"
            ds.EchoTime = _ds(echo_time if echo_time is not None else 4.6)
        _set_pixels(ds, stored[k])
        path = os.path.join(folder, names[k])
        _save(ds, _file_meta(sop_class, ds.SOPInstanceUID), path)
        paths.append(path)
    return WrittenSeries(
        folder=folder,
        paths=paths,
        positions=positions,
        instance_numbers=[int(v) for v in instance_numbers],
        series_instance_uid=str(series_uid),
        description=description,
        origin=tuple(float(v) for v in positions[0]),
        spacing=tuple(float(v) for v in spacing),
        direction=tuple(float(v) for v in d.ravel()),
        stored_dtype=stored_dtype,
    )


def write_enhanced_ct(
    path: str,
    values: np.ndarray,
    *,
    origin=(0.0, 0.0, 0.0),
    spacing=(1.0, 1.0, 1.0),
    direction=None,
    rescale_slope: float = 1.0,
    rescale_intercept: float = -1024.0,
    frame_order: Optional[Sequence[int]] = None,
    description: str = "enhanced ct",
) -> str:
    """Write ``values`` ([z, y, x], HU) as one Enhanced CT multi-frame file.

    Geometry goes into the functional groups (shared PixelMeasures / PlaneOrientation /
    PixelValueTransformation, per-frame PlanePosition). ``frame_order`` lists which z index each
    frame holds (default 0..n-1), to check that a reader sorts frames by position.
    """
    values = np.asarray(values)
    n = values.shape[0]
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=float).reshape(3, 3)
    origin = np.asarray(origin, dtype=float)
    frame_order = list(range(n)) if frame_order is None else list(frame_order)
    stored = _stored_values(values, rescale_slope, rescale_intercept, "uint16")[frame_order]
    ds = _base_dataset("CT", ENHANCED_CT_IMAGE_STORAGE, generate_uid(), generate_uid(), generate_uid(),
                       description, 1)
    ds.InstanceNumber = 1
    ds.NumberOfFrames = n
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
    pm.SliceThickness = _ds(spacing[2])
    shared.PixelMeasuresSequence = [pm]
    po = Dataset()
    po.ImageOrientationPatient = [_ds(v) for v in list(d[:, 0]) + list(d[:, 1])]
    shared.PlaneOrientationSequence = [po]
    pvt = Dataset()
    pvt.RescaleIntercept = _ds(rescale_intercept)
    pvt.RescaleSlope = _ds(rescale_slope)
    pvt.RescaleType = "HU"
    shared.PixelValueTransformationSequence = [pvt]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for k in frame_order:
        fg = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [_ds(v) for v in origin + k * spacing[2] * d[:, 2]]
        fg.PlanePositionSequence = [pp]
        per_frame.append(fg)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    _set_pixels(ds, stored)
    _save(ds, _file_meta(ENHANCED_CT_IMAGE_STORAGE, ds.SOPInstanceUID), path)
    return path


def write_non_image(path: str) -> str:
    """A valid DICOM file without pixel data (an RT Structure Set header), to be skipped."""
    ds = _base_dataset("RTSTRUCT", RT_STRUCTURE_SET_STORAGE, generate_uid(), generate_uid(), generate_uid(),
                       "structures", 99)
    del ds.SamplesPerPixel
    del ds.PhotometricInterpretation
    ds.StructureSetLabel = "test"
    _save(ds, _file_meta(RT_STRUCTURE_SET_STORAGE, ds.SOPInstanceUID), path)
    return path


def truncate_file(path: str, keep_fraction: float = 0.6) -> int:
    """Cut ``path`` to ``keep_fraction`` of its size (as an interrupted copy does); returns new size."""
    size = os.path.getsize(path)
    new_size = int(size * keep_fraction)
    with open(path, "r+b") as f:
        f.truncate(new_size)
    return new_size
