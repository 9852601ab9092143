"""The typed model contract (registry/spec.py, issue 17 item 1): a bundle's spec.json is read once
into a BundleSpec; a spec that breaks the contract is refused, when the bundle is read, with one
sentence naming the file and the field, by the real `cmsynth` command (exit 1, no traceback, no
output), even when its spec_sha256 was recomputed so that the sha check passes."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from testsupport.bundles import make_test_bundle
from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.inference import load_model
from CrossModalitySynthLib.phantom import write_cases
from CrossModalitySynthLib.registry import BundleSpec, Direction, InputSpec, load_bundle, spec_digest
from CrossModalitySynthLib.registry.bundle import read_spec

CMSYNTH = os.path.join(os.path.dirname(sys.executable), "cmsynth")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("spec")
    make_test_bundle(root / "m", "MR->CT", ("t1_in", "t1_opp"), onnx=False)
    write_cases(str(root / "src"), n_cases=1, seed=7, size="small")
    c = os.path.join(str(root / "src"), "case_000")
    return str(root / "m"), [os.path.join(c, "t1_in.nii.gz"), os.path.join(c, "t1_opp.nii.gz")]


def rewrite(src, dst, change):
    """A copy of bundle ``src`` in ``dst`` whose spec.json is changed by ``change(spec)`` and carries a
    recomputed spec_sha256: a bundle made wrong on purpose gets past the sha check to the contract."""
    shutil.copytree(src, dst)
    path = os.path.join(dst, "spec.json")
    with open(path) as f:
        spec = json.load(f)
    change(spec)
    spec["spec_sha256"] = spec_digest(spec)
    with open(path, "w") as f:
        json.dump(spec, f, indent=2, sort_keys=True)
    return dst


def test_direction_is_the_spec_string_with_its_modalities():
    assert [d.value for d in Direction] == ["MR->CT", "CT->MR", "MR->LIVER"]
    assert Direction("CT->MR") is Direction.CT_TO_MR and Direction.MR_TO_CT == "MR->CT"
    assert f"{Direction.MR_TO_LIVER}" == "MR->LIVER" and json.dumps(Direction.CT_TO_MR) == '"CT->MR"'
    assert [(d.input_modality, d.output_modality, d.is_label_output) for d in Direction] == [
        ("MR", "CT", False), ("CT", "MR", False), ("MR", "LABEL", True)]
    assert Direction.synthesis() == (Direction.MR_TO_CT, Direction.CT_TO_MR)


def test_the_typed_spec_holds_what_the_json_says(made):
    folder, _ = made
    with open(os.path.join(folder, "spec.json")) as f:
        on_disk = json.load(f)
    bundle = load_bundle(folder)
    spec = bundle.contract
    assert isinstance(spec, BundleSpec) and spec.direction is Direction.MR_TO_CT and bundle.direction is spec.direction
    assert spec.inputs == (InputSpec("t1_in", "MR", "T1 in-phase"), InputSpec("t1_opp", "MR", "T1 opposed-phase"))
    assert (spec.output.modality, spec.output.unit, spec.output.range) == ("CT", "HU", (-1024.0, 3071.0))
    assert spec.network == on_disk["network"] and spec.preprocessing == on_disk["preprocessing"]
    assert spec.grid_spec().to_dict() == on_disk["preprocessing"]
    assert spec.network_config().in_channels == 2 and set(spec.files) == {"weights.pt"}
    # the raw JSON stays whole: the sha256 is over it, and changing a copy leaves the bundle alone
    assert bundle.spec == spec.to_dict() == on_disk and spec_digest(spec.to_dict()) == on_disk["spec_sha256"]
    copy = bundle.spec
    copy["inputs"][0]["name"] = "changed"
    assert bundle.spec["inputs"][0]["name"] == "t1_in" and spec.input_names == ["t1_in", "t1_opp"]


def test_unknown_optional_keys_are_kept_and_a_missing_sequence_is_the_name(made, tmp_path):
    folder, _ = made

    def change(spec):
        spec["notes"] = {"reviewed_by": "QA"}
        del spec["inputs"][1]["sequence"]

    copy = rewrite(folder, str(tmp_path / "b"), change)
    bundle = load_bundle(copy)
    assert bundle.spec["notes"] == {"reviewed_by": "QA"}
    assert bundle.contract.input_sequences == ["T1 in-phase", "t1_opp"]
    assert load_model(bundle).input_sequences == ["T1 in-phase", "t1_opp"]


# (what is changed, the words the sentence must hold); every spec keeps a consistent spec_sha256
MALFORMED = [
    ("input_without_name", lambda s: s["inputs"][1].pop("name"), "inputs[1] has no 'name'"),
    ("input_without_modality", lambda s: s["inputs"][0].pop("modality"), "inputs[0] has no 'modality'"),
    ("input_a_string", lambda s: s.update(inputs=["T1 in-phase", "T1 opposed-phase"]), "inputs[0] must be a JSON object"),
    ("input_wrong_modality", lambda s: s["inputs"][1].update(modality="CT"), "inputs[1] is CT but a MR->CT model takes MR"),
    ("repeated_input", lambda s: s["inputs"][1].update(name="t1_in"), "inputs[1] repeats the name 't1_in'"),
    ("no_inputs", lambda s: s.update(inputs=[]), "inputs must be a non-empty list"),
    ("unknown_direction", lambda s: s.update(direction="MR->PET"), "direction 'MR->PET' is unknown"),
    ("missing_output", lambda s: s.pop("output"), "the spec lacks output"),
    ("output_modality", lambda s: s["output"].update(modality="PET"), "output modality 'PET' is unknown"),
    ("channels_vs_network", lambda s: s["network"].update(in_channels=3),
     "network in_channels is 3 but the spec lists 2 input(s)"),
    ("file_without_sha256", lambda s: s["files"]["weights.pt"].pop("sha256"), "files['weights.pt'] needs a 'sha256'"),
    ("preprocessing_key", lambda s: s["preprocessing"].update(colour="red"), "preprocessing: unknown grid spec keys"),
    ("network_key", lambda s: s["network"].update(colour="red"), "network: Unknown network configuration key 'colour'"),
    ("id_not_a_string", lambda s: s.update(id=7), "the spec 'id' must be a non-empty string"),
]


@pytest.mark.parametrize("name,change,words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_spec_gets_one_sentence_from_the_real_cli(made, tmp_path, name, change, words):
    folder, case = made
    copy = rewrite(folder, str(tmp_path / "b"), change)
    out = tmp_path / "s.nii.gz"
    proc = subprocess.run([CMSYNTH, "synthesize", "--model", copy, "--progress", "none", "--device", "cpu",
                           "--out", str(out), *case], capture_output=True, text=True, timeout=300)
    err = proc.stderr.strip()
    assert proc.returncode == 1, (proc.returncode, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert f"{os.path.join(copy, 'spec.json')}: " in err and words in err, err
    assert not out.exists() and os.listdir(tmp_path) == ["b"]  # no partial output


def test_a_malformed_spec_is_refused_when_read_not_later(made, tmp_path):
    folder, _ = made
    copy = rewrite(folder, str(tmp_path / "b"), lambda s: s["inputs"][0].pop("name"))
    for read in (load_bundle, lambda f: load_bundle(f, verify=False), read_spec):
        with pytest.raises(InputError, match=r"spec\.json: inputs\[0\] has no 'name'; export the bundle again"):
            read(copy)


def test_an_edited_spec_is_still_reported_as_modified_first(made, tmp_path):
    """A spec edited by hand (sha256 not recomputed) says so, before its form is judged."""
    folder, _ = made
    copy = str(tmp_path / "b")
    shutil.copytree(folder, copy)
    path = os.path.join(copy, "spec.json")
    with open(path) as f:
        spec = json.load(f)
    spec["inputs"][0].pop("name")
    with open(path, "w") as f:
        json.dump(spec, f)
    with pytest.raises(InputError, match="was modified: its spec.json does not match its sha256"):
        load_bundle(copy)


def test_listing_an_imported_bundle_reads_its_contract_without_numpy(made, tmp_path, cli, monkeypatch):
    """`models list` types the spec of an imported bundle but leaves its grid spec (numpy) alone."""
    from cli.test_cold_start import _imports

    folder, _ = made
    monkeypatch.setenv("CMSYNTH_HOME", str(tmp_path / "home"))
    zpath = tmp_path / "b.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for name in os.listdir(folder):
            z.write(os.path.join(folder, name), name)
    assert cli("models", "import", zpath)[0] == 0
    code, out, _ = cli("models", "list")
    assert code == 0 and "test-mr-to-ct" in out and "T1 in-phase" in out, out
    assert _imports("models", "list") == set()
