"""--overwrite never destroys an input: the output is refused when it is an input (same path,
hard link, symbolic link), lies inside an input DICOM folder, or (for an output folder) holds an
input. Every input is compared byte for byte afterwards."""

import hashlib
import os
import shutil

import numpy as np
import pytest

from testsupport.bundles import make_test_bundle
from CrossModalitySynthLib.phantom import write_cases


def digest(path):
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)) if os.path.isdir(path) else [("", [], [path])]:
        for f in sorted(files):
            with open(os.path.join(root, f), "rb") as fh:
                h.update(f.encode() + fh.read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    make_test_bundle(root / "mr2ct", "MR->CT", ("t1_in", "t1_opp"))
    return {"mr2ct": str(root / "mr2ct")}


@pytest.fixture
def case(tmp_path):
    write_cases(str(tmp_path / "src"), n_cases=1, seed=4, size="small")
    return str(tmp_path / "src" / "case_000")


def synth(cli, models, out, t1, t2):
    return cli("synthesize", "--model", models["mr2ct"], "--progress", "none", "--overwrite", "--out", out, t1, t2)


@pytest.mark.parametrize("how", ["same", "hardlink", "symlink"])
def test_synthesize_overwrite_never_replaces_an_input(tmp_path, cli, models, case, how):
    t1, t2 = os.path.join(case, "t1_in.nii.gz"), os.path.join(case, "t1_opp.nii.gz")
    out = t1
    if how == "hardlink":
        out = str(tmp_path / "link.nii.gz")
        os.link(t1, out)
    elif how == "symlink":
        out = str(tmp_path / "sym.nii.gz")
        os.symlink(t1, out)
    before = digest(case)
    code, _, err = synth(cli, models, out, t1, t2)
    assert code != 0
    assert "is the input" in err and "Traceback" not in err
    assert digest(case) == before


def test_convert_overwrite_same_file_refused(cli, case):
    ct = os.path.join(case, "ct.nii.gz")
    before = digest(ct)
    code, _, err = cli("convert", "--overwrite", ct, ct)
    assert code != 0 and "is the input" in err
    assert digest(ct) == before


def test_convert_into_the_input_dicom_folder_refused(tmp_path, cli):
    from testsupport.dicom import write_series

    folder = tmp_path / "dicom"
    write_series(str(folder), np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7), origin=(0, 0, 0),
                 spacing=(1.0, 1.0, 2.0))
    before = sorted(os.listdir(folder))
    code, _, err = cli("convert", "--overwrite", folder, folder / "ct.nii.gz")
    assert code != 0 and "inside the input folder" in err
    assert sorted(os.listdir(folder)) == before


def test_run_overwrite_of_the_case_folder_refused(cli, models, case):
    before = digest(case)
    code, _, err = cli("run", "--model", models["mr2ct"], "--progress", "none", "--overwrite", "--out", case,
                       os.path.join(case, "t1_in.nii.gz"), os.path.join(case, "t1_opp.nii.gz"))
    assert code != 0 and "holds the input" in err
    assert digest(case) == before


def test_batch_into_its_own_source_leaves_the_cases(tmp_path, cli, models, case):
    src = os.path.dirname(case)
    before = digest(src)
    code, out, err = cli("run", "--model", models["mr2ct"], "--progress", "none", "--batch", src, "--out", src,
                         "--no-overlays")
    assert code != 0
    assert "holds the input" in out
    after = {p for p in os.listdir(src)}
    assert "case_000" in after
    assert digest(case) == before


def test_evaluate_overwrite_of_the_real_folder_refused(tmp_path, cli, case):
    real = tmp_path / "real"
    real.mkdir()
    shutil.copy(os.path.join(case, "ct_on_mr.nii.gz"), real / "c.nii.gz")
    before = digest(str(real))
    code, _, err = cli("evaluate", "--real", real, "--synthetic", real, "--out", real, "--overwrite", "--no-progress")
    assert code != 0 and "is the input" in err
    assert digest(str(real)) == before
