"""The augmentation experiment end to end on a tiny config: synthetic MRI from CT through a
translator, U-Nets on real vs real + synthetic MRI for 2 seeds and equal steps, per-patient
statistics. (The leakage checks: test_training_leakage.py.)"""

import copy
import csv
import os

import SimpleITK as sitk

from testsupport.training import one_torch_thread, tiny_config, tiny_dict, training_cache, training_phantom  # noqa: F401

from cmsynth_training.augment import run_augment
from cmsynth_training.checkpoint import load_checkpoint
from cmsynth_training.config import config_from_dict
from cmsynth_training.trainer import train
from testsupport.paths import REPO_DIR


def test_augment_report_end_to_end(tmp_path, training_phantom, training_cache):
    # a (barely trained) EssNet checkpoint is the CT -> MRI translator
    ess = train(tiny_config("essnet", training_phantom, training_cache, train={"max_steps": 1}),
                str(tmp_path / "essnet"), echo=False)
    cfg = tiny_config(
        "augment", training_phantom, training_cache,
        data={"cases": ["case_000", "case_001"]},
        train={"epochs": 1, "epochs_decay": 0, "steps_per_epoch": 4, "batch_size": 4, "lr": 3e-3, "beta1": 0.9,
               "preview_every": 1},
        augment={"translator": ess.checkpoint, "ct_cases": ["case_002", "case_003"],
                 "test_cases": ["case_004", "case_005"], "seeds": [0, 1], "n_boot": 500},
    )
    out = str(tmp_path / "aug")
    report = run_augment(cfg, out)
    assert report == os.path.join(out, "report.md")
    text = open(report).read()
    assert "| Dice |" in text and "| IoU |" in text and "| HD95 (mm) |" in text and "95% CI" in text
    for name in ("scores.csv", "patients.csv", "summary.csv", "report.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    with open(os.path.join(out, "scores.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2  # arms x seeds x test patients
    assert {r["arm"] for r in rows} == {"real", "real+synthetic"}
    with open(os.path.join(out, "summary.csv")) as f:
        summary = {r["metric"]: r for r in csv.DictReader(f)}
    assert set(summary) == {"Dice", "IoU", "HD95 (mm)"}
    s = summary["Dice"]
    assert float(s["ci_low"]) <= float(s["mean_difference"]) <= float(s["ci_high"])
    assert 0.0 <= float(s["wilcoxon_p"]) <= 1.0 and int(s["n_patients"]) == 2
    # equal training: every U-Net (2 arms x 2 seeds) ran steps_per_epoch x epochs = 4 steps, recorded
    for run in ("real_seed0", "real_plus_synthetic_seed0", "real_seed1", "real_plus_synthetic_seed1"):
        assert load_checkpoint(os.path.join(out, "runs", run, "checkpoints", "last.pt"))["global_step"] == 4
    assert all(int(r["steps_per_epoch"]) == 4 and int(r["steps_per_unet"]) == 4 for r in summary.values())
    assert "- Steps per U-Net, equal for both arms: 4 (train.steps_per_epoch 4 x 1 epochs; planned 4)" in text
    assert "No test patient is a training patient of the translator or of either U-Net arm" in text
    assert "leakage check passed" in open(os.path.join(out, "log.txt")).read()
    # the synthetic MRI lies on the CT grid with the CT's liver label
    syn = sitk.ReadImage(os.path.join(out, "synthetic", "case_002", "t1_in.nii.gz"))
    ct = sitk.ReadImage(os.path.join(training_phantom, "case_002", "ct.nii.gz"))
    assert syn.GetSize() == ct.GetSize() and syn.GetOrigin() == ct.GetOrigin()
    assert os.path.isfile(os.path.join(out, "synthetic", "case_002", "labels.nii.gz"))
    # the real+synthetic runs saw the synthetic cases, the real runs did not
    log_mixed = open(os.path.join(out, "runs", "real_plus_synthetic_seed0", "log.txt")).read()
    log_real = open(os.path.join(out, "runs", "real_seed0", "log.txt")).read()
    assert "extra_mr_cases" in log_mixed and "extra_mr_cases" not in log_real
    # a second call reuses the finished runs and gives the same report
    assert run_augment(cfg, out) == report
    assert open(report).read() == text


def _write(tmp_path, d):
    import yaml

    path = tmp_path / "augment.yaml"
    path.write_text(yaml.safe_dump(d))
    return str(path)


def _cli(*argv):
    import subprocess
    import sys

    repo = REPO_DIR
    return subprocess.run([sys.executable, "-m", "cmsynth_training", *argv], capture_output=True, text=True, cwd=repo)


def test_augment_requires_equal_steps(tmp_path, training_phantom, training_cache):
    """Without train.steps_per_epoch an epoch is one pass over the data, so the real+synthetic arm
    (more slices) would train for more steps than the real arm: the command refuses, as it
    refuses a wall-time limit, with one sentence and exit status 1 and writes nothing."""
    translator = tmp_path / "t.pt"
    translator.write_bytes(b"")
    base = tiny_dict("augment", training_phantom, training_cache, data={"cases": ["case_000", "case_001"]},
                     augment={"translator": str(translator), "ct_cases": ["case_002"], "test_cases": ["case_004", "case_005"]})
    out = tmp_path / "out"
    d = copy.deepcopy(base)
    d["train"]["steps_per_epoch"] = None
    r = _cli("augment", "--config", _write(tmp_path, d), "--out", str(out))
    assert r.returncode == 1
    assert r.stderr == ("error: train.steps_per_epoch is not set; the augment task needs it so that both U-Net arms "
                        "(real and real+synthetic) train for the same number of steps.\n")
    d = copy.deepcopy(base)
    d["train"]["max_wall_time_s"] = 60
    r = _cli("augment", "--config", _write(tmp_path, d), "--out", str(out))
    assert r.returncode == 1 and r.stderr.startswith("error: train.max_wall_time_s would stop the two U-Net arms")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not out.exists()
    # the other tasks keep the natural epoch length
    d = tiny_dict("unet", training_phantom, training_cache, train={"steps_per_epoch": None})
    assert config_from_dict(d, "unet").train.steps_per_epoch is None
