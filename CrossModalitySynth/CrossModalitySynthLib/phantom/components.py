"""The unit the renderer paints: a :class:`Component` yields :class:`Layer` s.

A component is one anatomical structure (or a few that share work, e.g. the trunk's skin, fat,
muscle wall and cavity, which all come from one outline). It has a bounding box in *reference*
space (millimetres, LPS: +x patient left, +y posterior, +z superior, before the smooth random
deformation) and a function that, given reference coordinates of some voxels, returns layers:
signed distances with the tissue and label they paint. Layers are painted in order, later over
earlier (painter's algorithm), each with its partial-volume fraction.
"""

from typing import Callable, List, Optional, Sequence

import numpy as np


class Layer:
    """One painted region: ``sd`` < 0 inside (mm), drawn with ``tissue`` and label id ``label``.

    ``width`` (optional) is the partial-volume ramp width in mm to use instead of the one the
    renderer estimates from the gradient of ``sd`` (pass the width of a parallel layer to save
    work). ``body`` marks the layer whose inside is the body mask.
    """

    __slots__ = ("sd", "tissue", "label", "width", "body")

    def __init__(self, sd, tissue: str, label: int, width=None, body: bool = False):
        self.sd = sd
        self.tissue = tissue
        self.label = int(label)
        self.width = width
        self.body = bool(body)


# layers(x, y, z, width) -> list of Layer; ``width(sd)`` returns the ramp width for an sd array
LayerFunction = Callable[[np.ndarray, np.ndarray, np.ndarray, Callable], List[Layer]]


class Component:
    """A named structure: reference-space bounding box (mm) + a layer function."""

    def __init__(self, name: str, lo: Sequence[float], hi: Sequence[float], layers: LayerFunction,
                 tissues: Optional[Sequence[str]] = None):
        self.name = name
        self.lo = np.asarray(lo, dtype=float)
        self.hi = np.asarray(hi, dtype=float)
        self.layers = layers
        self.tissues = tuple(tissues or ())

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Component({self.name!r}, lo={self.lo.round(1).tolist()}, hi={self.hi.round(1).tolist()})"
