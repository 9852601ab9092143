"""A bundle's sha256 covers its spec.json: a really edited spec.json (the output range moved) is
refused before every run and by `models verify`, for a bundle folder, an imported bundle and a
bundle shipped in a registry."""

import json
import os
import shutil
import zipfile

import pytest

from testsupport.bundles import make_test_bundle
from CrossModalitySynthLib.phantom import write_cases
from testsupport.paths import REPO_DIR

REPO = REPO_DIR
SHIPPED = os.path.join(REPO, "CrossModalitySynth", "Resources", "Models", "demo-t1dual-to-ct")


def tamper(folder):
    """Edit spec.json as a person would: move the output range."""
    path = os.path.join(folder, "spec.json")
    with open(path) as f:
        spec = json.load(f)
    spec["output"]["range"] = [-500, 500]
    with open(path, "w") as f:
        json.dump(spec, f, indent=2, sort_keys=True)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    write_cases(str(root), n_cases=1, seed=7, size="small")
    c = os.path.join(str(root), "case_000")
    return [os.path.join(c, "t1_in.nii.gz"), os.path.join(c, "t1_opp.nii.gz")]


def synth(cli, model, out, case, *extra):
    return cli("synthesize", "--model", model, "--progress", "none", "--out", out, *extra, *case)


def test_tampered_bundle_folder_is_refused(tmp_path, cli, case):
    folder = tmp_path / "b"
    make_test_bundle(folder, "MR->CT", ("t1_in", "t1_opp"))
    assert synth(cli, folder, tmp_path / "ok.nii.gz", case)[0] == 0
    tamper(folder)
    code, _, err = synth(cli, folder, tmp_path / "s.nii.gz", case)
    assert code != 0 and "spec.json does not match its sha256" in err
    assert not (tmp_path / "s.nii.gz").exists()


def test_tampered_imported_bundle_fails_verify_and_run(tmp_path, cli, case, monkeypatch):
    monkeypatch.setenv("CMSYNTH_HOME", str(tmp_path / "home"))
    folder = tmp_path / "b"
    make_test_bundle(folder, "MR->CT", ("t1_in", "t1_opp"), model_id="my-local-model")
    zpath = tmp_path / "b.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for name in os.listdir(folder):
            z.write(folder / name, name)
    code, out, err = cli("models", "import", zpath)
    assert code == 0, err
    installed = out.split(" at ")[-1].strip()
    assert cli("models", "verify", "my-local-model")[0] == 0
    tamper(installed)
    code, _, err = cli("models", "verify", "my-local-model")
    assert code != 0 and "spec.json does not match its sha256" in err
    code, _, err = synth(cli, "my-local-model", tmp_path / "s.nii.gz", case)
    assert code != 0 and "spec.json does not match its sha256" in err


def test_tampered_shipped_bundle_is_refused(tmp_path, cli, case):
    res = tmp_path / "Resources"
    shutil.copytree(SHIPPED, res / "Models" / "demo-t1dual-to-ct")
    with open(os.path.join(REPO, "CrossModalitySynth", "Resources", "Models.json")) as f:
        entries = [e for e in json.load(f)["models"] if e["id"] == "demo-t1dual-to-ct"]
    (res / "Models.json").write_text(json.dumps({"models": entries}))
    reg = res / "Models.json"
    assert cli("models", "--registry", reg, "verify", "demo-t1dual-to-ct")[0] == 0
    tamper(res / "Models" / "demo-t1dual-to-ct")
    code, _, err = synth(cli, "demo-t1dual-to-ct", tmp_path / "s.nii.gz", case, "--registry", reg)
    assert code != 0 and "Traceback" not in err
    assert not (tmp_path / "s.nii.gz").exists()
