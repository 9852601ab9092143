"""The inference engine: model bundle + input volumes -> output volume on the input's exact grid.

    bundle spec -> check inputs -> prepare (reorient, resample, normalise, pad)
    -> network on batches of slices (torch or ONNX Runtime; fp32 or bf16, "auto" per bundle; CPU or CUDA)
    -> restore (de-normalise, un-pad, back onto the input grid)

:func:`synthesize` returns a synthetic CT (or MRI), :func:`segment` a liver label map. Long work
reports progress through a callback and stops at the next batch when a :class:`CancelToken` is
set.
"""

from .cancel import CancelToken, Cancelled
from .engine import EngineOptions, LoadedModel, load_model, segment, synthesize
from .progress import Progress

__all__ = [
    "CancelToken",
    "Cancelled",
    "EngineOptions",
    "LoadedModel",
    "Progress",
    "load_model",
    "segment",
    "synthesize",
]
