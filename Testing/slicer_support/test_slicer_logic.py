"""The module's Logic compute path against a real MRML scene and the real ``cmsynth`` process.

Input volume nodes (a phantom case) -> SynthesisJob (exports the nodes, runs
``python -m CrossModalitySynthLib.cli.main run ...`` in its own process group, reads its JSON
progress) -> output nodes. Checked: the output lies exactly on the input's grid, a liver segment
exists, and a cancelled or failed run leaves the scene exactly as it was, including the content of
output nodes the user picked. Nothing is mocked: the bundles are tiny random-weight networks
(bundle_factory) or, when present, the trained demo bundles.
"""

import os
import time

import numpy as np
import pytest
import SimpleITK as sitk

from testsupport.bundles import make_test_bundle
from testsupport.images import live_group_members
from CrossModalitySynthLib.io import read_volume
from CrossModalitySynthLib.labels import liver_mask
from CrossModalitySynthLib.slicer_support.mrml import labels_to_segmentation, segmentation_to_labels, volume_to_node
from CrossModalitySynthLib.phantom import write_cases
from CrossModalitySynthLib.slicer_support.synthesis import SynthesisJob, SynthesisRequest
from testsupport.paths import TESTING_DIR

HERE = TESTING_DIR
MODELS = os.path.join(os.path.dirname(HERE), "CrossModalitySynth", "Resources", "Models")
DEMO_SYNTH = os.path.join(MODELS, "demo-t1dual-to-ct")
DEMO_LIVER = os.path.join(MODELS, "demo-liver-unet-t1in")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("slicer_logic")
    return write_cases(str(root / "phantom"), n_cases=1, seed=0, size="small")[0]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("slicer_bundles")
    synth = make_test_bundle(str(root / "synth"), inputs=("t1_in", "t1_opp"), onnx=False)
    liver = make_test_bundle(str(root / "liver"), direction="MR->LIVER", inputs=("t1_in",), onnx=False,
                             model_id="test-liver")
    return synth.path, liver.path


# --------------------------------------------------------------------------- helpers


def _matrix(node):
    import vtk

    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def _node_ids(scene):
    col = scene.GetNodes()
    return [col.GetItemAsObject(i).GetID() for i in range(col.GetNumberOfItems())]


def _sh_item_count(scene):
    import slicer
    import vtk

    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    ids = vtk.vtkIdList()
    sh.GetItemChildren(sh.GetSceneItemID(), ids, True)
    return ids.GetNumberOfIds()


def _voxels(node):
    from vtk.util import numpy_support

    return numpy_support.vtk_to_numpy(node.GetImageData().GetPointData().GetScalars()).copy()


def _picked_outputs(scene):
    """Existing output nodes 'picked by the user', with content of their own."""
    rng = np.random.default_rng(7)
    image = sitk.GetImageFromArray(rng.normal(size=(5, 6, 7)).astype(np.float32))
    image.SetSpacing((2.0, 2.0, 3.0))
    image.SetOrigin((1.0, 2.0, 3.0))
    vol = volume_to_node(image, "my old volume", scene=scene)
    vol.GetDisplayNode().AutoWindowLevelOff()
    vol.GetDisplayNode().SetWindowLevel(123.0, 45.0)
    lab = sitk.Image(7, 6, 5, sitk.sitkUInt8)
    lab.CopyInformation(image)
    lab[2:5, 1:4, 1:3] = 2
    seg = labels_to_segmentation(lab, "my old segmentation", scene=scene)
    return vol, seg


def _state(scene, vol, seg):
    s = seg.GetSegmentation()
    return {
        "ids": _node_ids(scene),
        "sh_items": _sh_item_count(scene),
        "vol_name": vol.GetName(),
        "vol_voxels": _voxels(vol),
        "vol_matrix": _matrix(vol),
        "vol_window": (vol.GetDisplayNode().GetWindow(), vol.GetDisplayNode().GetLevel()),
        "seg_name": seg.GetName(),
        "segments": [s.GetNthSegment(i).GetName() for i in range(s.GetNumberOfSegments())],
    }


def _assert_same_state(before, after):
    assert after["ids"] == before["ids"]
    assert after["sh_items"] == before["sh_items"]
    assert after["vol_name"] == before["vol_name"]
    np.testing.assert_array_equal(after["vol_voxels"], before["vol_voxels"])
    np.testing.assert_array_equal(after["vol_matrix"], before["vol_matrix"])
    assert after["vol_window"] == before["vol_window"]
    assert after["seg_name"] == before["seg_name"]
    assert after["segments"] == before["segments"]


def _inputs(scene, case):
    t1in = volume_to_node(read_volume(os.path.join(case, "t1_in.nii.gz")), "patient7 T1 in", scene=scene)
    t1opp = volume_to_node(read_volume(os.path.join(case, "t1_opp.nii.gz")), "patient7 T1 opp", scene=scene)
    return t1in, t1opp


# --------------------------------------------------------------------------- tests


@pytest.mark.slow
def test_run_puts_outputs_on_the_input_grid_with_a_liver_segment(mrml_scene, case, bundles):
    synth, liver = bundles
    t1in, t1opp = _inputs(mrml_scene, case)
    n_before = mrml_scene.GetNumberOfNodes()
    job = SynthesisJob(SynthesisRequest(synth, {"t1_in": t1in, "t1_opp": t1opp}, liver_model=liver, device="cpu"),
                       mrml_scene).start()
    assert mrml_scene.GetNumberOfNodes() == n_before  # nothing is added while the process runs
    stages = []
    result = job.wait(timeout=240, on_progress=lambda e: stages.append(e.stage))
    assert result.status == "succeeded", result.message
    assert {"synthesize", "segment"} <= set(stages)

    vol, seg = result.volume_node, result.segmentation_node
    np.testing.assert_array_equal(_matrix(vol), _matrix(t1in))  # bit for bit
    assert vol.GetImageData().GetDimensions() == t1in.GetImageData().GetDimensions()
    assert vol.GetParentTransformNode() is None
    assert vol.GetName() == "patient7 T1 in synthetic CT"
    display = vol.GetDisplayNode()
    assert not display.GetAutoWindowLevel() and (display.GetWindow(), display.GetLevel()) == (400.0, 40.0)

    assert seg.GetName() == "patient7 T1 in liver"
    segmentation = seg.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 1
    segment_id = segmentation.GetSegmentIdBySegmentName("liver")
    assert segment_id
    labels = segmentation_to_labels(seg, t1in)  # back on the input grid
    n_liver = int((sitk.GetArrayViewFromImage(labels) > 0).sum())
    assert n_liver == result.liver_voxels > 0
    assert seg.GetSegmentation().ContainsRepresentation("Closed surface")

    # the new nodes sit beside the input in the subject hierarchy (its study)
    import slicer

    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(mrml_scene)
    parent = sh.GetItemParent(sh.GetItemByDataNode(t1in))
    assert sh.GetItemParent(sh.GetItemByDataNode(vol)) == parent
    assert sh.GetItemParent(sh.GetItemByDataNode(seg)) == parent
    assert mrml_scene.GetNumberOfNodes() > n_before


@pytest.mark.slow
def test_cancel_kills_the_process_tree_and_leaves_the_scene_unchanged(mrml_scene, case, bundles, tmp_path):
    synth, _ = bundles
    t1in, t1opp = _inputs(mrml_scene, case)
    for node, name in ((t1in, "t1_in.nii.gz"), (t1opp, "t1_opp.nii.gz")):
        # 28 -> 308 slices, one slice per batch: long enough to cancel in the middle
        image = read_volume(os.path.join(case, name))
        tall = sitk.GetImageFromArray(np.tile(sitk.GetArrayFromImage(image), (11, 1, 1)))
        tall.SetSpacing(image.GetSpacing())
        tall.SetOrigin(image.GetOrigin())
        tall.SetDirection(image.GetDirection())
        volume_to_node(tall, node=node)
    vol, seg = _picked_outputs(mrml_scene)
    before = _state(mrml_scene, vol, seg)

    job = SynthesisJob(SynthesisRequest(synth, {"t1_in": t1in, "t1_opp": t1opp}, output_volume=vol,
                                        output_segmentation=seg, device="cpu", batch_size=1),
                       mrml_scene, workdir=str(tmp_path)).start()
    pid = job.process.pid
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # wait until the network is running on slices
        job.poll()
        p = job.last_progress
        if p is not None and p.stage == "synthesize" and p.done >= 1:
            break
        assert job.result is None, job.result.message
        time.sleep(0.05)
    else:
        pytest.fail("the run never reached the synthesis stage")
    assert job.last_progress.done < job.last_progress.total  # really mid-run
    job.cancel()
    result = job.wait(timeout=60)
    assert result.status == "cancelled"
    assert live_group_members(pid) == []  # no process of the tree is left
    _assert_same_state(before, _state(mrml_scene, vol, seg))
    assert os.listdir(str(tmp_path)) == []  # exported inputs and partial outputs are gone


@pytest.mark.slow
def test_failure_surfaces_the_engine_message_and_leaves_the_scene_unchanged(mrml_scene, case, bundles):
    synth, _ = bundles
    ct = volume_to_node(read_volume(os.path.join(case, "ct_on_mr.nii.gz")), "a CT", scene=mrml_scene)
    ct2 = volume_to_node(read_volume(os.path.join(case, "ct_on_mr.nii.gz")), "a CT, again", scene=mrml_scene)
    vol, seg = _picked_outputs(mrml_scene)
    before = _state(mrml_scene, vol, seg)
    job = SynthesisJob(SynthesisRequest(synth, {"t1_in": ct, "t1_opp": ct2}, output_volume=vol, output_segmentation=seg,
                                        device="cpu"), mrml_scene).start()
    result = job.wait(timeout=240)
    assert result.status == "failed"
    assert "looks like a CT" in result.message and "\n" not in result.message
    assert not result.message.startswith("cmsynth")  # the sentence itself, not the CLI prefix
    _assert_same_state(before, _state(mrml_scene, vol, seg))


def test_a_request_the_model_cannot_take_is_refused_before_any_process(mrml_scene, case, bundles):
    from CrossModalitySynthLib.errors import InputError

    synth, liver = bundles
    t1in, t1opp = _inputs(mrml_scene, case)
    n = mrml_scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="T1 opposed-phase"):  # the model needs two channels
        SynthesisJob(SynthesisRequest(synth, {"t1_in": t1in}), mrml_scene).start()
    with pytest.raises(InputError, match="selected as both T1 in-phase and T1 opposed-phase"):
        SynthesisJob(SynthesisRequest(synth, {"t1_in": t1in, "t1_opp": t1in}), mrml_scene).start()
    with pytest.raises(InputError, match="is an input"):
        SynthesisJob(SynthesisRequest(synth, {"t1_in": t1in, "t1_opp": t1opp}, output_volume=t1in), mrml_scene).start()
    with pytest.raises(InputError, match="not a synthesis model"):
        SynthesisJob(SynthesisRequest(liver, {"t1_in": t1in}), mrml_scene).start()
    assert mrml_scene.GetNumberOfNodes() == n


@pytest.mark.slow
def test_demo_bundles_segment_the_phantom_liver(mrml_scene, case):
    for folder in (DEMO_SYNTH, DEMO_LIVER):
        if not os.path.isfile(os.path.join(folder, "spec.json")):
            pytest.skip(f"demo bundle {os.path.basename(folder)} is not built yet ({folder}/spec.json absent)")
    t1in, t1opp = _inputs(mrml_scene, case)
    job = SynthesisJob(SynthesisRequest(DEMO_SYNTH, {"t1_in": t1in, "t1_opp": t1opp}, liver_model=DEMO_LIVER,
                                        device="cpu"), mrml_scene).start()
    result = job.wait(timeout=300)
    assert result.status == "succeeded", result.message
    np.testing.assert_array_equal(_matrix(result.volume_node), _matrix(t1in))
    predicted = sitk.GetArrayFromImage(segmentation_to_labels(result.segmentation_node, t1in)) > 0
    truth = liver_mask(sitk.GetArrayFromImage(read_volume(os.path.join(case, "labels.nii.gz"))))
    dice = 2.0 * np.logical_and(predicted, truth).sum() / (predicted.sum() + truth.sum())
    assert 0.7 * truth.sum() < predicted.sum() < 1.3 * truth.sum()
    assert dice > 0.8, f"liver Dice {dice:.3f}"
    sct = sitk.GetArrayFromImage(read_volume(os.path.join(case, "ct_on_mr.nii.gz"))).astype(float)
    from vtk.util import numpy_support

    out = numpy_support.vtk_to_numpy(result.volume_node.GetImageData().GetPointData().GetScalars()).reshape(sct.shape)
    assert np.abs(out[truth] - sct[truth]).mean() < 150.0  # HU inside the liver: a CT, not noise
