"""Outputs never destroy inputs: checks made before any work, with or without ``--overwrite``.

An output is refused when it is an input (the same path, a symbolic link to it or a hard link
of it), when it lies inside an input folder (a DICOM series folder), or, for an output folder,
when an input lies inside it.
"""

import os
from typing import Iterable, Optional

from ..errors import OutputError


def _inside(path: str, folder: str) -> bool:
    return path != folder and path.startswith(folder.rstrip(os.sep) + os.sep)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_input_as_output(output: str, inputs: Iterable[Optional[str]], folder_output: bool = False) -> None:
    """Raise OutputError when writing ``output`` (a file, or with ``folder_output`` a folder that is
    replaced as a whole) could change one of ``inputs`` (None entries are ignored)."""
    out_real = os.path.realpath(output)
    for inp in inputs:
        if not inp:
            continue
        in_real = os.path.realpath(inp)
        if out_real == in_real or _same_file(output, inp):
            raise OutputError(f"Output {output} is the input {inp}; choose another output name "
                              "(--overwrite never replaces an input).")
        if os.path.isdir(in_real) and _inside(out_real, in_real):
            raise OutputError(f"Output {output} lies inside the input folder {inp}; write it somewhere else "
                              "(an input folder is never changed).")
        if folder_output and _inside(in_real, out_real):
            raise OutputError(f"Output folder {output} holds the input {inp}; choose another output folder "
                              "(--overwrite never replaces an input).")
