"""File formats we read and write, recognised by file name."""

import os
from typing import Optional

# suffix -> human name; longest suffixes first so ".nii.gz" wins over ".gz"
_FORMATS = [
    (".seg.nrrd", "NRRD"),
    (".nii.gz", "NIfTI"),
    (".nii", "NIfTI"),
    (".nrrd", "NRRD"),
    (".nhdr", "NRRD"),
    (".mha", "MetaImage"),
    (".mhd", "MetaImage"),
    (".dcm", "DICOM"),
    (".ima", "DICOM"),
]

SUPPORTED_WRITE = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".seg.nrrd")
SUPPORTED_READ = SUPPORTED_WRITE + (".dcm", ".ima", "<DICOM folder>")

# formats whose header points at a separate data file written beside it
DETACHED_HEADER = (".nhdr", ".mhd")


def format_of(path: str) -> Optional[str]:
    """Human name of the format of ``path`` ("NIfTI", "NRRD", ...), "DICOM" for folders, else None."""
    if os.path.isdir(path):
        return "DICOM"
    low = str(path).lower()
    for suffix, name in _FORMATS:
        if low.endswith(suffix):
            return name
    return None


def suffix_of(path: str) -> str:
    """The recognised suffix of ``path`` (".nii.gz", ".mha" ...), or "" when unknown."""
    low = str(path).lower()
    for suffix, _ in _FORMATS:
        if low.endswith(suffix):
            return suffix
    return ""
