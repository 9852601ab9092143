"""Writing volumes atomically: a temporary file next to the target, then a rename.

No partial output is ever left at the target path: a crash or an error while writing leaves
either nothing or the previous file.
"""

import contextlib
import fnmatch
import os
import shutil
import tempfile
from typing import Iterator, List, Optional, Sequence

import SimpleITK as sitk

from ..errors import OutputError
from .formats import DETACHED_HEADER, SUPPORTED_WRITE, suffix_of
from .verify import disk_errors, flush_to_disk, free_bytes, no_space_error, verify_volume_file


def check_output_path(path: str, overwrite: bool = False) -> str:
    """Validate an output file path before any work is done; returns it as ``str``.

    Raises OutputError when it exists (and ``overwrite`` is False), when its folder is missing
    or not writable, or when it names a folder.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise OutputError(f"Output {path} is a folder; give a file name such as {os.path.join(path, 'out.nii.gz')}.")
    if os.path.exists(path) and not overwrite:
        raise OutputError(f"Output {path} already exists; choose another name or pass --overwrite.")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise OutputError(f"Output folder {parent} does not exist; create it first.")
    if not _can_create_in(parent):
        raise OutputError(f"Output folder {parent} is not writable; choose another location.")
    return path


def check_output_suffix(path: str, allowed=SUPPORTED_WRITE, what: str = "volume") -> None:
    """Raise OutputError unless ``path`` ends in one of the ``allowed`` suffixes (checked before any work)."""
    if suffix_of(path) not in allowed:
        raise OutputError(f"Cannot write a {what} to {path}: use a name ending in {', '.join(allowed)}.")


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _can_create_in(folder: str) -> bool:
    # os.access answers yes for root even on read-only mounts: try creating a file instead
    try:
        fd, probe = tempfile.mkstemp(prefix=".cmsynth-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.remove(probe)
    return True


@contextlib.contextmanager
def atomic_output(path: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    The temporary name keeps the target's suffix so format detection by name works. On error the
    temporary file is removed and the target is untouched.
    """
    path = check_output_path(path, overwrite)
    parent = os.path.dirname(os.path.abspath(path))
    suffix = suffix_of(path) or os.path.splitext(path)[1]
    with disk_errors(path):
        fd, tmp = tempfile.mkstemp(prefix=".cmsynth-tmp-", suffix=suffix, dir=parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())  # mkstemp makes 0600; outputs get the usual umask-based mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


#: The overwrite rule of every command, as its --help says it.
OVERWRITE_RULE = ("--overwrite replaces only the outputs this command writes; an output folder holding any other "
                  "file is refused (the files are named) and nothing is changed")


def foreign_files(folder: str, ours: Sequence[str]) -> List[str]:
    """Files and folders inside ``folder`` (paths relative to it, '/'-separated) that match none of
    the patterns ``ours`` (fnmatch, e.g. ``"summary.json"``, ``"overlay_*.png"``, ``"plots/*"``)."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel_root = os.path.relpath(root, folder).replace(os.sep, "/")
        rel_root = "" if rel_root == "." else rel_root + "/"
        for d in list(dirs):
            rel = rel_root + d
            if not any(p.startswith(rel + "/") for p in ours):
                found.append(rel + "/")
                dirs.remove(d)
        for f in files:
            rel = rel_root + f
            if not any(fnmatch.fnmatchcase(rel, p) for p in ours):
                found.append(rel)
    return sorted(found)


def check_folder_replaceable(folder: str, overwrite: bool, ours: Sequence[str], command: str) -> None:
    """The overwrite rule for an output folder (:data:`OVERWRITE_RULE`): a missing or empty folder is
    fine; a non-empty one needs ``overwrite`` and may hold only files matching ``ours``."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputError(f"Output {folder} is a file; give a folder.")
    if not os.path.isdir(folder) or not os.listdir(folder):
        return
    if not overwrite:
        raise OutputError(f"Output folder {folder} already exists and is not empty; choose another or pass --overwrite.")
    other = foreign_files(folder, ours)
    if other:
        more = f" and {len(other) - 3} more" if len(other) > 3 else ""
        raise OutputError(
            f"Output folder {folder} holds files that {command} does not write ({', '.join(other[:3])}{more}); "
            "move them away or choose another folder (--overwrite replaces only what the command writes)."
        )


def replace_folder(tmp: str, folder: str, ours: Optional[Sequence[str]] = None, command: str = "cmsynth") -> str:
    """Move the finished folder ``tmp`` onto ``folder`` (beside it, same file system), replacing any
    previous one: the old folder is renamed aside, ``tmp`` renamed in, then the old one deleted; if
    the second rename fails the old folder is put back. ``tmp`` is made rwxr-xr-x first (mkdtemp
    makes it private; an output folder is ordinary data). Returns ``folder``.

    With ``ours`` (the patterns of the files the command writes) the overwrite rule is checked
    again just before the swap: an old folder holding any other file is left as it is
    (OutputError).
    """
    if ours is not None:
        check_folder_replaceable(folder, True, ours, command)
    os.chmod(tmp, 0o755)
    if not os.path.exists(folder):
        os.rename(tmp, folder)
        return folder
    old = tmp + ".old"
    os.rename(folder, old)
    try:
        os.rename(tmp, folder)
    except BaseException:
        os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return folder


def write_volume(image: sitk.Image, path: str, overwrite: bool = False, compress: bool = True) -> str:
    """Write ``image`` to ``path`` (format from the suffix), atomically. Returns the path.

    Detached-header formats (.nhdr, .mhd) are written into a temporary folder beside the target
    and moved into place data-file first, header last, so a reader never finds a header whose
    data file is missing.

    What was written is checked before it is renamed into place (:mod:`.verify`): a full disk or
    a short write raises OutputError ("not enough space on ...") and leaves nothing behind.
    """
    path = os.fspath(path)
    suffix = suffix_of(path)
    if suffix not in SUPPORTED_WRITE:
        raise OutputError(
            f"Cannot write {path}: unsupported output format; use one of {', '.join(SUPPORTED_WRITE)}."
        )
    check_output_path(path, overwrite)
    use_compression = compress and suffix not in (".nii",)
    if suffix in DETACHED_HEADER:
        _write_detached(image, path, use_compression)
        return path
    with atomic_output(path, overwrite=True) as tmp:
        _execute_write(image, tmp, use_compression, path)
        verify_volume_file(tmp, path, _data_bytes(image))
    return path


def _data_bytes(image: sitk.Image) -> int:
    return image.GetNumberOfPixels() * image.GetNumberOfComponentsPerPixel() * image.GetSizeOfPixelComponent()


def _execute_write(image: sitk.Image, path: str, compress: bool, target: str) -> None:
    try:
        sitk.WriteImage(image, path, useCompression=compress)
    except RuntimeError as exc:
        if free_bytes(path) < max(_data_bytes(image), 1 << 20):
            raise no_space_error(target) from None
        raise OutputError(f"Could not write {target}: {str(exc).strip().splitlines()[-1][:200]}") from None


def _write_detached(image: sitk.Image, path: str, compress: bool) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    with disk_errors(path):
        tmpdir = tempfile.mkdtemp(prefix=".cmsynth-tmp-", dir=parent)
    try:
        _execute_write(image, os.path.join(tmpdir, name), compress, path)
        for f in os.listdir(tmpdir):
            with disk_errors(path):
                flush_to_disk(os.path.join(tmpdir, f))
        verify_volume_file(os.path.join(tmpdir, name), path, _data_bytes(image))
        produced = sorted(os.listdir(tmpdir))
        data_files = [f for f in produced if f != name]
        for f in data_files:  # data first
            os.replace(os.path.join(tmpdir, f), os.path.join(parent, f))
        os.replace(os.path.join(tmpdir, name), path)  # header last
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
