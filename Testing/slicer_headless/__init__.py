"""A headless Slicer for driving the module file in tests (see :mod:`.environment`).

Real: slicer-core's MRML and logics, Slicer's own Python layer from ../shared/slicer-reference, the
module file, the project's library and the ``cmsynth`` child. Stand-ins (strict, not Qt): ``qt``,
``ctk``, the qMRML widgets and ``slicer.app``.
"""
