"""The augmentation experiment end to end on a tiny config: synthetic MRI from CT through a
translator, U-Nets on real vs real + synthetic MRI for 2 seeds, per-patient statistics."""

import csv
import os

import SimpleITK as sitk

from test_training_support import one_torch_thread, tiny_config, training_cache, training_phantom  # noqa: F401

from CrossModalitySynthLib.errors import ConfigError
from training.augment import run_augment
from training.trainer import train


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


def test_augment_refuses_test_patients_as_ct(tmp_path, training_phantom, training_cache):
    ess_ckpt = str(tmp_path / "none.pt")
    open(ess_ckpt, "w").close()
    cfg = tiny_config("augment", training_phantom, training_cache, data={"cases": ["case_000", "case_001"]},
                      augment={"translator": ess_ckpt, "ct_cases": ["case_004"], "test_cases": ["case_004", "case_005"]})
    import pytest

    with pytest.raises(ConfigError, match="also test cases"):
        run_augment(cfg, str(tmp_path / "a"))
