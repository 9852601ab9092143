"""``cmsynth worker`` (issue 16 item 1), as a real subprocess fed JSON lines on stdin: models stay
loaded between requests (least recently used evicted), a failed request or a malformed line is
answered with one sentence and the worker goes on, results equal the one-shot commands', and end
of stdin ends it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.bundles import bundles_and_case

CMSYNTH = os.path.join(os.path.dirname(sys.executable), "cmsynth")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("worker")
    case = bundles_and_case(root)
    return root, case


def _talk(requests, *options, timeout=600):
    """Run one worker on these lines; returns (answers per request id, all objects, stderr, code)."""
    lines = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in requests)
    proc = subprocess.run([CMSYNTH, "worker", *options], input=lines, capture_output=True, text=True,
                          timeout=timeout)
    objs = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.strip()]
    final = {}
    for o in objs:
        if o.get("stage") in ("done", "error"):
            final.setdefault(o.get("id"), []).append(o)
    return final, objs, proc.stderr, proc.returncode


def _synth(req_id, root, case, out, model="m"):
    return {"id": req_id, "command": "synthesize",
            "args": {"model": str(root / model), "out": str(out), "device": "cpu", "overwrite": True,
                     "inputs": [os.path.join(case, "t1_in.nii.gz"), os.path.join(case, "t1_opp.nii.gz")]}}


def test_models_stay_loaded_and_results_equal_the_one_shot_command(setup, tmp_path):
    root, case = setup
    final, objs, stderr, code = _talk([_synth("a", root, case, tmp_path / "a.nii.gz"),
                                       _synth("b", root, case, tmp_path / "b.nii.gz")])
    assert code == 0, stderr
    assert final["a"][0]["stage"] == "done" and final["a"][0]["models_already_loaded"] == []
    assert final["b"][0]["stage"] == "done" and final["b"][0]["models_already_loaded"] == ["test-mr-to-ct"]
    assert any(o.get("stage") not in ("done", "error") for o in objs)  # the command's own progress lines
    one_shot = tmp_path / "c.nii.gz"
    subprocess.run([CMSYNTH, "synthesize", "--model", str(root / "m"), "--out", str(one_shot), "--device", "cpu",
                    "--progress", "none", os.path.join(case, "t1_in.nii.gz"), os.path.join(case, "t1_opp.nii.gz")],
                   check=True, capture_output=True)
    ref = sitk.ReadImage(str(one_shot))
    for name in ("a.nii.gz", "b.nii.gz"):
        img = sitk.ReadImage(str(tmp_path / name))
        assert np.array_equal(sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(ref))
        assert img.GetOrigin() == ref.GetOrigin() and img.GetSpacing() == ref.GetSpacing()
        assert img.GetDirection() == ref.GetDirection()


def test_bad_lines_and_failed_requests_are_answered_and_the_worker_goes_on(setup, tmp_path):
    root, case = setup
    missing = {"id": "m1", "command": "synthesize",
               "args": {"model": str(root / "m"), "out": str(tmp_path / "x.nii.gz"), "device": "cpu",
                        "inputs": [str(tmp_path / "nope.nii.gz"), os.path.join(case, "t1_opp.nii.gz")]}}
    final, _, stderr, code = _talk([
        "this is not json",
        {"id": "i1", "command": "info", "args": {}},
        {"id": "o1", "command": "synthesize", "args": {"model": str(root / "m"), "inputs": []}},
        missing,
        _synth("ok", root, case, tmp_path / "ok.nii.gz"),
    ])
    assert code == 0, stderr
    assert "Traceback" not in stderr
    bad = final[None][0]
    assert bad["stage"] == "error" and bad["error"].startswith("Not a request (")
    assert final["i1"][0]["error"].startswith("Not a request (the worker runs run, synthesize, segment requests")
    assert final["o1"][0]["stage"] == "error" and "--out" in final["o1"][0]["error"]
    err = final["m1"][0]
    assert err["stage"] == "error" and "nope.nii.gz" in err["error"] and "\n" not in err["error"]
    assert not (tmp_path / "x.nii.gz").exists()
    assert final["ok"][0]["stage"] == "done" and (tmp_path / "ok.nii.gz").is_file()


def test_least_recently_used_model_is_evicted(setup, tmp_path):
    root, case = setup
    seg = {"id": "s", "command": "segment",
           "args": {"model": str(root / "liver"), "out": str(tmp_path / "l.nii.gz"), "device": "cpu",
                    "overwrite": True, "inputs": [os.path.join(case, "t1_in.nii.gz")]}}
    reqs = [_synth("a1", root, case, tmp_path / "a1.nii.gz"), dict(seg, id="s1"),
            _synth("a2", root, case, tmp_path / "a2.nii.gz"), dict(seg, id="s2")]
    final, _, stderr, code = _talk(reqs, "--max-models", "1")
    assert code == 0, stderr
    assert [final[i][0]["models_already_loaded"] for i in ("a1", "s1", "a2", "s2")] == [[], [], [], []]
    final, _, stderr, code = _talk(reqs, "--max-models", "2")
    assert code == 0, stderr
    assert [len(final[i][0]["models_already_loaded"]) for i in ("a1", "s1", "a2", "s2")] == [0, 0, 1, 1]


def test_end_of_input_ends_the_worker_and_bad_options_are_refused():
    proc = subprocess.run([CMSYNTH, "worker"], input="", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == ""
    proc = subprocess.run([CMSYNTH, "worker", "--max-models", "0"], input="", capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and proc.stderr == "cmsynth worker: error: --max-models must be at least 1.\n"
