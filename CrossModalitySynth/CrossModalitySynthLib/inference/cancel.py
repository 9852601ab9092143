"""Cooperative cancellation: the engine checks the token between batches."""

import threading

from ..errors import CMSynthError


class Cancelled(CMSynthError):
    """The work was cancelled by the user; nothing was written."""

    exit_code = 130


class CancelToken:
    """Set from any thread (a signal handler, the GUI); checked by the engine between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("Cancelled; nothing was written.")
