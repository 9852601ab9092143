"""Checking what was written, and saying "not enough space" when a disk is full.

SimpleITK's NIfTI writer does not report a failed write: on a full disk it leaves a truncated
file and returns normally. Every volume we write is therefore checked before it is renamed into
place: flushed to disk (``fsync``), then NIfTI files are checked against the size their header
promises (and their gzip stream read to the end, :mod:`.nifti_check`); other formats are read
back. Python's own writes (JSON, CSV, PNG) raise ``OSError(ENOSPC)``; :func:`disk_errors` turns
that into the same one-sentence :class:`OutputError`.
"""

import contextlib
import errno
import os
from typing import Iterator, Optional

import SimpleITK as sitk

from ..errors import InputError, NoSpaceError, OutputError
from .formats import format_of

_NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _nearest_existing(path: str) -> str:
    p = os.path.abspath(path)
    while not os.path.exists(p):
        p = os.path.dirname(p)
    return p


def mount_point(path: str) -> str:
    """The mount point of the file system holding ``path`` (or its nearest existing parent)."""
    p = _nearest_existing(path)
    while not os.path.ismount(p):
        p = os.path.dirname(p)
    return p


def free_bytes(path: str) -> int:
    """Bytes free for an ordinary user on the file system holding ``path``."""
    st = os.statvfs(_nearest_existing(path))
    return st.f_bavail * st.f_frsize


def no_space_error(target: str) -> NoSpaceError:
    """The one-sentence error for a write that failed because the disk is full."""
    mnt = mount_point(target)
    return NoSpaceError(
        f"Could not write {target}: not enough space on {mnt} ({free_bytes(mnt) // 1024} KiB free); "
        "free some space or choose another location (nothing partial was left behind)."
    )


def is_no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


@contextlib.contextmanager
def disk_errors(target: str) -> Iterator[None]:
    """Turn a full-disk ``OSError`` raised inside the block, or a :class:`NoSpaceError` about a
    temporary file inside it, into :func:`no_space_error` for ``target``."""
    try:
        yield
    except NoSpaceError:
        raise no_space_error(target) from None
    except OSError as exc:
        if is_no_space(exc):
            raise no_space_error(target) from None
        raise


def flush_to_disk(path: str) -> None:
    """``fsync`` a written file so that a late full-disk error shows now, not after the rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _incomplete(path: str) -> Optional[str]:
    """Why the volume file at ``path`` is incomplete, or None when it reads back whole."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return "the file is empty"
    if format_of(path) == "NIfTI":
        from .nifti_check import check_nifti_complete

        try:
            check_nifti_complete(path)
        except InputError as exc:
            return str(exc)
        return None
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(path)
        reader.Execute()
    except RuntimeError as exc:
        return str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else "it does not read back"
    return None


def verify_volume_file(written: str, target: str, expected_bytes: int) -> None:
    """Raise OutputError unless the volume file ``written`` (to be renamed to ``target``) is complete.

    ``expected_bytes`` is the uncompressed data size: when the file is incomplete and less than
    that is free, the disk is full and the error says so.
    """
    with disk_errors(target):
        flush_to_disk(written)
    why = _incomplete(written)
    if why is None:
        return
    if free_bytes(written) < max(expected_bytes, 1 << 20):
        raise no_space_error(target)
    raise OutputError(f"Could not write {target} completely ({why}); check the disk and try again.")
