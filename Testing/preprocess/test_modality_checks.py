"""The modality check in every direction (issue 13 item 9): a real MRI given to a CT -> MR model,
an MRI given as `cmsynth run --reference-ct`, and an MRI given as the real CT of `cmsynth evaluate`
are refused with one sentence and nothing written; `--force` runs anyway with the sentence as a
warning. MR-vs-MR evaluation of synthetic MRIs still runs, and says what it is.

Real data: a small phantom case (t1_in, t1_opp, t2 MRIs; ct_on_mr, its CT on the MRI grid) and the
shipped demo bundles (demo-t1dual-to-ct, demo-ct-to-t1in-essnet), run through `cmsynth`.
"""

import csv
import glob
import json
import os

import pytest

from CrossModalitySynthLib.cli.main import main
from CrossModalitySynthLib.phantom import write_cases

MR_TO_CT = "demo-t1dual-to-ct"
CT_TO_MR = "demo-ct-to-t1in-essnet"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The phantom case and, made by the demo bundles, its synthetic CT and synthetic MRI."""
    root = tmp_path_factory.mktemp("modality")
    case = write_cases(str(root / "src"), n_cases=1, seed=5, size="small")[0]
    files = {k: os.path.join(case, k + ".nii.gz") for k in ("t1_in", "t1_opp", "t2", "ct_on_mr")}
    files["sct"] = str(root / "sct.nii.gz")
    files["smr"] = str(root / "smr.nii.gz")
    assert main(["synthesize", "--model", MR_TO_CT, "--progress", "none", "--out", files["sct"],
                 files["t1_in"], files["t1_opp"]]) == 0
    assert main(["synthesize", "--model", CT_TO_MR, "--progress", "none", "--out", files["smr"],
                 files["ct_on_mr"]]) == 0
    return files


def one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err  # one sentence, no traceback
    assert lines[0].startswith(f"cmsynth {command}: error: ") and "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------ CT -> MR model given an MRI


@pytest.mark.parametrize("command", ["synthesize", "run"])
def test_ct_to_mr_model_refuses_a_real_mri(tmp_path, cli, data, command):
    out = tmp_path / ("smr.nii.gz" if command == "synthesize" else "case")
    code, _, err = cli(command, "--model", CT_TO_MR, "--progress", "none", "--out", out, data["t1_in"])
    assert code == 1
    line = one_error_line(err, command)
    assert "The volume given as a CT looks like an MRI" in line and "Pass --force to run anyway." in line
    assert not out.exists() and os.listdir(tmp_path) == []  # no output, no temporary left behind


def test_ct_to_mr_model_runs_a_real_mri_with_force_and_warns(tmp_path, cli, data):
    out = tmp_path / "case"
    code, _, err = cli("run", "--model", CT_TO_MR, "--progress", "none", "--out", out, "--force", data["t1_in"])
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert any("given as a CT looks like an MRI" in w for w in summary["warnings"])
    assert "warning: The volume given as a CT looks like an MRI" in err
    assert (out / "synthetic.nii.gz").is_file()


def test_ct_to_mr_model_takes_a_real_ct_without_modality_warning(tmp_path, cli, data):
    out = tmp_path / "smr.nii.gz"
    code, _, err = cli("synthesize", "--model", CT_TO_MR, "--progress", "none", "--out", out, data["ct_on_mr"])
    assert code == 0 and out.is_file() and "looks like" not in err


# ------------------------------------------------------------------ cmsynth run --reference-ct


def test_run_refuses_an_mri_as_reference_ct_before_loading_the_model(tmp_path, cli, data, monkeypatch):
    import CrossModalitySynthLib.cli.engine_args as engine_args

    loaded = []  # every model the command line loads goes through engine_args.load_model
    real_load = engine_args.load_model
    monkeypatch.setattr(engine_args, "load_model", lambda *a, **k: loaded.append(a) or real_load(*a, **k))
    out = tmp_path / "case"
    code, _, err = cli("run", "--model", MR_TO_CT, "--progress", "none", "--out", out, "--reference-ct", data["t2"],
                       data["t1_in"], data["t1_opp"])
    assert code == 1
    line = one_error_line(err, "run")
    assert f"The reference CT {data['t2']} looks like an MRI" in line and "--force" in line
    assert loaded == []  # refused before any model was loaded
    assert not out.exists() and os.listdir(tmp_path) == []


def test_run_with_force_computes_metrics_against_the_mri_and_records_the_warning(tmp_path, cli, data):
    out = tmp_path / "case"
    code, _, err = cli("run", "--model", MR_TO_CT, "--progress", "none", "--out", out, "--reference-ct", data["t2"],
                       "--force", data["t1_in"], data["t1_opp"])
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert "metrics" in summary
    assert [w for w in summary["warnings"] if w.startswith(f"The reference CT {data['t2']} looks like an MRI")]


def test_run_takes_the_real_ct_as_reference_without_warning(tmp_path, cli, data):
    out = tmp_path / "case"
    code, _, err = cli("run", "--model", MR_TO_CT, "--progress", "none", "--out", out,
                       "--reference-ct", data["ct_on_mr"], data["t1_in"], data["t1_opp"])
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert "metrics" in summary and not [w for w in summary["warnings"] if "reference CT" in w]


def test_run_refuses_a_reference_ct_for_a_ct_to_mr_model(tmp_path, cli, data):
    out = tmp_path / "case"
    code, _, err = cli("run", "--model", CT_TO_MR, "--progress", "none", "--out", out,
                       "--reference-ct", data["ct_on_mr"], data["ct_on_mr"])
    assert code == 1
    assert "--reference-ct is for MRI -> CT models" in one_error_line(err, "run")
    assert not out.exists()


def test_batch_case_with_an_mri_as_reference_fails_and_names_it(tmp_path, cli, data):
    src = tmp_path / "cases"
    case = src / "p1"
    case.mkdir(parents=True)
    for name in ("t1_in", "t1_opp", "t2"):
        os.link(data[name], case / f"{name}.nii.gz")
    root = tmp_path / "results"
    code, _, err = cli("run", "--model", MR_TO_CT, "--progress", "none", "--batch", src, "--out", root,
                       "--reference-name", "t2")
    assert code == 1
    with open(root / "batch_summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["status"].startswith("failed") and "looks like an MRI" in rows[0]["status"]
    assert not (root / "p1").exists()


# ------------------------------------------------------------------ cmsynth evaluate


def test_evaluate_refuses_an_mri_as_the_real_ct(tmp_path, cli, data):
    out = tmp_path / "eval"
    code, _, err = cli("evaluate", "--paired", "--real", data["t1_in"], "--synthetic", data["sct"], "--out", out,
                       "--no-progress")
    assert code == 1
    line = one_error_line(err, "evaluate")
    assert f"the real volume {data['t1_in']} looks like an MRI" in line and "evaluated as CTs" in line
    assert "--force" in line
    assert not out.exists() and os.listdir(tmp_path) == []


def test_evaluate_unpaired_refuses_an_mri_in_the_real_ct_set(tmp_path, cli, data):
    out = tmp_path / "eval"
    code, _, err = cli("evaluate", "--real", data["ct_on_mr"], data["t1_in"], "--synthetic", data["sct"],
                       "--out", out, "--no-progress")
    assert code == 1 and "looks like an MRI" in one_error_line(err, "evaluate") and not out.exists()


def test_evaluate_with_force_evaluates_and_warns(tmp_path, cli, data):
    out = tmp_path / "eval"
    code, _, err = cli("evaluate", "--paired", "--real", data["t1_in"], "--synthetic", data["sct"], "--out", out,
                       "--no-progress", "--force")
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["modality"] == "CT"
    assert [w for w in m["warnings"] if "looks like an MRI" in w and "--force" in w]


def test_evaluate_real_ct_against_synthetic_ct_has_no_modality_warning(tmp_path, cli, data):
    out = tmp_path / "eval"
    code, stdout, err = cli("evaluate", "--paired", "--real", data["ct_on_mr"], "--synthetic", data["sct"],
                            "--out", out, "--no-progress")
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["modality"] == "CT" and not [w for w in m["warnings"] if "looks like" in w or "MR-vs-MR" in w]
    assert " HU, PSNR" in stdout


def test_evaluate_mr_against_synthetic_mr_runs_and_says_so(tmp_path, cli, data):
    out = tmp_path / "eval"
    code, stdout, err = cli("evaluate", "--paired", "--real", data["t1_in"], "--synthetic", data["smr"],
                            "--out", out, "--no-progress")
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["modality"] == "MR"
    assert [w for w in m["warnings"] if w.startswith("The synthetic volumes look like MRIs, so this is an MR-vs-MR")]
    assert "(MRI intensity units)" in stdout and " HU, PSNR" not in stdout
    assert m["cases"][0]["mae"] > 0


def test_evaluate_refuses_a_ct_as_the_real_mri_of_synthetic_mris(tmp_path, cli, data):
    out = tmp_path / "eval"
    code, _, err = cli("evaluate", "--paired", "--real", data["ct_on_mr"], "--synthetic", data["smr"],
                       "--out", out, "--no-progress")
    assert code == 1
    line = one_error_line(err, "evaluate")
    assert "looks like a CT" in line and "evaluated as MRIs" in line and not out.exists()
    assert not glob.glob(str(tmp_path / ".*"))
