"""slicer_support without the Slicer application: the process bridge with real child processes,
import rollback, compare views, Evaluate, reader sessions, models, dependencies, sample data.

Scenes are real slicer-core scenes (the ``mrml_scene`` fixture); processes are real processes.
The only stand-ins are the two Slicer GUI services that cannot exist here (the ``SampleData``
module and Slicer 5.12's ``slicer.packaging``), each a few lines that record what they are asked.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import types
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
import SimpleITK as sitk

from CrossModalitySynthLib.errors import InputError
from CrossModalitySynthLib.slicer_support import process as P
from testsupport.paths import TESTING_DIR

HERE = TESTING_DIR
ROOT = os.path.dirname(HERE)
ICONS = os.path.join(ROOT, "CrossModalitySynth", "Resources", "Icons")


# =========================================================================== process bridge


def _script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def _exit_and_message(argv):
    """Run ``argv`` as a real child: its exit code and the one line the bridge shows for it."""
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=30)
    return done.returncode, P.error_message(done.stderr.splitlines(), done.returncode)


def test_progress_events_of_the_json_lines():
    seen = [P.ProgressEvent.from_dict({"stage": "synthesize", "done": i, "total": 3, "fraction": i / 3, "elapsed_s": 0.1})
            for i in (1, 2, 3)]
    assert [(e.stage, e.done, e.total) for e in seen] == [("synthesize", i, 3) for i in (1, 2, 3)]
    assert seen[-1].text == "synthesize 3 / 3" and seen[-1].fraction == 1.0


def test_the_engine_one_line_error_is_the_message(tmp_path):
    argv = _script(tmp_path, "err.py", """
        import sys
        print("cmsynth: SIGTERM received", file=sys.stderr)
        print("cmsynth run: error: T1 in-phase: The volume looks like a CT; check the direction.", file=sys.stderr)
        sys.exit(1)
    """)
    code, message = _exit_and_message(argv)
    assert code == 1
    assert message == "T1 in-phase: The volume looks like a CT; check the direction."


def test_a_crash_and_a_kill_by_signal_are_explained(tmp_path):
    crash = _script(tmp_path, "crash.py", "raise RuntimeError('CUDA out of memory')\n")
    code, message = _exit_and_message(crash)
    assert code == 1
    assert message == "The synthesis process stopped with exit code 1: RuntimeError: CUDA out of memory"
    killed = _script(tmp_path, "killed.py", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    code, message = _exit_and_message(killed)
    assert code == -signal.SIGKILL
    assert "killed by SIGKILL" in message and "memory" in message


def test_kill_on_windows_uses_taskkill(monkeypatch):
    """On Windows CTRL_BREAK cannot reach a CREATE_NO_WINDOW child of a GUI process: the tree is
    ended with ``taskkill /T /F``. Windows cannot run here: the Windows branch is taken on a real
    child, with the taskkill call recorded (and the child then ended with a real kill)."""
    proc = P.popen_in_own_group([sys.executable, "-c", "import time; time.sleep(600)"], None, None)
    calls = []
    real_run = subprocess.run
    monkeypatch.setattr(P, "_IS_WINDOWS", True)
    monkeypatch.setattr(P.subprocess, "run", lambda argv, **kw: calls.append(list(argv)))
    try:
        P.kill_group(proc)
    finally:
        monkeypatch.setattr(P.subprocess, "run", real_run)
        monkeypatch.setattr(P, "_IS_WINDOWS", False)
        os.killpg(proc.pid, 9)
        proc.communicate(timeout=30)
    assert calls == [["taskkill", "/F", "/T", "/PID", str(proc.pid)]]


def test_command_line_environment_and_interpreter(tmp_path, monkeypatch):
    from CrossModalitySynthLib.cli.worker_cmd import request_argv

    argv = request_argv({"command": "run", "args": P.run_args(
        "/models/demo", ["/tmp/a.nrrd", "/tmp/b.nrrd"], "/tmp/out", liver_model="liver-id", device="cuda",
        precision="bf16", batch_size=4)})
    assert argv[0] == "run"
    assert argv[-2:] == ["/tmp/a.nrrd", "/tmp/b.nrrd"]
    joined = " ".join(argv)
    for piece in ("--model /models/demo", "--liver-model liver-id", "--out /tmp/out", "--progress json",
                  "--device cuda", "--precision bf16", "--batch-size 4"):
        assert piece in joined
    # the command is what `cmsynth run` accepts
    from CrossModalitySynthLib.cli.main import build_parser

    args = build_parser().parse_args(argv)
    assert (args.model, args.liver_model, args.inputs, args.batch_size) == ("/models/demo", "liver-id",
                                                                            ["/tmp/a.nrrd", "/tmp/b.nrrd"], 4)
    env = P.child_environment({"PYTHONPATH": "/x" + os.pathsep + "/y"})
    assert env["PYTHONPATH"].split(os.pathsep) == [P.library_root(), "/x", "/y"]
    assert os.path.isdir(os.path.join(P.library_root(), "CrossModalitySynthLib"))
    # PythonSlicer is used when it is on the PATH (inside Slicer it is), else this interpreter
    monkeypatch.setenv("PATH", str(tmp_path))
    assert P.python_executable() == sys.executable
    exe = tmp_path / "PythonSlicer"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    assert P.python_executable() == str(exe)


# =========================================================================== scene: import rollback


def _node_ids(scene):
    col = scene.GetNodes()
    return [col.GetItemAsObject(i).GetID() for i in range(col.GetNumberOfItems())]


def test_a_failed_import_is_rolled_back(mrml_scene, tmp_path):
    """The volume is filled, then the liver result is on a wrong grid: everything goes back."""
    from CrossModalitySynthLib.io import write_volume
    from CrossModalitySynthLib.slicer_support.mrml import labels_to_segmentation, node_to_volume, volume_to_node
    from CrossModalitySynthLib.slicer_support.scene import SceneSnapshot, import_results

    rng = np.random.default_rng(1)
    mri = sitk.GetImageFromArray(rng.normal(size=(6, 8, 9)).astype(np.float32))
    mri.SetSpacing((1.5, 1.5, 4.0))
    mri.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    input_node = volume_to_node(mri, "input", scene=mrml_scene)
    old = sitk.GetImageFromArray(rng.normal(size=(3, 4, 5)).astype(np.float32))
    picked_vol = volume_to_node(old, "picked volume", scene=mrml_scene)
    picked_vol.GetDisplayNode().AutoWindowLevelOff()
    picked_vol.GetDisplayNode().SetWindowLevel(10.0, 2.0)
    lab = sitk.Image(5, 4, 3, sitk.sitkUInt8)
    lab[1:3, 1:3, 1:2] = 4
    picked_seg = labels_to_segmentation(lab, "picked segmentation", scene=mrml_scene)
    before_ids = _node_ids(mrml_scene)
    before_voxels = sitk.GetArrayFromImage(node_to_volume(picked_vol))
    before_origin = picked_vol.GetOrigin()

    out = tmp_path / "out"
    out.mkdir()
    write_volume(sitk.Cast(mri * 10, sitk.sitkFloat32), str(out / "synthetic.nii.gz"))
    wrong = sitk.Image(9, 8, 6, sitk.sitkUInt8)  # same size, other grid (no rotation)
    wrong.SetSpacing((1.5, 1.5, 4.0))
    write_volume(wrong, str(out / "liver.nii.gz"))
    summary = {"outputs": {"synthetic": "synthetic.nii.gz", "liver": "liver.nii.gz"}}

    snapshot = SceneSnapshot(mrml_scene, keep=[picked_vol, picked_seg])
    with pytest.raises(InputError, match="not on the input's grid"):
        import_results(str(out), summary, input_node, node_to_volume(input_node), "CT",
                       volume_node=picked_vol, segmentation_node=picked_seg)
    assert picked_vol.GetImageData().GetDimensions() == (9, 8, 6)  # it was filled before the error
    snapshot.rollback()
    assert _node_ids(mrml_scene) == before_ids
    assert picked_vol.GetName() == "picked volume" and picked_vol.GetOrigin() == before_origin
    np.testing.assert_array_equal(sitk.GetArrayFromImage(node_to_volume(picked_vol)), before_voxels)
    d = picked_vol.GetDisplayNode()
    assert (d.GetAutoWindowLevel(), d.GetWindow(), d.GetLevel()) == (0, 10.0, 2.0)
    segmentation = picked_seg.GetSegmentation()
    assert [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())] == ["spleen"]

    # and with new nodes: the created ones are removed again
    snapshot = SceneSnapshot(mrml_scene)
    with pytest.raises(InputError):
        import_results(str(out), summary, input_node, node_to_volume(input_node), "CT")
    assert len(snapshot.created_nodes()) > 0
    snapshot.rollback()
    assert _node_ids(mrml_scene) == before_ids


def test_results_off_the_input_grid_are_refused(tmp_path):
    from CrossModalitySynthLib.io import write_volume
    from CrossModalitySynthLib.slicer_support.scene import import_volume_on_grid

    ref = sitk.Image(10, 9, 8, sitk.sitkFloat32)
    ref.SetOrigin((-100.123456789, 20.5, 3.0))
    nifti = str(tmp_path / "same.nii.gz")
    write_volume(ref, nifti)  # float32 header: the origin is rounded
    assert sitk.ReadImage(nifti).GetOrigin() != ref.GetOrigin()
    assert import_volume_on_grid(nifti, ref, "x").GetOrigin() == ref.GetOrigin()
    shifted = sitk.Image(ref)
    shifted.SetOrigin((-99.0, 20.5, 3.0))
    write_volume(shifted, str(tmp_path / "shifted.nii.gz"))
    with pytest.raises(InputError, match="origin differs by"):
        import_volume_on_grid(str(tmp_path / "shifted.nii.gz"), ref, "synthetic volume")
    write_volume(sitk.Image(10, 9, 7, sitk.sitkFloat32), str(tmp_path / "small.nii.gz"))
    with pytest.raises(InputError, match="voxels but the input has"):
        import_volume_on_grid(str(tmp_path / "small.nii.gz"), ref, "synthetic volume")


# =========================================================================== compare views


def test_compare_views_show_input_and_synthetic_linked_with_the_liver(mrml_scene):
    import slicer

    from CrossModalitySynthLib.slicer_support.mrml import labels_to_segmentation, volume_to_node
    from CrossModalitySynthLib.slicer_support import views

    root = ET.fromstring(views.compare_layout_xml())
    tags = [v.get("singletontag") for v in root.iter("view")]
    assert tags == ["Red", "Yellow", "Green", views.SECOND_CORONAL, "1"]

    layout = mrml_scene.AddNewNodeByClass("vtkMRMLLayoutNode")
    assert views.register_compare_layout(mrml_scene)
    assert layout.IsLayoutDescription(views.COMPARE_LAYOUT_ID)
    assert layout.GetViewArrangement() == views.COMPARE_LAYOUT_ID
    # the views the layout manager would create (slice nodes get the application's orientation presets)
    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(mrml_scene)
    for name in ("Red", "Yellow", "Green", views.SECOND_CORONAL):
        sn = mrml_scene.CreateNodeByClass("vtkMRMLSliceNode")
        sn.SetName(name)
        sn.SetLayoutName(name)
        mrml_scene.AddNode(sn)
        cn = slicer.vtkMRMLSliceCompositeNode()
        cn.SetLayoutName(name)
        mrml_scene.AddNode(cn)

    img = sitk.Image(20, 20, 10, sitk.sitkFloat32)
    mri = volume_to_node(img, "mri", scene=mrml_scene)
    sct = volume_to_node(img, "sct", scene=mrml_scene)
    lab = sitk.Image(20, 20, 10, sitk.sitkUInt8)
    lab[4:10, 6:12, 2:6] = 1
    seg = labels_to_segmentation(lab, "liver", scene=mrml_scene)
    assigned = views.assign_compare_views(mrml_scene, mri, sct, seg)
    assert assigned == {"Red": mri.GetID(), "Green": mri.GetID(), "Yellow": sct.GetID(),
                        views.SECOND_CORONAL: sct.GetID()}
    composites = mrml_scene.GetNodesByClass("vtkMRMLSliceCompositeNode")
    for i in range(composites.GetNumberOfItems()):
        assert composites.GetItemAsObject(i).GetLinkedControl()
    col = mrml_scene.GetNodesByClass("vtkMRMLSliceNode")
    by_layout = {col.GetItemAsObject(i).GetLayoutName(): col.GetItemAsObject(i) for i in range(col.GetNumberOfItems())}
    slices = {n: by_layout[n] for n in ("Red", "Yellow", "Green", views.SECOND_CORONAL)}
    assert [slices[n].GetOrientationString() for n in slices] == ["Axial", "Axial", "Coronal", "Coronal"]
    d = seg.GetDisplayNode()
    assert d.GetVisibility2DOutline() and not d.GetVisibility2DFill() and d.GetVisibility3D()
    assert d.GetNumberOfViewNodeIDs() == 0  # every view

    centre = views.segment_centroid_ras(seg, mri)
    # LPS voxel centre (x 6.5, y 8.5, z 3.5) with unit spacing -> RAS (-6.5, -8.5, 3.5)
    np.testing.assert_allclose(centre, (-6.5, -8.5, 3.5), atol=1e-6)
    assert views.center_slices_on(mrml_scene, centre) == 4
    np.testing.assert_allclose(slices["Red"].GetSliceOffset(), 3.5, atol=1e-6)


# =========================================================================== evaluate


def test_evaluate_gives_metrics_a_difference_map_and_a_table(mrml_scene, tmp_path):
    from CrossModalitySynthLib.slicer_support.mrml import node_to_volume, volume_to_node
    from CrossModalitySynthLib.slicer_support.evaluation import evaluate_nodes

    # a CT-like volume: air around an elliptic body of soft tissue with a bright "spine"
    z, y, x = np.mgrid[0:16, 0:40, 0:48]
    body = ((x - 24) / 20.0) ** 2 + ((y - 20) / 15.0) ** 2 < 1
    arr = np.where(body, 40.0, -1000.0) + np.random.default_rng(0).normal(0, 20, size=body.shape)
    arr[(np.abs(x - 24) < 3) & (np.abs(y - 30) < 3)] = 700.0
    ct = sitk.GetImageFromArray(arr.astype(np.float32))
    ct.SetSpacing((2.0, 2.0, 5.0))
    labels = sitk.GetImageFromArray((body & (x < 24)).astype(np.uint8))
    labels.CopyInformation(ct)
    ref = volume_to_node(ct, "real CT", scene=mrml_scene)
    syn = volume_to_node(ct + 10.0, "synthetic CT", scene=mrml_scene)
    out = evaluate_nodes(syn, ref, scene=mrml_scene, with_ms_ssim=False)
    assert out.metrics.mae == pytest.approx(10.0) and out.metrics.mask_source == "body"
    diff = sitk.GetArrayFromImage(node_to_volume(out.difference_node))
    np.testing.assert_allclose(diff, 10.0, atol=1e-3)
    table = out.table_node.GetTable()
    names = [table.GetValue(r, 0).ToString() for r in range(table.GetNumberOfRows())]
    assert names[:5] == ["MAE", "PSNR", "SSIM", "MS-SSIM", "mask voxels"]
    assert table.GetValue(0, 1).ToString() == "10.0" and table.GetValue(0, 2).ToString() == "HU"
    assert table.GetValue(3, 1).ToString() == "n/a"

    # a mask node, the same nodes refilled, and a reference on another grid (resampled)
    mask = volume_to_node(labels, "labels", scene=mrml_scene, labelmap=True)
    n_nodes = mrml_scene.GetNumberOfNodes()
    out2 = evaluate_nodes(syn, ref, mask, out.difference_node, out.table_node, scene=mrml_scene, with_ms_ssim=False)
    assert mrml_scene.GetNumberOfNodes() == n_nodes
    assert out2.metrics.mask_source == "given"
    assert out2.metrics.n_mask_voxels == int((sitk.GetArrayViewFromImage(labels) > 0).sum())
    coarse = sitk.Resample(ct, [40, 32, 16], sitk.Transform(), sitk.sitkLinear, (0.0, 0.0, 0.0), (2.4, 2.5, 5.0),
                           ct.GetDirection(), -1000.0, sitk.sitkFloat32)
    other_grid = volume_to_node(coarse, "CT on another grid", scene=mrml_scene)
    resampled = evaluate_nodes(syn, other_grid, scene=mrml_scene, with_ms_ssim=False)
    assert resampled.note and resampled.rows[-1][:2] == ("note", resampled.note)
    assert resampled.difference_node.GetImageData().GetDimensions() == (48, 40, 16)  # the synthetic grid
    same = evaluate_nodes(ref, volume_to_node(ct, "copy", scene=mrml_scene), scene=mrml_scene, with_ms_ssim=False)
    assert same.metrics.mae == 0.0 and same.metrics.ssim == pytest.approx(1.0)
    with pytest.raises(InputError, match="same node"):
        evaluate_nodes(ref, ref, scene=mrml_scene)


# =========================================================================== reader study


def test_reader_session_in_the_scene(mrml_scene, tmp_path):
    from CrossModalitySynthLib.reader_study import SessionFinishedError, create_study, sources_from_files
    from CrossModalitySynthLib.reader_study.prepare import PrepareSettings
    from CrossModalitySynthLib.slicer_support.reader import ReaderController
    from testsupport.readers import write_dataset

    data = write_dataset(str(tmp_path / "data"), 4, seed=3)
    sources = sources_from_files([data["real"]], [data["synthetic"]])
    study_dir, key = create_study(str(tmp_path / "study"), sources, ["R01"], 3, 0.5, seed=2,
                                  settings=PrepareSettings(slice_size=24, slice_spacing=3.0))
    with pytest.raises(InputError, match="reader id"):
        ReaderController(study_dir, "  ", mrml_scene)
    reader = ReaderController(study_dir, "R01", mrml_scene)
    trial = reader.show_current()
    assert reader.progress_text == "1 / 3" and trial.index == 1
    assert reader.node.GetName() == trial.image_id  # pseudonymous, nothing else
    assert reader.answer("real", 4, "looks real") is not None
    assert reader.progress_text == "2 / 3"
    volumes = mrml_scene.GetNodesByClass("vtkMRMLScalarVolumeNode")
    assert volumes.GetNumberOfItems() == 1  # one trial image in the scene at a time

    reader.close()
    assert mrml_scene.GetNodesByClass("vtkMRMLScalarVolumeNode").GetNumberOfItems() == 0
    resumed = ReaderController(study_dir, "R01", mrml_scene)  # e.g. after a crash: resumes
    assert resumed.show_current().index == 2
    assert resumed.answer("s", 2) is not None
    assert resumed.answer("synthetic", 5) is None  # the last one: finished, nothing shown
    assert resumed.finished and resumed.progress_text == "3 / 3 answered"
    assert mrml_scene.GetNodesByClass("vtkMRMLScalarVolumeNode").GetNumberOfItems() == 0
    with pytest.raises(SessionFinishedError):
        resumed.session.answer("real", 3)
    with open(os.path.join(study_dir, "answers", "R01.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [(r["trial_index"], r["answer"], r["confidence"]) for r in records] == [
        (1, "real", 4), (2, "synthetic", 2), (3, "synthetic", 5)]
    assert records[0]["comment"] == "looks real"


# =========================================================================== dependencies


def test_dependency_decisions():
    import slicer

    from CrossModalitySynthLib.slicer_support import dependencies as D

    assert D.parse_version("2.5.1+cu121") == (2, 5, 1)
    assert D.parse_version("1.13.0rc1") == (1, 13, 0)
    assert D.version_at_least("2.2", "2.2") and D.version_at_least("2.10.0", "2.9")
    assert not D.version_at_least("1.13.1", "2.2")
    assert D.parse_requirement("monai>=1.3") == ("monai", "1.3")

    # against the real environment
    assert D.missing_requirements(["numpy>=1.0", "numpy>=999", "surely-not-a-package-cmsynth"]) == [
        "numpy>=999", "surely-not-a-package-cmsynth"]
    assert D.torch_status()[0] == "ok"
    asked = []
    assert D.ensure_torch(slicer, asked.append) == D.installed_version("torch")
    assert D.ensure_packages(slicer, asked.append) == [] and asked == []  # nothing to do, nobody asked

    # slicer-core: no application, no slicer.packaging -> slicer.util.pip_install after consent
    assert D.slicer_version(slicer) == (0, 0)
    assert D.installer_for(slicer) == "pip_install"
    with pytest.raises(D.DependencyError, match="declined"):
        D.ensure_packages(slicer, lambda text: asked.append(text) or False, ["surely-not-a-package-cmsynth>=1"])
    assert "surely-not-a-package-cmsynth>=1" in asked[-1]
    # torch missing and no PyTorch extension here: the user is told to install the extension
    with pytest.raises(D.DependencyError, match="PyTorch extension"):
        D.ensure_torch(slicer, lambda text: True, version_of=lambda name: None)

    # Slicer < 5.12: monai without its dependencies (its torch requirement), the rest as usual;
    # torch and SimpleITK are never on a pip command line. Both tags' real packaging code is run by
    # Testing/slicer_headless (test_slicer_headless.py::test_dependency_installation).
    assert D.pip_install_commands(["monai>=1.3", "tqdm>=4.60"]) == ["monai>=1.3 --no-deps", "tqdm>=4.60"]
    assert D.pip_install_commands(["tqdm>=4.60"]) == ["tqdm>=4.60"]
    with pytest.raises(D.DependencyError, match="never installed"):
        D.pip_install_commands(["SimpleITK>=2.3"])
    assert not any(D.parse_requirement(r)[0] in D.NEVER_INSTALL for r in D.REQUIREMENTS)
    # the installer is chosen from the Slicer version: slicer.packaging is imported only on 5.12+
    slicer_58 = types.SimpleNamespace(app=types.SimpleNamespace(majorVersion=5, minorVersion=8), util=slicer.util)
    assert D.installer_for(slicer_58) == "pip_install"
    # testing mode never installs: a clear error instead of a multi-GB download
    with pytest.raises(D.DependencyError, match="testing mode"):
        D.ensure_torch(slicer, lambda text: pytest.fail("must not ask"), version_of=lambda name: None, testing=True)
    with pytest.raises(D.DependencyError, match="testing mode"):
        D.ensure_packages(slicer, lambda text: pytest.fail("must not ask"), ["surely-not-a-package-cmsynth>=1"],
                          testing=True)


# =========================================================================== models


def _zip_bundle(folder, zip_path):
    with zipfile.ZipFile(zip_path, "w") as zf:
        for name in sorted(os.listdir(folder)):
            zf.write(os.path.join(folder, name), arcname=name)
    return zip_path


def make_test_bundle(folder, direction="MR->CT", inputs=("t1_in", "t1_opp"), model_id="test", onnx=False):
    """A real bundle folder (spec.json pinning its files by sha256) whose weights file is not a
    network: the registry only checks files, so fetch/import/clear need no torch."""
    from CrossModalitySynthLib.registry import load_bundle, write_bundle_spec

    sequences = {"t1_in": "T1 in-phase", "t1_opp": "T1 opposed-phase", "t2": "T2", "ct": "CT"}
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "weights.pt"), "wb") as f:
        f.write(os.urandom(2048))
    write_bundle_spec(folder, {
        "id": model_id, "version": "0.0.1", "direction": direction,
        "inputs": [{"name": n, "modality": "CT" if n == "ct" else "MR", "sequence": sequences[n]} for n in inputs],
        "output": {"modality": "CT"}, "licence": "Apache-2.0", "description": "registry test bundle",
        "training": {"data": {"dataset": "phantom", "cases": 12}, "epochs_done": 3, "device": "cpu (test)"},
    })
    return load_bundle(folder)


def test_models_list_describe_fetch_import_and_clear(tmp_path, monkeypatch):
    from CrossModalitySynthLib.registry import sha256_of
    from CrossModalitySynthLib.slicer_support import models as M

    monkeypatch.setenv("CMSYNTH_HOME", str(tmp_path / "home"))
    remote = make_test_bundle(str(tmp_path / "remote"), model_id="remote-mr-to-ct", onnx=False)
    remote_zip = _zip_bundle(remote.path, str(tmp_path / "remote.zip"))
    bundled = make_test_bundle(str(tmp_path / "reg" / "Models" / "shipped"), direction="MR->LIVER", inputs=("t1_in",),
                               onnx=False, model_id="shipped-liver")
    registry = tmp_path / "reg" / "Models.json"
    registry.write_text(json.dumps({"models": [
        {"id": "remote-mr-to-ct", "version": "0.0.1", "direction": "MR->CT", "inputs": ["T1 in-phase", "T1 opposed-phase"],
         "url": "file://" + remote_zip, "sha256": sha256_of(remote_zip), "size": os.path.getsize(remote_zip),
         "licence": "Apache-2.0", "description": "a remote test model"},
        {"id": "shipped-liver", "version": "0.0.1", "direction": "MR->LIVER", "inputs": ["T1 in-phase"],
         "path": "Models/shipped", "sha256": sha256_of(os.path.join(bundled.path, "spec.json"))},
    ]}))
    reg = str(registry)

    infos = {m.id: m for m in M.list_models(reg)}
    assert not infos["remote-mr-to-ct"].installed and infos["shipped-liver"].installed
    assert infos["remote-mr-to-ct"].slots == ["t1In", "t1Opp"]
    card = M.describe(infos["remote-mr-to-ct"])
    for text in ("a remote test model", "T1 in-phase + T1 opposed-phase", "Apache-2.0", "not downloaded",
                 "Research use only"):
        assert text in card
    assert [m.id for m in M.list_models(reg, direction="MR->LIVER")] == ["shipped-liver"]

    task = M.FetchTask(["remote-mr-to-ct"], registry=reg).start().wait(60)
    assert task.finished and not task.error and task.fraction == 1.0
    info = {m.id: m for m in M.list_models(reg)}["remote-mr-to-ct"]
    assert info.installed and info.input_names == ["t1_in", "t1_opp"]
    assert "Trained on:</b> dataset: phantom, cases: 12; 3 epochs; on cpu (test)" in M.describe(info)

    other = make_test_bundle(str(tmp_path / "other"), model_id="offline-model", onnx=False)
    bundle = M.import_zip(_zip_bundle(other.path, str(tmp_path / "offline.zip")), registry=reg)
    assert bundle.id == "offline-model"
    assert {m.id for m in M.list_models(reg) if m.installed} == {"remote-mr-to-ct", "shipped-liver", "offline-model"}

    failed = M.FetchTask(["no-such-model"], registry=reg).start().wait(30)
    assert failed.finished and "Unknown model 'no-such-model'" in failed.error

    removed = M.clear_downloaded(reg)
    assert len(removed) == 2
    assert {m.id for m in M.list_models(reg) if m.installed} == {"shipped-liver"}
    assert M.cache_location() == os.path.join(str(tmp_path / "home"), "models")


# =========================================================================== sample data


def test_sample_files_are_reproducible_and_registered_with_checksums(tmp_path):
    from CrossModalitySynthLib.slicer_support import sampledata as S

    made = S.build_sample_files(str(tmp_path), "small")
    expected = {S.asset_name("small", f): h for (size, f), h in S.CHECKSUMS.items() if size == "small"}
    assert made == expected, ("`cmsynth phantom --size small --seed 0` no longer writes the published sample files: "
                              "rebuild and re-upload them (see sampledata.py) and update CHECKSUMS")
    assert sorted(os.listdir(str(tmp_path))) == sorted(expected)

    calls = []
    sample_data = types.SimpleNamespace(SampleDataLogic=types.SimpleNamespace(
        registerCustomSampleDataSource=lambda **kw: calls.append(kw)))
    assert S.register_sample_data(sample_data, ICONS) == len(S.SAMPLE_SETS) == len(calls)
    names = [n for kw in calls for n in kw["nodeNames"]]
    assert len(names) == len(set(names))
    for kw in calls:
        assert kw["category"] == "CrossModalitySynth"
        assert len(kw["uris"]) == len(kw["fileNames"]) == len(kw["nodeNames"]) == len(kw["checksums"])
        assert all(u.startswith(S.BASE_URL) and u.endswith(f) for u, f in zip(kw["uris"], kw["fileNames"]))
        assert all(c.startswith("SHA256:") and len(c) == 7 + 64 for c in kw["checksums"])
        assert os.path.isfile(kw["thumbnailFileName"])
