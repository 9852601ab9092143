"""What a user does with the panel, run in a headless Slicer (one scenario per process).

``python -m slicer_headless.scenarios TAG SCENARIO WORKDIR PHANTOM_CASE`` (with ``Testing`` on
``sys.path``) builds the headless Slicer of the tag (:mod:`environment`), runs the scenario and
prints ``SCENARIO PASSED``; a failed check raises ``AssertionError`` and exits non-zero. Every
scenario also fails when a slot raised (PythonQt would print the traceback and go on) or Qt would
have printed a warning.
"""

import os
import shutil
import sys
import time

from testsupport.machine import group_gone

SCENARIOS = {}


def scenario(testing=False, without=()):
    """Register a scenario; ``testing``: Slicer's testing mode; ``without``: distributions the
    Slicer Python must not have (the test driver runs the scenario in such an environment)."""
    def register(fn):
        SCENARIOS[fn.__name__] = (fn, testing, tuple(without))
        return fn
    return register


def _ids(scene):
    nodes = scene.GetNodes()
    return sorted(nodes.GetItemAsObject(i).GetID() for i in range(nodes.GetNumberOfItems()))


def _matrix(node):
    import vtk

    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return [m.GetElement(r, c) for r in range(4) for c in range(4)]


def _open_panel(h):
    h.load_module()
    h.startup_completed()
    return h.enter_module()


def _select_model(widget, model_id, liver_id=None):
    ui = widget.ui
    index = ui.modelComboBox.findData(model_id)
    assert index >= 0, f"{model_id} is not offered; offered: {[ui.modelComboBox.itemData(i) for i in range(ui.modelComboBox.count)]}"
    ui.modelComboBox.setCurrentIndex(index)
    if liver_id is not None:
        ui.liverModelComboBox.setCurrentIndex(ui.liverModelComboBox.findData(liver_id))
    assert widget._parameterNode.modelId == model_id


def _wait_for_result(h, widget, timeout_s=600):
    assert h.process_events_until(lambda: widget._job is not None and widget._job.result is not None, timeout_s), \
        "the run did not finish"
    h.app.processEvents()
    return widget._job.result


# =========================================================================== scenarios


@scenario()
def panel_run_evaluate_direction_close(h, case):
    """Set-up, empty selectors, Apply with the real child, grid, compare layout, Evaluate,
    direction switch, scene close and re-entry; Sample Data registered by the real SampleData."""
    import slicer
    from CrossModalitySynthLib.slicer_support import views

    widget = _open_panel(h)
    ui = widget.ui
    sources = slicer.modules.sampleDataSources["CrossModalitySynth"]
    assert len(sources) == 5 and all(s.checksums and all(c.startswith("SHA256:") for c in s.checksums) for s in sources)
    assert all(os.path.isfile(s.thumbnailFileName) for s in sources)
    assert not ui.applyButton.enabled

    t1in = h.load_volume(os.path.join(case, "t1_in.nii.gz"), "T1 in-phase")
    t1opp = h.load_volume(os.path.join(case, "t1_opp.nii.gz"), "T1 opposed-phase")
    h.load_volume(os.path.join(case, "t2.nii.gz"), "T2")
    for name in ("t1InSelector", "t1OppSelector", "t2Selector", "ctSelector"):
        selector = getattr(ui, name)
        assert selector.currentNode() is None, f"{name} picked '{selector.currentNode().GetName()}' by itself"
        assert selector.currentText().startswith("Select "), selector.currentText()
    pn = widget._parameterNode
    assert pn.t1InVolume is None and pn.t1OppVolume is None

    _select_model(widget, "demo-t1dual-to-ct", "demo-liver-unet-t1in")
    ui.t1InSelector.setCurrentNode(t1in)
    ui.t1OppSelector.setCurrentNode(t1in)  # the same volume twice
    assert pn.t1InVolume is t1in and pn.t1OppVolume is t1in
    assert not ui.applyButton.enabled and "both" in ui.applyButton.toolTip, ui.applyButton.toolTip
    try:
        widget.logic.start(pn)
    except Exception as exc:  # SynthesisJob.start refuses it as well
        assert "selected as both" in str(exc), exc
    else:
        raise AssertionError("SynthesisJob.start ran one volume as two inputs")
    ui.t1OppSelector.setCurrentNode(t1opp)
    assert ui.applyButton.enabled, ui.applyButton.toolTip

    os.environ["CMSYNTH_HEADLESS_MARK"] = "set after Slicer started"  # not in Slicer's start-up environment
    before = set(_ids(slicer.mrmlScene))
    ui.applyButton.click()
    assert ui.applyButton.text == "Cancel" and not ui.inputsCollapsibleButton.enabled
    result = _wait_for_result(h, widget)
    assert result.status == "succeeded", result.message
    assert ui.statusLabel.text.startswith("Done"), ui.statusLabel.text
    assert ui.applyButton.text == "Apply" and ui.inputsCollapsibleButton.enabled
    run = [launch for launch in h.launches() if launch["argv"][:2] == ["-m", "CrossModalitySynthLib.cli.main"]]
    assert len(run) == 1 and run[0]["mark"] is None, run  # the child got slicer.util.startupEnvironment()

    volume, seg = result.volume_node, result.segmentation_node
    assert volume.GetID() not in before and seg.GetID() not in before
    assert _matrix(volume) == _matrix(t1in)
    assert volume.GetImageData().GetDimensions() == t1in.GetImageData().GetDimensions()
    assert seg.GetSegmentation().GetSegmentIdBySegmentName("liver")

    # the compare layout, and what it changed is put back when another layout is chosen
    lm = slicer.app.layoutManager()
    assert lm.layout == views.COMPARE_LAYOUT_ID
    yellow = slicer.mrmlScene.GetSingletonNode("Yellow", "vtkMRMLSliceNode")
    yellow_composite = lm.sliceWidget("Yellow").mrmlSliceCompositeNode()
    assert yellow.GetOrientation() == "Axial" and yellow_composite.GetLinkedControl()
    assert yellow_composite.GetBackgroundVolumeID() == volume.GetID()
    lm.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutConventionalView)
    assert yellow.GetOrientation() == "Sagittal", yellow.GetOrientation()
    assert not yellow_composite.GetLinkedControl()

    # Evaluate against the phantom's true CT; the mask selector offers label maps
    reference = h.load_volume(os.path.join(case, "ct_on_mr.nii.gz"), "true CT")
    labels = slicer.util.loadVolume(os.path.join(case, "labels.nii.gz"), properties={"name": "labels", "labelmap": True})
    assert labels in ui.evalMaskSelector.nodes(), "a label map cannot be chosen as the mask"
    assert pn.evalSynthetic is volume
    ui.evalReferenceSelector.setCurrentNode(reference)
    assert ui.evaluateButton.enabled
    ui.evaluateButton.click()
    assert "MAE" in ui.evalResultLabel.text, ui.evalResultLabel.text
    assert pn.evalTable is not None and pn.evalTable.GetNumberOfRows() > 0

    # the other direction: other models, the CT selector
    ui.directionComboBox.setCurrentIndex(ui.directionComboBox.findText("CT -> MRI"))
    assert pn.direction == "CT -> MRI"
    offered = [ui.modelComboBox.itemData(i) for i in range(ui.modelComboBox.count)]
    assert offered and all(m.endswith("essnet") for m in offered), offered
    assert not ui.ctSelector.isHidden() and ui.t1InSelector.isHidden() and ui.liverModelComboBox.isHidden()
    assert ui.ctSelector.currentNode() is None

    # close the scene and come back: a new parameter node, empty selectors, nothing raised
    slicer.mrmlScene.Clear(0)
    h.exit_module()
    widget = h.enter_module()
    assert widget._parameterNode is not None and widget._parameterNode.t1InVolume is None
    assert widget.ui.t1InSelector.currentNode() is None
    h.load_volume(os.path.join(case, "t1_in.nii.gz"), "T1 in-phase again")
    assert widget.ui.t1InSelector.currentNode() is None
    # after setup, two entries and a scene close, each widget has one live connection to the
    # parameter node (Slicer 5.8's connectGui returns no tag to disconnect with)
    for name, signal in (("deviceComboBox", "currentIndexChanged"), ("t1InSelector", "currentNodeChanged"),
                         ("readerModeCheckBox", "stateChanged"), ("studyFolderLineEdit", "textChanged")):
        live = [fn for fn in getattr(widget.ui, name)._slots.get(signal, [])
                if getattr(getattr(fn, "__self__", None), "_callback", None) is not None]
        assert len(live) == 1, f"{name}: {len(live)} live parameter-node connections"


def _study(h, case, readers):
    from CrossModalitySynthLib.reader_study import create_study, sources_from_files
    from CrossModalitySynthLib.reader_study.prepare import PrepareSettings

    real, synthetic = os.path.join(h.workdir, "real"), os.path.join(h.workdir, "synthetic")
    for folder in (real, synthetic):
        os.makedirs(folder, exist_ok=True)
    for i in range(3):
        shutil.copyfile(os.path.join(case, "ct_on_mr.nii.gz"), os.path.join(real, f"p{i}.nii.gz"))
        shutil.copyfile(os.path.join(case, "ct_on_mr.nii.gz"), os.path.join(synthetic, f"p{i}.nii.gz"))
    study = os.path.join(h.workdir, "study")
    create_study(study, sources_from_files([real], [synthetic]), list(readers), 2, 0.5, seed=1,
                 settings=PrepareSettings(slice_size=24, slice_spacing=4.0))
    return study


def window_state(h, widget):
    """Everything reader mode changes, as it is now."""
    from slicer_headless import qt_module

    mw = h.app.topLevelWidgets()[0]
    lm = h.app.layoutManager()
    state = {("hidden", id(w)): w.isHidden() for w in [mw] + mw.findChildren("QWidget")}
    ui = widget.ui
    for name in sorted(vars(ui)):
        if isinstance(getattr(ui, name), qt_module.QWidget):
            state[("panel hidden", name)] = getattr(ui, name).isHidden()
    state["collapsed"] = ui.readerCollapsibleButton.collapsed
    state["help"] = mw.findChild("ModulePanel", "ModulePanel").helpAndAcknowledgmentVisible
    state["title bar"] = id(mw.findChildren("QDockWidget", "PanelDockWidget")[0].titleBarWidget())
    state["layout"] = lm.layout
    for name, sw in lm.all_slice_widgets().items():
        state[("corner", name)] = sw.sliceView().cornerAnnotation().GetVisibility()
        state[("controller", name)] = sw.sliceController().isHidden()
    return state


@scenario()
def reader_session_start_fail_stop(h, case):
    """Reader mode hides the chrome and node names and puts back exactly what was there; a session
    that fails while starting leaves the window as it was."""
    import slicer

    widget = _open_panel(h)
    ui = widget.ui
    study = _study(h, case, ["R01", "R02"])
    lm = slicer.app.layoutManager()
    red = lm.sliceWidget("Red").sliceView().cornerAnnotation()
    red.SetText(0, "T1 in-phase (node name)")  # what DataProbe writes there
    before = window_state(h, widget)
    mw = slicer.util.mainWindow()
    assert mw.findChild("QDockWidget", "PythonConsoleDockWidget").isHidden()  # Slicer's default

    ui.studyFolderLineEdit.text = study
    ui.readerIdLineEdit.text = "R01"
    assert widget._parameterNode.studyFolder == study and widget._parameterNode.readerId == "R01"
    ui.startReadingButton.click()
    assert ui.trialProgressLabel.text == "1 / 2", ui.trialProgressLabel.text
    assert all(t.isHidden() for t in mw.findChildren("QToolBar"))
    assert ui.inputsCollapsibleButton.isHidden() and ui.stopReadingButton.enabled
    for name in lm.sliceViewNames():
        assert not lm.sliceWidget(name).sliceView().cornerAnnotation().GetVisibility(), f"node names shown in {name}"
    ui.realButton.click()
    ui.confidence4Button.click()
    ui.submitAnswerButton.click()
    assert ui.trialProgressLabel.text == "2 / 2", ui.trialProgressLabel.text
    ui.stopReadingButton.click()
    after = window_state(h, widget)
    changed = {k: (before[k], after.get(k)) for k in before if after.get(k) != before[k]}
    assert not changed, f"not as before after Stop: {changed}"
    assert mw.findChild("QDockWidget", "PythonConsoleDockWidget").isHidden()
    assert mw.findChild("QToolBar", "CaptureToolBar").isHidden()
    assert red.GetVisibility()

    # a session that fails while starting (its first trial's image is missing)
    from CrossModalitySynthLib.reader_study.study import Study

    loaded = Study.load(study)
    first = loaded.load_trials("R02")[0]
    os.remove(loaded.image_path(first["file"]))
    ui.readerIdLineEdit.text = "R02"
    ui.startReadingButton.click()
    after = window_state(h, widget)
    changed = {k: (before[k], after.get(k)) for k in before if after.get(k) != before[k]}
    assert not changed, f"not as before after a failed start: {changed}"
    assert ui.startReadingButton.enabled and not ui.stopReadingButton.enabled
    assert "could not be opened" in ui.readerMessageLabel.text, ui.readerMessageLabel.text
    assert widget._reader is None


@scenario()
def cleanup_during_run(h, case):
    """Slicer closes (or the module reloads) while a run is going: the child and its temporary
    folder with the exported patient images are gone, and the scene is unchanged."""
    import numpy as np
    import slicer

    widget = _open_panel(h)
    ui = widget.ui
    t1in = h.load_volume(os.path.join(case, "t1_in.nii.gz"), "T1 in-phase")
    t1opp = h.load_volume(os.path.join(case, "t1_opp.nii.gz"), "T1 opposed-phase")
    for node in (t1in, t1opp):  # 308 slices: long enough to be running when Slicer closes
        slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(np.tile(slicer.util.arrayFromVolume(node), (11, 1, 1))))
    _select_model(widget, "demo-t1dual-to-ct", "")
    ui.t1InSelector.setCurrentNode(t1in)
    ui.t1OppSelector.setCurrentNode(t1opp)
    before = _ids(slicer.mrmlScene)
    ui.applyButton.click()
    job = widget._job
    assert h.process_events_until(lambda: job.last_progress is not None and job.last_progress.stage == "synthesize", 300)
    tmp, pid, worker_tmp = job._tmp, job.process.pid, widget.logic._worker.tmpdir
    assert os.path.isdir(tmp) and os.listdir(os.path.join(tmp, "inputs")) and os.path.isdir(worker_tmp)
    h.unload_module()  # what Slicer does when it closes or reloads the module: cleanup()
    assert not os.path.exists(tmp), f"the exported images stay in {tmp}"
    assert not os.path.exists(worker_tmp), f"the worker's temporary folder stays: {worker_tmp}"
    assert not _alive(pid), "the child is still running"
    assert _ids(slicer.mrmlScene) == before


@scenario()
def status_line_names_training_range_warnings(h, case):
    """Issue 13 item 10: the phantom case (CHAOS size, held out) loaded from its folder runs with no
    warning (its case.json is carried beside the exported inputs); the same volumes edited in
    Slicer to another contrast are outside the demo model's training range and the status line
    says so, in the child's words."""
    import numpy as np
    import slicer

    widget = _open_panel(h)
    ui = widget.ui
    t1in = h.load_volume(os.path.join(case, "t1_in.nii.gz"), "T1 in-phase")
    t1opp = h.load_volume(os.path.join(case, "t1_opp.nii.gz"), "T1 opposed-phase")
    _select_model(widget, "demo-t1dual-to-ct", "")
    ui.t1InSelector.setCurrentNode(t1in)
    ui.t1OppSelector.setCurrentNode(t1opp)
    ui.applyButton.click()
    result = _wait_for_result(h, widget)
    assert result.status == "succeeded", result.message
    assert result.summary["warnings"] == [], result.summary["warnings"]
    assert ui.statusLabel.text.startswith("Done") and "Warnings" not in ui.statusLabel.text, ui.statusLabel.text

    for node in (t1in, t1opp):  # another contrast (not a linear change, which the normalisation undoes):
        a = np.clip(slicer.util.arrayFromVolume(node).astype(np.float64), 0.0, None)  # tissue in two grey
        top = np.percentile(a, 99.5)                                                   # levels, mostly dark
        tissue = a > 0.05 * top
        dark = np.where(tissue, np.where(a > np.percentile(a[tissue], 95), top, 0.2 * top), a)
        slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(dark.astype(np.float32)))
    ui.applyButton.click()
    result = _wait_for_result(h, widget)
    assert result.status == "succeeded", result.message
    warnings = result.summary["warnings"]
    text = ui.statusLabel.text
    assert text == widget.logic.resultText(result) and text.startswith("Done"), text
    assert any(w.startswith("demo-t1dual-to-ct: the T1 in-phase intensity distribution inside the body differs "
                            "from the training data (distance ") for w in warnings), warnings
    assert any("trained only on digital phantom data and the input is not a phantom case" in w for w in warnings), warnings
    assert all(w in text for w in warnings) and "Warnings: " in text, text


def _worker_launches(h):
    return [launch for launch in h.launches()
            if launch["argv"][:3] == ["-m", "CrossModalitySynthLib.cli.main", "worker"]]


def _load_case(h, case, suffix=""):
    return (h.load_volume(os.path.join(case, "t1_in.nii.gz"), "T1 in-phase" + suffix),
            h.load_volume(os.path.join(case, "t1_opp.nii.gz"), "T1 opposed-phase" + suffix))


def _assert_on_grid(result, reference):
    volume = result.volume_node
    assert _matrix(volume) == _matrix(reference)
    assert volume.GetImageData().GetDimensions() == reference.GetImageData().GetDimensions()


@scenario()
def two_applies_share_one_worker(h, case):
    """Issue 16 item 2: the first Apply starts the session's ``cmsynth worker``, the second runs on
    the same process, finds both models loaded and the status line says so; results on the input grid."""
    import slicer

    widget = _open_panel(h)
    ui = widget.ui
    t1in, t1opp = _load_case(h, case)
    _select_model(widget, "demo-t1dual-to-ct", "demo-liver-unet-t1in")
    ui.t1InSelector.setCurrentNode(t1in)
    ui.t1OppSelector.setCurrentNode(t1opp)
    assert widget.logic._worker is None or widget.logic._worker.pid is None  # nothing started before Apply

    ui.applyButton.click()
    worker = widget.logic._worker
    pid = worker.pid
    assert pid is not None and widget._job.process.pid == pid
    first = _wait_for_result(h, widget)
    assert first.status == "succeeded", first.message
    assert first.models_already_loaded == [], first.models_already_loaded
    assert ui.statusLabel.text.startswith("Done") and "already loaded" not in ui.statusLabel.text, ui.statusLabel.text
    _assert_on_grid(first, t1in)
    assert worker.alive and os.path.isdir(worker.tmpdir)  # the worker stays, with its folder
    assert os.path.dirname(worker.tmpdir) == slicer.app.temporaryPath, worker.tmpdir

    ui.applyButton.click()
    assert widget._job.process.pid == pid
    second = _wait_for_result(h, widget)
    assert second.status == "succeeded", second.message
    assert widget.logic._worker is worker and worker.pid == pid and worker.alive and worker.starts == 1
    assert sorted(second.models_already_loaded) == ["demo-liver-unet-t1in", "demo-t1dual-to-ct"], \
        second.models_already_loaded
    text = ui.statusLabel.text
    assert text == widget.logic.resultText(second), text
    assert "(models already loaded: " in text and "demo-t1dual-to-ct" in text and "demo-liver-unet-t1in" in text, text
    _assert_on_grid(second, t1in)
    assert second.segmentation_node.GetSegmentation().GetSegmentIdBySegmentName("liver")
    assert len(_worker_launches(h)) == 1, h.launches()  # one worker process for the two Applies
    assert not [launch for launch in h.launches() if launch["argv"][2:3] == ["run"]], h.launches()


@scenario()
def cancel_kills_worker_next_apply_starts_new(h, case):
    """Issue 16 item 2: Cancel during a run kills the worker's process group at once and leaves
    the scene unchanged; the next Apply starts a new worker and succeeds."""
    import numpy as np
    import slicer

    widget = _open_panel(h)
    ui = widget.ui
    t1in, t1opp = _load_case(h, case)
    for node in (t1in, t1opp):  # 308 slices: long enough to cancel in the middle
        slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(np.tile(slicer.util.arrayFromVolume(node), (11, 1, 1))))
    _select_model(widget, "demo-t1dual-to-ct", "")
    ui.t1InSelector.setCurrentNode(t1in)
    ui.t1OppSelector.setCurrentNode(t1opp)
    before = _ids(slicer.mrmlScene)
    ui.applyButton.click()
    job = widget._job
    worker = widget.logic._worker
    assert h.process_events_until(lambda: job.last_progress is not None and job.last_progress.stage == "synthesize", 300)
    pgid, worker_tmp, job_tmp = job.process.pid, worker.tmpdir, job._tmp
    assert os.getpgid(pgid) == pgid and os.path.isdir(worker_tmp) and os.path.isdir(job_tmp)
    ui.applyButton.click()  # Cancel
    assert group_gone(pgid), "a process of the worker's group is still running right after Cancel"
    result = _wait_for_result(h, widget, timeout_s=30)
    assert result.status == "cancelled", (result.status, result.message)
    assert ui.statusLabel.text == "Cancelled. The scene is as it was before.", ui.statusLabel.text
    assert _ids(slicer.mrmlScene) == before
    assert not os.path.exists(worker_tmp) and not os.path.exists(job_tmp)
    assert ui.applyButton.text == "Apply"

    small_in, small_opp = _load_case(h, case, " (again)")
    ui.t1InSelector.setCurrentNode(small_in)
    ui.t1OppSelector.setCurrentNode(small_opp)
    ui.applyButton.click()
    assert widget.logic._worker is worker and worker.starts == 2 and worker.pid != pgid
    again = _wait_for_result(h, widget)
    assert again.status == "succeeded", again.message
    assert again.models_already_loaded == []  # a new process: nothing was loaded in it yet
    assert ui.statusLabel.text.startswith("Done") and "already loaded" not in ui.statusLabel.text, ui.statusLabel.text
    _assert_on_grid(again, small_in)
    assert len(_worker_launches(h)) == 2, h.launches()


@scenario()
def cleanup_and_quit_stop_the_worker(h, case):
    """Issue 16 item 2: module cleanup stops the idle worker (no process of its group left) and
    removes its temporary folder; a Logic used from a script is stopped when the application quits."""
    import slicer

    widget = _open_panel(h)
    ui = widget.ui
    t1in, t1opp = _load_case(h, case)
    _select_model(widget, "demo-t1dual-to-ct", "")
    ui.t1InSelector.setCurrentNode(t1in)
    ui.t1OppSelector.setCurrentNode(t1opp)
    ui.applyButton.click()
    result = _wait_for_result(h, widget)
    assert result.status == "succeeded", result.message
    worker = widget.logic._worker
    pgid, tmp = worker.pid, worker.tmpdir
    assert worker.alive and os.path.isdir(tmp)
    ids = _ids(slicer.mrmlScene)
    request = widget.logic.request(widget._parameterNode)  # for the script below
    h.unload_module()  # what Slicer does when it closes or reloads the module: cleanup()
    assert group_gone(pgid), "the worker's process group is still there after cleanup"
    assert not os.path.exists(tmp), f"the worker's temporary folder stays: {tmp}"
    assert _ids(slicer.mrmlScene) == ids

    # the Logic without the widget (a script), then the application quits
    logic = h.pymodule.CrossModalitySynthLogic()
    scripted = logic.run(request, timeout=600)
    assert scripted.status == "succeeded", scripted.message
    pgid, tmp = logic._worker.pid, logic._worker.tmpdir
    assert not group_gone(pgid) and os.path.isdir(tmp)
    h.app._emit("aboutToQuit")
    assert group_gone(pgid), "the worker's process group is still there after aboutToQuit"
    assert not os.path.exists(tmp), f"the worker's temporary folder stays: {tmp}"
    assert logic._worker is None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


@scenario(without=("monai", "tqdm"))
def dependency_installation(h, case):
    """Apply's dependency step in a Slicer Python without monai and tqdm: the pip command lines
    Slicer's real packaging code runs (recorded by the PythonSlicer launcher, not run)."""
    from CrossModalitySynthLib.slicer_support import dependencies
    from slicer_headless import qt_module

    assert dependencies.installed_version("monai") is None, "this scenario needs a Python without monai"
    widget = _open_panel(h)
    widget.logic.ensureDependencies()
    pip = [launch["argv"][2:] for launch in h.launches() if launch["argv"][:2] == ["-m", "pip"]]
    asked = qt_module.state().message_boxes
    assert len(asked) == 1, asked  # the user was asked once
    if h.tag == "v5.8.1":
        assert pip == [["install", "monai>=1.3", "--no-deps"], ["install", "tqdm>=4.60"]], pip
    else:
        assert pip == [["install", "monai>=1.3", "--no-deps"], ["install", "tqdm>=4.60", "--no-deps"]], pip
    words = [w.lower() for argv in pip for w in argv]
    assert not any(w.startswith(("torch", "simpleitk")) for w in words), pip
    assert not any(w in ("-u", "--upgrade") for w in words), pip


@scenario(testing=True, without=("monai", "tqdm"))
def dependencies_in_testing_mode(h, case):
    """In Slicer's testing mode (ctest) Apply never installs anything: a clear error instead."""
    from CrossModalitySynthLib.slicer_support import dependencies

    widget = _open_panel(h)
    try:
        widget.logic.ensureDependencies()
    except dependencies.DependencyError as exc:
        assert "testing mode" in str(exc), exc
    else:
        raise AssertionError("testing mode went on to install packages")
    assert not [launch for launch in h.launches() if launch["argv"][:2] == ["-m", "pip"]]


@scenario(testing=True)
def module_self_tests(h, case):
    """The module's own Test class and the widget test, as ctest runs them inside Slicer."""
    import unittest

    _open_panel(h)
    import slicer

    slicer.selfTests["CrossModalitySynth"](msec=0)
    sys.path.insert(0, os.path.join(h.pymodule.__file__.rsplit(os.sep, 1)[0], "Testing", "Python"))
    import CrossModalitySynthWidgetTest

    result = unittest.TextTestRunner(verbosity=2).run(
        unittest.TestLoader().loadTestsFromTestCase(CrossModalitySynthWidgetTest.CrossModalitySynthWidgetTest))
    assert result.wasSuccessful(), f"{len(result.failures)} failures, {len(result.errors)} errors"


# =========================================================================== runner


def main(argv=None):
    from slicer_headless import standin
    from slicer_headless.environment import HeadlessSlicer

    tag, name, workdir, case = (argv or sys.argv[1:])[:4]
    fn, testing, _ = SCENARIOS[name]
    h = HeadlessSlicer(tag, workdir, testing=testing)
    started = time.monotonic()
    fn(h, case)
    assert not standin.SLOT_ERRORS, "a slot raised:\n" + "\n".join(tb for _, tb in standin.SLOT_ERRORS)
    assert not standin.QT_WARNINGS, f"Qt warnings: {standin.QT_WARNINGS}"
    print(f"SCENARIO PASSED {tag} {name} in {time.monotonic() - started:.1f} s", flush=True)
    sys.stderr.flush()
    # The interpreter's own teardown destroys VTK/MRML objects and the Python observers on them in
    # no set order and can crash (SIGSEGV) after everything has passed; Slicer never tears down
    # that way. So a passed scenario ends the process here.
    os._exit(0)


if __name__ == "__main__":
    main()
