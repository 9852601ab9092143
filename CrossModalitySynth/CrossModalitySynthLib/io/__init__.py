"""Volume input/output: NIfTI, NRRD, MetaImage, DICOM series and single DICOM files.

``read_volume`` and ``write_volume`` are the only entry points the rest of the project uses.
"""

from .formats import SUPPORTED_READ, SUPPORTED_WRITE, format_of
from .reader import read_volume, read_label_volume, describe_volume
from .writer import write_volume, atomic_folder, atomic_output, check_output_path, replace_folder

__all__ = [
    "SUPPORTED_READ",
    "SUPPORTED_WRITE",
    "format_of",
    "read_volume",
    "read_label_volume",
    "describe_volume",
    "write_volume",
    "atomic_folder",
    "atomic_output",
    "check_output_path",
    "replace_folder",
]
