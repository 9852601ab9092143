"""End to end on phantom CT: create -> readers answer -> analyze, and keys of other studies."""

import csv
import json
import os
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from CrossModalitySynthLib.phantom import write_cases
from CrossModalitySynthLib.reader_study.session import ReaderSession

N_CASES = 3


@pytest.fixture(scope="module")
def phantom_data(tmp_path_factory):
    """Real: the phantom CTs. Synthetic: a blurred copy of *another* case's CT on a coarser grid,
    named after this patient (as a model's output for this patient would be)."""
    root = tmp_path_factory.mktemp("rs_cli")
    cases = write_cases(str(root / "phantom"), n_cases=N_CASES, seed=40, size="small")
    os.makedirs(root / "real")
    os.makedirs(root / "synthetic")
    for i, case in enumerate(cases):
        shutil.copy(os.path.join(case, "ct.nii.gz"), str(root / "real" / f"pat{i}.nii.gz"))
        other = sitk.ReadImage(os.path.join(cases[(i + 1) % N_CASES], "ct.nii.gz"))
        arr = ndimage.gaussian_filter(sitk.GetArrayFromImage(other).astype(np.float32), 1.0)
        blurred = sitk.GetImageFromArray(np.rint(arr).astype(np.int16))
        blurred.CopyInformation(other)
        coarse = sitk.Resample(blurred, [48, 48, 30], sitk.Transform(), sitk.sitkLinear, other.GetOrigin(),
                               [8.0, 8.0, 8.0], other.GetDirection(), -1024.0, sitk.sitkInt16)
        sitk.WriteImage(coarse, str(root / "synthetic" / f"pat{i}.mha"))
    return root


def _create(cli, root, name):
    out = str(root / name)
    code, stdout, err = cli(
        "reader-study", "create", "--real", str(root / "real"), "--synthetic", str(root / "synthetic"),
        "--readers", "ann", "ben", "--trials-per-reader", "6", "--seed", "1", "--slices-per-volume", "3",
        "--max-per-patient", "3", "--slice-size", "48", "--slice-spacing", "6", "--model-version", "cyclegan-0.1",
        "--out", out,
    )
    assert code == 0, err
    assert "keep the answer key away" in stdout
    return out, out + "_key.json"


def test_create_answer_analyze(cli, phantom_data, tmp_path):
    study, key_path = _create(cli, phantom_data, "study")
    with open(key_path) as f:
        key = json.load(f)
    truth = {i: e["truth"] for i, e in key["images"].items()}
    sizes = {os.path.getsize(os.path.join(study, "images", i + ".nrrd")) for i in key["images"]}
    assert len(sizes) == 1

    # ann knows the truth (a perfect reader), ben always says "real"
    for reader in ("ann", "ben"):
        session = ReaderSession(study, reader)
        for trial in session.trials:
            answer = truth[trial.image_id] if reader == "ann" else "real"
            code, _, err = cli("reader-study", "answer", study, "--reader", reader, "--answer", answer,
                               "--confidence", "5" if reader == "ann" else "2", "--response-time", "3.5")
            assert code == 0, err

    out = str(tmp_path / "results")
    code, stdout, err = cli("reader-study", "analyze", study, "--key", key_path, "--out", out)
    assert code == 0, err
    assert "Pooled accuracy" in stdout
    for name in ("readers.csv", "kappa.csv", "model_versions.csv", "readings.csv", "roc.png", "report.md", "report.html"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    with open(os.path.join(out, "readers.csv")) as f:
        rows = {r["reader"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"ann", "ben", "pooled"}
    assert float(rows["ann"]["accuracy"]) == 1.0 and float(rows["ann"]["auc"]) == 1.0
    assert float(rows["ann"]["sensitivity"]) == 1.0 and float(rows["ann"]["specificity"]) == 1.0
    assert float(rows["ben"]["accuracy"]) == 0.5 and float(rows["ben"]["sensitivity"]) == 1.0
    assert float(rows["ben"]["specificity"]) == 0.0 and float(rows["ben"]["auc"]) == 0.5
    assert rows["pooled"]["n"] == "12" and rows["ann"]["auc_ci_method"] == "DeLong"
    with open(os.path.join(out, "kappa.csv")) as f:
        pair = next(csv.DictReader(f))
    assert pair["n_common"] == "6" and float(pair["cohen_kappa"]) == 0.0  # ben's constant answer
    with open(os.path.join(out, "roc.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(out, "report.html")) as f:
        page = f.read()
    assert "data:image/png;base64," in page and "http://" not in page and "https://" not in page
    assert "<script" not in page and "DeLong" in page
    with open(os.path.join(out, "report.md")) as f:
        assert "| ann | 6 | 1.000" in f.read()
    with open(os.path.join(out, "readings.csv")) as f:
        readings = list(csv.DictReader(f))
    assert len(readings) == 12 and {r["model_version"] for r in readings if r["truth"] == "synthetic"} == {"cyclegan-0.1"}

    # results are not overwritten by mistake
    code, _, err = cli("reader-study", "analyze", study, "--key", key_path, "--out", out)
    assert code != 0 and "already exists" in err


def test_a_key_of_another_study_is_refused(cli, phantom_data):
    study, key_path = _create(cli, phantom_data, "one")
    other, other_key = _create(cli, phantom_data, "two")  # same inputs and seed, another study
    ReaderSession(study, "ann").answer("r", 3)
    code, _, err = cli("reader-study", "analyze", study, "--key", other_key, "--out", str(phantom_data / "res"))
    assert code != 0 and "belongs to study" in err and "Traceback" not in err
    assert not os.path.exists(phantom_data / "res")
    code, _, err = cli("reader-study", "analyze", study, "--key", str(phantom_data / "none.json"), "--out", str(phantom_data / "res"))
    assert code != 0 and "No such answer key" in err
