"""Reading DICOM headers quietly, detecting damaged files and scanning a folder for image files."""

import os
import warnings
from typing import List, Optional

from ...errors import InputError
from .types import _DEFER_BYTES, _DICOM_SUFFIXES, _PIXEL_DATA_TAG, _UNDEFINED_LENGTH, _Header
from .values import _float_or_none, _floats, _int_or_none


def _corrupt(path: str, reason: str) -> InputError:
    return InputError(
        f"{path} is a truncated or corrupt DICOM file ({reason}); copy it again from the source "
        "or remove it from the folder."
    )


def has_dicm_marker(path: str) -> bool:
    """True when ``path`` is a readable file with the DICOM Part-10 "DICM" marker at byte 128."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


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
    marker = has_dicm_marker(path)
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
