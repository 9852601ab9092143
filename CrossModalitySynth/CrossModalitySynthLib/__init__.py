"""CrossModalitySynth core library.

Everything that computes lives here: volume IO, the digital phantom, geometry-exact
preprocessing, networks, inference, metrics. It imports no Qt and imports ``slicer`` only
inside :mod:`CrossModalitySynthLib.slicer_support.mrml`.

The volume type used everywhere is :class:`SimpleITK.Image`: array, origin, spacing and
direction travel together from reading to writing.
"""

__version__ = "0.1.0"
