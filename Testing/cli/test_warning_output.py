"""A warning is printed once, on stderr (stdout stays for results and JSON progress)."""

import os

import pytest

from testsupport.bundles import make_test_bundle
from CrossModalitySynthLib.phantom import write_cases


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("d")
    make_test_bundle(root / "m", "MR->CT", ("t1_in",))
    write_cases(str(root / "src"), n_cases=1, seed=8, size="small")
    return str(root / "m"), str(root / "src" / "case_000")


@pytest.mark.parametrize("command", ["synthesize", "run"])
def test_forced_modality_warning_once_on_stderr(tmp_path, cli, setup, command):
    model, case = setup
    ct = os.path.join(case, "ct_on_mr.nii.gz")  # a CT given to an MRI -> CT model
    out = tmp_path / ("s.nii.gz" if command == "synthesize" else "case")
    extra = ["--no-overlays"] if command == "run" else []
    code, stdout, err = cli(command, "--model", model, "--progress", "none", "--force", "--out", out, *extra, ct)
    assert code == 0, err
    assert err.count("looks like") == 1, err
    assert "looks like" not in stdout
