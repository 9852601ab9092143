"""A real SIGINT sent to a real `cmsynth` process during its write phase: it stops at once,
exits 130, writes no output and leaves no temporary file (synthesize, run); an interrupted
`phantom` leaves no empty folder and says what it kept."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.bundles import make_test_bundle
from CrossModalitySynthLib.io import write_volume

EXE = os.path.join(os.path.dirname(sys.executable), "cmsynth")


@pytest.fixture(scope="module")
def noisy_inputs(tmp_path_factory):
    """Two noise volumes: gzip compresses them slowly, so the write phase lasts long enough."""
    root = tmp_path_factory.mktemp("noisy")
    make_test_bundle(root / "mr2ct", "MR->CT", ("t1_in", "t1_opp"))
    paths = []
    for seed, name in enumerate(("a", "b")):  # two different volumes: the same one twice is refused
        arr = np.random.default_rng(seed).uniform(50, 500, size=(160, 128, 128)).astype(np.float32)
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing((1.5, 1.5, 3.0))
        paths.append(write_volume(img, str(root / f"{name}.nrrd"), compress=False))
    return str(root / "mr2ct"), paths


def interrupt_at_write(argv):
    """Start ``cmsynth argv``, send SIGINT when it reports the write stage; (returncode, stderr)."""
    proc = subprocess.Popen([EXE] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sent = False
    for line in proc.stdout:
        if '"stage": "write"' in line:
            proc.send_signal(signal.SIGINT)
            sent = True
            break
    _, err = proc.communicate(timeout=300)
    assert sent, f"no write stage reported: {err}"
    return proc.returncode, err


def test_sigint_while_synthesize_writes(tmp_path, noisy_inputs):
    model, inputs = noisy_inputs
    out = tmp_path / "out" / "s.nii.gz"
    out.parent.mkdir()
    code, err = interrupt_at_write(["synthesize", "--model", model, "--out", str(out), "--progress", "json",
                                    "--force", "--device", "cpu"] + inputs)
    assert code == 130, err
    assert "Traceback" not in err and "not written" in err
    assert os.listdir(out.parent) == []


def test_sigint_while_run_writes(tmp_path, noisy_inputs):
    model, inputs = noisy_inputs
    out = tmp_path / "case"
    code, err = interrupt_at_write(["run", "--model", model, "--out", str(out), "--progress", "json",
                                    "--force", "--device", "cpu"] + inputs)
    assert code == 130, err
    assert "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_sigint_during_phantom_leaves_no_empty_folder(tmp_path):
    out = tmp_path / "new" / "ph"
    proc = subprocess.Popen([EXE, "phantom", "--out", str(out), "--size", "chaos", "--cases", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)  # a chaos-size case takes several seconds: the first one is being made
    proc.send_signal(signal.SIGINT)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    finished = [os.path.basename(p) for p in stdout.split()]
    if finished:
        assert "finished case folder(s)" in err
        assert sorted(os.listdir(out)) == sorted(finished)
    else:
        assert "no case was written" in err
        assert os.listdir(tmp_path) == []
