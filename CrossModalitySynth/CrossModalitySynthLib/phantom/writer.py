"""Writing phantom cases: one folder per case, created atomically.

Each case is written into a hidden temporary folder inside the output folder and renamed to
``case_XXX`` only when every file is complete, so a crash or an interruption never leaves a
partial case behind. Existing case folders are refused unless ``overwrite`` is given; then the
old folder is replaced only after the new one is complete.
"""

import json
import os
from typing import Callable, List, Optional

from ..errors import OutputError
from ..io import atomic_folder, write_volume
from ..io.writer import check_folder_replaceable
from .case import FILES, PhantomCase, make_case


#: every file a case folder holds: --overwrite replaces a folder holding nothing else
CASE_FILES = tuple(FILES) + ("case.json",)


def case_name(index: int) -> str:
    return f"case_{index:03d}"


def write_case(case: PhantomCase, folder: str, overwrite: bool = False) -> str:
    """Write ``case`` to ``folder`` (its parent must exist), atomically. Returns the folder."""
    folder = os.path.abspath(os.fspath(folder))
    parent = os.path.dirname(folder)
    if not os.path.isdir(parent):
        raise OutputError(f"Output folder {parent} does not exist; create it first.")
    if os.path.exists(folder) and not overwrite:
        raise OutputError(f"{folder} already exists; choose another output folder or pass --overwrite.")
    with atomic_folder(folder, overwrite, CASE_FILES, "cmsynth phantom") as tmp:
        for fname, image in case.images.items():
            write_volume(image, os.path.join(tmp, fname))
        with open(os.path.join(tmp, "case.json"), "w", encoding="utf-8") as f:
            json.dump(case.meta, f, indent=1, sort_keys=True)
            f.write("\n")
        # temporary files and folders are private; a case is ordinary data (rw-r--r--, rwxr-xr-x)
        for fname in os.listdir(tmp):
            os.chmod(os.path.join(tmp, fname), 0o644)
    return folder


def write_cases(out: str, n_cases: int = 1, seed: int = 0, size: str = "small", oblique: bool = False,
                lesions: bool = True, overwrite: bool = False,
                progress: Optional[Callable[[int, int, str], None]] = None) -> List[str]:
    """Write ``out/case_000 ... case_{n-1}``; case ``i`` uses seed ``seed + i``.

    Every target folder is checked before anything is written: without ``overwrite`` an
    existing case folder raises :class:`OutputError` and nothing changes. ``progress`` is
    called as ``progress(done, total, path)`` after each case. Returns the case folders.
    """
    if n_cases < 1:
        raise OutputError("The number of cases must be at least 1.")
    if seed < 0:
        raise OutputError("The seed must be a non-negative integer.")
    out = os.path.abspath(os.fspath(out))
    if os.path.exists(out) and not os.path.isdir(out):
        raise OutputError(f"{out} is a file; give a folder for the phantom cases.")
    targets = [os.path.join(out, case_name(i)) for i in range(n_cases)]
    existing = [t for t in targets if os.path.exists(t)]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputError(f"{existing[0]}{more} already exists; choose another --out folder or pass --overwrite.")
    for t in existing:  # before the first case is written
        check_folder_replaceable(t, overwrite, CASE_FILES, "cmsynth phantom")
    created = _missing_folders(out)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create {out} ({exc.strerror}); choose a writable location.") from None
    written = []
    try:
        for i, target in enumerate(targets):
            case = make_case(seed + i, size=size, oblique=oblique, lesions=lesions)
            written.append(write_case(case, target, overwrite=overwrite))
            if progress is not None:
                progress(i + 1, n_cases, target)
    except BaseException:
        for folder in created:  # the folders this call made, deepest first, if still empty
            try:
                os.rmdir(folder)
            except OSError:
                break
        raise
    return written


def _missing_folders(path: str) -> List[str]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while path and not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing
