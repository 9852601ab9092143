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
from .formats import DETACHED_HEADER, SUPPORTED_WRITE, format_of, suffix_of
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


@contextlib.contextmanager
def atomic_folder(folder: str, overwrite: bool, ours: Sequence[str], command: str, check: bool = True,
                  prefix: Optional[str] = None) -> Iterator[str]:
    """Write a folder atomically: yield an empty staging folder beside ``folder``; when the block
    ends without an error it replaces ``folder`` (:func:`replace_folder`: the old folder is kept
    until the new one is complete and renamed in, and the overwrite rule is checked again just
    before the swap); after an error, a cancel or a full disk the staging folder is removed and
    ``folder`` is as it was.

    ``ours`` are the patterns of the files the command writes, ``command`` its name for the
    messages (:data:`OVERWRITE_RULE`); ``check=False`` when the caller has checked the rule itself.
    """
    if check:
        check_folder_replaceable(folder, overwrite, ours, command)
    parent = os.path.dirname(os.path.abspath(folder))
    try:
        with disk_errors(folder):
            tmp = tempfile.mkdtemp(prefix=prefix or ".{}.tmp-".format(os.path.basename(os.path.abspath(folder))), dir=parent)
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"Cannot write in {parent} ({exc.strerror}); choose a writable location.") from None
    try:
        with disk_errors(folder):
            yield tmp
        replace_folder(tmp, folder, ours=ours, command=command)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


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


#: Header fields ITK's NIfTI reader puts into an image's metadata (nifti1 header fields and ITK's
#: notes about them). They describe the file that was read; in another format they are stale
#: (srow_x ... still hold the source grid) and MetaImage cannot even store some of them.
NIFTI_HEADER_KEYS = frozenset(
    ["ITK_FileNotes", "ITK_sform_corrected", "aux_file", "bitpix", "cal_max", "cal_min", "datatype", "descrip",
     "dim_info", "intent_code", "intent_name", "intent_p1", "intent_p2", "intent_p3", "nifti_type", "qfac",
     "qform_code", "qform_code_name", "qoffset_x", "qoffset_y", "qoffset_z", "qto_xyz", "qto_ijk", "quatern_b",
     "quatern_c", "quatern_d", "scl_inter", "scl_slope", "sform_code", "sform_code_name", "slice_code",
     "slice_duration", "slice_end", "slice_start", "srow_x", "srow_y", "srow_z", "sto_xyz", "sto_ijk", "toffset",
     "vox_offset", "xyzt_units"]
    + [f"dim[{k}]" for k in range(8)] + [f"pixdim[{k}]" for k in range(8)]
)
#: Notes ITK's readers add about the file they read (its reader, its original direction and spacing).
READER_NOTE_KEYS = frozenset(["ITK_InputFilterName", "ITK_original_direction", "ITK_original_spacing"])


def _foreign_metadata(image: sitk.Image, suffix: str) -> List[str]:
    """The metadata keys of ``image`` that do not belong in a ``suffix`` file: the reader's notes
    always, NIfTI header fields outside NIfTI, NRRD fields (``NRRD_*``) outside NRRD, and for
    MetaImage also empty values (which ITK's MetaImage writer refuses with a console warning)."""
    family = format_of(suffix) if suffix else None
    out = []
    for key in image.GetMetaDataKeys():
        foreign = (key in READER_NOTE_KEYS
                   or (family != "NIfTI" and key in NIFTI_HEADER_KEYS)
                   or (family != "NRRD" and key.startswith("NRRD_"))
                   or (family == "MetaImage" and not image.GetMetaData(key).strip()))
        if foreign:
            out.append(key)
    return out


def _without_foreign_metadata(image: sitk.Image, suffix: str) -> sitk.Image:
    """``image`` itself when all its metadata belongs in a ``suffix`` file, else a copy without the rest."""
    foreign = set(_foreign_metadata(image, suffix))
    if not foreign:
        return image
    # a new image, not sitk.Image(image) + EraseMetaData: with SimpleITK 2.5 erasing a key of a shallow
    # copy also erases it from the original and leaves the copy with no metadata at all
    out = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(image), isVector=image.GetNumberOfComponentsPerPixel() > 1)
    out.CopyInformation(image)
    for key in image.GetMetaDataKeys():
        if key not in foreign:
            out.SetMetaData(key, image.GetMetaData(key))
    return out


def _execute_write(image: sitk.Image, path: str, compress: bool, target: str) -> None:
    image = _without_foreign_metadata(image, suffix_of(target))
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
