"""The Slicer side of ``cmsynth worker`` (slicer_support.worker), with a real worker child: the
first request starts it, the second reuses it and its loaded model, a failed request leaves it
running, Cancel kills its whole process tree at once and the next request starts a new one, and
stop() ends it."""

import os
import sys

import pytest
import SimpleITK as sitk

from testsupport.bundles import bundles_and_case
from testsupport.machine import group_gone

from CrossModalitySynthLib.phantom import write_cases
from CrossModalitySynthLib.slicer_support.process import CANCELLED, FAILED, SUCCEEDED, child_environment
from CrossModalitySynthLib.slicer_support.worker import CmsynthWorker


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sworker")
    case = bundles_and_case(root)
    return root, case


def _args(root, case, out, **extra):
    return {"model": str(root / "m"), "out": str(out), "device": "cpu", "no_overlays": True,
            "inputs": [os.path.join(case, "t1_in.nii.gz"), os.path.join(case, "t1_opp.nii.gz")], **extra}


def test_one_worker_serves_several_requests_and_keeps_the_model(setup, tmp_path):
    root, case = setup
    worker = CmsynthWorker(python=sys.executable, env=child_environment())
    try:
        first = worker.submit("run", _args(root, case, tmp_path / "a", liver_model=str(root / "liver")))
        out = first.wait(timeout=300)
        assert out.status == SUCCEEDED, out.message
        assert first.models_already_loaded == [] and first.last_progress is not None
        pid = worker.pid
        second = worker.submit("run", _args(root, case, tmp_path / "b", liver_model=str(root / "liver")))
        assert second.wait(timeout=300).status == SUCCEEDED
        assert worker.pid == pid and worker.starts == 1
        loaded = second.models_already_loaded  # both models of the case, loaded by the first request
        assert len(loaded) == 2 and "test-mr-to-ct" in loaded
        assert sitk.ReadImage(str(tmp_path / "b" / "synthetic.nii.gz")).GetSize() == \
            sitk.ReadImage(os.path.join(case, "t1_in.nii.gz")).GetSize()
        bad = worker.submit("run", _args(root, case, tmp_path / "c", model=str(tmp_path / "no_such_bundle")))
        outcome = bad.wait(timeout=120)
        assert outcome.status == FAILED and "no_such_bundle" in outcome.message and "\n" not in outcome.message
        assert worker.alive and worker.pid == pid  # the session's worker goes on
        assert not (tmp_path / "c").exists()
    finally:
        worker.stop()
    assert not worker.alive


def test_cancel_kills_the_worker_tree_and_the_next_request_starts_a_new_one(setup, tmp_path):
    root, _ = setup
    big = write_cases(str(tmp_path / "big"), n_cases=1, seed=5, size="chaos")[0]  # long enough to cancel
    worker = CmsynthWorker(python=sys.executable, env=child_environment())
    try:
        req = worker.submit("run", _args(root, big, tmp_path / "x"))
        while req.last_progress is None and req.outcome is None:
            req.poll()
        assert req.outcome is None, req.outcome
        pgid = worker.pid
        req.cancel()
        req.poll()
        assert req.outcome.status == CANCELLED
        assert not worker.alive and group_gone(pgid)
        assert not (tmp_path / "x").exists()
        again = worker.submit("run", _args(root, big, tmp_path / "y"))
        assert worker.starts == 2 and worker.pid != pgid
        assert again.wait(timeout=600).status == SUCCEEDED
    finally:
        worker.stop()


def test_stop_ends_an_idle_worker():
    worker = CmsynthWorker(python=sys.executable, env=child_environment())
    worker._start()
    pid = worker.pid
    worker.stop()
    assert group_gone(pid)
    worker.stop()  # twice is harmless
