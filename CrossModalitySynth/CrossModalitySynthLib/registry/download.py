"""Verified downloads: stream to a temporary file, check size and sha256, then rename.

A truncated or corrupted transfer never leaves a file at the destination: the temporary file is
deleted and the error says so.
"""

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from typing import Callable, Optional

from ..errors import CMSynthError
from ..progress import Progress

ProgressFn = Callable[[int, Optional[int]], None]  # (bytes so far, total or None)


class DownloadError(CMSynthError):
    """A download failed, was truncated or did not match its checksum."""


def download(
    url: str,
    dest: str,
    sha256: str,
    expected_size: Optional[int] = None,
    progress: Optional[ProgressFn] = None,
    show_bar: bool = True,
    timeout: float = 60.0,
    chunk: int = 1 << 16,
) -> str:
    """Download ``url`` to ``dest``; returns ``dest`` only if size and sha256 match.

    Args:
        url: http(s):// or file:// address.
        dest: final path; its folder must exist.
        sha256: expected hex digest of the whole file.
        expected_size: bytes, when known (a shorter transfer is reported as truncated).
        progress: called with (bytes received, total bytes or None) after each chunk.
        show_bar: draw a tqdm progress bar on stderr (when it is a terminal).
    """
    folder = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=folder)
    digest = hashlib.sha256()
    received = 0
    bar = Progress("bar" if show_bar else "none", unit="B", unit_scale=True, leave=True)
    try:
        try:
            response = urllib.request.urlopen(url, timeout=timeout)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DownloadError(f"Could not download {url}: {getattr(exc, 'reason', exc)}. "
                                "Check the network, or fetch the file elsewhere and import it.") from None
        with response, os.fdopen(fd, "wb") as out:
            fd = None
            header_len = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            total = int(header_len) if header_len and header_len.isdigit() else expected_size
            while True:
                try:
                    block = response.read(chunk)
                except (http.client.IncompleteRead, OSError) as exc:
                    raise DownloadError(
                        f"Download of {url} was cut off after {received} bytes ({type(exc).__name__}); "
                        "the partial file was deleted; try again."
                    ) from None
                if not block:
                    break
                out.write(block)
                digest.update(block)
                received += len(block)
                bar(os.path.basename(dest), received, total)
                if progress is not None:
                    progress(received, total)
        for want in (total, expected_size):
            if want is not None and received != want:
                raise DownloadError(
                    f"Download of {url} was truncated: received {received} of {want} bytes; "
                    "the partial file was deleted; try again."
                )
        if digest.hexdigest() != sha256.lower():
            raise DownloadError(
                f"Download of {url} does not match its sha256 (corrupted in transfer or replaced on the server); "
                "the file was deleted. Try again, or import a verified copy with 'cmsynth models import'."
            )
        os.replace(tmp, dest)
        return dest
    finally:
        bar.close()
        if fd is not None:
            os.close(fd)
        if os.path.exists(tmp):
            os.remove(tmp)
