"""Export: checkpoint -> bundle -> load_bundle gives the checkpoint's outputs (torch and ONNX
Runtime); held-out metrics through the bundle equal the training validation; tampering is refused."""

import json
import os

import numpy as np
import pytest
import torch

from testsupport.training import VAL_CASES, one_torch_thread, tiny_config, training_cache, training_phantom  # noqa: F401

from CrossModalitySynthLib.errors import InputError, OutputError
from CrossModalitySynthLib.networks import NetworkConfig, build_network
from CrossModalitySynthLib.preprocess import ModelGridSpec
from CrossModalitySynthLib.registry import load_bundle
from cmsynth_training.__main__ import main
from cmsynth_training.checkpoint import load_checkpoint
from cmsynth_training.trainer import train


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory, training_phantom, training_cache):
    cfg = tiny_config("cyclegan", training_phantom, training_cache, validation=True,
                      data={"mr_sequences": ["t1_in", "t1_opp"]},
                      train={"epochs": 1, "epochs_decay": 0, "steps_per_epoch": 2},
                      export={"id": "test-t1dual-to-ct", "description": "test bundle"})
    return train(cfg, str(tmp_path_factory.mktemp("cg_run")), echo=False)


def _engine_load(folder):
    """Load a bundle the way the inference engine does (spec -> network -> weights)."""
    b = load_bundle(folder)
    net = build_network(NetworkConfig.from_dict(b.spec["network"]))
    net.load_state_dict(torch.load(b.file("weights.pt"), weights_only=True))
    return b, net.eval()


def test_export_matches_checkpoint_torch_and_onnx(tmp_path, cyclegan_run, training_phantom):
    out = str(tmp_path / "bundle")
    code = main(["export", cyclegan_run.checkpoint, "--out", out, "--eval-root", training_phantom,
                 "--eval-cases", ",".join(VAL_CASES)])
    assert code == 0
    b, net = _engine_load(out)
    spec = b.spec
    assert spec["id"] == "test-t1dual-to-ct" and spec["direction"] == "MR->CT"
    assert [i["name"] for i in spec["inputs"]] == ["t1_in", "t1_opp"]
    assert spec["output"] == {"modality": "CT", "unit": "HU", "range": [-1024.0, 3071.0]}
    assert set(spec["files"]) == {"weights.pt", "model.onnx"}
    ModelGridSpec.from_dict(spec["preprocessing"])  # the engine can read the grid spec
    for key in ("data", "steps", "wall_time_s", "device", "width_note", "epochs_done"):
        assert key in spec["training"]
    assert spec["training"]["steps"] == 2
    # held-out metrics measured by the inference engine on the written bundle == the run's last validation
    held = spec["metrics"]["held_out_phantom"]
    assert held["cases"] == VAL_CASES
    assert held["sct_mae_hu"] == pytest.approx(spec["metrics"]["validation"]["sct_mae_hu"], rel=1e-4)
    # the bf16 quality gate, measured on the same held-out cases, is recorded for --precision auto
    from CrossModalitySynthLib.inference.precision import passes_gate
    from cmsynth_training.export import measure_gate

    gate = spec["metrics"]["bf16_gate"]
    assert gate["device"] == "cpu" and gate["cases"] == VAL_CASES and gate["voxels"] > 0
    assert gate["passed"] is passes_gate(gate) and gate["runner_path"].endswith("bf16")
    assert measure_gate(out, training_phantom, VAL_CASES) == gate

    # same outputs as the checkpoint's G_A, in torch and in ONNX Runtime
    ck = load_checkpoint(cyclegan_run.checkpoint)
    g_a = build_network(NetworkConfig.from_dict(spec["network"]))
    g_a.load_state_dict(ck["nets"]["G_A"])
    g_a.eval()
    x = torch.rand(2, 2, 40, 44) * 2 - 1
    with torch.no_grad():
        ref = g_a(x).numpy()
        got = net(x).numpy()
    assert np.array_equal(ref, got)
    import onnxruntime as ort

    sess = ort.InferenceSession(b.file("model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = sess.run(None, {"image": x.numpy()})[0]
    assert np.max(np.abs(onnx_out - ref)) < 1e-4


def test_tampered_bundle_is_refused(tmp_path, cyclegan_run):
    from cmsynth_training.export import export_checkpoint
    from cmsynth_training.validation import load_bundle_network

    out = export_checkpoint(cyclegan_run.checkpoint, str(tmp_path / "b"), onnx=False)
    load_bundle(out)
    with open(os.path.join(out, "weights.pt"), "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(InputError, match="corrupt or was modified"):
        load_bundle(out)
    with pytest.raises(InputError, match="corrupt or was modified"):
        load_bundle_network(out)
    # an existing folder is not overwritten without asking
    with pytest.raises(OutputError, match="already exists"):
        export_checkpoint(cyclegan_run.checkpoint, out, onnx=False)


def test_export_reverse_generator_and_registry_entry(tmp_path, cyclegan_run):
    from cmsynth_training.export import bundle_size, registry_entry, update_registry

    out = str(tmp_path / "rev")
    assert main(["export", cyclegan_run.checkpoint, "--out", out, "--network", "B", "--no-onnx", "--id", "rev"]) == 0
    spec = load_bundle(out).spec
    assert spec["direction"] == "CT->MR" and spec["inputs"][0]["name"] == "ct"
    assert spec["output"]["modality"] == "MR" and spec["output"]["sequences"] == ["t1_in", "t1_opp"]
    assert spec["network"]["in_channels"] == 1 and spec["network"]["out_channels"] == 2
    assert "bf16_gate" not in spec["metrics"]
    entry = registry_entry(out, "Models/rev")
    assert entry["size"] == bundle_size(out) and len(entry["sha256"]) == 64
    models = str(tmp_path / "Models.json")
    update_registry(models, [entry])
    update_registry(models, [dict(entry, version="0.2")])
    with open(models) as f:
        listed = json.load(f)["models"]
    assert len(listed) == 1 and listed[0]["version"] == "0.2"


def test_unet_export(tmp_path, training_phantom, training_cache):
    cfg = tiny_config("unet", training_phantom, training_cache, train={"max_steps": 1})
    r = train(cfg, str(tmp_path / "u"), echo=False)
    out = str(tmp_path / "ub")
    assert main(["export", r.checkpoint, "--out", out, "--eval-root", training_phantom, "--eval-cases", "case_004,case_005"]) == 0
    b, net = _engine_load(out)
    assert b.direction == "MR->LIVER" and b.spec["output"] == {"modality": "LABEL", "labels": {"1": "liver"}}
    held = b.spec["metrics"]["held_out_phantom"]
    assert {"liver_dice", "liver_iou", "liver_hd95_mm"} <= set(held) and held["n_cases"] == 2
    assert "bf16_gate" not in b.spec["metrics"]  # the gate is in HU: MR->CT bundles only
    x = torch.rand(1, 1, 32, 48) * 2 - 1
    import onnxruntime as ort

    sess = ort.InferenceSession(b.file("model.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        assert np.max(np.abs(sess.run(None, {"image": x.numpy()})[0] - net(x).numpy())) < 1e-4


def test_export_errors(tmp_path, capsys):
    code = main(["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 1 and "Checkpoint" in err and "not found" in err


def test_export_overwrite_replaces_only_a_bundle(tmp_path, cyclegan_run):
    """The overwrite rule of every command: --overwrite replaces a bundle folder, but a folder
    holding anything else is refused before any work, and the file stays."""
    from cmsynth_training.export import export_checkpoint

    out = tmp_path / "b"
    export_checkpoint(cyclegan_run.checkpoint, str(out), onnx=False)
    first = os.stat(out).st_ino
    export_checkpoint(cyclegan_run.checkpoint, str(out), onnx=False, overwrite=True)  # a bundle: replaced
    assert os.stat(out).st_ino != first  # a new folder, swapped in
    (out / "note.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"holds files that python -m cmsynth_training export does not write \(note.txt\)"):
        export_checkpoint(cyclegan_run.checkpoint, str(out), onnx=False, overwrite=True)
    assert (out / "note.txt").read_text() == "mine" and (out / "weights.pt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no staging folder left
