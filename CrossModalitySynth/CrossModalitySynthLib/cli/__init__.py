"""The ``cmsynth`` command line."""
