"""Digital abdominal phantom: paired CT and MRI (T1 in/opposed phase, T2) of synthetic patients.

A patient is a set of implicit organ shapes in physical millimetres (LPS), varied per case by
random organ parameters and a smooth random deformation, rendered with partial volume on any
grid. CT comes from literature HU values (portal-venous phase), MRI from literature 1.5 T
T1 / T2 / T2* / proton density / fat fraction through the gradient-echo and spin-echo signal
equations. Everything is deterministic for a seed.

Modules, one job each:

- :mod:`.shapes`: signed-distance primitives; :mod:`.deformation`: the smooth random warp.
- :mod:`.trunk`, :mod:`.organs`, :mod:`.gut`: the anatomy; :mod:`.anatomy` assembles a patient.
- :mod:`.tissues`: the tissue property table; :mod:`.render`: painting on a grid.
- :mod:`.ct`, :mod:`.mri`: image formation; :mod:`.grids`: CT / MR grids.
- :mod:`.case`: :func:`make_case`; :mod:`.writer`: :func:`write_cases` (case folders on disk).
"""

from .case import FILES, PhantomCase, make_case
from .grids import SIZES
from .mri import Sequences
from .tissues import TISSUE_TABLE_VERSION, TISSUES
from .writer import case_name, write_case, write_cases

__all__ = [
    "FILES",
    "PhantomCase",
    "SIZES",
    "Sequences",
    "TISSUES",
    "TISSUE_TABLE_VERSION",
    "case_name",
    "make_case",
    "write_case",
    "write_cases",
]
