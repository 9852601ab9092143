"""The clinical pipeline: MRI -> synthetic CT + liver segmentation + overlay pictures + summary.

:func:`run_case` does one case into one output folder (written atomically);
:func:`run_batch` runs a folder or CSV of cases, skipping the finished ones.
"""

from .batch import find_cases, run_batch
from .clinical import CaseInputs, run_case
from .overlay import save_overlays

__all__ = ["CaseInputs", "find_cases", "run_batch", "run_case", "save_overlays"]
