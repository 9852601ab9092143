"""The augmentation report records how its Wilcoxon p-values were computed (issue 13 item 20).

``write_report`` gets hand-made per-patient scores with tied differences (rounded Dice gains, as
a real experiment's are), so the report's p must be the exact permutation p of the signed-rank
test, whichever scipy is installed, and ``summary.csv`` / ``report.md`` must say so.
"""

import csv
import os

import numpy as np
import pytest

from metrics.test_metrics_statistics import TIED, brute_force_p, normal_p
from testsupport.training import tiny_config

from cmsynth_training.augment import write_report


def _rows(cases, gains):
    rows = []
    for case, gain in zip(cases, gains):
        for arm, dice in (("real", 0.90), ("real+synthetic", 0.90 + gain)):
            rows.append({"arm": arm, "seed": 0, "case": case, "liver_dice": dice, "liver_iou": dice / (2.0 - dice),
                         "liver_hd95_mm": 10.0 - 100.0 * (dice - 0.90)})
    return rows


def test_report_records_the_wilcoxon_method_and_its_exact_p(tmp_path):
    translator = tmp_path / "translator.pt"
    translator.write_bytes(b"")  # the config only checks that it exists; write_report does not read it
    cases = ["case_{:03d}".format(i) for i in range(len(TIED))]
    cfg = tiny_config("augment", str(tmp_path), str(tmp_path / "cache"),
                      augment={"translator": str(translator), "ct_cases": ["ct_000"], "test_cases": cases,
                               "seeds": [0], "n_boot": 200})
    out = tmp_path / "aug"
    out.mkdir()
    rows = _rows(cases, TIED)
    runs = {"real_seed0": {"steps": 6}, "real_plus_synthetic_seed0": {"steps": 6}}
    report = write_report(str(out), rows, cfg, "a test translator", ["mr_000"], ["ct_000"], cases, runs)

    with open(out / "summary.csv", newline="") as f:
        summary = {r["metric"]: r for r in csv.DictReader(f)}
    dice = summary["Dice"]
    diffs = np.array([r["liver_dice"] for r in rows if r["arm"] == "real+synthetic"]) - 0.90
    expected = brute_force_p(diffs)  # every sign pattern of the 15 non-zero differences
    assert dice["wilcoxon_method"] == "exact"
    assert float(dice["wilcoxon_p"]) == pytest.approx(expected, rel=1e-5)  # summary.csv keeps 6 digits
    # with 15 tied differences scipy >= 1.15 by itself would use the normal approximation, a different p
    assert abs(expected - normal_p(diffs)) > 1e-3
    text = open(report, encoding="utf-8").read()
    assert "| Wilcoxon p (method) |" in text
    assert "| {:.3g} (exact) |".format(float(dice["wilcoxon_p"])) in text.split("| Dice |")[1].splitlines()[0]
    assert "exact p over all 2^n sign patterns, ties included, up to 50 patients" in text
