"""Showing trials in a real MRML scene (slicer-core): one pseudonymous node, fixed window."""

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk

from CrossModalitySynthLib.reader_study.design import sources_from_files
from CrossModalitySynthLib.reader_study.prepare import PrepareSettings
from CrossModalitySynthLib.slicer_support.reader_scene import ReaderScene
from CrossModalitySynthLib.reader_study.session import ReaderSession
from CrossModalitySynthLib.reader_study.study import Study, create_study
from testsupport.readers import write_dataset


@pytest.fixture(scope="module")
def scene_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("rs_scene")
    data = write_dataset(str(root / "data"), 6, seed=21)
    sources = sources_from_files([data["real"]], [data["synthetic"]])
    study, key = create_study(
        str(root / "study"), sources, ["R01"], 4, 0.5, seed=1, planes=["axial", "coronal", "sagittal"],
        settings=PrepareSettings(slice_size=24, slice_spacing=3.0), window=(350.0, 50.0),
        slices_per_volume=2,
    )
    with open(key) as f:
        key_data = json.load(f)
    return study, key_data


def _volume_nodes(scene):
    col = scene.GetNodesByClass("vtkMRMLVolumeNode")
    return [col.GetItemAsObject(i) for i in range(col.GetNumberOfItems())]


def _forbidden_words(key_data):
    words = {"real", "synth", "fake", "truth"}
    for entry in key_data["images"].values():
        words.add(entry["patient_id"].lower())
        words.add(os.path.basename(entry["source"]).lower())
    return words


def _node_texts(node):
    texts = [node.GetName() or ""]
    for attr in node.GetAttributeNames() or ():
        texts += [attr, node.GetAttribute(attr) or ""]
    return [t.lower() for t in texts]


def test_a_trial_is_one_pseudonymous_node_with_the_study_window(mrml_scene, scene_study):
    study_dir, key_data = scene_study
    study = Study.load(study_dir)
    session = ReaderSession(study, "R01")
    view = ReaderScene.for_study(study, mrml_scene)
    forbidden = _forbidden_words(key_data)

    shown = []
    for k in range(3):
        trial = session.start_trial()
        node = view.show(trial)
        nodes = _volume_nodes(mrml_scene)
        assert len(nodes) == 1 and nodes[0] is node  # the next trial replaces the previous one
        assert node.GetName() == trial.image_id
        display = node.GetDisplayNode()
        texts = _node_texts(node) + _node_texts(display)
        assert not [t for t in texts for w in forbidden if w in t]
        assert display.GetAutoWindowLevel() == 0
        assert (display.GetWindow(), display.GetLevel()) == (350.0, 50.0)
        voxels = sitk.GetArrayFromImage(sitk.ReadImage(trial.path))
        node_voxels = np.array(node.GetImageData().GetPointData().GetScalars()).reshape(voxels.shape)
        np.testing.assert_array_equal(node_voxels, voxels)
        shown.append(node.GetName())
        session.answer("r", 3)
    assert len(set(shown)) == 3

    # the reader cannot change the window: it snaps back
    display = node.GetDisplayNode()
    display.SetWindowLevel(1500.0, 300.0)
    assert (display.GetWindow(), display.GetLevel()) == (350.0, 50.0)
    display.AutoWindowLevelOn()
    assert display.GetAutoWindowLevel() == 0

    view.clear()
    assert _volume_nodes(mrml_scene) == []


def test_window_change_allowed_and_views_follow_the_plane(mrml_scene, scene_study):
    study_dir, _ = scene_study
    composite = mrml_scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
    red = mrml_scene.AddNewNodeByClass("vtkMRMLSliceNode")
    red.SetLayoutName("Red")
    session = ReaderSession(study_dir, "R01")
    view = ReaderScene(mrml_scene, window=(400.0, 40.0), allow_window_change=True)
    for trial in session.trials:
        node = view.show(trial)
        assert composite.GetBackgroundVolumeID() == node.GetID()
        assert red.GetOrientation() == trial.plane.capitalize()
    display = node.GetDisplayNode()
    display.SetWindowLevel(1500.0, 300.0)
    assert (display.GetWindow(), display.GetLevel()) == (1500.0, 300.0)
