"""Issue 13 item 10: an input outside what the model was trained on is said so, in words.

The shipped demo bundles record their training range (spacing, body size, normalised body-intensity
histograms, phantom-only), measured from the phantom cases their spec records; ``cmsynth run``
compares every input with it and reports the differences on stderr and in summary.json
``warnings``. Before the fix a scan nothing like the training data ran with ``warnings: []``.
"""

import json
import os
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.training import TRAIN_CASES, tiny_config, training_cache, training_phantom  # noqa: F401

from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.inference import training_range as tr
from CrossModalitySynthLib.io import read_volume, write_volume
from CrossModalitySynthLib.phantom import write_cases
from CrossModalitySynthLib.registry import load_bundle, spec_digest, write_bundle_spec
from testsupport.paths import TESTING_DIR

HERE = TESTING_DIR
MODELS = os.path.join(os.path.dirname(HERE), "CrossModalitySynth", "Resources", "Models")
DEMOS = ("demo-t1dual-to-ct", "demo-t2-to-ct", "demo-liver-unet-t1in", "demo-ct-to-t1in-essnet")
PHANTOM_ONLY = "was trained only on digital phantom data"


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    """A held-out CHAOS-size phantom case (seed 9001: the demo models were trained on CHAOS-size
    seeds 1000-1023)."""
    return write_cases(str(tmp_path_factory.mktemp("tr_heldout")), n_cases=1, seed=9001, size="chaos")[0]


def _scanner_like(image, spacing_xy=3.0):
    """The phantom MRI as a different scan: resampled to ``spacing_xy`` mm in-plane (same field of
    view, linear) and with another contrast: the tissues inside the body in two grey levels only,
    nearly all of them dark (the brightest 5 % bright): not a change the percentile normalisation
    would undo, and beyond the spread of the 24 CHAOS-size training phantoms."""
    size = [int(round(n * s / spacing_xy)) for n, s in zip(image.GetSize()[:2], image.GetSpacing()[:2])]
    ref = sitk.Image(size + [image.GetSize()[2]], sitk.sitkFloat32)
    ref.SetSpacing((spacing_xy, spacing_xy, image.GetSpacing()[2]))
    ref.SetOrigin(image.GetOrigin())
    ref.SetDirection(image.GetDirection())
    resampled = sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    a = np.clip(sitk.GetArrayFromImage(resampled).astype(np.float64), 0.0, None)
    top = np.percentile(a, 99.5)
    tissue = a > 0.05 * top
    dark = np.where(tissue, np.where(a > np.percentile(a[tissue], 95), top, 0.2 * top), a)
    changed = sitk.GetImageFromArray(dark.astype(np.float32))
    changed.CopyInformation(resampled)
    return changed


def _run(cli, tmp_path, inputs, name="r"):
    out = tmp_path / name
    code, stdout, stderr = cli("run", "--model", "demo-t1dual-to-ct", "--liver-model", "demo-liver-unet-t1in",
                               "--out", out, "--device", "cpu", "--no-overlays", *inputs)
    assert code == 0, stderr
    with open(out / "summary.json") as f:
        return json.load(f), stderr


def _stderr_warnings(stderr):
    return [ln.split("warning: ", 1)[1] for ln in stderr.splitlines() if "warning: " in ln]


# --------------------------------------------------------------------------- the shipped bundles


@pytest.mark.parametrize("model_id", DEMOS)
def test_demo_bundles_record_their_phantom_training_range(model_id):
    spec = load_bundle(os.path.join(MODELS, model_id)).spec  # verified: spec_sha256 covers the record
    rec = spec["training_range"]
    data = spec["training"]["data"]
    ct = spec["inputs"][0]["modality"] == "CT"
    assert rec["phantom_only"] is True and rec["dataset"] == "phantom"
    assert rec["n_volumes"] == len(data["ct_cases" if ct else "mr_cases"])
    # the phantom grids (phantom.grids): small MR 6 x 6 x 8.5 mm, CT 4 x 4 x 5 mm; chaos MR 1.40-1.60
    # mm in-plane and 6-8 mm slices, CT 0.70-0.80 mm and 3 mm, drawn per case
    sp = rec["spacing_mm"]
    if data["phantom_size"] == "small":
        assert sp == ({"inplane": [4.0, 4.0], "through_plane": [5.0, 5.0]} if ct
                      else {"inplane": [6.0, 6.0], "through_plane": [8.5, 8.5]})
    else:  # a paired EssNet trained on its CT patients' CT on their MR grid (ct_on_mr)
        on_mr_grid = not ct or spec["training"].get("lambda_paired", 0) > 0
        (lo, hi), (zlo, zhi) = ((1.40, 1.60), (6.0, 8.0)) if on_mr_grid else ((0.70, 0.80), (3.0, 3.0))
        assert lo <= sp["inplane"][0] < sp["inplane"][1] <= hi
        assert zlo <= sp["through_plane"][0] <= sp["through_plane"][1] <= zhi
    assert [c["name"] for c in rec["channels"]] == [i["name"] for i in spec["inputs"]]
    for c in rec["channels"]:
        assert len(c["histogram"]) == rec["bins"] and sum(c["histogram"]) == pytest.approx(1.0, abs=1e-4)
        assert c["threshold"] == pytest.approx(max(tr.DISTANCE_FACTOR * c["max_training_distance"], tr.MIN_THRESHOLD),
                                               abs=2e-4)  # both rounded to 4 digits
    for key in ("width", "depth"):
        lo, hi = rec["body_mm"][key]
        assert 100.0 < lo <= hi < 500.0  # an adult trunk, in mm


def test_demo_record_is_what_the_exporter_measures_from_the_recorded_seeds(tmp_path):
    """The shipped record is reproduced by the export-time function from the spec's seeds and size."""
    from cmsynth_training.export import measure_training_range

    spec = load_bundle(os.path.join(MODELS, "demo-t2-to-ct")).spec
    absent = str(tmp_path / "absent")  # the training folder is not here: the cases are rendered from their seeds
    data = dict(spec["training"]["data"], root=absent)
    assert measure_training_range(dict(spec, training=dict(spec["training"], data=data))) == spec["training_range"]


def test_a_paired_essnet_records_the_ct_on_mr_grid_it_was_trained_on():
    """A paired EssNet (train.lambda_paired) trains on its CT patients' CT on their MR grid: its
    record is measured on those volumes (the small phantom's MR grid, 6 x 6 x 8.5 mm), an unpaired
    one on the CT itself (4 x 4 x 5 mm); both rendered from the recorded seeds."""
    from cmsynth_training.export import measure_training_range

    spec = load_bundle(os.path.join(MODELS, "demo-ct-to-t1in-essnet")).spec
    data = {"dataset": "phantom", "root": "absent", "phantom_size": "small",
            "ct_cases": ["case_000", "case_001"], "ct_phantom_seeds": [5100, 5101]}

    def record(training):
        return measure_training_range(dict(spec, training=dict(training, data=data)))

    paired = record({"task": "essnet", "lambda_paired": 50.0})
    plain = record({"task": "essnet"})
    assert paired["spacing_mm"] == {"inplane": [6.0, 6.0], "through_plane": [8.5, 8.5]}
    assert plain["spacing_mm"] == {"inplane": [4.0, 4.0], "through_plane": [5.0, 5.0]}
    assert paired["n_volumes"] == plain["n_volumes"] == 2


def test_mri_body_is_found_before_the_percentile_clip():
    """A CHAOS-size phantom T2 has dark fat, below the 0.5th percentile that the normalisation
    clips to -1 with the air: the body found on the input (then put on the model grid) spans the
    phantom's true body, while on the normalised array it shrinks to the organs (the T2 demo
    record once said 100-168 mm deep for 182-214 mm trunks)."""
    from CrossModalitySynthLib.phantom import make_case
    from CrossModalitySynthLib.preprocess import ModelGridSpec, prepare

    case = make_case(9002, size="chaos")
    t2 = case.images["t2.nii.gz"]
    spec = load_bundle(os.path.join(MODELS, "demo-t2-to-ct")).spec
    prepared = prepare([t2], ModelGridSpec.from_dict(spec["preprocessing"]), "MR", ["t2"])
    truth = tr._extents_mm(sitk.GetArrayFromImage(case.images["body.nii.gz"]) > 0, t2.GetSpacing())
    found = tr._extents_mm(tr.body_mask(prepared, t2), prepared.model_grid.spacing)
    clipped = tr._extents_mm(tr.body_mask(prepared), prepared.model_grid.spacing)
    step = prepared.model_grid.spacing[0]
    for key in ("width", "depth"):
        assert abs(found[key] - truth[key]) <= 2 * step, (key, found, truth)
    assert clipped["depth"] < 0.9 * truth["depth"]  # the old measure, on the clipped array, is wrong here


# --------------------------------------------------------------------------- cmsynth run


@pytest.mark.slow
def test_held_out_phantom_case_runs_without_range_warnings(tmp_path, cli, heldout):
    summary, stderr = _run(cli, tmp_path, [os.path.join(heldout, "t1_in.nii.gz"), os.path.join(heldout, "t1_opp.nii.gz")])
    assert summary["warnings"] == [], summary["warnings"]
    assert "warning" not in stderr, stderr


@pytest.mark.parametrize("command, model, out", [("synthesize", "demo-t1dual-to-ct", "s.nii.gz"),
                                                  ("segment", "demo-liver-unet-t1in", "l.nii.gz")])
def test_synthesize_and_segment_know_a_phantom_case_by_its_files(tmp_path, cli, heldout, command, model, out):
    """The two single-model commands pass their input files to the check too: a held-out phantom
    case from its folder gets no warning, the same voxels copied elsewhere the phantom-only one."""
    names = ["t1_in.nii.gz", "t1_opp.nii.gz"] if command == "synthesize" else ["t1_in.nii.gz"]
    code, _, stderr = cli(command, "--model", model, "--out", tmp_path / out, "--device", "cpu",
                          *[os.path.join(heldout, n) for n in names])
    assert code == 0, stderr
    assert "warning" not in stderr, stderr
    copied = tmp_path / "copied"
    copied.mkdir()
    for n in names:
        shutil.copy(os.path.join(heldout, n), copied / n)
    code, _, stderr = cli(command, "--model", model, "--out", tmp_path / ("c_" + out), "--device", "cpu",
                          *[str(copied / n) for n in names])
    assert code == 0, stderr
    assert [w for w in _stderr_warnings(stderr) if PHANTOM_ONLY in w and "not a phantom case" in w], stderr


@pytest.mark.slow
def test_scanner_like_input_is_said_to_be_outside_the_training_range(tmp_path, cli, heldout):
    """A phantom MRI resampled to 3 mm in-plane, with another contrast, written without phantom
    metadata: the spacing, both channels' intensity distributions and the phantom-only training are
    named, once each, on stderr and in summary.json, for both models."""
    src = tmp_path / "scan"
    src.mkdir()
    paths = []
    for name in ("t1_in", "t1_opp"):
        paths.append(str(src / f"{name}.nii.gz"))
        write_volume(_scanner_like(read_volume(os.path.join(heldout, f"{name}.nii.gz"))), paths[-1])
    summary, stderr = _run(cli, tmp_path, paths)
    warnings = summary["warnings"]
    assert _stderr_warnings(stderr) == warnings  # the same sentences, each once
    assert len(set(warnings)) == len(warnings)
    for model in ("demo-t1dual-to-ct", "demo-liver-unet-t1in"):
        assert any(w.startswith(f"{model}: the input's in-plane spacing 3 mm is outside the training range (1.4")
                   for w in warnings), warnings
        assert any(w.startswith(f"{model} {PHANTOM_ONLY} and the input is not a phantom case") for w in warnings)
    dist = [w for w in warnings if "intensity distribution inside the body differs" in w]
    assert any(w.startswith("demo-t1dual-to-ct: the T1 in-phase") for w in dist)
    assert any(w.startswith("demo-t1dual-to-ct: the T1 opposed-phase") for w in dist)
    assert any(w.startswith("demo-liver-unet-t1in: the T1 in-phase") for w in dist)
    for w in dist:  # the numbers the sentence gives: distance above the threshold
        d, t = (float(x) for x in w.split("(distance ")[1].rstrip(").").split(", threshold "))
        assert d > t
    assert not any("body width" in w or "slice spacing" in w for w in warnings)  # same body, same slices


@pytest.mark.slow
def test_phantom_volume_without_its_case_folder_gets_only_the_phantom_only_warning(tmp_path, cli, heldout):
    """The same voxels copied out of the phantom case folder: nothing is out of range, but the
    input is no longer known as a phantom case, and a phantom-only model says so."""
    src = tmp_path / "copied"
    src.mkdir()
    paths = []
    for name in ("t1_in.nii.gz", "t1_opp.nii.gz"):
        shutil.copy(os.path.join(heldout, name), src / name)
        paths.append(str(src / name))
    summary, _ = _run(cli, tmp_path, paths)
    assert len(summary["warnings"]) == 2, summary["warnings"]
    assert all(PHANTOM_ONLY in w and "not a phantom case" in w for w in summary["warnings"])


# --------------------------------------------------------------------------- the phantom rule


def test_phantom_rule_needs_the_case_json_and_its_grid(tmp_path, heldout):
    path = os.path.join(heldout, "t1_in.nii.gz")
    image = read_volume(path)
    assert tr.is_phantom_case_file(path, image)
    assert tr.is_phantom_case_file(os.path.join(heldout, "ct.nii.gz"), read_volume(os.path.join(heldout, "ct.nii.gz")))
    # another volume in the phantom folder (other grid): not a phantom case
    other = _scanner_like(image)
    assert not tr.is_phantom_case_file(path, other)
    # a case.json that is not the phantom's
    fake = tmp_path / "fake"
    fake.mkdir()
    shutil.copy(path, fake / "t1_in.nii.gz")
    (fake / "case.json").write_text(json.dumps({"format": "something else"}))
    assert not tr.is_phantom_case_file(str(fake / "t1_in.nii.gz"), image)
    assert not tr.is_phantom_case_file(None, image)


# --------------------------------------------------------------------------- the spec key


def test_malformed_training_range_is_refused_with_one_sentence(tmp_path):
    folder = tmp_path / "b"
    shutil.copytree(os.path.join(MODELS, "demo-t2-to-ct"), folder)
    spec = load_bundle(str(folder)).spec
    spec["training_range"] = dict(spec["training_range"], spacing_mm={"inplane": [6.0], "through_plane": [8.5, 8.5]})
    write_bundle_spec(str(folder), spec)  # a consistent spec_sha256: the form itself is checked
    with open(folder / "spec.json") as f:
        assert spec_digest(json.load(f)) == json.load(open(folder / "spec.json"))["spec_sha256"]
    with pytest.raises(InputError, match=r"training_range spacing_mm.inplane must be \[low, high\]"):
        load_bundle(str(folder))
    spec["training_range"] = dict(load_bundle(os.path.join(MODELS, "demo-t2-to-ct")).spec["training_range"],
                                  channels=[{"name": "t1_in", "histogram": [1.0] * 40, "threshold": 0.1}])
    write_bundle_spec(str(folder), spec)
    with pytest.raises(InputError, match=r"channels \['t1_in'\] must be the inputs \['t2'\]"):
        load_bundle(str(folder))


def test_histogram_distance_is_the_earth_movers_distance():
    a = np.zeros(40)
    b = np.zeros(40)
    a[0] = b[10] = 1.0
    assert tr.histogram_distance(a, b) == pytest.approx(10 * 2.0 / 40)  # all mass moved by 10 bins of 0.05
    assert tr.histogram_distance(a, a) == 0.0


# --------------------------------------------------------------------------- export


@pytest.mark.slow
def test_export_records_the_training_range_of_the_training_cases(tmp_path, training_phantom, training_cache):
    """A real (tiny) U-Net training run exported by the real exporter: the bundle records the
    training range of exactly its training cases, and the demo bundles' way of measuring it again
    (the cases rendered from the recorded seeds, the data folder gone) gives the same record."""
    from cmsynth_training.__main__ import main
    from cmsynth_training.export import restamp_training_range
    from cmsynth_training.trainer import train

    cfg = tiny_config("unet", training_phantom, training_cache, train={"max_steps": 1})
    run = train(cfg, str(tmp_path / "u"), echo=False)
    out = str(tmp_path / "bundle")
    assert main(["export", run.checkpoint, "--out", out, "--no-onnx"]) == 0
    spec = load_bundle(out).spec
    rec = spec["training_range"]
    assert spec["training"]["data"]["mr_cases"] == TRAIN_CASES
    assert rec["n_volumes"] == len(TRAIN_CASES) and rec["phantom_only"] is True
    assert rec["spacing_mm"] == {"inplane": [6.0, 6.0], "through_plane": [8.5, 8.5]}  # the small phantom MR grid
    assert [c["name"] for c in rec["channels"]] == ["t1_in"]
    # measured by hand: the training cases through prepare with the bundle's grid, body histograms
    from CrossModalitySynthLib.preprocess import ModelGridSpec, prepare

    grid = ModelGridSpec.from_dict(spec["preprocessing"])
    hists = []
    for case in TRAIN_CASES:
        image = read_volume(os.path.join(training_phantom, case, "t1_in.nii.gz"))
        prepared = prepare([image], grid, "MR", ["T1 in-phase"])
        body = tr.body_mask(prepared, image)
        h, _ = np.histogram(prepared.array[0][body], bins=tr.BINS, range=(-1.0, 1.0))
        hists.append(h / h.sum())
    np.testing.assert_allclose(rec["channels"][0]["histogram"], np.mean(hists, axis=0), atol=1e-6)

    # the same record from the recorded seeds, as the demo bundles were stamped (weights untouched)
    moved = dict(spec, training=dict(spec["training"], data=dict(spec["training"]["data"], root=str(tmp_path / "gone"))))
    moved.pop("training_range")
    write_bundle_spec(out, moved)
    weights = load_bundle(out).spec["files"]["weights.pt"]
    assert restamp_training_range(out) == rec
    assert load_bundle(out).spec["files"]["weights.pt"] == weights
