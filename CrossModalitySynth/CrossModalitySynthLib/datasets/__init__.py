"""Loaders for the public data sets the project trains and evaluates on.

Each loader knows one on-disk layout, checks it (a missing folder or file is an
:class:`~CrossModalitySynthLib.errors.InputError` naming the path that was expected) and returns
small dataclasses holding :class:`SimpleITK.Image` volumes whose label maps use the project's
ids (:mod:`CrossModalitySynthLib.labels`) and lie exactly on their image's grid.

- :mod:`.chaos`: CHAOS 2019, DICOM + PNG ground truth (CT liver; MR liver, kidneys, spleen).
- :mod:`.amos`: AMOS 2022, NIfTI; CT (ids < 500) and MRI (ids >= 500), 15 organs mapped to ours.
- :mod:`.synthrad`: SynthRAD2025 Task 1, paired MR/CT/mask MetaImages per region.

Usage::

    from CrossModalitySynthLib.datasets import chaos, amos, synthrad
    case = chaos.load_ct("/data/CHAOS", "1")          # case.image (HU), case.label (uint8)
    mr = chaos.load_mr("/data/CHAOS", "1", "T1in")
    ct_ids = amos.list_cases("/data/amos22", modality="CT", split="Tr")
    pair = synthrad.load_case("/data/synthrad2025", "1ABA005")   # pair.mr, pair.ct, pair.mask
"""

from . import amos, chaos, synthrad
from ._common import DatasetWarning

__all__ = ["amos", "chaos", "synthrad", "DatasetWarning"]
