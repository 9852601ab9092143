"""User-facing errors.

Every error a user can cause (bad input file, wrong channel count, existing output ...) is a
:class:`CMSynthError` whose message is one sentence: what is wrong and what to do. The command
line prints it without a traceback and exits non-zero; the Slicer module shows it as is.
"""


class CMSynthError(Exception):
    """Base class of all errors meant to be shown to a user as one sentence."""

    exit_code = 1


class InputError(CMSynthError):
    """An input file, folder or volume cannot be used (missing, corrupt, wrong shape ...)."""


class OutputError(CMSynthError):
    """An output cannot be written (exists, unwritable folder ...)."""


class ConfigError(CMSynthError):
    """A configuration, model spec or command-line combination is invalid."""


class NoSpaceError(OutputError):
    """An output could not be written because its disk is full (or the user's quota is used up)."""
