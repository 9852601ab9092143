"""Pytest fixtures that set up a real MRML scene from the slicer-core package (filled in by the MRML work)."""
