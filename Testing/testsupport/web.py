"""Real servers and a real browser for the web-page tests (no tests in this file).

:class:`ServedStudy` runs ``cmsynth reader-study serve`` as a real subprocess on 127.0.0.1 and
reads the links it prints. :func:`browser` starts Debian's Chromium through Playwright
(``executable_path``: no browser download). Without Chromium, Playwright or the ``web`` extra the
tests FAIL when the environment variable CI is set and are skipped otherwise.

A ``sitecustomize`` put on the served study's ``PYTHONPATH`` adds an audit hook to the gateway and
to every page process it starts: each ``open`` of a path whose name ends in ``_key.json`` is
appended to a log, so a test can show that the answer key is never opened.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from typing import Dict, Optional

import pytest

BROWSERS = ("chromium", "chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LINK = re.compile(r"^(reader (\S+)|coordinator \(progress\)): (http://\S+)$")

AUDIT_HOOK = textwrap.dedent(
    """
    import os, sys
    _log = os.environ.get("CMS_TEST_KEY_OPEN_LOG")
    def _hook(event, args):
        if _log and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            name = os.fsdecode(args[0])
            if name.endswith("_key.json"):
                with open(_log, "a") as f:  # not a *_key.json: no recursion
                    f.write(name + "\\n")
    sys.addaudithook(_hook)
    """
)


def missing(what: str):
    """Fail under CI, skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must run the browser tests: make test installs them)")
    pytest.skip(what)


def chromium_path() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    missing("no chromium binary (apt-get install chromium)")


def require_web() -> None:
    try:
        import trame_slicer  # noqa: F401
        import aiohttp  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as exc:
        missing(f"the web extra is not installed ({exc})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout_s: float = 60.0) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listened on port {port} in time")


def drag_across(page, selector: str) -> None:
    """A left-button drag from the middle of ``selector`` down and to the right (Slicer's
    window/level gesture in a slice view), then a moment for the new frame."""
    box = page.locator(selector).bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 150, cy + 120, steps=10)
    page.mouse.up()
    page.wait_for_timeout(1500)


def http_get(url: str, timeout: float = 30.0):
    """(status, body text) of a GET; a 4xx/5xx is returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class ServedStudy:
    """``cmsynth reader-study serve STUDY`` in a subprocess; ``links`` maps reader id (and
    "coordinator") to the printed link."""

    def __init__(self, study_dir: str, work_dir: str, port: Optional[int] = None):
        self.study_dir = study_dir
        self.port = port or free_port()
        self.work_dir = work_dir
        self.key_open_log = os.path.join(work_dir, "key_opens.log")
        self.hook_dir = os.path.join(work_dir, "audit_hook")
        os.makedirs(self.hook_dir, exist_ok=True)
        with open(os.path.join(self.hook_dir, "sitecustomize.py"), "w") as f:
            f.write(AUDIT_HOOK)
        self.proc: Optional[subprocess.Popen] = None
        self.links: Dict[str, str] = {}

    def start(self, timeout_s: float = 60.0) -> "ServedStudy":
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([self.hook_dir] + [p for p in [env.get("PYTHONPATH")] if p])
        env["CMS_TEST_KEY_OPEN_LOG"] = self.key_open_log
        env["PYTHONUNBUFFERED"] = "1"
        cmsynth = os.path.join(os.path.dirname(sys.executable), "cmsynth")
        log = os.path.join(self.work_dir, "logs")
        os.makedirs(log, exist_ok=True)
        self.proc = subprocess.Popen(
            [cmsynth, "reader-study", "serve", self.study_dir, "--port", str(self.port), "--log-dir", log],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        self.links = {}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"serve ended early (exit {self.proc.wait()}): {self.proc.stdout.read()}")
            m = LINK.match(line.strip())
            if m:
                self.links[m.group(2) or "coordinator"] = m.group(3).replace("localhost", "127.0.0.1", 1)
            if line.startswith("Send each reader"):
                break
        wait_listening(self.port, deadline - time.monotonic())
        return self

    def kill(self) -> None:
        """SIGKILL the gateway (its page processes end when their stdin pipe closes)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def key_opens(self):
        if not os.path.exists(self.key_open_log):
            return []
        with open(self.key_open_log) as f:
            return f.read().split()


def browser(playwright):
    """Debian's Chromium, headless, through Playwright."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)


def wslink_texts(frames) -> list:
    """Every string (keys and values) in the wslink messages of a page's websocket frames.

    A frame is a 12-byte header (message id, offset, total size; little-endian) and a chunk of a
    msgpack message; the chunks of one message are joined, the message unpacked, and its strings
    collected. Byte strings (the views' JPEG images) are left out."""
    import msgpack

    pending, texts = {}, []

    def walk(obj):
        if isinstance(obj, str):
            texts.append(obj)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(k)
                walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)

    for frame in frames:
        if isinstance(frame, str):
            texts.append(frame)
            continue
        msg_id, offset, size = (int.from_bytes(frame[i:i + 4], "little") for i in (0, 4, 8))
        buf = pending.setdefault(msg_id, bytearray(size))
        buf[offset:offset + len(frame) - 12] = frame[12:]
        if offset + len(frame) - 12 >= size:
            walk(msgpack.unpackb(bytes(pending.pop(msg_id)), raw=False, strict_map_key=False))
    return texts


def answers(study_dir: str, reader: str):
    """The answer records of ``reader`` (the session log's JSON lines)."""
    path = os.path.join(study_dir, "answers", reader + ".jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
