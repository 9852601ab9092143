"""Cold start (issue 16 item 3): a command imports what it needs and nothing more. Each command
runs in a fresh interpreter, and the heavy modules it imported are read from ``sys.modules``:
``cmsynth --help`` and ``models list`` need no numpy, SimpleITK or torch; no command that runs no
network imports torch, monai, matplotlib or onnxruntime."""

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("numpy", "scipy", "SimpleITK", "torch", "monai", "matplotlib", "onnxruntime")
NETWORK = {"torch", "monai", "matplotlib", "onnxruntime"}

_PROBE = (
    "import contextlib, io, json, sys\n"
    "from CrossModalitySynthLib.cli.main import main\n"
    "out = io.StringIO()\n"
    "try:\n"
    "    with contextlib.redirect_stdout(out):\n"
    "        code = main(sys.argv[1:])\n"
    "except SystemExit as e:\n"
    "    code = e.code\n"
    "print(json.dumps({'code': code, 'heavy': [m for m in %r if m in sys.modules]}))\n" % (HEAVY,)
)


def _imports(*argv):
    proc = subprocess.run([sys.executable, "-c", _PROBE, *map(str, argv)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] in (0, None), (argv, result, proc.stderr)
    return set(result["heavy"])


def test_help_and_models_list_import_nothing_heavy():
    assert _imports("--help") == set()
    assert _imports("models", "list") == set()


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    import SimpleITK as sitk

    from conftest import make_image

    path = str(tmp_path_factory.mktemp("cold") / "v.nii.gz")
    sitk.WriteImage(make_image(), path)
    return path


def test_commands_without_a_network_import_no_network_library(tmp_path, volume):
    runs = {
        "info": ("info", volume),
        "convert": ("convert", volume, tmp_path / "v.nrrd"),
        "phantom": ("phantom", "--out", tmp_path / "ph", "--cases", "1", "--size", "small"),
        "reader-study": ("reader-study", "--help"),
        "models verify": ("models", "verify", "demo-t1dual-to-ct"),
    }
    for name, argv in runs.items():
        got = _imports(*argv)
        assert not got & NETWORK, (name, sorted(got))
    # the commands that read volumes need SimpleITK, and that is all they load
    assert _imports("info", volume) <= {"numpy", "SimpleITK", "scipy"}


def test_a_network_command_still_loads_what_it_runs(tmp_path, volume):
    # the probe is honest: synthesize --help builds its parser from the engine (numpy at least)
    assert "numpy" in _imports("synthesize", "--help")


def test_liver_model_runs_without_monai_and_gives_the_torch_labels(tmp_path):
    """backend auto runs a U-Net bundle with ONNX Runtime on the CPU: no MONAI import (about 2.6 s
    of a cold start), and the same label as the torch network, voxel for voxel."""
    import numpy as np
    import SimpleITK as sitk

    from CrossModalitySynthLib.phantom import write_cases

    case = write_cases(str(tmp_path / "ph"), n_cases=1, seed=9001, size="small")[0]
    t1 = os.path.join(case, "t1_in.nii.gz")
    got = _imports("segment", "--model", "demo-liver-unet-t1in", "--out", tmp_path / "auto.nii.gz", "--device", "cpu",
                   "--progress", "none", t1)
    assert "monai" not in got and "onnxruntime" in got
    forced = _imports("segment", "--model", "demo-liver-unet-t1in", "--backend", "torch", "--out",
                      tmp_path / "torch.nii.gz", "--device", "cpu", "--progress", "none", t1)
    assert "monai" in forced  # the probe sees the import when it happens
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "auto.nii.gz")))
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "torch.nii.gz")))
    assert a.sum() > 100 and np.array_equal(a, b)
