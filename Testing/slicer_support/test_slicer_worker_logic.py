"""Issue 16 item 2: the Slicer module's request to the session's ``cmsynth worker`` is the command a
user runs as ``cmsynth run``, and the worker's temporary folder lives and goes with its process.

The panel itself (two Applies on one worker, Cancel, cleanup, quit) is driven in the headless Slicer:
``Testing/slicer_headless/scenarios.py`` (two_applies_share_one_worker,
cancel_kills_worker_next_apply_starts_new, cleanup_and_quit_stop_the_worker).
"""

import os
import sys

import pytest

from CrossModalitySynthLib.cli.main import build_parser
from CrossModalitySynthLib.cli.worker_cmd import request_argv
from CrossModalitySynthLib.slicer_support import process as P
from CrossModalitySynthLib.slicer_support.worker import CmsynthWorker


@pytest.mark.parametrize("options", [
    dict(),
    dict(liver_model="/models/liver", device="cuda", precision="bf16", batch_size=4, threads=2,
         registry="/reg", force=True),
])
def test_worker_request_parses_as_the_run_command_line(options):
    """The worker parses the request with ``cmsynth run``'s own parser: every option the module
    passes (run_args) reaches the command with the same value."""
    inputs = ["/tmp/a.nrrd", "/tmp/b.nrrd"]
    worker = vars(build_parser().parse_args(request_argv({"id": "r1", "command": "run",
                                                          "args": P.run_args("/models/demo", inputs, "/tmp/out",
                                                                             **options)})))
    expected = dict(vars(build_parser().parse_args(["run", "--model", "/models/demo", "--out", "/tmp/out"] + inputs)),
                    no_overlays=True, progress="json", **options)
    assert set(expected) == set(worker)
    different = {k: (expected[k], worker[k]) for k in expected if k != "func" and expected[k] != worker[k]}
    assert different == {}
    assert worker["no_overlays"] is True and worker["progress"] == "json" and worker["inputs"] == inputs


def test_worker_temporary_folder_is_its_tmpdir_and_goes_with_it(tmp_path):
    """The worker's folder is made under tmp_parent when the process starts, is the child's TMPDIR
    and working directory, and is removed by kill (Cancel) and by stop (cleanup)."""
    worker = CmsynthWorker(python=sys.executable, env=P.child_environment(), tmp_parent=str(tmp_path))
    assert worker.tmpdir is None
    try:
        worker.submit("run", {"model": str(tmp_path / "no_such_bundle"), "out": str(tmp_path / "o"),
                              "inputs": [str(tmp_path / "missing.nii.gz")]}).wait(timeout=120)
        first = worker.tmpdir
        assert os.path.dirname(first) == str(tmp_path) and os.path.isdir(first)
        with open(f"/proc/{worker.pid}/environ", "rb") as f:
            environ = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        assert environ[b"TMPDIR"] == first.encode() and os.readlink(f"/proc/{worker.pid}/cwd") == first
        worker.kill()
        assert not os.path.exists(first) and worker.tmpdir is None
        worker.submit("run", {"model": str(tmp_path / "no_such_bundle"), "out": str(tmp_path / "o"),
                              "inputs": [str(tmp_path / "missing.nii.gz")]}).wait(timeout=120)
        second = worker.tmpdir
        assert second != first and os.path.isdir(second) and worker.starts == 2
    finally:
        worker.stop()
    assert os.listdir(str(tmp_path)) == []
