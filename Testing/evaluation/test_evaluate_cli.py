"""``cmsynth evaluate`` on digital-phantom volumes: outputs, metric ordering, bad input, report.

Real = the phantom's CT on the MR grid (``ct_on_mr``); synthetic = degraded copies of it
(Gaussian blur + noise + an HU shift), "mild" and "strong". The mild one must score better on
every paired metric and on the histspec FID; the strong one is written over an existing output
with --overwrite. Bad input (small hand-made volumes) must fail with one line and leave nothing
behind. Under pytest-xdist the phantom data and the two runs are made once and shared.

The report test renders report.html in headless Chromium (screenshot + DOM after load). It needs
a ``chromium`` binary: without one it FAILS when the environment variable CI is set and is
skipped otherwise. Run this file as a script to make the screenshot in Resources/Screenshots:

    .venv/bin/python Testing/evaluation/test_evaluate_cli.py --screenshot Resources/Screenshots/evaluation_report.png
"""

import base64
import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from CrossModalitySynthLib.cli.main import main

DEGRADATIONS = {"mild": (0.5, 10.0, 10.0), "strong": (1.5, 60.0, 60.0)}  # blur sigma (voxels), noise SD, shift (HU)
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1280, 4800)  # tall enough that the first figures are in the screenshot


def run_cli(*argv):
    """``cmsynth`` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def make_data(root, n_cases=2, seed=0):
    """Phantom cases -> root/{real,mild,strong,masks,labels,pred}/case_XXX.nii.gz."""
    from CrossModalitySynthLib.phantom import write_cases

    cases = write_cases(os.path.join(root, "phantom"), n_cases=n_cases, seed=seed, size="small")
    for sub in ("real", "masks", "labels", "pred") + tuple(DEGRADATIONS):
        os.makedirs(os.path.join(root, sub))
    for i, case in enumerate(cases):
        name = os.path.basename(case) + ".nii.gz"
        ct = sitk.ReadImage(os.path.join(case, "ct_on_mr.nii.gz"))
        sitk.WriteImage(ct, os.path.join(root, "real", name))
        shutil.copy(os.path.join(case, "body.nii.gz"), os.path.join(root, "masks", name))
        a = sitk.GetArrayFromImage(ct).astype(np.float32)
        rng = np.random.default_rng(100 + i)
        for level, (sigma, noise, shift) in DEGRADATIONS.items():
            b = ndimage.gaussian_filter(a, sigma) + rng.normal(0.0, noise, a.shape) + shift
            img = sitk.GetImageFromArray(b.astype(np.float32))
            img.CopyInformation(ct)
            sitk.WriteImage(img, os.path.join(root, level, name))
        labels = sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(case, "labels.nii.gz")))
        liver = np.isin(labels, (1, 14)).astype(np.uint8)  # liver incl. lesions
        pred = np.roll(liver, 1, axis=2)  # one voxel (6 mm) along x
        for sub, arr in (("labels", liver), ("pred", pred)):
            img = sitk.GetImageFromArray(arr)
            img.CopyInformation(ct)
            sitk.WriteImage(img, os.path.join(root, sub, name))
    return root


@contextlib.contextmanager
def _file_lock(path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no sharing needed without xdist
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def shared_folder(tmp_path_factory, name, build):
    """A folder made once per test run by ``build(folder)``; under pytest-xdist the workers share
    it (the first one builds it under a file lock, the others wait and reuse it)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = str(tmp_path_factory.mktemp(name))
        build(folder)
        return folder
    root = str(tmp_path_factory.getbasetemp().parent)  # common to the workers of one run
    folder = os.path.join(root, name)
    with _file_lock(folder + ".lock"):
        if not os.path.exists(folder + ".ready"):
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
            build(folder)
            open(folder + ".ready", "w").close()
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return shared_folder(tmp_path_factory, "cmsynth_evaluate_data", make_data)


def _paired_args(data, level, out, *extra):
    return ["evaluate", "--real", os.path.join(data, "real"), "--synthetic", os.path.join(data, level), "--paired",
            "--masks", os.path.join(data, "masks"), "--out", out, "--no-progress"] + list(extra)


def _make_runs(data, base):
    """The mild run (with segmentation) and the strong run (over an existing output, --overwrite)."""
    mild = os.path.join(base, "mild")
    code, out, err = run_cli(*_paired_args(data, "mild", mild, "--labels", os.path.join(data, "labels"),
                                           "--pred-labels", os.path.join(data, "pred")))
    assert code == 0, err
    with open(base + ".stdout", "w") as f:
        f.write(out)
    strong = os.path.join(base, "strong")
    os.makedirs(strong)
    with open(os.path.join(strong, "metrics.json"), "w") as f:  # an output of an earlier run
        f.write("previous output")
    code, _, err = run_cli(*_paired_args(data, "strong", strong, "--overwrite"))
    assert code == 0, err


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    base = shared_folder(tmp_path_factory, "cmsynth_evaluate_runs", lambda b: _make_runs(data, b))
    with open(base + ".stdout") as f:
        stdout = f.read()
    return {"mild": os.path.join(base, "mild"), "strong": os.path.join(base, "strong"), "stdout": stdout, "base": base}


def _metrics(folder):
    with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as f:
        return json.load(f)


def _rows(folder):
    with open(os.path.join(folder, "per_case.csv"), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------------


def test_output_folder_content(runs):
    mild = runs["mild"]
    assert sorted(os.listdir(mild)) == ["metrics.json", "per_case.csv", "plots", "report.html"]
    plots = sorted(os.listdir(os.path.join(mild, "plots")))
    assert plots == ["example_case_000.png", "example_case_001.png", "hu_histograms.png", "per_case.png",
                     "segmentation.png", "spectra.png"]
    for p in plots:
        with open(os.path.join(mild, "plots", p), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "2 cases: MAE" in runs["stdout"] and "report.html" in runs["stdout"]
    # the strong run replaced the old folder as a whole; no temporary folder is left behind
    with open(os.path.join(runs["strong"], "metrics.json")) as f:
        assert f.read() != "previous output"
    assert sorted(os.listdir(runs["base"])) == ["mild", "strong"]


def test_metrics_json_fields(runs):
    m = _metrics(runs["mild"])
    assert m["tool"] == "cmsynth evaluate" and m["mode"] == "paired"
    assert m["n"]["cases"] == 2 and m["n"]["real_volumes"] == 2 and m["n"]["synthetic_volumes"] == 2
    assert m["n"]["slices"]["axial"] == {"real": 56, "synthetic": 56}  # 2 x 28 axial slices
    assert m["settings"]["features"] == "histspec" and m["settings"]["planes"] == ["axial"]
    for key in ("mae", "psnr", "ssim", "ms_ssim"):
        s = m["pooled"]["paired"][key]
        assert s["n"] == 2 and s["min"] <= s["mean"] <= s["max"]
        assert s["ci95"][0] <= s["mean"] <= s["ci95"][1]
    d = m["pooled"]["distribution"]
    assert d["extractor"] == "histspec" and d["dim"] == 64
    axial = d["planes"]["axial"]
    assert axial["n_real"] == 56 and axial["biased_small_n"] is True and d["fid"] == pytest.approx(axial["fid"])
    assert axial["fid_method"] == "eigh"  # 56 slices <= 64 dimensions: singular covariances
    assert any("N = 56 real and 56 synthetic slices, not more than the feature dimension 64" in w and
               "eigenvalue method (eigh" in w for w in m["warnings"])
    assert any("not InceptionV3" in w for w in m["warnings"])
    h = m["pooled"]["histogram"]
    assert 0 < h["js_bits"] < 1 and 0 < h["intersection"] < 1 and h["wasserstein"] > 0
    assert h["hu_range"] == [-1024.0, 3071.0] and h["bin_width"] == 10.0
    assert m["pooled"]["spectral"]["spectral_distance"] > 0
    seg = m["pooled"]["segmentation"]["1"]
    assert seg["name"] == "liver" and seg["n_cases"] == 2
    assert 0.5 < seg["dice"]["mean"] < 1.0
    assert seg["hd95"]["mean"] == pytest.approx(6.0)  # a 1-voxel shift along x at 6 mm spacing
    for key in ("mae", "psnr", "ssim", "ms_ssim", "fid", "kid", "js_bits", "wasserstein", "dice", "hd95"):
        assert m["definitions"][key]["unit"] and m["definitions"][key]["definition"]
    assert m["definitions"]["mae"]["unit"] == "HU" and m["definitions"]["hd95"]["unit"] == "mm"
    assert [c["case_id"] for c in m["cases"]] == ["case_000", "case_001"]
    assert all(c["mask_source"] == "given" for c in m["cases"])
    assert m["plots"] and all(os.path.isfile(os.path.join(runs["mild"], p)) for p in m["plots"])


def test_per_case_csv_rows(runs):
    rows = _rows(runs["mild"])
    assert [r["case_id"] for r in rows] == ["case_000", "case_001"]
    m = _metrics(runs["mild"])
    for r, c in zip(rows, m["cases"]):
        assert float(r["mae_hu"]) == pytest.approx(c["mae"])
        assert float(r["ms_ssim"]) == pytest.approx(c["ms_ssim"])
        assert float(r["dice_label1"]) == pytest.approx(c["segmentation"]["1"]["dice"])
        assert float(r["hd95_mm_label1"]) == pytest.approx(6.0)
        assert r["mask_source"] == "given" and int(r["n_mask_voxels"]) > 1000
    assert len(_rows(runs["strong"])) == 2


def test_less_degraded_scores_better(runs):
    mild, strong = _metrics(runs["mild"]), _metrics(runs["strong"])
    pm, ps = mild["pooled"]["paired"], strong["pooled"]["paired"]
    assert pm["mae"]["mean"] < ps["mae"]["mean"]
    assert pm["psnr"]["mean"] > ps["psnr"]["mean"]
    assert pm["ssim"]["mean"] > ps["ssim"]["mean"]
    assert pm["ms_ssim"]["mean"] > ps["ms_ssim"]["mean"]
    for cm, cs in zip(mild["cases"], strong["cases"]):
        assert cm["mae"] < cs["mae"]
    # non-trivial: the metrics moved away from their perfect values
    assert 5 < pm["mae"]["mean"] < ps["mae"]["mean"] < 200 and ps["ssim"]["mean"] < 0.99
    assert mild["pooled"]["distribution"]["fid"] < strong["pooled"]["distribution"]["fid"]
    assert mild["pooled"]["histogram"]["wasserstein"] < strong["pooled"]["histogram"]["wasserstein"]
    assert mild["pooled"]["histogram"]["js_bits"] < strong["pooled"]["histogram"]["js_bits"]


def test_unpaired_mode(data, tmp_path):
    out = str(tmp_path / "unpaired")
    code, stdout, err = run_cli("evaluate", "--real", os.path.join(data, "real", "case_000.nii.gz"),
                                "--synthetic", os.path.join(data, "strong", "case_001.nii.gz"),
                                "--features", "randproj", "--out", out, "--no-progress")
    assert code == 0, err
    m = _metrics(out)
    assert m["mode"] == "unpaired" and "paired" not in m["pooled"] and m["n"]["cases"] is None
    assert m["pooled"]["distribution"]["extractor"] == "randproj" and m["pooled"]["distribution"]["fid"] > 0
    rows = _rows(out)
    assert [(r["set"], r["case_id"]) for r in rows] == [("real", "case_000"), ("synthetic", "case_001")]
    assert all(r["mask_source"] == "body" for r in rows)
    assert "MAE" not in stdout
    assert sorted(os.listdir(os.path.join(out, "plots"))) == ["example_case_000_case_001.png", "hu_histograms.png",
                                                              "spectra.png"]


# --------------------------------------------------------------------------------------------
# bad input: non-zero exit, one line, nothing written
# --------------------------------------------------------------------------------------------


def write_tiny(path, size=(24, 20, 8), spacing=(2.0, 2.0, 3.0), seed=0):
    """A small CT-like volume (a soft-tissue ellipse in air, noise) of ``size`` (x, y, z) voxels."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(size[::-1])
    body = ((x - size[0] / 2.0) / (0.4 * size[0])) ** 2 + ((y - size[1] / 2.0) / (0.35 * size[1])) ** 2 < 1
    arr = np.where(body, 40.0, -1000.0) + rng.normal(0.0, 20.0, body.shape)
    img = sitk.GetImageFromArray(arr.astype(np.float32))
    img.SetSpacing(spacing)
    sitk.WriteImage(img, path)
    return path


@pytest.fixture
def tiny(tmp_path):
    """Input files in tmp_path/in; outputs are expected in tmp_path/work (left empty on failure)."""
    d = tmp_path / "in"
    d.mkdir()
    (tmp_path / "work").mkdir()
    return {
        "real": [write_tiny(str(d / "r0.nii.gz"), seed=0), write_tiny(str(d / "r1.nii.gz"), seed=1)],
        "synth": [write_tiny(str(d / "s0.nii.gz"), seed=2), write_tiny(str(d / "s1.nii.gz"), seed=3)],
        "other_size": write_tiny(str(d / "big.nii.gz"), size=(30, 20, 8)),
        "other_spacing": write_tiny(str(d / "fine.nii.gz"), spacing=(2.0, 2.0, 2.5)),
        "work": str(tmp_path / "work"),
    }


def _assert_failed_cleanly(code, err, work, match):
    assert code != 0
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("cmsynth evaluate: error: "), err
    assert "Traceback" not in err
    assert re.search(match, lines[0]), lines[0]
    assert os.listdir(work) == [] or sorted(os.listdir(work)) == ["existing"], os.listdir(work)


def _out(tiny):
    return os.path.join(tiny["work"], "out")


def test_count_mismatch(tiny):
    code, _, err = run_cli("evaluate", "--real", *tiny["real"], "--synthetic", tiny["synth"][0], "--paired",
                           "--out", _out(tiny))
    _assert_failed_cleanly(code, err, tiny["work"], "2 real but 1 synthetic volume")


def test_grids_differ(tiny):
    code, _, err = run_cli("evaluate", "--real", *tiny["real"], "--synthetic", tiny["synth"][0], tiny["other_size"],
                           "--paired", "--out", _out(tiny))
    _assert_failed_cleanly(code, err, tiny["work"], r"Case r1: the synthetic volume .*big\.nii\.gz is not on the "
                           r"real volume's grid \(size 24 x 20 x 8 vs 30 x 20 x 8 voxels\)")
    code, _, err = run_cli("evaluate", "--real", tiny["real"][0], "--synthetic", tiny["other_spacing"], "--paired",
                           "--out", _out(tiny))
    _assert_failed_cleanly(code, err, tiny["work"], r"Case r0: .*fine\.nii\.gz .*\(spacing 2 x 2 x 3 vs 2 x 2 x 2\.5 mm\)")


def test_grid_of_mask_differs(tiny):
    code, _, err = run_cli("evaluate", "--real", *tiny["real"], "--synthetic", *tiny["synth"], "--paired",
                           "--masks", tiny["real"][0], tiny["other_spacing"], "--out", _out(tiny))
    _assert_failed_cleanly(code, err, tiny["work"], r"Case r1: the mask .*fine\.nii\.gz is not on")


def test_missing_file(tiny):
    code, _, err = run_cli("evaluate", "--real", tiny["real"][0], "--synthetic",
                           os.path.join(tiny["work"], "..", "nope.nii.gz"), "--paired", "--out", _out(tiny))
    _assert_failed_cleanly(code, err, tiny["work"], r"No such file or folder: .*nope\.nii\.gz \(synthetic volume\)")


def test_existing_output_is_refused_and_kept(tiny):
    existing = os.path.join(tiny["work"], "existing")
    os.makedirs(existing)
    with open(os.path.join(existing, "keep.txt"), "w") as f:
        f.write("keep me")
    code, _, err = run_cli("evaluate", "--real", *tiny["real"], "--synthetic", *tiny["synth"], "--paired",
                           "--out", existing)
    _assert_failed_cleanly(code, err, tiny["work"], "exists and is not empty; choose another --out or pass --overwrite")
    assert sorted(os.listdir(existing)) == ["keep.txt"]


def test_inception_without_weights(tiny, monkeypatch):
    monkeypatch.delenv("CMSYNTH_FID_WEIGHTS", raising=False)
    code, _, err = run_cli("evaluate", "--real", *tiny["real"], "--synthetic", *tiny["synth"],
                           "--features", "inception", "--fid-weights", os.path.join(tiny["work"], "..", "none.pth"),
                           "--out", _out(tiny))
    _assert_failed_cleanly(code, err, tiny["work"], r"pt_inception-2015-12-05-6726825d\.pth .*--fid-weights FILE")


FEATURE_SCALE = 1000.0


def write_test_fid_weights(path, scale=FEATURE_SCALE):
    """A weights file in pytorch-fid's layout for our FID InceptionV3 with random weights (the real
    file cannot be downloaded here). BatchNorm statistics are calibrated on random images, so that
    activations do not vanish, and the last layers are scaled by ``scale``: ReLU is positively
    homogeneous, so the 2048 pool features are ``scale`` times larger, values at which sqrtm of a
    singular covariance product passes pytorch-fid's absolute 1e-3 tolerance on its imaginary part."""
    import torch

    from CrossModalitySynthLib.metrics.inception import build_fid_inception

    torch.manual_seed(0)
    net = build_fid_inception(load_weights=False)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batch
            m.reset_running_stats()
    net.train()
    images = torch.from_numpy(np.random.default_rng(0).random((4, 1, 40, 40)).astype(np.float32))
    with torch.no_grad():
        net(images.expand(-1, 3, -1, -1))
        block = net.Mixed_7c
        for branch in (block.branch1x1, block.branch3x3_2a, block.branch3x3_2b, block.branch3x3dbl_3a,
                       block.branch3x3dbl_3b, block.branch_pool):
            branch.bn.weight.mul_(scale)
            branch.bn.bias.mul_(scale)
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory):
    from CrossModalitySynthLib.metrics.inception import FID_WEIGHTS_FILENAME

    return write_test_fid_weights(str(tmp_path_factory.mktemp("fid_weights") / FID_WEIGHTS_FILENAME))


def test_inception_fid_of_fewer_slices_than_features(tmp_path, fid_weights):
    """Issue 13 item 19: --features inception with 8 slices per set (< 2048 feature dimensions) was a
    traceback (imaginary part of sqrtm); now the eigh value, its method and the small-N warning."""
    from CrossModalitySynthLib.metrics import InceptionExtractor, extract_slices
    from metrics.test_metrics_distribution import fid_by_nuclear_norm

    d = tmp_path / "in"
    d.mkdir()
    real = [write_tiny(str(d / "r{}.nii.gz".format(i)), size=(24, 20, 4), seed=i) for i in range(2)]
    synth = [write_tiny(str(d / "s{}.nii.gz".format(i)), size=(24, 20, 4), seed=10 + i) for i in range(2)]
    out = str(tmp_path / "out")
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env.pop("CMSYNTH_FID_WEIGHTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "CrossModalitySynthLib.cli.main", "evaluate", "--real"] + real + ["--synthetic"] + synth
        + ["--features", "inception", "--fid-weights", fid_weights, "--device", "cpu", "--out", out, "--no-progress"],
        capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(r"warning: FID \(axial\): N = 8 real and 8 synthetic slices, not more than the feature "
                     r"dimension 2048: the covariances are singular, so FID was computed by the eigenvalue method",
                     proc.stderr), proc.stderr
    m = _metrics(out)
    axial = m["pooled"]["distribution"]["planes"]["axial"]
    assert m["pooled"]["distribution"]["extractor"] == "inception" and m["pooled"]["distribution"]["dim"] == 2048
    assert (axial["n_real"], axial["n_synth"], axial["biased_small_n"], axial["fid_method"]) == (8, 8, True, "eigh")
    assert np.isfinite(axial["fid"]) and axial["fid"] > 0
    # the same FID from the same network's features, computed here without any matrix root
    with pytest.warns(UserWarning, match="sha256"):  # the stand-in file is not the real one
        ex = InceptionExtractor(weights_path=fid_weights)
        f_real = np.concatenate([ex(extract_slices(sitk.ReadImage(p))) for p in real])
        f_synth = np.concatenate([ex(extract_slices(sitk.ReadImage(p))) for p in synth])
    assert f_real.shape == (8, 2048) and f_real.mean() > FEATURE_SCALE / 100  # the large features of the docstring
    # rel 1e-4, not tighter: the float32 features here and in the subprocess come from different
    # thread counts, whose summation orders differ by rounding (seen: 2.7e-6 relative in the FID)
    assert axial["fid"] == pytest.approx(fid_by_nuclear_norm(f_real, f_synth), rel=1e-4)
    with open(os.path.join(out, "report.html"), encoding="utf-8") as f:
        html = f.read()
    assert "N &le; dim (FID method)" in html and "yes (eigh)" in html


def test_failure_while_writing_leaves_nothing(tiny, monkeypatch):
    from CrossModalitySynthLib.evaluation import collect_inputs, evaluate, outputs

    result = evaluate(collect_inputs(tiny["real"], tiny["synth"], paired=True))
    assert result.pooled["paired"]["mae"]["n"] == 2

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(outputs, "make_plots", broken)  # fails inside the temporary folder
    with pytest.raises(RuntimeError):
        outputs.write_outputs(result, _out(tiny))
    assert os.listdir(tiny["work"]) == []


def _write_mask(path, box, size=(24, 20, 8), spacing=(2.0, 2.0, 3.0)):
    """A label map on write_tiny's grid, 1 inside ``box`` (z, y, x slices)."""
    a = np.zeros(size[::-1], np.uint8)
    a[box] = 1
    img = sitk.GetImageFromArray(a)
    img.SetSpacing(spacing)
    sitk.WriteImage(img, path)
    return path


def test_small_mask_gives_nan_ms_ssim_for_that_case_only(tiny):
    """Issue 13 item 18. MS-SSIM pads 24 x 20 x 8 to 97^3 (x by 36, y by 38, z by 44 before) and
    keeps every 2nd voxel 4 times, so at scale 5 the only voxel left after the 3-voxel border
    crop is padded index 48: original (z, y, x) = (4, 10, 12). A 2 x 3 x 3 box at z 3-4, y 3-5,
    x 3-5 is far enough from the border for SSIM but misses that voxel (it vanishes at scale 3):
    SynthRAD2025's code then gives NaN for the case (mean of an empty selection) and still
    reports MAE and PSNR."""
    d = os.path.dirname(tiny["real"][0])
    big = _write_mask(os.path.join(d, "m0.nii.gz"), np.s_[1:7, 3:17, 3:21])
    small = _write_mask(os.path.join(d, "m1.nii.gz"), np.s_[3:5, 3:6, 3:6])
    out = _out(tiny)
    code, stdout, err = run_cli("evaluate", "--real", *tiny["real"], "--synthetic", *tiny["synth"], "--paired",
                                "--masks", big, small, "--out", out, "--no-progress")
    assert code == 0, err
    assert "Traceback" not in err
    rows = {r["case_id"]: r for r in csv.DictReader(open(os.path.join(out, "per_case.csv"), encoding="utf-8"))}
    assert rows["r1"]["ms_ssim"] == "nan"
    assert 0.0 < float(rows["r0"]["ms_ssim"]) <= 1.0
    for k in ("mae_hu", "psnr_db", "ssim"):
        assert np.isfinite(float(rows["r1"][k])), (k, rows["r1"])
    assert int(rows["r1"]["n_mask_voxels"]) == 18
    doc = json.load(open(os.path.join(out, "metrics.json"), encoding="utf-8"))
    assert doc["cases"][1]["ms_ssim"] is None and doc["cases"][0]["ms_ssim"] is not None
    pooled = doc["pooled"]["paired"]["ms_ssim"]
    assert pooled["n"] == 2 and pooled["n_non_finite"] == 1
    assert pooled["mean"] == pytest.approx(float(rows["r0"]["ms_ssim"]))
    assert doc["pooled"]["paired"]["mae"]["n_non_finite"] == 0
    named = [w for w in doc["warnings"] if "MS-SSIM" in w]
    assert len(named) == 1 and named[0].startswith("Case r1: "), doc["warnings"]
    assert "scale 3 of 5" in named[0]
    assert [l for l in err.splitlines() if "Case r1" in l] == ["warning: " + named[0]]
    html = open(os.path.join(out, "report.html"), encoding="utf-8").read()
    assert "Case r1: " in html


# --------------------------------------------------------------------------------------------
# the report in a real browser
# --------------------------------------------------------------------------------------------


def find_browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium(browser, profile, *args, timeout=120):
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", "--force-device-scale-factor=1", "--user-data-dir=" + profile] + list(args)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, check=False)


def render(report, png, browser, window=WINDOW):
    """Screenshot ``report`` into ``png``; return the DOM after the load event (``--dump-dom``)."""
    url = "file://" + os.path.abspath(report)
    size = "--window-size={},{}".format(*window)
    with tempfile.TemporaryDirectory() as profile:
        # one launch does both in current Chromium; older ones honour only one flag: then two launches
        run = chromium(browser, profile, "--screenshot=" + png, "--dump-dom", size, url)
        dom = run.stdout.decode("utf-8", errors="replace")
        if run.returncode != 0 or not os.path.isfile(png):
            run = chromium(browser, profile, "--screenshot=" + png, size, url)
            assert run.returncode == 0 and os.path.isfile(png), run.stderr.decode(errors="replace")[-2000:]
        if "<body" not in dom:
            run = chromium(browser, profile, "--dump-dom", size, url)
            assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
            dom = run.stdout.decode("utf-8", errors="replace")
    return dom


def require_browser():
    """The browser's path; FAIL without one when $CI is set (the CI image must have it), else skip."""
    path = find_browser()
    if path is None:
        message = ("no Chromium found (looked for {}); install it, e.g. apt-get install -y --no-install-recommends "
                   "chromium".format(", ".join(BROWSERS)))
        if os.environ.get("CI"):
            pytest.fail("CI is set but " + message)
        pytest.skip(message + " (this test fails instead of skipping when CI is set)")
    return path


def test_report_renders_with_its_images(request, tmp_path):
    from PIL import Image

    browser = require_browser()  # before the evaluation runs: a skip costs nothing
    runs = request.getfixturevalue("runs")
    report = os.path.join(runs["mild"], "report.html")
    with open(report, encoding="utf-8") as f:
        source = f.read()
    assert "src=\"http" not in source and "<link" not in source  # self-contained
    n_img = source.count("<img ")
    assert n_img == len(os.listdir(os.path.join(runs["mild"], "plots"))) == 6
    png = str(tmp_path / "report.png")
    dom = render(report, png, browser)

    # the page script ran after load and counted every image as decoded
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-expected-images="{}"'.format(n_img) in body
    assert 'data-images="{}"'.format(n_img) in body and 'data-loaded="{}"'.format(n_img) in body, body
    # every <img> carries a PNG data URI that decodes to a non-empty image
    srcs = re.findall(r"<img [^>]*src=\"([^\"]+)\"", dom)
    assert len(srcs) == n_img
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1])
        assert len(raw) > 1000
        with Image.open(io.BytesIO(raw)) as im:
            assert im.width > 100 and im.height > 100
    for heading in ("Summary", "Warnings", "Paired metrics", "Segmentation", "Distribution metrics",
                    "HU histogram metrics", "Spectral metrics", "Figures", "Per case", "Definitions"):
        assert heading in dom

    # the screenshot is a real page: not blank, dark header band, text and tables
    with Image.open(png) as im:
        shot = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert shot.shape[:2] == (WINDOW[1], WINDOW[0])
    grey = shot.mean(axis=2)
    assert grey.std() > 20
    assert grey[:40].mean() < 120  # the header band
    assert (grey < 200).mean() > 0.02  # not an empty white page
    # every figure that lies inside the screenshot shows drawn content where the page put it
    boxes = [tuple(int(v) for v in b.split(",")) for b in re.search(r'data-image-boxes="([^"]*)"', body).group(1).split(";")]
    assert len(boxes) == n_img
    inside = [b for b in boxes if b[1] + b[3] <= WINDOW[1]]
    assert len(inside) >= 2, boxes
    for x, y, w, h in boxes:
        assert w > 300 and h > 150  # laid out at a readable size
    for x, y, w, h in inside:
        region = grey[y: y + h, x: x + w]
        assert region.std() > 15 and (region < 128).mean() > 0.01, (x, y, w, h)


# --------------------------------------------------------------------------------------------
# screenshot for the documentation
# --------------------------------------------------------------------------------------------


def make_screenshot(target, n_cases=3):  # pragma: no cover - a documentation helper
    browser = find_browser()
    if browser is None:
        raise SystemExit("no Chromium found; install it (apt-get install -y chromium)")
    work = tempfile.mkdtemp(prefix="cmsynth-eval-shot-")
    try:
        data = make_data(os.path.join(work, "data"), n_cases=n_cases)
        out = os.path.join(work, "out")
        code, _, err = run_cli(*_paired_args(data, "mild", out, "--labels", os.path.join(data, "labels"),
                                             "--pred-labels", os.path.join(data, "pred")))
        if code:
            raise SystemExit(err)
        render(os.path.join(out, "report.html"), os.path.abspath(target), browser, window=(1280, 2400))
        print("wrote", target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--screenshot", required=True, help="PNG file to write")
    make_screenshot(parser.parse_args().screenshot)
    sys.exit(0)
