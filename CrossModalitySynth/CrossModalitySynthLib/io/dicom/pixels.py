"""Reading pixel data: full datasets, stored pixel arrays, the GDCM fallback and the modality rescale."""

from typing import List, Tuple

import numpy as np
import SimpleITK as sitk

from ...errors import InputError
from .headers import _QuietPydicom, _corrupt, _dcmread, _expected_pixel_bytes, has_dicm_marker


def _read_dataset(path: str):
    try:
        ds = _dcmread(path, force=not has_dicm_marker(path))
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
        with _QuietPydicom():  # e.g. "excess padding to be removed": the size is checked here
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
