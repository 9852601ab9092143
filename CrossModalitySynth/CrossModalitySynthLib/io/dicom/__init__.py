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

Why the explicit checks (what SimpleITK's and pydicom's own readers do with these files):
``Testing/Benchmarks/results/dicom_reader_comparison.md``.
"""

import contextlib
import os
import sys
import warnings
from typing import List, Optional, Sequence

import SimpleITK as sitk

from ...errors import InputError
from .assemble import _assemble, _load_file
from .headers import _scan_file, _scan_folder, has_dicm_marker
from .series import _group_series, _select_series, _series_info
from .types import _DICOM_SUFFIXES, DicomVolume, DicomWarning, _Slice

__all__ = [
    "DicomVolume",
    "DicomWarning",
    "list_dicom_series",
    "read_dicom_series",
    "read_dicom_file",
    "load_dicom_series",
    "load_dicom_files",
    "plain_dicom_warnings",
]

# The public classes live in .types; keep their qualified names as before the split into a package
# (CrossModalitySynthLib.io.dicom.DicomVolume), for pickles, warning filters and documentation.
DicomVolume.__module__ = __name__
DicomWarning.__module__ = __name__


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


class plain_dicom_warnings(contextlib.ContextDecorator):
    """Inside (or in a function it decorates), each :class:`DicomWarning` is shown as ONE plain line
    on stderr, ``<prefix>: warning: <message>``, without the source path, line and category Python
    prints; other warnings are shown as before. For the command line (``cmsynth info`` ...)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._saved = []

    def __enter__(self):
        previous = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, DicomWarning):
                print(f"{self.prefix}: warning: {message}", file=sys.stderr, flush=True)
            else:
                previous(message, category, filename, lineno, file, line)

        self._saved.append(previous)
        warnings.showwarning = show
        return self

    def __exit__(self, *exc):
        warnings.showwarning = self._saved.pop()
        return False


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
            if not has_dicm_marker(p) and not p.lower().endswith(_DICOM_SUFFIXES):
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
    if not has_dicm_marker(path) and not path.lower().endswith(_DICOM_SUFFIXES):
        raise InputError(f"{path} is not a DICOM file (no DICM marker); check the file or its export.")
    header = _scan_file(path)
    if header is None:
        raise InputError(f"{path} is a DICOM file without an image (e.g. a report or structure set); select an image file.")
    return _assemble(_load_file(path)[0], path).image
