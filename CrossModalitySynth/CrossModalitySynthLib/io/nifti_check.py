"""NIfTI integrity check.

ITK reads a truncated NIfTI file without complaint (missing voxels come back as zeros), so we
compare the data size the header promises with what the file holds before reading it. A gzip
stream is decompressed once (streaming, nothing kept) to count its bytes; a corrupt or cut
gzip stream fails its end-of-stream or CRC check.
"""

import gzip
import struct
import zlib

from ..errors import InputError

_CHUNK = 1 << 20


def _open(path: str):
    return gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")


def _expected_bytes(header: bytes, path: str) -> int:
    """vox_offset + number of voxels * bytes per voxel, from a NIfTI-1 or NIfTI-2 header."""
    for endian in ("<", ">"):
        (sizeof_hdr,) = struct.unpack(endian + "i", header[:4])
        if sizeof_hdr == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            (bitpix,) = struct.unpack(endian + "h", header[72:74])
            (vox_offset,) = struct.unpack(endian + "f", header[108:112])
            break
        if sizeof_hdr == 540:
            (bitpix,) = struct.unpack(endian + "h", header[14:16])
            dims = struct.unpack(endian + "8q", header[16:80])
            (vox_offset,) = struct.unpack(endian + "q", header[168:176])
            break
    else:
        raise InputError(f"{path} is not a NIfTI file (bad header size field); check the file or export it again.")
    ndim = dims[0]
    if not 1 <= ndim <= 7:
        raise InputError(f"{path} has a corrupt NIfTI header (dimension count {ndim}); export it again.")
    nvox = 1
    for d in dims[1 : ndim + 1]:
        nvox *= max(int(d), 1)
    return int(vox_offset) + nvox * int(bitpix) // 8


def check_nifti_complete(path: str) -> None:
    """Raise InputError if the NIfTI file at ``path`` is truncated or its gzip stream is corrupt."""
    try:
        with _open(path) as f:
            header = f.read(540)
            if len(header) < 348:
                raise InputError(f"{path} is truncated: shorter than a NIfTI header; export it again.")
            expected = _expected_bytes(header, path)
            total = len(header)
            while True:
                block = f.read(_CHUNK)
                if not block:
                    break
                total += len(block)
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(f"{path} is truncated or corrupt ({exc}); export it again.") from None
    if total < expected:
        raise InputError(
            f"{path} is truncated: the header promises {expected} bytes but the file holds {total}; export it again."
        )
