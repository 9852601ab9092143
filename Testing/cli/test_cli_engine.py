"""`cmsynth synthesize / segment / run` end to end on phantom data with small random-weight
bundles: exact output grids, JSON progress, batch skipping, bad input, clean SIGTERM."""

import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.bundles import make_test_bundle
from CrossModalitySynthLib.geometry import Grid
from CrossModalitySynthLib.io import read_volume, write_volume
from CrossModalitySynthLib.phantom import write_cases


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom")
    write_cases(str(root), n_cases=2, seed=11, size="small", oblique=True)
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    make_test_bundle(root / "mr2ct", "MR->CT", ("t1_in", "t1_opp"))
    make_test_bundle(root / "liver", "MR->LIVER", ("t1_in",))
    make_test_bundle(root / "ct2mr", "CT->MR", ("ct",))
    return {k: str(root / k) for k in ("mr2ct", "liver", "ct2mr")}


def case(phantom, i=0):
    return os.path.join(str(phantom), f"case_{i:03d}")


def test_synthesize_output_on_input_grid(tmp_path, cli, phantom, models):
    c = case(phantom)
    out = str(tmp_path / "sct.nii.gz")
    code, _, err = cli("synthesize", "--model", models["mr2ct"], "--out", out, "--progress", "none",
                       os.path.join(c, "t1_in.nii.gz"), os.path.join(c, "t1_opp.nii.gz"))
    assert code == 0, err
    mr = read_volume(os.path.join(c, "t1_in.nii.gz"))
    sct = read_volume(out)
    # NIfTI stores geometry as float32: compare with what the same grid looks like after a NIfTI round trip
    assert sct.GetSize() == mr.GetSize()
    np.testing.assert_allclose(sct.GetOrigin(), mr.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(sct.GetSpacing(), mr.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(sct.GetDirection(), mr.GetDirection(), atol=1e-6)
    assert np.array(mr.GetDirection()).round(6).tolist() != np.eye(3).ravel().tolist()  # the case is oblique


def test_synthesize_exact_grid_with_nrrd(tmp_path, cli, phantom, models):
    c = case(phantom)
    t1 = read_volume(os.path.join(c, "t1_in.nii.gz"))
    src = str(tmp_path / "t1.nrrd")
    write_volume(t1, src)
    ct_like = str(tmp_path / "ct.nrrd")
    write_volume(read_volume(os.path.join(c, "ct_on_mr.nii.gz")), ct_like)
    out = str(tmp_path / "smr.nrrd")
    code, _, err = cli("synthesize", "--model", models["ct2mr"], "--out", out, "--progress", "none", ct_like)
    assert code == 0, err
    assert Grid.of(read_volume(out)) == Grid.of(read_volume(ct_like))  # NRRD keeps geometry exactly


def test_segment_writes_label_and_slicer_segmentation(tmp_path, cli, phantom, models):
    c = case(phantom)
    for name in ("liver.nii.gz", "liver.seg.nrrd"):
        out = str(tmp_path / name)
        code, _, err = cli("segment", "--model", models["liver"], "--out", out, "--progress", "none",
                           os.path.join(c, "t1_in.nii.gz"))
        assert code == 0, err
        lab = read_volume(out)
        assert lab.GetSize() == read_volume(os.path.join(c, "t1_in.nii.gz")).GetSize()
        assert set(np.unique(sitk.GetArrayFromImage(lab))) <= {0, 1}


def test_run_one_case_with_reference(tmp_path, cli, phantom, models):
    c = case(phantom)
    out = str(tmp_path / "case")
    code, stdout, err = cli("run", "--model", models["mr2ct"], "--liver-model", models["liver"], "--out", out,
                            "--reference-ct", os.path.join(c, "ct_on_mr.nii.gz"), "--progress", "json",
                            os.path.join(c, "t1_in.nii.gz"), os.path.join(c, "t1_opp.nii.gz"))
    assert code == 0, err
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    stages = [ln["stage"] for ln in lines]
    assert "synthesize" in stages and "segment" in stages and stages[-1] == "done"
    fractions = [ln["fraction"] for ln in lines if ln["stage"] == "synthesize"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary == lines[-1]["summary"]
    for key in ("synthetic", "liver", "liver_segmentation", "overlay_axial", "overlay_coronal", "overlay_sagittal"):
        assert os.path.getsize(os.path.join(out, summary["outputs"][key])) > 0
    m = summary["metrics"]
    assert m["mae_hu"] > 0 and np.isfinite(m["psnr_db"]) and -1 <= m["ssim"] <= 1
    assert summary["timings_s"]["total"] > 0 and "liver_volume_ml" in summary
    # no bf16 gate in these bundles: auto runs fp32 and says why
    assert summary["precision"] == "fp32" and "no bf16 gate" in summary["precision_reason"]
    assert summary["liver_model"]["precision"] == "fp32"


def test_batch_runs_then_skips_finished(tmp_path, cli, phantom, models):
    out = str(tmp_path / "batch")
    args = ("run", "--model", models["mr2ct"], "--batch", str(phantom), "--out", out, "--reference-name", "ct_on_mr",
            "--no-overlays", "--progress", "none")
    code, stdout, err = cli(*args)
    assert code == 0, err
    rows = list(csv.DictReader(open(os.path.join(out, "batch_summary.csv"))))
    assert [r["status"] for r in rows] == ["done", "done"]
    assert all(float(r["mae_hu"]) > 0 for r in rows)
    before = os.path.getmtime(os.path.join(out, "case_000", "synthetic.nii.gz"))
    code, stdout, _ = cli(*args)
    assert code == 0 and stdout.count("already done, skipped") == 2
    assert os.path.getmtime(os.path.join(out, "case_000", "synthetic.nii.gz")) == before


def test_batch_from_csv(tmp_path, cli, phantom, models):
    rows = [{"case_id": f"p{i}", "t1_in": os.path.join(case(phantom, i), "t1_in.nii.gz"),
             "t1_opp": os.path.join(case(phantom, i), "t1_opp.nii.gz")} for i in range(2)]
    path = tmp_path / "cases.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["case_id", "t1_in", "t1_opp"])
        w.writeheader()
        w.writerows(rows)
    code, _, err = cli("run", "--model", models["mr2ct"], "--batch", str(path), "--out", str(tmp_path / "o"),
                       "--no-overlays", "--progress", "none")
    assert code == 0, err
    assert os.path.isfile(tmp_path / "o" / "p1" / "synthetic.nii.gz")


@pytest.mark.parametrize("kind", ["unknown", "channels", "ct_as_mr", "exists", "unwritable", "memory", "tampered"])
def test_bad_input_clear_message_nothing_written(tmp_path, cli, phantom, models, kind):
    c = case(phantom)
    t1, t1o, ct = (os.path.join(c, n) for n in ("t1_in.nii.gz", "t1_opp.nii.gz", "ct_on_mr.nii.gz"))
    out = str(tmp_path / "o.nii.gz")
    model = models["mr2ct"]
    inputs = [t1, t1o]
    extra = []
    expect = None
    if kind == "unknown":
        model, expect = "no-such-model", "Unknown model 'no-such-model'"
    elif kind == "channels":
        inputs, expect = [t1], "takes 2 input(s)"
    elif kind == "ct_as_mr":
        inputs, expect = [ct, t1o], "looks like a CT"
    elif kind == "exists":
        open(out, "w").write("keep me")
        expect = "already exists"
    elif kind == "unwritable":
        out, expect = "/sys/o.nii.gz" if os.geteuid() == 0 else "/o.nii.gz", "not writable"
    elif kind == "memory":
        extra, expect = ["--memory-budget", "0.01"], "MiB at batch size 1"
    elif kind == "tampered":
        import shutil

        model = str(tmp_path / "tampered")
        shutil.copytree(models["mr2ct"], model)
        with open(os.path.join(model, "weights.pt"), "ab") as f:
            f.write(b"x")
        expect = "corrupt or was modified"
    before = sorted(os.listdir(tmp_path))
    code, _, err = cli("synthesize", "--model", model, "--out", out, "--progress", "none", *extra, *inputs)
    assert code != 0
    assert expect in err and "Traceback" not in err and err.strip().count("\n") == 0
    assert sorted(os.listdir(tmp_path)) == before
    if kind == "exists":
        assert open(out).read() == "keep me"
    if kind == "ct_as_mr":
        code, _, err = cli("synthesize", "--model", model, "--out", out, "--progress", "none", "--force", *inputs)
        assert code == 0, err


def test_sigterm_stops_cleanly_and_writes_nothing(tmp_path, models):
    """A real `cmsynth synthesize` process gets SIGTERM mid-run: exit 130, no output, no temp files."""
    for seed, name in enumerate(("a", "b")):  # two different volumes: the same one twice is refused
        arr = np.random.default_rng(seed).uniform(50, 500, size=(400, 64, 64)).astype(np.float32)
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing((1.5, 1.5, 3.0))
        write_volume(img, str(tmp_path / f"{name}.nrrd"))
    out = tmp_path / "never.nii.gz"
    exe = os.path.join(os.path.dirname(sys.executable), "cmsynth")
    proc = subprocess.Popen([exe, "synthesize", "--model", models["mr2ct"], "--out", str(out), "--progress", "json",
                             "--batch-size", "1", "--device", "cpu", str(tmp_path / "a.nrrd"), str(tmp_path / "b.nrrd")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if '"stage": "synthesize"' in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Cancelled" in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["a.nrrd", "b.nrrd"]
