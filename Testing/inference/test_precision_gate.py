"""``--precision auto``: bf16 only where the bundle records a measured, passing bf16 quality gate for
the device type and the device has native bf16; the gate measurement itself; the demo ``gate``
step on a temporary copy of a bundle.

Real bundles (``make_test_bundle``; ``output_scale=0.01`` gives a generator whose bf16 output
passes the gate, random weights at full scale fail it) and real small phantom cases.
"""

import json
import os
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.images import t1dual_phantom_cases
from testsupport.bundles import make_test_bundle
from CrossModalitySynthLib.errors import ConfigError
from CrossModalitySynthLib.inference import EngineOptions, load_model, synthesize
from CrossModalitySynthLib.inference.device import cpu_bf16_kind, native_bf16
from CrossModalitySynthLib.inference.measure_gate import measure_bf16_gate
from CrossModalitySynthLib.inference.precision import (
    GATE_MEAN_HU,
    GATE_P99_HU,
    bundle_gate,
    gate_record,
    gate_statistics,
    merge_gate,
    passes_gate,
    resolve_precision,
)
from CrossModalitySynthLib.inference.runners import OPTIMIZE_ENV
from CrossModalitySynthLib.registry import Registry, load_bundle, sha256_of, write_bundle_spec
from testsupport.paths import TESTING_DIR

HERE = TESTING_DIR
RESOURCES = os.path.join(HERE, "..", "CrossModalitySynth", "Resources")
SEEDS = (11, 12)
CPU_NATIVE = native_bf16("cpu")


def with_gate(bundle, record):
    """The bundle rewritten with ``record`` at spec["metrics"]["bf16_gate"] (None removes it)."""
    spec = dict(bundle.spec)
    spec["metrics"] = dict(spec.get("metrics") or {})
    if record is None:
        spec["metrics"].pop("bf16_gate", None)
    else:
        spec["metrics"]["bf16_gate"] = record
    write_bundle_spec(bundle.path, spec)
    return load_bundle(bundle.path)


@pytest.fixture(scope="module")
def cases():
    return t1dual_phantom_cases(SEEDS)


@pytest.fixture(scope="module")
def quiet(tmp_path_factory, cases):
    """A bundle whose bf16 output passes the gate, with its measured record."""
    b = make_test_bundle(tmp_path_factory.mktemp("quiet") / "b", "MR->CT", ("t1_in", "t1_opp"), output_scale=0.01,
                         model_id="test-quiet")
    record = measure_bf16_gate(b, cases, names=list(SEEDS))
    return with_gate(b, record), record


@pytest.fixture(scope="module")
def loud(tmp_path_factory, cases):
    """A random-weight bundle whose bf16 output fails the gate, with its measured record."""
    b = make_test_bundle(tmp_path_factory.mktemp("loud") / "b", "MR->CT", ("t1_in", "t1_opp"), onnx=False,
                         model_id="test-loud")
    record = measure_bf16_gate(b, cases, names=list(SEEDS))
    return with_gate(b, record), record


def _cpu(bundle, **kw):
    return load_model(bundle, EngineOptions(device="cpu", **kw))


def test_auto_is_the_default_and_fp32_without_a_record(tmp_path):
    assert EngineOptions().precision == "auto"
    b = make_test_bundle(tmp_path / "plain", "MR->CT", ("t1_in", "t1_opp"), onnx=False)
    assert bundle_gate(b.spec) is None
    m = _cpu(b)
    assert (m.precision, m.runner.path) == ("fp32", "optimised-fp32")
    assert "no bf16 gate measured on cpu" in m.precision_reason


def test_measured_record_equals_independent_statistics(quiet, cases):
    bundle, record = quiet
    json.dumps(record)  # JSON-able
    fp32 = _cpu(bundle, precision="fp32")
    bf16 = _cpu(bundle, precision="bf16")
    tests, refs = [], []
    for images, body in cases:
        a = sitk.GetArrayFromImage(synthesize(bf16, images).image)
        r = sitk.GetArrayFromImage(synthesize(fp32, images).image)
        m = sitk.GetArrayFromImage(body) != 0
        tests.append(a[m])
        refs.append(r[m])
    stats = gate_statistics(np.concatenate(tests), np.concatenate(refs))
    assert record["voxels"] == stats["voxels"] == sum(int((sitk.GetArrayFromImage(b) != 0).sum()) for _, b in cases)
    for key in ("mean_hu", "p99_hu", "max_hu"):
        assert record[key] == pytest.approx(stats[key], rel=1e-12, abs=1e-12), key
    assert record["passed"] is passes_gate(stats) is True
    assert record["limits"] == {"mean_hu": GATE_MEAN_HU, "p99_hu": GATE_P99_HU}
    assert record["device"] == "cpu" and record["cpu_bf16"] == cpu_bf16_kind()
    assert record["cpu_bf16"] in ("amx", "avx512_bf16", "emulated")
    assert record["runner_path"] == bf16.runner.path and bf16.runner.path.startswith("optimised-")
    assert record["cases"] == list(SEEDS)
    import torch

    assert record["torch"] == torch.__version__


def test_auto_with_a_passing_record(quiet, cases):
    bundle, record = quiet
    m = _cpu(bundle)
    if CPU_NATIVE:
        assert m.precision == "bf16" and m.runner.path == record["runner_path"]
        assert "passed the bundle's gate on cpu" in m.precision_reason
        assert cpu_bf16_kind() in m.precision_reason
    else:
        assert m.precision == "fp32" and "no native bf16" in m.precision_reason
    # what auto runs stays inside the gate on these cases
    ref = _cpu(bundle, precision="fp32")
    for images, body in cases:
        res = synthesize(m, images)
        assert res.precision == m.precision
        assert passes_gate(gate_statistics(res.image, synthesize(ref, images).image, body))


def test_failing_record_is_fp32(loud, quiet):
    bundle, record = loud
    assert record["passed"] is False and record["mean_hu"] > GATE_MEAN_HU
    m = _cpu(bundle)
    assert m.precision == "fp32" and "failed the bundle's gate on cpu" in m.precision_reason
    # "passed" true with numbers outside today's limits does not count either
    forged = dict(record, passed=True)
    forged_spec = {"direction": "MR->CT", "metrics": {"bf16_gate": forged}}
    assert resolve_precision("auto", "cpu", forged_spec).precision == "fp32"
    # explicit choices are used as asked
    assert _cpu(bundle, precision="bf16").precision == "bf16"
    assert _cpu(bundle, precision="bf16").precision_reason == "bf16 requested"
    assert _cpu(quiet[0], precision="fp32").precision == "fp32"


def test_cpu_record_does_not_enable_cuda(quiet):
    bundle, record = quiet
    choice = resolve_precision("auto", "cuda", bundle.spec)
    assert choice.precision == "fp32" and "no bf16 gate measured on cuda" in choice.reason
    assert gate_record(bundle.spec, "cuda") is None and gate_record(bundle.spec, "cpu") == record
    # records keyed by device: each counts for its own device only
    cuda_rec = dict(record, device="cuda", cuda_device="test GPU")
    cuda_rec.pop("cpu_bf16")
    keyed = merge_gate(record, cuda_rec)
    assert set(keyed) == {"cpu", "cuda"}
    spec = {"direction": "MR->CT", "metrics": {"bf16_gate": keyed}}
    assert gate_record(spec, "cuda") == cuda_rec and gate_record(spec, "cpu") == record
    assert resolve_precision("auto", "cpu", spec).precision == ("bf16" if CPU_NATIVE else "fp32")
    cuda = resolve_precision("auto", "cuda", spec)
    assert cuda.precision == ("bf16" if native_bf16("cuda") else "fp32")
    only_cuda = {"direction": "MR->CT", "metrics": {"bf16_gate": cuda_rec}}
    assert resolve_precision("auto", "cpu", only_cuda).precision == "fp32"
    # a failing cuda record next to a passing cpu one
    failing = merge_gate(keyed, dict(cuda_rec, passed=False))
    failing_spec = {"direction": "MR->CT", "metrics": {"bf16_gate": failing}}
    assert "failed" in resolve_precision("auto", "cuda", failing_spec).reason
    assert merge_gate(None, record) == record and merge_gate(record, dict(record, mean_hu=0.0))["mean_hu"] == 0.0


def test_onnx_backend_is_fp32(quiet):
    bundle, _ = quiet
    m = _cpu(bundle, backend="onnx")
    assert (m.precision, m.runner.path) == ("fp32", "onnxruntime-fp32") and "ONNX" in m.precision_reason
    with pytest.raises(ConfigError, match="fp32 only"):
        _cpu(bundle, backend="onnx", precision="bf16")
    with pytest.raises(ConfigError, match="precision"):
        _cpu(bundle, precision="fp16")


def test_record_for_another_runner_is_not_used(quiet, monkeypatch):
    """A record measured on the optimised bf16 runner does not vouch for the eager autocast one."""
    bundle, record = quiet
    monkeypatch.setenv(OPTIMIZE_ENV, "0")
    m = _cpu(bundle)
    assert (m.precision, m.runner.path) == ("fp32", "eager-fp32")
    if CPU_NATIVE:
        assert f"measured on the {record['runner_path']} runner" in m.precision_reason


def test_other_directions_are_fp32_and_not_measured(tmp_path, cases, quiet):
    record = quiet[1]
    for direction, inputs in (("CT->MR", ("ct",)), ("MR->LIVER", ("t1_in",))):
        b = with_gate(make_test_bundle(tmp_path / direction.replace(">", ""), direction, inputs, onnx=False), record)
        m = _cpu(b)
        assert m.precision == "fp32" and "MR->CT models only" in m.precision_reason
        with pytest.raises(ConfigError, match="MR->CT"):
            measure_bf16_gate(b, cases)
    with pytest.raises(ConfigError, match="at least one"):
        measure_bf16_gate(quiet[0], [])


def test_run_summary_records_precision(tmp_path, cli, quiet, cases):
    bundle, _ = quiet
    paths = []
    for i, img in enumerate(cases[0][0]):
        paths.append(str(tmp_path / f"in{i}.nii.gz"))
        sitk.WriteImage(img, paths[-1])
    out = str(tmp_path / "case")
    code, stdout, err = cli("run", "--model", bundle.path, "--out", out, "--no-overlays", "--device", "cpu", *paths)
    assert code == 0, err
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    expected = "bf16" if CPU_NATIVE else "fp32"
    assert summary["precision"] == expected and summary["precision_reason"].startswith("auto: ")
    assert f"precision            {expected} (auto: " in stdout
    code, stdout, err = cli("synthesize", "--model", bundle.path, "--out", str(tmp_path / "s.nii.gz"),
                            "--device", "cpu", "--precision", "fp32", "--progress", "none", *paths)
    assert code == 0, err
    assert "precision fp32: fp32 requested" in stdout


# ------------------------------------------------------------------ cmsynth_training.demo gate


def _demo_copy(root):
    """A temporary copy of the shipped demo-t1dual-to-ct bundle and Models.json (a factory bundle
    under the same id when the shipped one is missing or being rewritten)."""
    from cmsynth_training.export import registry_entry, update_registry

    models = root / "Models"
    models.mkdir(parents=True)
    src = os.path.join(RESOURCES, "Models", "demo-t1dual-to-ct")
    try:
        load_bundle(src)
        shutil.copytree(src, models / "demo-t1dual-to-ct")
        shutil.copy(os.path.join(RESOURCES, "Models.json"), root / "Models.json")
        Registry(str(root / "Models.json")).verify("demo-t1dual-to-ct")
    except Exception:  # noqa: BLE001 - fall back to a factory bundle with the demo's id
        shutil.rmtree(models / "demo-t1dual-to-ct", ignore_errors=True)
        make_test_bundle(models / "demo-t1dual-to-ct", "MR->CT", ("t1_in", "t1_opp"), output_scale=0.01,
                         model_id="demo-t1dual-to-ct")
        if os.path.exists(root / "Models.json"):
            os.remove(root / "Models.json")
        update_registry(str(root / "Models.json"),
                        [registry_entry(str(models / "demo-t1dual-to-ct"), "Models/demo-t1dual-to-ct")])
    return models / "demo-t1dual-to-ct"


def test_demo_gate_step_rewrites_spec_and_registry(tmp_path, capsys):
    from CrossModalitySynthLib.phantom import write_cases
    from cmsynth_training.demo import main as demo_main

    folder = _demo_copy(tmp_path / "Resources")
    models_json = tmp_path / "Resources" / "Models.json"
    weights_before = (folder / "weights.pt").read_bytes()
    files_before = load_bundle(str(folder)).spec["files"]
    with open(models_json) as f:
        order_before = [m["id"] for m in json.load(f)["models"]]
    heldout = tmp_path / "heldout"
    write_cases(str(heldout), n_cases=2, seed=9000, size="small")

    code = demo_main(["gate", "t1dual", "--resources", str(tmp_path / "Resources"), "--heldout", str(heldout),
                      "--cases", "case_000,case_001"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "t1dual: bf16 gate" in out

    assert (folder / "weights.pt").read_bytes() == weights_before
    spec = load_bundle(str(folder)).spec
    assert spec["files"] == files_before
    record = spec["metrics"]["bf16_gate"]
    assert record["cases"] == ["case_000", "case_001"] and record["phantom_seeds"] == [9000, 9001]
    assert record["device"] == "cpu" and record["passed"] is passes_gate(record)
    with open(models_json) as f:
        listed = json.load(f)["models"]
    assert [m["id"] for m in listed] == order_before  # entries replaced in place
    entry = next(m for m in listed if m["id"] == "demo-t1dual-to-ct")
    assert entry["sha256"] == sha256_of(str(folder / "spec.json"))
    assert entry["size"] == sum(os.path.getsize(folder / n) for n in os.listdir(folder))
    # the registry verifies it, and auto follows the new record
    bundle = Registry(str(models_json)).verify("demo-t1dual-to-ct")
    m = load_model(bundle, EngineOptions(device="cpu"))
    assert m.precision == ("bf16" if CPU_NATIVE and record["passed"] else "fp32")
    # the record equals a fresh measurement (same cases, same engine)
    from cmsynth_training.export import measure_gate

    assert measure_gate(str(folder), str(heldout), ["case_000", "case_001"]) == record

    assert demo_main(["gate", "essnet", "--resources", str(tmp_path / "Resources"), "--heldout", str(heldout)]) == 1
    assert "MR->CT demo models" in capsys.readouterr().err
