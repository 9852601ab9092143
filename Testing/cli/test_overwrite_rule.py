"""One overwrite rule for every command: --overwrite replaces only the outputs the command
writes; an output folder holding any other file is refused, the file is named, nothing changes.
The rule is printed in every writing command's --help."""

import os
import re
import shutil

import pytest

from testsupport.bundles import make_test_bundle
from CrossModalitySynthLib.cli.main import build_parser
from CrossModalitySynthLib.io.writer import OVERWRITE_RULE
from CrossModalitySynthLib.phantom import write_cases


@pytest.fixture(scope="module")
def mr2ct(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    make_test_bundle(root / "mr2ct", "MR->CT", ("t1_in", "t1_opp"))
    return str(root / "mr2ct")


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    write_cases(str(root), n_cases=1, seed=5, size="small")
    return str(root)


def snapshot(folder):
    return {f: open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder))}


def run_one(cli, mr2ct, src, out, *extra):
    c = os.path.join(src, "case_000")
    return cli("run", "--model", mr2ct, "--progress", "none", "--no-overlays", "--out", out, *extra,
               os.path.join(c, "t1_in.nii.gz"), os.path.join(c, "t1_opp.nii.gz"))


def test_run_overwrite_keeps_a_folder_with_other_files(tmp_path, cli, mr2ct, src):
    out = str(tmp_path / "case")
    code, _, err = run_one(cli, mr2ct, src, out)
    assert code == 0, err
    with open(os.path.join(out, "note.txt"), "w") as f:
        f.write("my notes")
    before = snapshot(out)
    code, _, err = run_one(cli, mr2ct, src, out, "--overwrite")
    assert code != 0
    assert "note.txt" in err and "does not write" in err and "Traceback" not in err
    assert snapshot(out) == before


def test_run_overwrite_replaces_its_own_outputs(tmp_path, cli, mr2ct, src):
    out = str(tmp_path / "case")
    assert run_one(cli, mr2ct, src, out)[0] == 0
    os.utime(os.path.join(out, "summary.json"), (0, 0))
    code, _, err = run_one(cli, mr2ct, src, out, "--overwrite")
    assert code == 0, err
    assert os.stat(os.path.join(out, "summary.json")).st_mtime > 0


def test_batch_keeps_an_unfinished_case_folder_with_other_files(tmp_path, cli, mr2ct, src):
    root = tmp_path / "root"
    (root / "case_000").mkdir(parents=True)
    (root / "case_000" / "note.txt").write_text("my notes")
    code, out, _ = cli("run", "--model", mr2ct, "--progress", "none", "--no-overlays", "--batch", src,
                       "--out", root)
    assert code != 0
    assert "note.txt" in out
    assert os.listdir(root / "case_000") == ["note.txt"]
    assert "failed" in (root / "batch_summary.csv").read_text()


def test_phantom_overwrite_keeps_a_case_folder_with_other_files(tmp_path, cli):
    out = tmp_path / "ph"
    assert cli("phantom", "--out", out)[0] == 0
    (out / "case_000" / "note.txt").write_text("my notes")
    before = snapshot(out / "case_000")
    code, _, err = cli("phantom", "--out", out, "--overwrite", "--seed", "9")
    assert code != 0 and "note.txt" in err
    assert snapshot(out / "case_000") == before


def test_evaluate_overwrite_keeps_a_folder_with_other_files(tmp_path, cli, src):
    real = tmp_path / "real"
    real.mkdir()
    shutil.copy(os.path.join(src, "case_000", "ct_on_mr.nii.gz"), real / "c.nii.gz")
    out = tmp_path / "eval"
    out.mkdir()
    (out / "note.txt").write_text("my notes")
    code, _, err = cli("evaluate", "--real", real, "--synthetic", real, "--paired", "--out", out, "--overwrite",
                       "--no-progress")
    assert code != 0 and "note.txt" in err
    assert os.listdir(out) == ["note.txt"]


@pytest.mark.parametrize("argv", [["convert"], ["phantom"], ["synthesize"], ["segment"], ["run"], ["evaluate"],
                                  ["reader-study", "analyze"]])
def test_every_help_states_the_rule(argv, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv + ["--help"])
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert OVERWRITE_RULE in text
