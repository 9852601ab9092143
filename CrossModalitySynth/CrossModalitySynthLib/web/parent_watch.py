"""A page process ends when the gateway that started it goes, however the gateway ended.

The gateway gives each page process a pipe as its stdin and never writes to it; when the gateway
exits, even by SIGKILL, the pipe closes and the read below returns, and the page process exits.
"""

import os
import sys
import threading


def exit_when_stdin_closes() -> None:
    """Start a daemon thread that ends the process when stdin reaches end of file."""

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(1):
                pass
        except (OSError, ValueError):
            pass
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
