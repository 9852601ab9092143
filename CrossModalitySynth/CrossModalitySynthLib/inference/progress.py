"""The inference stages' progress: :class:`..progress.Progress` counting slices in the network stages.

The engine calls ``callback(stage, done, total)`` with ``stage`` one of "load", "prepare",
"synthesize", "segment", "restore", "write"; ``done`` and ``total`` count slices in the network
stages (:data:`SLICE_STAGES`) and steps otherwise.
"""

from ..progress import Progress as _Progress
from ..progress import ProgressCallback

__all__ = ["Progress", "ProgressCallback", "SLICE_STAGES"]

#: stages whose counts are slices (the others count steps)
SLICE_STAGES = ("synthesize", "segment")


class Progress(_Progress):
    """The ``--progress bar|json|none`` of the engine commands (see :class:`..progress.Progress`)."""

    def __init__(self, mode: str = "bar", stream=None) -> None:
        super().__init__(mode, stream, unit="step", units=dict.fromkeys(SLICE_STAGES, "slice"))
