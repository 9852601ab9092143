"""The process bridge: what the Slicer module's ``cmsynth worker`` child is started with, and what
it reports back.

The Slicer module runs exactly the command a user runs headless, as a request to the session's
``cmsynth worker`` (:mod:`.worker`) with the options of :func:`run_args`::

    PythonSlicer -m CrossModalitySynthLib.cli.main run --model ID [--liver-model ID]
        --out DIR --progress json [--device ...] [--precision ...] INPUT...

The child runs in its own process group (:func:`popen_in_own_group`: a new session on POSIX, a new
process group on Windows), so that Cancel can end the whole process tree and nothing else
(:func:`kill_group`). On Windows the tree is ended with ``taskkill /T /F``: ``CTRL_BREAK_EVENT``
cannot reach a ``CREATE_NO_WINDOW`` child of a GUI process such as Slicer (Windows is not run on
the test machines). Progress comes back as :class:`ProgressEvent`, the end as a
:class:`ProcessOutcome` with the one line for the user (:func:`error_message`).

Nothing here imports Qt or Slicer.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

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


def popen_in_own_group(argv: Sequence[str], env: Optional[Dict[str, str]], cwd: Optional[str]) -> subprocess.Popen:
    """Start ``argv`` with text pipes for stdin, stdout and stderr in its own process group (a new
    session on POSIX, so pgid == pid; a new process group on Windows), so that its whole tree can
    be ended and nothing else."""
    kwargs = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                  text=True, encoding="utf-8", errors="replace", bufsize=1)
    if _IS_WINDOWS:
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
    else:
        kwargs["start_new_session"] = True
    return subprocess.Popen([str(a) for a in argv], **kwargs)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc``; on Windows ``taskkill /T /F``."""
    if _IS_WINDOWS:
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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
