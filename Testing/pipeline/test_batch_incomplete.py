"""A batch never drops a case silently: a case folder (or CSV row) lacking an input is recorded
in batch_summary.csv as failed, with the missing input named, and the exit code is non-zero."""

import csv
import os
import shutil

import pytest

from testsupport.bundles import make_test_bundle
from CrossModalitySynthLib.phantom import write_cases


@pytest.fixture(scope="module")
def mr2ct(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    make_test_bundle(root / "mr2ct", "MR->CT", ("t1_in", "t1_opp"))
    return str(root / "mr2ct")


def rows(root):
    with open(os.path.join(root, "batch_summary.csv"), newline="") as f:
        return {r["case_id"]: r for r in csv.DictReader(f)}


def test_folder_case_missing_a_sequence_is_recorded_failed(tmp_path, cli, mr2ct):
    src = tmp_path / "src"
    write_cases(str(src), n_cases=2, seed=6, size="small")
    os.remove(src / "case_001" / "t1_opp.nii.gz")
    (src / "notes").mkdir()  # holds none of the inputs: not a case
    out = tmp_path / "out"
    code, stdout, _ = cli("run", "--model", mr2ct, "--progress", "none", "--no-overlays", "--batch", src, "--out", out)
    assert code != 0
    r = rows(out)
    assert sorted(r) == ["case_000", "case_001"]
    assert r["case_000"]["status"] == "done"
    assert r["case_001"]["status"].startswith("failed") and "t1_opp" in r["case_001"]["status"]
    assert not (out / "case_001").exists()
    assert "1 of 2 cases" in stdout


def test_csv_row_with_an_empty_input_is_recorded_failed(tmp_path, cli, mr2ct):
    src = tmp_path / "src"
    write_cases(str(src), n_cases=1, seed=6, size="small")
    table = tmp_path / "cases.csv"
    table.write_text("case_id,t1_in,t1_opp\n"
                     "a,src/case_000/t1_in.nii.gz,src/case_000/t1_opp.nii.gz\n"
                     "b,src/case_000/t1_in.nii.gz,\n")
    out = tmp_path / "out"
    code, _, _ = cli("run", "--model", mr2ct, "--progress", "none", "--no-overlays", "--batch", table, "--out", out)
    assert code != 0
    r = rows(out)
    assert r["a"]["status"] == "done"
    assert r["b"]["status"].startswith("failed") and "no t1_opp given" in r["b"]["status"]
