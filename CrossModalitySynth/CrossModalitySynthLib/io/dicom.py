"""Reading DICOM image series and single DICOM files into :class:`SimpleITK.Image` volumes.

Headers are parsed with pydicom and the volume is assembled here, slice by slice, so that every
step that decides geometry or values is explicit and checked:

Finding series (``list_dicom_series``)
    The folder is scanned **recursively** (hidden files and folders are ignored). A file counts
    as DICOM when it carries the Part-10 "DICM" marker, or when its name ends in .dcm/.ima/.dicom
    (read without the marker). Other files are skipped quietly, and so are DICOM objects that are
    not images (structure sets, reports, DICOMDIR, segmentations, RT dose ...). A file that *is*
    DICOM but cannot be parsed, or an image file whose pixel data is missing or shorter than its
    header says (an interrupted copy), is an error: it is never skipped silently, because it is
    most likely a missing slice.

    Files are grouped by SeriesInstanceUID. A series that mixes several echo times (dual-echo
    T1 in-/opposed-phase stored as one series) is split into one series per echo. Single files
    that each carry their own SeriesInstanceUID (some anonymisers do that) but lie in one folder
    with the same orientation, matrix, pixel spacing and echo time at distinct positions are
    merged into one series (id ``merged-N``).

Reading a series (``read_dicom_series``)
    Slices are sorted by their position along the slice normal, ``dot(IPP, cross(row, col))``,
    never by file name or InstanceNumber. The result has origin = IPP of the first slice,
    direction columns = (row, column, normal) direction cosines (so the direction has det +1),
    in-plane spacing = (PixelSpacing[1], PixelSpacing[0]) and slice spacing from the actual slice
    positions ((last - first) / (n - 1)), not from SliceThickness.

    A series is rejected with :class:`InputError` when its slices have different orientations,
    matrix sizes or pixel spacings, when two slices share a position, when slice positions are
    shifted in-plane (gantry tilt), or when the slice gaps are not uniform: a slice deviating
    from the regular grid by more than max(0.01 mm, 5 % of the slice spacing) means a missing
    slice or a variable-spacing reconstruction, and reading it onto one regular grid would put
    voxels in the wrong place. This is an error, not a warning, by design.

Values
    The modality LUT (RescaleSlope / RescaleIntercept, per slice or per frame) is always applied,
    so CT comes out in Hounsfield units. The pixel type is int16 when all values are integers in
    the int16 range, int32 for larger integers and float32 when the rescale gives fractions.
    Uncompressed and RLE data are decoded by pydicom; other compressed transfer syntaxes fall back
    to SimpleITK's GDCM decoder for that file (GDCM applies the rescale itself). MONOCHROME1
    images are not inverted (that only concerns display). Colour images are rejected.

Single files (``read_dicom_file``)
    One slice becomes a volume of depth 1 whose slice spacing is SpacingBetweenSlices, else
    SliceThickness, else 1 mm. Enhanced (functional-group) multi-frame CT/MR files are read as
    a volume, frames sorted by their PlanePositionSequence like a series.

For reference (checked with SimpleITK 2.5 / pydicom 3): SimpleITK's ``ImageSeriesReader``
(GDCM) also applies the rescale (32-bit integer output for integer rescales) and
``GetGDCMSeriesFileNames`` sorts by position; but with a missing slice it only prints a console
warning and returns the average spacing (2.5 mm slices with one missing -> 3.125 mm, every slice
above the gap misplaced), stacks duplicate positions into a 0.2 mm "volume", and on a truncated
single file fails with an unrelated message ("Unable to determine ImageIO reader"); pydicom
silently drops a truncated pixel data element. Hence the explicit checks here.
"""

import os
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

__all__ = [
    "DicomVolume",
    "DicomWarning",
    "list_dicom_series",
    "read_dicom_series",
    "read_dicom_file",
    "load_dicom_series",
    "load_dicom_files",
]

# Geometry tolerances (mm and direction cosines)
_ORIENTATION_TOL = 1e-4  # max difference between direction cosines of two slices
_ORTHOGONALITY_TOL = 1e-3  # |row . col| above this: not a valid orientation
_DUPLICATE_TOL_MM = 1e-3  # two slices closer than this along the normal share a position
_SPACING_TOL_MM = 1e-3  # pixel spacing agreement between slices
_UNIFORM_ABS_MM = 0.01  # allowed deviation of a slice from the regular grid: max(abs, rel * spacing)
_UNIFORM_REL = 0.05
_INPLANE_REL = 0.05  # allowed in-plane shift of slice positions, as a fraction of the pixel size

_DICOM_SUFFIXES = (".dcm", ".ima", ".dicom")
_DEFER_BYTES = 2048  # values larger than this are not loaded while scanning headers
_PIXEL_DATA_TAG = 0x7FE00010
_UNDEFINED_LENGTH = 0xFFFFFFFF


class DicomWarning(UserWarning):
    """Something about a DICOM input was assumed (missing geometry, an unusual layout ...)."""


@dataclass
class DicomVolume:
    """A DICOM volume and where each of its slices came from.

    Attributes:
        image: the volume ([x, y, z] in ITK terms; LPS geometry as described in the module doc).
        slice_files: for each z index (position order), the file its pixels came from.
        slice_frames: for each z index, the frame number inside that file (0 for single-frame).
        instance_numbers: for each z index, the file's InstanceNumber (None when absent).
        series_instance_uid, description, modality: from the first file.
    """

    image: sitk.Image
    slice_files: List[str]
    slice_frames: List[int]
    instance_numbers: List[Optional[int]]
    series_instance_uid: str = ""
    description: str = ""
    modality: str = ""


@dataclass
class _Header:
    """What the scan keeps of one image file (no pixel data)."""

    path: str
    sop_class: str
    series_uid: str
    description: str
    modality: str
    series_number: Optional[int]
    instance_number: Optional[int]
    rows: int
    columns: int
    n_frames: int
    echo_time: Optional[float]
    position: Optional[Tuple[float, float, float]]
    orientation: Optional[Tuple[float, ...]]
    pixel_spacing: Optional[Tuple[float, float]]


@dataclass
class _Series:
    id: str
    series_uid: str
    headers: List[_Header] = field(default_factory=list)
    echo_time: Optional[float] = None
    merged: bool = False


@dataclass
class _Slice:
    """One 2D slice to stack: a file (and frame) with its geometry and rescale."""

    path: str
    frame: int
    instance_number: Optional[int]
    position: Optional[np.ndarray]
    orientation: Optional[np.ndarray]
    pixel_spacing: Optional[Tuple[float, float]]
    rows: int
    columns: int
    slope: float
    intercept: float
    thickness: Optional[float] = None
    pixels: Optional[np.ndarray] = None


# --------------------------------------------------------------------------------------------
# small helpers


def _corrupt(path: str, reason: str) -> InputError:
    return InputError(
        f"{path} is a truncated or corrupt DICOM file ({reason}); copy it again from the source "
        "or remove it from the folder."
    )


def _has_dicm_marker(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _float_or_none(value) -> Optional[float]:
    try:
        if value is None or value == "":
            return None
        return float(value)
    except (TypeError, ValueError):
        return None


def _int_or_none(value) -> Optional[int]:
    try:
        if value is None or value == "":
            return None
        return int(value)
    except (TypeError, ValueError):
        return None


def _floats(value, n: int) -> Optional[Tuple[float, ...]]:
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return vals if len(vals) == n and all(np.isfinite(vals)) else None


def _is_image_sop_class(uid: str) -> Optional[bool]:
    """True/False for registered SOP classes (image storage or not); None when unknown."""
    from pydicom.uid import UID

    name = UID(uid).name
    if name == str(uid):  # not in pydicom's registry (private or unknown)
        return None
    return "Image Storage" in name


def _expected_pixel_bytes(rows: int, columns: int, frames: int, samples: int, bits: int) -> int:
    n = rows * columns * frames * samples
    return (n * bits + 7) // 8


class _QuietPydicom:
    """Silence pydicom's value-validation warnings and log lines while we inspect a file.

    Broken values are judged by our own checks (and reported as one InputError), so pydicom's
    "Invalid value for VR ..." chatter would only be noise on the console.
    """

    def __enter__(self):
        from pydicom import config

        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        self._settings = getattr(config, "settings", None)
        self._mode = getattr(self._settings, "reading_validation_mode", None)
        if self._mode is not None:
            self._settings.reading_validation_mode = config.IGNORE
        return self

    def __exit__(self, *exc):
        if self._mode is not None:
            self._settings.reading_validation_mode = self._mode
        self._warnings.__exit__(*exc)
        return False


def _dcmread(path: str, **kwargs):
    import pydicom

    with _QuietPydicom():
        return pydicom.dcmread(path, **kwargs)


# --------------------------------------------------------------------------------------------
# scanning


def _scan_file(path: str) -> Optional[_Header]:
    """Header of one image file; None for non-DICOM and non-image files; InputError when corrupt."""
    with _QuietPydicom():
        return _scan_file_inner(path)


def _sop_class_of(ds, path: str) -> str:
    """The file's SOP Class UID, checked: missing or malformed UIDs mean a cut or damaged header."""
    from pydicom.uid import UID

    meta = getattr(ds, "file_meta", None)
    found = [str(v).strip() for v in (ds.get("SOPClassUID"), meta.get("MediaStorageSOPClassUID") if meta else None)
             if v is not None and str(v).strip()]
    if not found:
        raise _corrupt(path, "no SOP Class UID: the header is incomplete")
    for uid in found:
        if not UID(uid).is_valid:
            raise _corrupt(path, f"malformed SOP Class UID '{uid}'")
    if len(found) == 2 and found[0] != found[1]:
        raise _corrupt(path, f"SOP Class UID '{found[0]}' disagrees with the file meta header '{found[1]}'")
    return found[0]


def _scan_file_inner(path: str) -> Optional[_Header]:
    marker = _has_dicm_marker(path)
    named_dicom = path.lower().endswith(_DICOM_SUFFIXES)
    if not marker and not named_dicom:
        return None
    if os.path.getsize(path) == 0:
        raise _corrupt(path, "0 bytes")
    try:
        ds = _dcmread(path, defer_size=_DEFER_BYTES, force=not marker)
    except Exception as exc:  # pydicom raises many types on broken input
        raise _corrupt(path, f"{type(exc).__name__}: {str(exc)[:120]}") from None
    meta = getattr(ds, "file_meta", None)
    sop = _sop_class_of(ds, path)
    if marker and (meta is None or not meta.get("TransferSyntaxUID")):
        raise _corrupt(path, "no transfer syntax in the file meta header")
    is_image = _is_image_sop_class(sop)
    if is_image is None:
        is_image = "Rows" in ds
    if not is_image:
        return None
    for key in ("Rows", "Columns", "BitsAllocated"):
        if key not in ds:
            raise _corrupt(path, f"{key} is missing: the header ends early")
    rows, columns = int(ds.Rows), int(ds.Columns)
    frames = _int_or_none(ds.get("NumberOfFrames")) or 1
    _check_pixel_extent(ds, path, rows, columns, frames)
    return _Header(
        path=path,
        sop_class=sop,
        series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
        description=str(ds.get("SeriesDescription", "") or "").strip(),
        modality=str(ds.get("Modality", "") or ""),
        series_number=_int_or_none(ds.get("SeriesNumber")),
        instance_number=_int_or_none(ds.get("InstanceNumber")),
        rows=rows,
        columns=columns,
        n_frames=frames,
        echo_time=_float_or_none(ds.get("EchoTime")),
        position=_floats(ds.get("ImagePositionPatient"), 3),
        orientation=_floats(ds.get("ImageOrientationPatient"), 6),
        pixel_spacing=_floats(ds.get("PixelSpacing"), 2),
    )


def _check_pixel_extent(ds, path: str, rows: int, columns: int, frames: int) -> None:
    """Detect missing or cut pixel data without loading it (the element may be deferred)."""
    raw = ds._dict.get(_PIXEL_DATA_TAG)  # raw or deferred element; None when absent
    if raw is None:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            return
        raise _corrupt(path, "the pixel data is missing: the file ends before the image")
    length = getattr(raw, "length", None)
    value = getattr(raw, "value", None)
    if value is not None and not isinstance(value, (bytes, bytearray)):
        return  # already converted; checked when decoded
    if value is not None:
        length = len(value)
    elif length is None or length == _UNDEFINED_LENGTH:
        return  # encapsulated (compressed) data: checked when decoded
    else:
        tell = getattr(raw, "value_tell", None)
        if tell is not None and tell + length > os.path.getsize(path):
            raise _corrupt(path, f"the pixel data is cut: {os.path.getsize(path) - tell} of {length} bytes present")
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is not None and getattr(ts, "is_compressed", False):
        return
    expected = _expected_pixel_bytes(
        rows, columns, frames, int(ds.get("SamplesPerPixel", 1) or 1), int(ds.BitsAllocated)
    )
    if length < expected:
        raise _corrupt(path, f"pixel data has {length} bytes, the header needs {expected}")


def _walk(folder: str, recursive: bool) -> List[str]:
    paths = []
    if recursive:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            paths.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
    else:
        for f in sorted(os.listdir(folder)):
            p = os.path.join(folder, f)
            if not f.startswith(".") and os.path.isfile(p):
                paths.append(p)
    return paths


def _scan_folder(folder: str, recursive: bool = True) -> List[_Header]:
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise InputError(f"{folder} is not a folder; point to the folder that holds the DICOM files.")
    headers = []
    for path in _walk(folder, recursive):
        h = _scan_file(path)
        if h is not None:
            headers.append(h)
    return headers


def _echo_key(te: Optional[float]) -> Optional[float]:
    return None if te is None else round(te, 3)


def _group_series(headers: List[_Header], folder: str) -> List[_Series]:
    """SeriesInstanceUID groups, split by echo time, with per-file-UID singletons merged."""
    by_uid: Dict[str, List[_Header]] = {}
    for h in headers:
        by_uid.setdefault(h.series_uid, []).append(h)
    series: List[_Series] = []
    singletons: List[_Header] = []
    for uid, hs in by_uid.items():
        echoes = sorted({_echo_key(h.echo_time) for h in hs}, key=lambda v: (v is None, v or 0.0))
        if len(hs) == 1 and hs[0].n_frames == 1:
            singletons.append(hs[0])
            continue
        if len(echoes) > 1:
            for te in echoes:
                sub = [h for h in hs if _echo_key(h.echo_time) == te]
                label = "none" if te is None else f"{te:g}"
                series.append(_Series(id=f"{uid}/TE={label}", series_uid=uid, headers=sub, echo_time=te))
        else:
            series.append(_Series(id=uid, series_uid=uid, headers=hs, echo_time=echoes[0]))
    series.extend(_merge_singletons(singletons))
    series.sort(key=lambda s: (s.headers[0].series_number is None, s.headers[0].series_number or 0, s.id))
    return series


def _merge_singletons(singletons: List[_Header]) -> List[_Series]:
    """Merge one-file series that are evidently slices of one volume (see module docstring)."""
    groups: Dict[tuple, List[_Header]] = {}
    for h in singletons:
        if h.orientation is None or h.position is None:
            key = ("single", h.path)
        else:
            key = (
                os.path.dirname(h.path),
                h.modality,
                tuple(round(v, 3) for v in h.orientation),
                h.rows,
                h.columns,
                None if h.pixel_spacing is None else tuple(round(v, 4) for v in h.pixel_spacing),
                _echo_key(h.echo_time),
            )
        groups.setdefault(key, []).append(h)
    out: List[_Series] = []
    n_merged = 0
    for key, hs in groups.items():
        positions = {tuple(round(v, 3) for v in h.position) for h in hs if h.position is not None}
        if len(hs) > 1 and len(positions) == len(hs):
            n_merged += 1
            out.append(
                _Series(id=f"merged-{n_merged}", series_uid="", headers=hs, echo_time=_echo_key(hs[0].echo_time),
                        merged=True)
            )
        else:
            out.extend(_Series(id=h.series_uid, series_uid=h.series_uid, headers=[h]) for h in hs)
    return out


def _series_info(s: _Series, folder: str) -> dict:
    first = s.headers[0]
    descriptions = sorted({h.description for h in s.headers})
    folders = sorted({os.path.relpath(os.path.dirname(h.path), folder) for h in s.headers})
    info = {
        "id": s.id,
        "series_instance_uid": s.series_uid,
        "description": descriptions[0] if len(descriptions) == 1 else " / ".join(descriptions),
        "modality": first.modality,
        "n_files": len(s.headers),
        "n_slices": int(sum(h.n_frames for h in s.headers)),
        "rows": first.rows,
        "columns": first.columns,
        "series_number": first.series_number,
        "echo_time": s.echo_time,
        "folders": folders,
    }
    if s.merged:
        info["note"] = "files carry different SeriesInstanceUIDs; grouped by folder and geometry"
    return info


def list_dicom_series(folder: str, recursive: bool = True) -> List[dict]:
    """The DICOM image series found under ``folder``.

    Args:
        folder: the folder to scan (recursively by default; hidden entries are ignored).
        recursive: False scans only the files directly in ``folder``.

    Returns:
        One JSON-ready dict per series, sorted by SeriesNumber: ``id`` (what ``--series`` accepts
        besides the UID and description; equal to the UID unless the series was split by echo
        time or merged), ``series_instance_uid``, ``description``, ``modality``, ``n_files``,
        ``n_slices``, ``rows``, ``columns``, ``series_number``, ``echo_time``, ``folders``.
        Empty when the folder holds no image series.

    Raises:
        InputError: the folder is missing, or a DICOM file in it is truncated or corrupt.
    """
    folder = os.fspath(folder)
    headers = _scan_folder(folder, recursive)
    return [_series_info(s, folder) for s in _group_series(headers, folder)]


def _describe_choices(infos: List[dict]) -> str:
    parts = []
    for info in infos[:8]:
        desc = f" '{info['description']}'" if info["description"] else ""
        parts.append(f"{info['id']}{desc} ({info['n_slices']} slices)")
    if len(infos) > 8:
        parts.append(f"and {len(infos) - 8} more")
    return "; ".join(parts)


def _select_series(folder: str, series_list: List[_Series], series: Optional[str]) -> _Series:
    infos = [_series_info(s, folder) for s in series_list]
    if not series_list:
        raise InputError(
            f"{folder} holds no DICOM image series; point to the folder that holds the image .dcm files."
        )
    if series is None:
        if len(series_list) == 1:
            return series_list[0]
        raise InputError(
            f"{folder} holds {len(series_list)} DICOM image series ({_describe_choices(infos)}); "
            "pass --series with the id (as listed), SeriesInstanceUID or SeriesDescription of the one to read."
        )
    key = str(series).strip()
    hits = [
        (s, i) for s, i in zip(series_list, infos)
        if key in (i["id"], i["series_instance_uid"], i["description"])
    ]
    exact_id = [(s, i) for s, i in hits if key == i["id"]]
    if len(exact_id) == 1:
        return exact_id[0][0]
    if len(hits) == 1:
        return hits[0][0]
    if not hits:
        raise InputError(
            f"No DICOM series '{key}' in {folder}; it holds {_describe_choices(infos)}: pass one of these "
            "with --series (SeriesInstanceUID or SeriesDescription)."
        )
    raise InputError(
        f"'{key}' matches {len(hits)} DICOM series in {folder} ({_describe_choices([i for _, i in hits])}); "
        "pass --series with one of these ids instead."
    )


# --------------------------------------------------------------------------------------------
# reading pixels and geometry


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


def _read_dataset(path: str):
    try:
        ds = _dcmread(path, force=not _has_dicm_marker(path))
    except Exception as exc:
        raise _corrupt(path, f"{type(exc).__name__}: {str(exc)[:120]}") from None
    for key in ("Rows", "Columns", "BitsAllocated"):
        if key not in ds:
            raise _corrupt(path, f"{key} is missing: the header ends early")
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise InputError(
            f"{path} is a colour DICOM image ({ds.get('PhotometricInterpretation', '')}); CT and MR "
            "volumes must be greyscale, select the original (not a screenshot) series."
        )
    if "PixelData" not in ds:
        raise _corrupt(path, "the pixel data is missing: the file ends before the image")
    return ds


def _pixel_array(ds, path: str, n_frames: int) -> Tuple[np.ndarray, bool]:
    """Stored values as [frames, rows, cols] and whether they are already rescaled (GDCM fallback)."""
    rows, columns = int(ds.Rows), int(ds.Columns)
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    compressed = bool(getattr(ts, "is_compressed", False))
    if not compressed:
        expected = _expected_pixel_bytes(rows, columns, n_frames, 1, int(ds.BitsAllocated))
        if len(ds.PixelData) < expected:
            raise _corrupt(path, f"pixel data has {len(ds.PixelData)} bytes, the header needs {expected}")
    try:
        arr = np.asarray(ds.pixel_array)
        rescaled = False
    except Exception as exc:
        if not compressed:
            raise _corrupt(path, f"pixel data cannot be decoded: {str(exc)[:120]}") from None
        arr = _gdcm_pixels(path, exc)
        rescaled = True
    arr = arr.reshape((n_frames, rows, columns)) if arr.size == n_frames * rows * columns else arr
    if arr.shape != (n_frames, rows, columns):
        raise _corrupt(path, f"decoded pixel data has shape {arr.shape}, expected {(n_frames, rows, columns)}")
    return arr, rescaled


def _gdcm_pixels(path: str, first_error: Exception) -> np.ndarray:
    """Decode a compressed file with SimpleITK/GDCM (which applies the rescale itself)."""
    try:
        reader = sitk.ImageFileReader()
        reader.SetImageIO("GDCMImageIO")
        reader.SetFileName(path)
        return sitk.GetArrayFromImage(reader.Execute())
    except RuntimeError as exc:
        last = [ln for ln in str(exc).splitlines() if ln.strip()]
        raise InputError(
            f"{path}: its compressed pixel data cannot be decoded (pydicom: {str(first_error)[:80]}; "
            f"GDCM: {(last[-1] if last else 'failed')[:80]}); export the series uncompressed."
        ) from None


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


def _load_file(path: str) -> Tuple[List[_Slice], object]:
    """Read one file completely: its slices, each with its pixels attached; and the dataset header."""
    ds = _read_dataset(path)
    n_frames = _int_or_none(ds.get("NumberOfFrames")) or 1
    slices = _slices_of_dataset(ds, path)
    arr, rescaled = _pixel_array(ds, path, n_frames)
    for s in slices:
        s.pixels = arr[s.frame]
        if rescaled:
            s.slope, s.intercept = 1.0, 0.0
    del ds.PixelData
    return slices, ds


def _assemble(slices: List[_Slice], what: str) -> DicomVolume:
    """Stack ``slices`` (in any order, pixels attached) into a checked volume with rescaled values."""
    if not slices:
        raise InputError(f"{what} holds no DICOM image slices; point to the folder with the image .dcm files.")
    slices, origin, spacing, direction = _geometry(slices, what)
    volume = _rescaled_volume([s.pixels for s in slices], [(s.slope, s.intercept) for s in slices])
    for s in slices:
        s.pixels = None
    image = sitk.GetImageFromArray(volume)
    image.SetOrigin(tuple(float(v) for v in origin))
    image.SetSpacing(tuple(float(v) for v in spacing))
    image.SetDirection(tuple(float(v) for v in direction.ravel()))
    return DicomVolume(
        image=image,
        slice_files=[s.path for s in slices],
        slice_frames=[s.frame for s in slices],
        instance_numbers=[s.instance_number for s in slices],
    )


def _rescaled_volume(stored: List[np.ndarray], rescale: List[Tuple[float, float]]) -> np.ndarray:
    """Apply slope/intercept per slice; int16 / int32 when the result is integral, else float32."""
    integral = all(float(a).is_integer() and float(b).is_integer() for a, b in rescale) and all(
        a.dtype.kind in "iub" for a in stored
    )
    if integral:
        lo = min(float(a.min()) * sl + ic if sl > 0 else float(a.max()) * sl + ic for a, (sl, ic) in zip(stored, rescale))
        hi = max(float(a.max()) * sl + ic if sl > 0 else float(a.min()) * sl + ic for a, (sl, ic) in zip(stored, rescale))
        if -32768 <= lo and hi <= 32767:
            dtype = np.int16
        elif -(2 ** 31) <= lo and hi < 2 ** 31:
            dtype = np.int32
        else:
            dtype = np.float32
    else:
        dtype = np.float32
    out = np.empty((len(stored),) + stored[0].shape, dtype=dtype)
    for k, (a, (sl, ic)) in enumerate(zip(stored, rescale)):
        if dtype == np.float32:
            out[k] = a.astype(np.float64) * sl + ic
        else:
            out[k] = a.astype(np.int64) * int(sl) + int(ic)
    return out


# --------------------------------------------------------------------------------------------
# public entry points


def _set_series_fields(vol: DicomVolume, ds) -> None:
    vol.series_instance_uid = str(ds.get("SeriesInstanceUID", "") or "")
    vol.description = str(ds.get("SeriesDescription", "") or "").strip()
    vol.modality = str(ds.get("Modality", "") or "")


def load_dicom_files(paths: Sequence[str], what: Optional[str] = None) -> DicomVolume:
    """Read an explicit list of DICOM files as ONE volume, whatever their SeriesInstanceUIDs.

    Used where the folder layout, not the UIDs, defines the volume (data set loaders). Files are
    sorted by position and checked exactly as in :func:`read_dicom_series`.

    Raises:
        InputError: empty list, a non-DICOM / non-image / corrupt file, or an inconsistent volume.
    """
    paths = [os.fspath(p) for p in paths]
    what = what or (os.path.dirname(paths[0]) if paths else "the file list")
    slices: List[_Slice] = []
    first_ds = None
    for p in paths:
        if not os.path.isfile(p):
            raise InputError(f"No such file: {p}. Check the path and try again.")
        if _scan_file(p) is None:  # classifies the file and checks its header and pixel extent
            if not _has_dicm_marker(p) and not p.lower().endswith(_DICOM_SUFFIXES):
                raise InputError(f"{p} is not a DICOM file (no DICM marker); remove it from the list or folder.")
            raise InputError(f"{p} is a DICOM file without an image (e.g. a report or structure set); remove it.")
        file_slices, ds = _load_file(p)
        slices.extend(file_slices)
        first_ds = first_ds if first_ds is not None else ds
    vol = _assemble(slices, what)
    if first_ds is not None:
        _set_series_fields(vol, first_ds)
    return vol


def load_dicom_series(folder: str, series: Optional[str] = None, recursive: bool = True) -> DicomVolume:
    """Like :func:`read_dicom_series`, but returns the :class:`DicomVolume` (per-slice file names)."""
    folder = os.fspath(folder)
    headers = _scan_folder(folder, recursive)
    chosen = _select_series(folder, _group_series(headers, folder), series)
    what = f"DICOM series {chosen.id} in {folder}"
    slices: List[_Slice] = []
    for h in chosen.headers:
        slices.extend(_load_file(h.path)[0])
    vol = _assemble(slices, what)
    vol.series_instance_uid = chosen.series_uid
    vol.description = chosen.headers[0].description
    vol.modality = chosen.headers[0].modality
    return vol


def read_dicom_series(folder: str, series: Optional[str] = None, recursive: bool = True) -> sitk.Image:
    """Read one DICOM image series from ``folder`` (scanned recursively) as a 3D image.

    Args:
        folder: the folder holding the .dcm files (sub-folders are included).
        series: needed when the folder holds several series: a series ``id``, SeriesInstanceUID or
            SeriesDescription as listed by :func:`list_dicom_series` (exact match).
        recursive: False reads only the files directly in ``folder``.

    Returns:
        The volume, slices in position order, values rescaled (CT in HU), geometry as described
        in the module docstring.

    Raises:
        InputError: no image series; several series and no (or an ambiguous / unknown) ``series``;
            a corrupt or truncated file; an inconsistent series (orientations, sizes, duplicate
            positions, non-uniform gaps, gantry tilt).
    """
    return load_dicom_series(folder, series=series, recursive=recursive).image


def read_dicom_file(path: str) -> sitk.Image:
    """Read one DICOM file as a 3D image: one slice, or all frames of an enhanced multi-frame file.

    The slice thickness of a single slice is SpacingBetweenSlices, else SliceThickness, else 1 mm.

    Raises:
        InputError: not DICOM, not an image, truncated/corrupt, or a multi-frame file without
            per-frame positions.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"No such file: {path}. Check the path and try again.")
    if not _has_dicm_marker(path) and not path.lower().endswith(_DICOM_SUFFIXES):
        raise InputError(f"{path} is not a DICOM file (no DICM marker); check the file or its export.")
    header = _scan_file(path)
    if header is None:
        raise InputError(f"{path} is a DICOM file without an image (e.g. a report or structure set); select an image file.")
    return _assemble(_load_file(path)[0], path).image
