"""NIfTI integrity check, and the NaN/Inf voxels ITK hides.

ITK reads a truncated NIfTI file without complaint (missing voxels come back as zeros), so we
compare the data size the header promises with what the file holds before reading it. A gzip
stream is decompressed once (streaming, nothing kept) to count its bytes; a corrupt or cut
gzip stream fails its end-of-stream or CRC check.

ITK's NIfTI reader also turns NaN and infinite voxels into 0. The same pass reads the raw
float32/float64 data and returns where the non-finite values are, so that the reader can put
them back and they are refused exactly like those of an NRRD file.
"""

import gzip
import struct
import zlib
from typing import List, NamedTuple, Optional

import numpy as np

from ..errors import InputError

_CHUNK = 1 << 20


def _open(path: str):
    return gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")


#: NIfTI datatype codes of the float types that can hold NaN/Inf
_FLOAT_TYPES = {16: "f4", 64: "f8"}


class NonFinite(NamedTuple):
    """Where a NIfTI file's raw data is NaN or infinite: flat voxel indices (x fastest, the order
    of SimpleITK's array) and the stored values with scl_slope/scl_inter applied."""

    indices: np.ndarray
    values: np.ndarray


class _Header(NamedTuple):
    expected: int
    vox_offset: int
    dtype: Optional[np.dtype]
    slope: float
    inter: float


def _parse(header: bytes, path: str) -> _Header:
    for endian in ("<", ">"):
        (sizeof_hdr,) = struct.unpack(endian + "i", header[:4])
        if sizeof_hdr == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            (datatype,) = struct.unpack(endian + "h", header[70:72])
            (bitpix,) = struct.unpack(endian + "h", header[72:74])
            (vox_offset,) = struct.unpack(endian + "f", header[108:112])
            slope, inter = struct.unpack(endian + "2f", header[112:120])
            break
        if sizeof_hdr == 540:
            (datatype,) = struct.unpack(endian + "h", header[12:14])
            (bitpix,) = struct.unpack(endian + "h", header[14:16])
            dims = struct.unpack(endian + "8q", header[16:80])
            (vox_offset,) = struct.unpack(endian + "q", header[168:176])
            slope, inter = struct.unpack(endian + "2d", header[176:192])
            break
    else:
        raise InputError(f"{path} is not a NIfTI file (bad header size field); check the file or export it again.")
    ndim = dims[0]
    if not 1 <= ndim <= 7:
        raise InputError(f"{path} has a corrupt NIfTI header (dimension count {ndim}); export it again.")
    nvox = 1
    for d in dims[1 : ndim + 1]:
        nvox *= max(int(d), 1)
    code = _FLOAT_TYPES.get(int(datatype))
    dtype = np.dtype(endian + code) if code else None
    if not (np.isfinite(slope) and slope != 0):
        slope, inter = 1.0, 0.0  # NIfTI: a zero or non-finite slope means "no scaling"
    return _Header(int(vox_offset) + nvox * int(bitpix) // 8, int(vox_offset), dtype, float(slope),
                   float(inter) if np.isfinite(inter) else 0.0)


class _FiniteScan:
    """Counts the non-finite values of a float data stream fed in blocks of any size."""

    def __init__(self, hdr: _Header) -> None:
        self.hdr = hdr
        self.skip = hdr.vox_offset
        self.rest = b""
        self.done = 0  # voxels seen
        self.indices: List[np.ndarray] = []
        self.values: List[np.ndarray] = []

    def feed(self, block: bytes) -> None:
        if self.skip:
            cut = min(self.skip, len(block))
            block, self.skip = block[cut:], self.skip - cut
        data = self.rest + block
        n = len(data) // self.hdr.dtype.itemsize
        self.rest = data[n * self.hdr.dtype.itemsize:]
        arr = np.frombuffer(data, dtype=self.hdr.dtype, count=n)
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            self.indices.append(bad + self.done)
            self.values.append(arr[bad].astype(np.float64) * self.hdr.slope + self.hdr.inter)
        self.done += n

    def result(self) -> Optional[NonFinite]:
        if not self.indices:
            return None
        idx, val = np.concatenate(self.indices), np.concatenate(self.values)
        keep = idx < (self.hdr.expected - self.hdr.vox_offset) // self.hdr.dtype.itemsize  # not trailing bytes
        return NonFinite(idx[keep], val[keep]) if keep.any() else None


def check_nifti_complete(path: str) -> Optional[NonFinite]:
    """Raise InputError if the NIfTI file at ``path`` is truncated or its gzip stream is corrupt.

    Returns where its float data holds NaN or infinite values (None when nowhere, or when the
    data is not float32/float64).
    """
    try:
        with _open(path) as f:
            header = f.read(540)
            if len(header) < 348:
                raise InputError(f"{path} is truncated: shorter than a NIfTI header; export it again.")
            hdr = _parse(header, path)
            scan = _FiniteScan(hdr) if hdr.dtype is not None else None
            total = len(header)
            if scan:
                scan.feed(header)
            while True:
                block = f.read(_CHUNK)
                if not block:
                    break
                total += len(block)
                if scan:
                    scan.feed(block)
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(f"{path} is truncated or corrupt ({exc}); export it again.") from None
    if total < hdr.expected:
        raise InputError(
            f"{path} is truncated: the header promises {hdr.expected} bytes but the file holds {total}; export it again."
        )
    return scan.result() if scan else None
