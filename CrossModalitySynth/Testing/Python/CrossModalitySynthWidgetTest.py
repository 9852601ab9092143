"""Self-test of the CrossModalitySynth panel, run inside a real Slicer (ctest, or from the Python console:
``import CrossModalitySynthWidgetTest; CrossModalitySynthWidgetTest.run()``).

Drives the widget the way a user does: the parameter node restores the panel from a saved scene;
Apply turns into Cancel while the separate process runs and Cancel leaves the scene as it was; the
reader mode hides the application's chrome, shows one pseudonymous trial at a time and records
answers given with the buttons. The module's own Test class (in CrossModalitySynth.py) covers the
results (geometry, liver Dice) and the failure message.
"""

import os
import shutil
import time
import unittest

import qt

import slicer


def _widget():
    slicer.util.selectModule("CrossModalitySynth")
    return slicer.modules.crossmodalitysynth.widgetRepresentation().self()


def _processEventsUntil(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        slicer.app.processEvents()
        time.sleep(0.05)


def _phantom(folder, n_cases=1):
    from CrossModalitySynthLib.phantom import write_cases

    if not os.path.isdir(os.path.join(folder, "case_{:03d}".format(n_cases - 1))):
        write_cases(folder, n_cases=n_cases, seed=0, size="small", overwrite=True)
    return [os.path.join(folder, "case_{:03d}".format(i)) for i in range(n_cases)]


def _nodeIds():
    nodes = slicer.mrmlScene.GetNodes()
    return sorted(nodes.GetItemAsObject(i).GetID() for i in range(nodes.GetNumberOfItems()))


class CrossModalitySynthWidgetTest(unittest.TestCase):
    def setUp(self):
        slicer.mrmlScene.Clear()
        self.tmp = os.path.join(slicer.app.temporaryPath, "CrossModalitySynthWidgetTest")
        os.makedirs(self.tmp, exist_ok=True)

    def test_saved_scene_restores_the_panel(self):
        case = _phantom(os.path.join(self.tmp, "phantom"))[0]
        t2 = slicer.util.loadVolume(os.path.join(case, "t2.nii.gz"), properties={"name": "phantom T2"})
        widget = _widget()
        pn = widget._parameterNode
        pn.device = "CPU"
        pn.precision = "bf16"
        pn.showCompare = False
        pn.t2Volume = t2
        pn.readerId = "R07"
        slicer.app.processEvents()
        self.assertEqual(widget.ui.deviceComboBox.currentText, "CPU")
        self.assertEqual(widget.ui.precisionComboBox.currentText, "bf16")
        self.assertFalse(widget.ui.showCompareCheckBox.checked)

        scene = os.path.join(self.tmp, "panel.mrb")
        self.assertTrue(slicer.util.saveScene(scene))
        slicer.mrmlScene.Clear()
        slicer.util.loadScene(scene)
        widget = _widget()
        pn = widget._parameterNode
        self.assertEqual((pn.device, pn.precision, pn.showCompare, pn.readerId), ("CPU", "bf16", False, "R07"))
        self.assertEqual(pn.t2Volume.GetName(), "phantom T2")
        self.assertEqual(widget.ui.deviceComboBox.currentText, "CPU")
        self.assertIs(widget.ui.t2Selector.currentNode(), pn.t2Volume)

        pn.direction = "CT -> MRI"
        slicer.app.processEvents()
        self.assertFalse(widget.ui.ctSelector.isHidden())
        self.assertTrue(widget.ui.t1InSelector.isHidden())
        self.assertTrue(widget.ui.liverModelComboBox.isHidden())
        pn.direction = "MRI -> CT"

    def test_apply_becomes_cancel_and_cancel_leaves_the_scene(self):
        import numpy as np

        case = _phantom(os.path.join(self.tmp, "phantom"))[0]
        t1in = slicer.util.loadVolume(os.path.join(case, "t1_in.nii.gz"))
        t1opp = slicer.util.loadVolume(os.path.join(case, "t1_opp.nii.gz"))
        for node in (t1in, t1opp):  # 308 slices: long enough to cancel in the middle
            slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(np.tile(slicer.util.arrayFromVolume(node), (11, 1, 1))))
        widget = _widget()
        pn = widget._parameterNode
        pn.direction = "MRI -> CT"
        pn.modelId = "demo-t1dual-to-ct"
        widget._refreshModels()
        pn.t1InVolume, pn.t1OppVolume = t1in, t1opp
        pn.liverModelId = ""
        pn.device = "CPU"
        slicer.app.processEvents()
        self.assertTrue(widget.ui.applyButton.enabled, widget.ui.applyButton.toolTip)
        before = _nodeIds()

        widget.ui.applyButton.click()
        self.assertEqual(widget.ui.applyButton.text, "Cancel")
        self.assertFalse(widget.ui.inputsCollapsibleButton.enabled)
        _processEventsUntil(lambda: widget._job.last_progress is not None
                            and widget._job.last_progress.stage == "synthesize", 300)
        self.assertTrue(widget.ui.progressBar.visible)
        widget.ui.applyButton.click()  # Cancel
        _processEventsUntil(lambda: widget._job.result is not None, 60)
        slicer.app.processEvents()
        self.assertEqual(widget._job.result.status, "cancelled")
        self.assertEqual(widget.ui.applyButton.text, "Apply")
        self.assertIn("Cancelled", widget.ui.statusLabel.text)
        self.assertEqual(_nodeIds(), before)

    def test_reader_mode(self):
        from CrossModalitySynthLib.reader_study import create_study, sources_from_files
        from CrossModalitySynthLib.reader_study.prepare import PrepareSettings

        cases = _phantom(os.path.join(self.tmp, "phantom4"), n_cases=4)
        real, synthetic = os.path.join(self.tmp, "real"), os.path.join(self.tmp, "synthetic")
        for folder in (real, synthetic):
            os.makedirs(folder, exist_ok=True)
        for i, case in enumerate(cases):
            shutil.copyfile(os.path.join(case, "ct_on_mr.nii.gz"), os.path.join(real, "p{}.nii.gz".format(i)))
            shutil.copyfile(os.path.join(case, "ct_on_mr.nii.gz"), os.path.join(synthetic, "p{}.nii.gz".format(i)))
        study = os.path.join(self.tmp, "study_{}".format(int(time.time())))
        create_study(study, sources_from_files([real], [synthetic]), ["R01"], 3, 0.5, seed=1,
                     settings=PrepareSettings(slice_size=32, slice_spacing=4.0))

        widget = _widget()
        pn = widget._parameterNode
        pn.studyFolder, pn.readerId, pn.readerMode = study, "R01", True
        widget.ui.startReadingButton.click()
        slicer.app.processEvents()
        self.assertEqual(widget.ui.trialProgressLabel.text, "1 / 3")
        self.assertTrue(widget.ui.inputsCollapsibleButton.isHidden())
        toolbars = slicer.util.mainWindow().findChildren(qt.QToolBar)
        self.assertFalse(any(t.isVisible() for t in toolbars))
        volumes = slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode")
        self.assertEqual(len(volumes), 1)
        self.assertTrue(volumes[0].GetName().startswith("t_"))

        widget.ui.submitAnswerButton.click()  # nothing chosen yet: not recorded
        self.assertEqual(widget.ui.trialProgressLabel.text, "1 / 3")
        widget.ui.realButton.click()
        widget.ui.confidence4Button.click()
        widget.ui.submitAnswerButton.click()
        self.assertEqual(widget.ui.trialProgressLabel.text, "2 / 3")
        self.assertFalse(widget.ui.realButton.checked)  # cleared for the next trial, no feedback
        for answer in ("synthetic", "real"):
            getattr(widget.ui, answer + "Button").click()
            widget.ui.confidence2Button.click()
            widget.ui.submitAnswerButton.click()
        self.assertEqual(widget.ui.trialProgressLabel.text, "3 / 3 answered")
        self.assertFalse(widget.ui.submitAnswerButton.enabled)
        with open(os.path.join(study, "answers", "R01.jsonl")) as f:
            self.assertEqual(len(f.readlines()), 3)

        widget.ui.stopReadingButton.click()
        slicer.app.processEvents()
        self.assertFalse(widget.ui.inputsCollapsibleButton.isHidden())
        self.assertTrue(any(t.isVisible() for t in slicer.util.mainWindow().findChildren(qt.QToolBar)))


def run():
    suite = unittest.TestLoader().loadTestsFromTestCase(CrossModalitySynthWidgetTest)
    return unittest.TextTestRunner(verbosity=2).run(suite)
