"""Each check once (issue 17): `cmsynth run` checks the output folder and reads and checks the
reference CT once, before any model is loaded, and the case run reuses that result; a library
caller of run_case without it still gets every check."""

import json
import os

import pytest

from testsupport.bundles import bundles_and_case

from CrossModalitySynthLib.cli.main import main
from CrossModalitySynthLib.errors import OutputError
from CrossModalitySynthLib.pipeline import clinical


@pytest.fixture()
def counted(monkeypatch):
    calls = {"folder": 0, "reads": []}
    real_folder, real_read = clinical.check_output_folder, clinical.read_volume

    def folder(*a, **k):
        calls["folder"] += 1
        return real_folder(*a, **k)

    def read(path, *a, **k):
        calls["reads"].append(os.path.basename(str(path)))
        return real_read(path, *a, **k)

    monkeypatch.setattr(clinical, "check_output_folder", folder)
    monkeypatch.setattr(clinical, "read_volume", read)
    return calls


def test_run_checks_the_folder_and_reads_the_reference_once(tmp_path, counted):
    case = bundles_and_case(tmp_path, extra=())
    out = tmp_path / "out"
    code = main(["run", "--model", str(tmp_path / "m"), "--out", str(out), "--device", "cpu", "--no-overlays",
                 "--progress", "none", "--reference-ct", os.path.join(case, "ct_on_mr.nii.gz"),
                 os.path.join(case, "t1_in.nii.gz"), os.path.join(case, "t1_opp.nii.gz")])
    assert code == 0
    assert counted["folder"] == 1
    assert counted["reads"].count("ct_on_mr.nii.gz") == 1
    with open(out / "summary.json") as f:
        assert "mae_hu" in json.dumps(json.load(f))


def test_run_case_without_a_check_result_checks_itself(tmp_path, counted):
    from CrossModalitySynthLib.inference import load_model
    from CrossModalitySynthLib.registry import load_bundle

    case = bundles_and_case(tmp_path, extra=())
    out = tmp_path / "out"
    out.mkdir()
    (out / "note.txt").write_text("mine")
    model = load_model(load_bundle(str(tmp_path / "m")))
    inputs = clinical.CaseInputs("c", [os.path.join(case, "t1_in.nii.gz"), os.path.join(case, "t1_opp.nii.gz")],
                                 None, model.input_names)
    with pytest.raises(OutputError, match="note.txt"):
        clinical.run_case(inputs, model, str(out), overwrite=True, overlays=False)
    assert counted["folder"] == 1 and (out / "note.txt").read_text() == "mine"
