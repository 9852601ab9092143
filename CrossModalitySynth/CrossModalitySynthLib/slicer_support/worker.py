"""One ``cmsynth worker`` child per Slicer session, so models stay loaded between Apply presses.

:class:`CmsynthWorker` starts ``PythonSlicer -m CrossModalitySynthLib.cli.main worker`` in its own
process group (:func:`~.process.popen_in_own_group`) on the first request, writes each request as
one JSON line on its stdin and reads the answers in a background thread.
:meth:`CmsynthWorker.submit` returns a :class:`WorkerRequest`: :meth:`~WorkerRequest.poll` from a
GUI timer returns the progress events and sets :attr:`~WorkerRequest.outcome` when the request's
``done`` or ``error`` answer arrives, or when the worker dies.

Each worker process gets its own temporary folder (``cmsynth-worker-*``, under ``tmp_parent``):
its working directory and its ``TMPDIR``, so whatever the child writes there is removed with it.
Cancel kills the worker's whole process tree at once (a request cannot be stopped half way
otherwise) and removes that folder; the next request starts a new worker.
:meth:`CmsynthWorker.stop` ends the worker and removes its folder when the module is cleaned up or
Slicer closes. Nothing here imports Qt or Slicer.
"""

import collections
import itertools
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Callable, Deque, Dict, List, Optional

from .process import (CANCELLED, FAILED, SUCCEEDED, ProcessOutcome, ProgressEvent, _STDERR_TAIL, error_message,
                      kill_group, popen_in_own_group, python_executable)

_ids = itertools.count(1)


class WorkerRequest:
    """One request to the worker: progress events, then an outcome (see the module docstring)."""

    def __init__(self, worker: "CmsynthWorker", request_id: str):
        self.worker = worker
        self.id = request_id
        self.pid = worker.pid  #: the worker process that runs this request (its process group id too)
        self.outcome: Optional[ProcessOutcome] = None
        self.last_progress: Optional[ProgressEvent] = None
        self._events: "queue.Queue" = queue.Queue()
        self._final: Optional[dict] = None
        self._cancel_requested = False

    @property
    def running(self) -> bool:
        return self.outcome is None

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    @property
    def models_already_loaded(self) -> List[str]:
        result = self.outcome.result if self.outcome is not None else None
        return list((result or {}).get("models_already_loaded") or [])

    def poll(self) -> List[ProgressEvent]:
        events: List[ProgressEvent] = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        if events:
            self.last_progress = events[-1]
        if self.outcome is None:
            tail = list(self.worker.stderr_tail)
            if self._cancel_requested:
                self.outcome = ProcessOutcome(CANCELLED, None, None, "Cancelled; nothing was added to the scene.", tail)
            elif self._final is not None:
                if self._final.get("stage") == "done":
                    self.outcome = ProcessOutcome(SUCCEEDED, 0, self._final, "", tail)
                else:
                    self.outcome = ProcessOutcome(FAILED, 1, None, str(self._final.get("error", "")), tail)
            elif not self.worker.alive:
                code = self.worker.returncode
                self.outcome = ProcessOutcome(FAILED, code, None, error_message(tail, code), tail)
            if self.outcome is not None and self.worker._current is self:
                self.worker._current = None
        return events

    def wait(self, timeout: Optional[float] = None, interval: float = 0.05,
             on_progress: Optional[Callable[[ProgressEvent], None]] = None) -> ProcessOutcome:
        """Poll until the outcome is set (scripts and tests; the GUI polls from a timer);
        TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for event in self.poll():
                if on_progress is not None:
                    on_progress(event)
            if self.outcome is not None:
                return self.outcome
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"worker request {self.id} did not finish within {timeout} s")
            time.sleep(interval)

    def cancel(self) -> None:
        """Stop at once: the worker's process tree is killed; the next request starts a new one."""
        if self.outcome is not None:
            return
        self._cancel_requested = True
        self.worker.kill()

    kill = cancel


class CmsynthWorker:
    """The session's worker child, started on the first :meth:`submit`.

    :param python: interpreter of the child (default: :func:`~.process.python_executable`).
    :param env: its environment (see :func:`~.process.child_environment`); default: this process's.
    :param cwd: its working directory; default: its temporary folder.
    :param tmp_parent: where its temporary folder is made (default: the system's).
    """

    def __init__(self, python: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                 cwd: Optional[str] = None, extra_args: Optional[List[str]] = None,
                 tmp_parent: Optional[str] = None):
        self.python = python or python_executable()
        self.env = env
        self.cwd = cwd
        self.tmp_parent = tmp_parent
        self.tmpdir: Optional[str] = None  #: the running worker's temporary folder
        self.extra_args = list(extra_args or [])
        self.stderr_tail: Deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self.starts = 0  #: how many worker processes this session has started
        self._proc: Optional[subprocess.Popen] = None
        self._requests: Dict[str, WorkerRequest] = {}
        self._current: Optional[WorkerRequest] = None
        self._lock = threading.Lock()

    # ---- state -----------------------------------------------------------------------------
    @property
    def pid(self) -> Optional[int]:
        return None if self._proc is None else self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> Optional[int]:
        return None if self._proc is None else self._proc.poll()

    @property
    def busy(self) -> bool:
        return self._current is not None and self._current.outcome is None

    # ---- start and requests ----------------------------------------------------------------
    def _start(self) -> None:
        argv = [self.python, "-m", "CrossModalitySynthLib.cli.main", "worker"] + self.extra_args
        self._remove_tmpdir()
        self.tmpdir = tempfile.mkdtemp(prefix="cmsynth-worker-", dir=self.tmp_parent)
        env = dict(os.environ if self.env is None else self.env)
        for name in ("TMPDIR", "TEMP", "TMP"):
            env[name] = self.tmpdir
        self.stderr_tail.clear()
        try:
            self._proc = popen_in_own_group(argv, env, self.cwd or self.tmpdir)
        except BaseException:
            self._remove_tmpdir()
            raise
        self.starts += 1
        proc = self._proc
        for target, stream in ((self._read_stdout, proc.stdout), (self._read_stderr, proc.stderr)):
            threading.Thread(target=target, args=(stream,), daemon=True, name=f"cmsynth-worker-{proc.pid}").start()

    def submit(self, command: str, args: dict) -> WorkerRequest:
        """Send one ``run`` / ``synthesize`` / ``segment`` request (options by name, see
        ``cmsynth worker``); starts the worker first when there is none."""
        if self.busy:
            raise RuntimeError("the worker is busy with another request")
        if not self.alive:
            self._start()
        request = WorkerRequest(self, f"r{next(_ids)}")
        with self._lock:
            self._requests[request.id] = request
            self._current = request
        line = json.dumps({"id": request.id, "command": command, "args": args})
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker died; the request's poll reports it
        return request

    # ---- reader threads --------------------------------------------------------------------
    def _read_stdout(self, stream) -> None:
        try:
            for line in iter(stream.readline, ""):
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(obj, dict) or "stage" not in obj:
                    continue
                with self._lock:
                    request = self._requests.get(obj.get("id")) if obj.get("id") is not None else self._current
                if request is None:
                    continue
                if obj["stage"] in ("done", "error"):
                    request._final = obj
                else:
                    request._events.put(ProgressEvent.from_dict(obj))
        finally:
            stream.close()

    def _read_stderr(self, stream) -> None:
        try:
            for line in iter(stream.readline, ""):
                self.stderr_tail.append(line.rstrip("\n"))
        finally:
            stream.close()

    # ---- ending ----------------------------------------------------------------------------
    def _remove_tmpdir(self) -> None:
        if self.tmpdir and os.path.isdir(self.tmpdir):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.tmpdir = None

    def kill(self) -> None:
        """End the worker's whole process tree at once and remove its temporary folder."""
        proc = self._proc
        if proc is None:
            self._remove_tmpdir()
            return
        kill_group(proc)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not wait
            pass
        self._remove_tmpdir()

    def stop(self, timeout: float = 10.0) -> None:
        """End the worker: end of its stdin (it finishes the current request), then the tree is
        killed if it is still there after ``timeout`` seconds; its temporary folder is removed."""
        proc = self._proc
        if proc is None:
            self._remove_tmpdir()
            return
        if proc.poll() is None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        self._proc = None
