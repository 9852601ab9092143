"""The process bridge: run ``cmsynth`` in a separate process and follow it without blocking.

The Slicer module runs exactly the command a user runs headless (as a request to the session's
``cmsynth worker``, :mod:`.worker`, with the same options: :func:`run_args`)::

    PythonSlicer -m CrossModalitySynthLib.cli.main run --model ID [--liver-model ID]
        --out DIR --progress json [--device ...] [--precision ...] INPUT...

:class:`CmsynthProcess` starts it with :class:`subprocess.Popen` in a new session (POSIX; a new
process group on Windows), so that Cancel can end the whole process tree and nothing else. A
background thread reads the JSON lines of stdout into a queue; a second thread keeps the tail of
stderr. The GUI never blocks: a ``qt.QTimer`` calls :meth:`CmsynthProcess.poll`, which returns the
progress events received since the last call and, once the process has ended, sets
:attr:`CmsynthProcess.outcome` (succeeded with the final ``{"stage": "done", ...}`` object, failed
with the engine's one-line message, or cancelled).

Cancel sends SIGTERM to the process group (``cmsynth`` then stops at the next batch, writing
nothing) and SIGKILL to the group ``grace_s`` seconds later if anything is still alive; after the
main process has ended, the group is killed once more so no grandchild survives. On Windows the
tree is ended with ``taskkill /T /F`` at once: ``CTRL_BREAK_EVENT`` cannot reach a
``CREATE_NO_WINDOW`` child of a GUI process such as Slicer (Windows is not run on the test machines).

Nothing here imports Qt or Slicer.
"""

import collections
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, List, Optional, Sequence

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"

_ERROR_LINE = re.compile(r"^cmsynth(?: [\w-]+)?: error: (?P<message>.+)$")
_STDERR_TAIL = 200
_IS_WINDOWS = os.name == "nt"


# --------------------------------------------------------------------------- command line


def library_root() -> str:
    """The folder that contains the ``CrossModalitySynthLib`` package (the module's folder in Slicer)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def python_executable(which: Callable[[str], Optional[str]] = shutil.which) -> str:
    """Slicer's ``PythonSlicer`` when it is on the PATH (inside Slicer it is), else this Python.

    ``PythonSlicer`` is Slicer's own interpreter launcher: it sees the packages installed in
    Slicer (torch from the PyTorch extension, SimpleITK ...), not those of another Python.
    """
    found = which("PythonSlicer")
    return found if found else sys.executable


def run_args(
    model: str,
    inputs: Sequence[str],
    out_dir: str,
    liver_model: Optional[str] = None,
    device: str = "auto",
    precision: str = "auto",
    batch_size: Optional[int] = None,
    threads: Optional[int] = None,
    registry: Optional[str] = None,
    force: bool = False,
) -> dict:
    """The ``args`` of a ``cmsynth worker`` ``run`` request (the worker adds ``--progress json``).

    :param model: synthesis model id or bundle folder.
    :param inputs: input volume files, in the model's input order.
    :param out_dir: output folder (must not exist yet, or be empty).
    :param liver_model: liver segmentation model id or bundle folder, or None.
    :param device: ``auto``, ``cpu`` or ``cuda``; :param precision: ``auto`` (bf16 only where the
        bundle records a passing bf16 gate for the device), ``fp32`` or ``bf16``.
    """
    if not inputs:
        raise ValueError("run_args needs at least one input file")
    args = {"model": str(model), "liver_model": str(liver_model) if liver_model else None, "out": str(out_dir),
            "no_overlays": True, "device": device, "precision": precision,
            "batch_size": None if batch_size is None else int(batch_size),
            "threads": None if threads is None else int(threads), "registry": str(registry) if registry else None,
            "force": bool(force), "inputs": [str(p) for p in inputs]}
    return {k: v for k, v in args.items() if v is not None}


def run_command(python: str, model: str, inputs: Sequence[str], out_dir: str, **options) -> List[str]:
    """The ``cmsynth run`` command line (a list, never a shell string) of the request
    :func:`run_args` builds with the same arguments: what the worker runs, as one process.

    :param python: interpreter to run it with (:func:`python_executable`).
    """
    from ..cli.worker_cmd import request_argv

    return [python, "-m", "CrossModalitySynthLib.cli.main"] + request_argv(
        {"command": "run", "args": run_args(model, inputs, out_dir, **options)})


def child_environment(base: Optional[Dict[str, str]] = None, lib_root: Optional[str] = None) -> Dict[str, str]:
    """The environment of the child: ``lib_root`` first on PYTHONPATH, unbuffered UTF-8 output."""
    env = dict(os.environ if base is None else base)
    root = lib_root or library_root()
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    env["PYTHONPATH"] = os.pathsep.join([root] + paths)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


# --------------------------------------------------------------------------- process groups


def popen_in_own_group(argv: Sequence[str], env: Optional[Dict[str, str]], cwd: Optional[str],
                       stdin=subprocess.DEVNULL) -> subprocess.Popen:
    """Start ``argv`` with text pipes for stdout and stderr in its own process group (a new
    session on POSIX, so pgid == pid; a new process group on Windows), so that its whole tree can
    be ended and nothing else."""
    kwargs = dict(stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, text=True,
                  encoding="utf-8", errors="replace", bufsize=1)
    if _IS_WINDOWS:
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
    else:
        kwargs["start_new_session"] = True
    return subprocess.Popen([str(a) for a in argv], **kwargs)


def signal_group(proc: subprocess.Popen, kill: bool = True) -> None:
    """SIGKILL (or SIGTERM) the process group of ``proc``; on Windows ``taskkill /T /F`` at once."""
    if _IS_WINDOWS:
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


def keep_tail(stream, tail) -> None:
    """Reader thread: append each line of ``stream`` (without its newline) to the deque ``tail``,
    then close the stream."""
    try:
        for line in iter(stream.readline, ""):
            tail.append(line.rstrip("\n"))
    finally:
        stream.close()


def wait_for_outcome(followed, timeout: Optional[float], interval: float,
                     on_progress: Optional[Callable[["ProgressEvent"], None]], what: str):
    """Call ``followed.poll()`` until ``followed.outcome`` is set (scripts and tests; the GUI
    polls from a timer); TimeoutError after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        for event in followed.poll():
            if on_progress is not None:
                on_progress(event)
        if followed.outcome is not None:
            return followed.outcome
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not finish within {timeout} s")
        time.sleep(interval)


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class ProgressEvent:
    """One progress line of ``cmsynth --progress json``."""

    stage: str
    done: int
    total: int
    fraction: float
    elapsed_s: float

    @property
    def text(self) -> str:
        """What the progress bar shows, e.g. ``"synthesize 12 / 28"``."""
        if self.total > 1:
            return f"{self.stage} {self.done} / {self.total}"
        return self.stage

    @classmethod
    def from_dict(cls, d: dict) -> "ProgressEvent":
        total = int(d.get("total", 0) or 0)
        done = int(d.get("done", 0) or 0)
        fraction = d.get("fraction")
        if fraction is None:
            fraction = done / total if total else 1.0
        return cls(str(d.get("stage", "")), done, total, float(fraction), float(d.get("elapsed_s", 0.0) or 0.0))


@dataclass
class ProcessOutcome:
    """How a finished process ended."""

    status: str  #: SUCCEEDED, FAILED or CANCELLED
    returncode: Optional[int]
    result: Optional[dict] = None  #: the final {"stage": "done", ...} object (success only)
    message: str = ""  #: one line for the user (failure or cancel)
    stderr_tail: List[str] = field(default_factory=list)


def error_message(stderr_lines: Sequence[str], returncode: Optional[int]) -> str:
    """The one line to show for a failed run.

    ``cmsynth`` prints user errors as ``cmsynth run: error: <sentence>``; that sentence is
    returned as is. A crash (traceback) gives its last line with the exit code; a process killed
    by a signal says so (SIGKILL is usually the system running out of memory).
    """
    lines = [ln.rstrip() for ln in stderr_lines if ln and ln.strip()]
    for line in reversed(lines):
        m = _ERROR_LINE.match(line.strip())
        if m:
            return m.group("message").strip()
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (the system may have run out of memory)" if name == "SIGKILL" else ""
        return f"The synthesis process was killed by {name}{hint}."
    if lines:
        return f"The synthesis process stopped with exit code {returncode}: {lines[-1].strip()}"
    return f"The synthesis process stopped with exit code {returncode} and no message."


# --------------------------------------------------------------------------- the process


class CmsynthProcess:
    """A ``cmsynth`` child process followed through its JSON progress lines.

    :param argv: the command (see :func:`run_command`).
    :param env: environment (see :func:`child_environment`); default: this process's.
    :param cwd: working directory of the child.
    :param grace_s: seconds between SIGTERM and SIGKILL on cancel.
    """

    def __init__(self, argv: Sequence[str], env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
                 grace_s: float = 3.0):
        self.argv = [str(a) for a in argv]
        self.env = env
        self.cwd = cwd
        self.grace_s = float(grace_s)
        self.outcome: Optional[ProcessOutcome] = None
        self.last_progress: Optional[ProgressEvent] = None
        self._proc: Optional[subprocess.Popen] = None
        self._events: "queue.Queue" = queue.Queue()
        self._result: Optional[dict] = None
        self._stdout_other: Deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self._stderr: Deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self._threads: List[threading.Thread] = []
        self._cancel_requested = False
        self._kill_at: Optional[float] = None
        self._tree_killed = False

    # ---- state -----------------------------------------------------------------------------
    @property
    def pid(self) -> Optional[int]:
        return None if self._proc is None else self._proc.pid

    @property
    def started(self) -> bool:
        return self._proc is not None

    @property
    def running(self) -> bool:
        return self._proc is not None and self.outcome is None

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    # ---- start -----------------------------------------------------------------------------
    def start(self) -> "CmsynthProcess":
        if self._proc is not None:
            raise RuntimeError("the process was already started")
        self._proc = popen_in_own_group(self.argv, self.env, self.cwd)
        for target, stream in ((self._read_stdout, self._proc.stdout), (self._read_stderr, self._proc.stderr)):
            t = threading.Thread(target=target, args=(stream,), daemon=True, name=f"cmsynth-{self._proc.pid}-reader")
            t.start()
            self._threads.append(t)
        return self

    # ---- reader threads (no GUI or MRML access here) ---------------------------------------
    def _read_stdout(self, stream) -> None:
        try:
            for line in iter(stream.readline, ""):
                text = line.strip()
                if not text:
                    continue
                try:
                    obj = json.loads(text)
                except ValueError:
                    self._stdout_other.append(text)
                    continue
                if not isinstance(obj, dict) or "stage" not in obj:
                    self._stdout_other.append(text)
                elif obj.get("stage") == "done":
                    self._result = obj
                else:
                    self._events.put(ProgressEvent.from_dict(obj))
        finally:
            stream.close()

    def _read_stderr(self, stream) -> None:
        keep_tail(stream, self._stderr)

    # ---- polling (GUI thread) --------------------------------------------------------------
    def poll(self) -> List[ProgressEvent]:
        """Progress events received since the last call; sets :attr:`outcome` once finished."""
        events = self._drain([])
        if self._proc is None or self.outcome is not None:
            return events
        if self._kill_at is not None and time.monotonic() >= self._kill_at and self._proc.poll() is None:
            self._signal_tree(kill=True)
            self._kill_at = None
        code = self._proc.poll()
        if code is None:
            return events
        if self._cancel_requested and not self._tree_killed:
            self._signal_tree(kill=True)  # grandchildren, if any, go too
        for t in self._threads:
            t.join(timeout=5.0)
        self._drain(events)  # lines that arrived between the drain above and the end of the readers
        self.outcome = self._make_outcome(code)
        return events

    def _drain(self, events: List[ProgressEvent]) -> List[ProgressEvent]:
        """Append the queued progress events to ``events`` (and remember the last one)."""
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        if events:
            self.last_progress = events[-1]
        return events

    def _make_outcome(self, code: int) -> ProcessOutcome:
        tail = list(self._stderr)
        if self._cancel_requested:
            return ProcessOutcome(CANCELLED, code, None, "Cancelled; nothing was added to the scene.", tail)
        if code == 0 and self._result is not None:
            return ProcessOutcome(SUCCEEDED, code, self._result, "", tail)
        if code == 0:
            return ProcessOutcome(FAILED, code, None,
                                  "The synthesis process ended without reporting a result; see the log for details.",
                                  tail + list(self._stdout_other))
        return ProcessOutcome(FAILED, code, None, error_message(tail, code), tail)

    def wait(self, timeout: Optional[float] = None, interval: float = 0.05,
             on_progress: Optional[Callable[[ProgressEvent], None]] = None) -> ProcessOutcome:
        """Poll until the process has ended (for scripts and tests; the GUI uses a timer)."""
        return wait_for_outcome(self, timeout, interval, on_progress, "cmsynth")

    # ---- cancel ----------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the process tree to stop: SIGTERM now, SIGKILL after ``grace_s`` (see :meth:`poll`)."""
        if self._proc is None or self.outcome is not None:
            return
        self._cancel_requested = True
        if self._proc.poll() is not None:
            return
        if self.grace_s <= 0 or _IS_WINDOWS:  # Windows: no signal reaches the child, taskkill does
            self._signal_tree(kill=True)
        else:
            self._signal_tree(kill=False)
            self._kill_at = time.monotonic() + self.grace_s

    def kill(self) -> None:
        """End the whole process tree at once (SIGKILL); the outcome is CANCELLED."""
        if self._proc is None or self.outcome is not None:
            return
        self._cancel_requested = True
        self._signal_tree(kill=True)

    def _signal_tree(self, kill: bool) -> None:
        proc = self._proc
        if proc is None:
            return
        signal_group(proc, kill=kill or _IS_WINDOWS)
        if kill or _IS_WINDOWS:
            self._tree_killed = True
