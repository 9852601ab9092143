"""CrossModalitySynth: synthetic CT from abdominal MRI (and synthetic MRI from CT) in 3D Slicer.

Module / Widget / Logic / Test, as in Slicer's scripted-module template. This file holds GUI code
only: everything that computes or decides lives in ``CrossModalitySynthLib`` (its
``slicer_support`` package for the Slicer side: the process bridge, scene import and rollback,
the compare views, evaluation, reader sessions, dependencies, models, sample data). Library
modules are imported inside functions, never when this file is imported.

The model runs in a separate process: one ``PythonSlicer -m CrossModalitySynthLib.cli.main worker``
per session, started on the first Apply, that runs each Apply as a ``run`` request (the same
command a user runs headless) and keeps the models loaded between them; a timer polls its JSON
progress lines, so Slicer stays responsive. Cancel ends the worker's whole process tree (the next
Apply starts a new one); the Logic stops it when the module is cleaned up or Slicer quits. The
scene changes only when a run succeeds.
"""

import logging
import os
from typing import Annotated, Optional, Union

import qt
import vtk

import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

DIRECTIONS = {"MRI -> CT": "MR->CT", "CT -> MRI": "CT->MR"}
DEVICES = {"auto": "auto", "CPU": "cpu", "GPU": "cuda"}
POLL_INTERVAL_MS = 200
NO_LIVER_MODEL = "(none)"


#
# CrossModalitySynth
#


class CrossModalitySynth(ScriptedLoadableModule):
    """Module description (Slicer reads it when the application starts)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Cross-Modality Synthesis"
        self.parent.categories = ["Image Synthesis"]
        self.parent.dependencies = []
        self.parent.contributors = ["CrossModalitySynth developers"]
        self.parent.helpText = (
            "Synthetic CT from abdominal MRI (T1 in/opposed phase, T2) with a CycleGAN generator and liver "
            "segmentation with a U-Net; synthetic MRI from CT (EssNet); paired metrics against a real CT; blind "
            "reader studies. Research use only: not for diagnosis or treatment decisions. "
            '<a href="https://github.com/CrossModalitySynth/SlicerCrossModalitySynth/blob/main/docs/slicer.md">Documentation</a>.'
        )
        self.parent.acknowledgementText = (
            "Built on 3D Slicer's scripted-module template, PyTorch (through the SlicerPyTorch extension), "
            "MONAI and SimpleITK."
        )
        # Sample Data registration needs the application to be fully started
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """Add the phantom MRI and CT to the Sample Data module (files are release assets, sha256-checked)."""
    import SampleData

    from CrossModalitySynthLib.slicer_support.sampledata import register_sample_data

    iconsDir = os.path.join(os.path.dirname(__file__), "Resources", "Icons")
    register_sample_data(SampleData, iconsDir)


#
# Parameter node
#


@parameterNodeWrapper
class CrossModalitySynthParameterNode:
    """Everything the panel shows; saved with the scene, so a reloaded scene restores the panel."""

    direction: Annotated[str, Choice(["MRI -> CT", "CT -> MRI"])] = "MRI -> CT"
    modelId: str = ""
    liverModelId: str = ""
    t1InVolume: vtkMRMLScalarVolumeNode
    t1OppVolume: vtkMRMLScalarVolumeNode
    t2Volume: vtkMRMLScalarVolumeNode
    ctVolume: vtkMRMLScalarVolumeNode
    outputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode
    showCompare: bool = True
    device: Annotated[str, Choice(["auto", "CPU", "GPU"])] = "auto"
    precision: Annotated[str, Choice(["auto", "fp32", "bf16"])] = "auto"
    evalSynthetic: vtkMRMLScalarVolumeNode
    evalReference: vtkMRMLScalarVolumeNode
    evalMask: Union[vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, None]  # a union of nodes must include None
    evalDifference: vtkMRMLScalarVolumeNode
    evalTable: vtkMRMLTableNode
    studyFolder: str = ""
    readerId: str = ""
    readerMode: bool = True


#
# CrossModalitySynthWidget
#


class CrossModalitySynthWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: forwards user actions to the Logic and shows its state."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._fetch = None
        self._reader = None
        self._readerChrome = None
        self._answer = None
        self._shortcuts = []
        self._updatingModels = False
        self._lastInputNode = None
        self._lastResult = None
        self._modelsDirection = None

    # ---- set-up ---------------------------------------------------------------------------------

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CrossModalitySynth.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CrossModalitySynthLogic()

        self.ui.progressBar.setVisible(False)
        self.ui.fetchProgressBar.setVisible(False)
        self.ui.backButton.setVisible(False)
        self.ui.evalMaskSelector.noneDisplay = "Body of the reference CT"

        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self._onPoll)
        self._fetchTimer = qt.QTimer()
        self._fetchTimer.setInterval(POLL_INTERVAL_MS)
        self._fetchTimer.connect("timeout()", self._onFetchPoll)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndImportEvent, self.onSceneEndImport)

        self.ui.modelComboBox.connect("currentIndexChanged(int)", self._onModelChanged)
        self.ui.liverModelComboBox.connect("currentIndexChanged(int)", self._onLiverModelChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.compareButton.connect("clicked(bool)", self.onCompareButton)
        self.ui.fetchModelButton.connect("clicked(bool)", self.onFetchModels)
        self.ui.importModelButton.connect("clicked(bool)", self.onImportModel)
        self.ui.clearModelsButton.connect("clicked(bool)", self.onClearModels)
        self.ui.evaluateButton.connect("clicked(bool)", self.onEvaluateButton)
        self.ui.studyBrowseButton.connect("clicked(bool)", self.onBrowseStudy)
        self.ui.startReadingButton.connect("clicked(bool)", self.onStartReading)
        self.ui.stopReadingButton.connect("clicked(bool)", self.onStopReading)
        self.ui.realButton.connect("clicked(bool)", lambda checked: self._setAnswer("real"))
        self.ui.syntheticButton.connect("clicked(bool)", lambda checked: self._setAnswer("synthetic"))
        self.ui.submitAnswerButton.connect("clicked(bool)", self.onSubmitAnswer)
        self.ui.backButton.connect("clicked(bool)", self.onPreviousTrial)
        self._confidenceButtons = [getattr(self.ui, "confidence{}Button".format(i)) for i in range(1, 6)]
        self._confidenceGroup = qt.QButtonGroup(self.ui.readerCollapsibleButton)
        for i, button in enumerate(self._confidenceButtons, start=1):
            self._confidenceGroup.addButton(button, i)
            button.enabled = False
        self._createReaderShortcuts()

        self.initializeParameterNode()
        self._refreshModels()
        self.ui.modelsCacheLabel.text = "Downloaded and imported models are kept in " + self.logic.modelCache()

    def cleanup(self) -> None:
        if self._job is not None:
            self._job.abort()  # kills the worker's process tree, waits for it, removes the temporary folder
        if self.logic is not None:
            self.logic.cleanup()  # stops the session's worker and removes its temporary folder
        self._timer.stop()
        self._fetchTimer.stop()
        self.onStopReading()
        self.removeObservers()
        self.setParameterNode(None)

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        # the panel does not follow the parameter node while another module is shown
        self._disconnectParameterNode()

    def onSceneStartClose(self, caller, event) -> None:
        if self._job is not None and self._job.running:
            self._job.cancel()
        self.onStopReading()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def onSceneEndImport(self, caller, event) -> None:
        # A loaded scene (.mrb) brings its own parameter values into the singleton parameter node;
        # the wrapper caches node references read while the import was still going, so the panel
        # takes a new wrapper of the node once the import has ended.
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        # Inputs are never guessed: every selector starts empty ("Select ..."), so a volume cannot
        # run as the wrong sequence because it happened to be loaded first.
        self.setParameterNode(self.logic.getParameterNode())

    def _disconnectParameterNode(self) -> None:
        if not self._parameterNode:
            return
        if self._parameterNodeGuiTag is not None:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
        if self.hasObserver(self._parameterNode.parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGUI):
            self.removeObserver(self._parameterNode.parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGUI)

    def _connectGui(self, parameterNode):
        """``connectGui`` and its tag. Slicer 5.8's ``connectGui`` returns None instead of the tag
        (5.12 returns it), so without this no connection could ever be undone and each re-entry
        would add another set of live connections; the tag is then the newest key of the wrapper's
        connection table, which both versions keep."""
        tag = parameterNode.connectGui(self.ui)
        if tag is None:
            tag = max(parameterNode._parameterGUIs)
        return tag

    def setParameterNode(self, inputParameterNode: Optional[CrossModalitySynthParameterNode]) -> None:
        self._disconnectParameterNode()
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # widgets with a "SlicerParameterName" property in the .ui are connected here
            self._parameterNodeGuiTag = self._connectGui(self._parameterNode)
            self.addObserver(self._parameterNode.parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGUI)
            self._refreshModels()
            self._updateGUI()

    # ---- panel state ----------------------------------------------------------------------------

    def _direction(self) -> str:
        return DIRECTIONS.get(self._parameterNode.direction, "MR->CT") if self._parameterNode else "MR->CT"

    def _refreshModels(self) -> None:
        """Fill the model selectors with the models of the current direction (from the registry)."""
        if not self._parameterNode:
            return
        self._updatingModels = True
        try:
            self._models = {m.id: m for m in self.logic.models()}
            direction = self._direction()
            self._modelsDirection = direction
            for combo, wanted, current, extra in (
                (self.ui.modelComboBox, direction, self._parameterNode.modelId, None),
                (self.ui.liverModelComboBox, "MR->LIVER", self._parameterNode.liverModelId, NO_LIVER_MODEL),
            ):
                combo.clear()
                if extra:
                    combo.addItem(extra, "")
                for m in self._models.values():
                    if m.direction == wanted:
                        combo.addItem(m.label, m.id)
                index = combo.findData(current) if current else -1
                combo.setCurrentIndex(index if index >= 0 else 0)
        finally:
            self._updatingModels = False
        self._onModelChanged()
        self._onLiverModelChanged()

    def _onModelChanged(self, index=None) -> None:
        if self._updatingModels or not self._parameterNode:
            return
        modelId = self.ui.modelComboBox.currentData or ""
        if self._parameterNode.modelId != modelId:
            self._parameterNode.modelId = modelId
        self._updateGUI()

    def _onLiverModelChanged(self, index=None) -> None:
        if self._updatingModels or not self._parameterNode:
            return
        modelId = self.ui.liverModelComboBox.currentData or ""
        if self._parameterNode.liverModelId != modelId:
            self._parameterNode.liverModelId = modelId

    def _updateGUI(self, caller=None, event=None) -> None:
        """Show the selectors the chosen model needs; enable what can be done now."""
        pn = self._parameterNode
        if not pn or not hasattr(self, "_models"):
            return
        direction = self._direction()
        if direction != self._modelsDirection:  # the direction changed: other models
            self._refreshModels()
            return
        model = self._models.get(pn.modelId)
        slots = self.logic.inputSlots(model, direction)
        for slot, label, selector in (
            ("t1In", self.ui.t1InLabel, self.ui.t1InSelector),
            ("t1Opp", self.ui.t1OppLabel, self.ui.t1OppSelector),
            ("t2", self.ui.t2Label, self.ui.t2Selector),
            ("ct", self.ui.ctLabel, self.ui.ctSelector),
        ):
            label.setVisible(slot in slots)
            selector.setVisible(slot in slots)
        mrToCt = direction == "MR->CT"
        for w in (self.ui.liverModelLabel, self.ui.liverModelComboBox, self.ui.outputSegmentationLabel,
                  self.ui.outputSegmentationSelector):
            w.setVisible(mrToCt)
        self.ui.modelInfoLabel.text = self.logic.describeModel(model)
        running = self._job is not None and self._job.running
        if running:
            self.ui.applyButton.text = "Cancel"
            self.ui.applyButton.toolTip = "Stop the run; the scene stays as it was."
            self.ui.applyButton.enabled = not self._job.process.cancel_requested
        else:
            problem = self.logic.missingForRun(pn, model, slots)
            self.ui.applyButton.text = "Apply"
            self.ui.applyButton.enabled = problem is None
            self.ui.applyButton.toolTip = problem or "Run the model in a separate process."
        for w in (self.ui.inputsCollapsibleButton, self.ui.outputsCollapsibleButton, self.ui.advancedCollapsibleButton,
                  self.ui.modelsCollapsibleButton):
            w.enabled = not running
        self.ui.evaluateButton.enabled = bool(pn.evalSynthetic and pn.evalReference)
        self.ui.compareButton.enabled = self._lastResult is not None and not running

    # ---- run ------------------------------------------------------------------------------------

    def onApplyButton(self) -> None:
        """Apply starts a run; while it runs, the same button cancels it."""
        if self._job is not None and self._job.running:
            self._job.cancel()
            self.ui.statusLabel.text = "Cancelling..."
            self._updateGUI()
            return
        with slicer.util.tryWithErrorDisplay("The run could not start.", waitCursor=True):
            self.logic.ensureDependencies()
            self._lastInputNode = self.logic.firstInputNode(self._parameterNode, self._models.get(self._parameterNode.modelId))
            self._job = self.logic.start(self._parameterNode)
            self.ui.progressBar.setVisible(True)
            self.ui.progressBar.value = 0
            self.ui.progressBar.format = "starting..."
            self.ui.statusLabel.text = "Running in a separate process; Slicer stays usable."
            self._timer.start()
        self._updateGUI()

    def _onPoll(self) -> None:
        job = self._job
        if job is None:
            self._timer.stop()
            return
        job.poll()
        if job.last_progress is not None:
            self.ui.progressBar.value = int(round(100 * job.last_progress.fraction))
            self.ui.progressBar.format = job.last_progress.text + " (%p%)"
        if job.result is None:
            return
        self._timer.stop()
        self.ui.progressBar.setVisible(False)
        result = job.result
        if result.status == "succeeded":
            pn = self._parameterNode
            self._lastResult = result
            if pn:  # ready to be evaluated against a real CT
                pn.evalSynthetic = result.volume_node
            self.ui.statusLabel.text = self.logic.resultText(result)
            if pn and pn.showCompare:
                self.onCompareButton()
        elif result.status == "cancelled":
            self.ui.statusLabel.text = "Cancelled. The scene is as it was before."
        else:
            self.ui.statusLabel.text = "Failed: " + result.message
            slicer.util.errorDisplay(result.message, windowTitle="Cross-Modality Synthesis")
        self._updateGUI()

    def onCompareButton(self) -> None:
        result = self._lastResult
        if result is None or self._lastInputNode is None:
            return
        with slicer.util.tryWithErrorDisplay("The compare layout could not be shown.", waitCursor=True):
            self.logic.showCompare(self._lastInputNode, result.volume_node, result.segmentation_node)

    # ---- models ---------------------------------------------------------------------------------

    def onFetchModels(self) -> None:
        ids = [i for i in (self._parameterNode.modelId, self._parameterNode.liverModelId) if i]
        if not ids:
            slicer.util.infoDisplay("Select a model first.")
            return
        self._fetch = self.logic.startFetch(ids)
        self.ui.fetchProgressBar.setVisible(True)
        self.ui.fetchProgressBar.value = 0
        self.ui.fetchModelButton.enabled = False
        self._fetchTimer.start()

    def _onFetchPoll(self) -> None:
        task = self._fetch
        if task is None:
            self._fetchTimer.stop()
            return
        self.ui.fetchProgressBar.value = int(round(100 * task.fraction))
        self.ui.fetchProgressBar.format = task.text
        if not task.finished:
            return
        self._fetchTimer.stop()
        self.ui.fetchProgressBar.setVisible(False)
        self.ui.fetchModelButton.enabled = True
        self._fetch = None
        if task.error:
            slicer.util.errorDisplay(task.error, windowTitle="Fetch models")
        self._refreshModels()

    def onImportModel(self) -> None:
        path = qt.QFileDialog.getOpenFileName(slicer.util.mainWindow(), "Import model bundle", "",
                                              "Model bundles (*.zip)")
        if not path:
            return
        with slicer.util.tryWithErrorDisplay("The model bundle could not be imported.", waitCursor=True):
            bundle = self.logic.importModel(path)
            slicer.util.infoDisplay("Model {} {} was imported and verified.".format(bundle.id, bundle.version))
        self._refreshModels()

    def onClearModels(self) -> None:
        if not slicer.util.confirmOkCancelDisplay(
                "Delete every downloaded or imported model from " + self.logic.modelCache() + "?\n"
                "Bundled demo models stay; deleted models can be fetched or imported again."):
            return
        with slicer.util.tryWithErrorDisplay("The models could not be removed.", waitCursor=True):
            removed = self.logic.clearModels()
            slicer.util.infoDisplay("{} model folder(s) removed.".format(len(removed)))
        self._refreshModels()

    # ---- evaluate -------------------------------------------------------------------------------

    def onEvaluateButton(self) -> None:
        pn = self._parameterNode
        with slicer.util.tryWithErrorDisplay("The metrics could not be computed.", waitCursor=True):
            out = self.logic.evaluate(pn.evalSynthetic, pn.evalReference, pn.evalMask, pn.evalDifference, pn.evalTable)
            pn.evalDifference = out.difference_node
            pn.evalTable = out.table_node
            self.ui.evalResultLabel.text = "  ".join("{} {} {}".format(r[0], r[1], r[2]).strip() for r in out.rows[:4])
            self.logic.showEvaluation(pn.evalReference, out.difference_node, out.table_node)

    # ---- reader study ---------------------------------------------------------------------------

    def onBrowseStudy(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), "Open reader study folder",
                                                     self._parameterNode.studyFolder or "")
        if folder:
            self._parameterNode.studyFolder = folder

    def _createReaderShortcuts(self) -> None:
        keys = [("R", lambda: self._setAnswer("real")), ("S", lambda: self._setAnswer("synthetic")),
                ("Return", self.onSubmitAnswer), ("Enter", self.onSubmitAnswer)]
        keys += [(str(i), (lambda i=i: self._setConfidence(i))) for i in range(1, 6)]
        for key, callback in keys:
            shortcut = qt.QShortcut(qt.QKeySequence(key), slicer.util.mainWindow() or self.parent)
            shortcut.connect("activated()", callback)
            shortcut.setEnabled(False)
            self._shortcuts.append(shortcut)

    def _setReaderControls(self, active: bool) -> None:
        for w in [self.ui.realButton, self.ui.syntheticButton, self.ui.commentLineEdit,
                  self.ui.submitAnswerButton] + self._confidenceButtons:
            w.enabled = active
        for s in self._shortcuts:
            s.setEnabled(active)
        self.ui.stopReadingButton.enabled = self._reader is not None
        self.ui.startReadingButton.enabled = self._reader is None
        for w in (self.ui.studyFolderLineEdit, self.ui.studyBrowseButton, self.ui.readerIdLineEdit,
                  self.ui.readerModeCheckBox):
            w.enabled = self._reader is None
        allowsBack = self._reader is not None and self._reader.allows_back
        self.ui.backButton.setVisible(self._reader is not None and self._reader.study.allow_back)
        self.ui.backButton.enabled = allowsBack

    def _resetAnswer(self) -> None:
        self._answer = None
        self.ui.realButton.checked = False
        self.ui.syntheticButton.checked = False
        self._confidenceGroup.setExclusive(False)
        for b in self._confidenceButtons:
            b.checked = False
        self._confidenceGroup.setExclusive(True)
        self.ui.commentLineEdit.text = ""

    def _setAnswer(self, answer: str) -> None:
        if self._reader is None or self._reader.trial is None:
            return
        self._answer = answer
        self.ui.realButton.checked = answer == "real"
        self.ui.syntheticButton.checked = answer == "synthetic"

    def _setConfidence(self, value: int) -> None:
        if self._reader is not None and self._reader.trial is not None:
            self._confidenceButtons[value - 1].checked = True

    def _showTrial(self, trial) -> None:
        self._resetAnswer()
        if trial is None:
            self.ui.trialProgressLabel.text = self._reader.progress_text
            self.ui.readerMessageLabel.text = "All trials are answered. Thank you; the session is finished."
            self._setReaderControls(False)
            return
        self.ui.trialProgressLabel.text = self._reader.progress_text
        self.ui.readerMessageLabel.text = ""
        self.logic.showReaderTrial()
        self._setReaderControls(True)

    def onStartReading(self) -> None:
        pn = self._parameterNode
        try:
            with slicer.util.tryWithErrorDisplay("The reader session could not be opened.", waitCursor=True):
                self._reader = self.logic.openReaderSession(pn.studyFolder, pn.readerId)
                if pn.readerMode:
                    self._readerChrome = ReaderModeChrome(self)
                    self._readerChrome.enter()
                self._showTrial(self._reader.show_current())
        except Exception as exc:  # shown to the user above; the window goes back exactly as it was
            logging.error("The reader session could not be opened: %s", exc)
            self.onStopReading()
            self.ui.readerMessageLabel.text = "The reader session could not be opened: {}".format(exc)

    def onSubmitAnswer(self) -> None:
        reader = self._reader
        if reader is None or reader.trial is None:
            return
        confidence = self._confidenceGroup.checkedId()
        if self._answer is None or confidence < 1:
            self.ui.readerMessageLabel.text = "Choose Real (R) or Synthetic (S) and a confidence from 1 to 5 first."
            return
        with slicer.util.tryWithErrorDisplay("The answer could not be recorded.", waitCursor=True):
            self._showTrial(reader.answer(self._answer, confidence, self.ui.commentLineEdit.text or None))

    def onPreviousTrial(self) -> None:
        if self._reader is None:
            return
        with slicer.util.tryWithErrorDisplay("Cannot go back.", waitCursor=False):
            self._showTrial(self._reader.go_back())

    def onStopReading(self) -> None:
        if self._readerChrome is not None:
            self._readerChrome.exit()
            self._readerChrome = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if hasattr(self, "ui"):
            self.ui.trialProgressLabel.text = "-"
            self._resetAnswer()
            self._setReaderControls(False)


class ReaderModeChrome:
    """Hides what could give the answer away or distract (toolbars, menus, the Python console, the
    data probe, node names in the slice views' corners, the other sections of the panel) while a
    reader session is open, and puts back exactly what was there before: each state is read before
    it is changed, and :meth:`exit` restores those states, newest first."""

    SECTIONS = ("inputsCollapsibleButton", "outputsCollapsibleButton", "advancedCollapsibleButton",
                "modelsCollapsibleButton", "evaluateCollapsibleButton")
    BUTTONS = ("applyButton", "compareButton", "progressBar", "statusLabel")

    def __init__(self, widget):
        self.widget = widget
        self._restore = []

    def _hide(self, w) -> None:
        shown = not w.isHidden()
        self._restore.append(lambda: w.setVisible(shown))
        w.setVisible(False)

    def enter(self) -> None:
        try:
            self._enter()
        except Exception:
            self.exit()
            raise

    def _enter(self) -> None:
        mw = slicer.util.mainWindow()
        if mw is not None:
            for w in mw.findChildren("QToolBar") + mw.findChildren("QMenuBar"):
                self._hide(w)
            self._hide(mw.pythonConsole().parent())
            for name in ("DataProbeCollapsibleWidget", "LogoLabel"):
                self._hide(slicer.util.findChild(mw, name))
            if mw.statusBar() is not None:
                self._hide(mw.statusBar())
            panel = slicer.util.findChild(mw, "ModulePanel")
            helpVisible = panel.helpAndAcknowledgmentVisible
            self._restore.append(lambda: setattr(panel, "helpAndAcknowledgmentVisible", helpVisible))
            panel.helpAndAcknowledgmentVisible = False
            dock = mw.findChildren("QDockWidget", "PanelDockWidget")[0]
            titleBar = dock.titleBarWidget()
            self._restore.append(lambda: dock.setTitleBarWidget(titleBar))
            dock.setTitleBarWidget(qt.QWidget(dock))
        ui = self.widget.ui
        for name in self.SECTIONS + self.BUTTONS:
            self._hide(getattr(ui, name))
        collapsed = ui.readerCollapsibleButton.collapsed
        self._restore.append(lambda: setattr(ui.readerCollapsibleButton, "collapsed", collapsed))
        ui.readerCollapsibleButton.collapsed = False
        layoutManager = slicer.app.layoutManager()
        if layoutManager is None:
            return
        layout = layoutManager.layout
        self._restore.append(lambda: layoutManager.setLayout(layout))
        layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutOneUpRedSliceView)
        for index in range(layoutManager.threeDViewCount):
            self._hide(layoutManager.threeDWidget(index).threeDController())
        for name in layoutManager.sliceViewNames():
            sliceWidget = layoutManager.sliceWidget(name)
            self._hide(sliceWidget.sliceController())
            # the corner annotations show node names: hidden in each view, put back afterwards
            view = sliceWidget.sliceView()
            corner = view.cornerAnnotation()
            visibility = corner.GetVisibility()

            def restoreCorner(corner=corner, view=view, visibility=visibility):
                corner.SetVisibility(visibility)
                view.forceRender()

            self._restore.append(restoreCorner)
            corner.SetVisibility(False)
            view.forceRender()

    def exit(self) -> None:
        for restore in reversed(self._restore):
            try:
                restore()
            except Exception:
                logging.exception("Could not restore the application window after reader mode")
        self._restore = []


#
# CrossModalitySynthLogic
#


class CrossModalitySynthLogic(ScriptedLoadableModuleLogic):
    """What the module does, usable without the widget (scripts, the self-test).

    The compute path is ``CrossModalitySynthLib.slicer_support`` (no Qt): this class turns the
    parameter node into a request, starts a :class:`SynthesisJob` and arranges the views.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._compareObservation = None
        self._worker = None
        self._quitConnected = False

    def _releaseCompare(self) -> None:
        """Stop watching the layout for the end of the compare layout."""
        if self._compareObservation is not None:
            node, tag = self._compareObservation
            node.RemoveObserver(tag)
            self._compareObservation = None

    def getParameterNode(self):
        return CrossModalitySynthParameterNode(super().getParameterNode())

    # ---- models ---------------------------------------------------------------------------------
    def models(self, direction=None):
        from CrossModalitySynthLib.slicer_support import models

        try:
            return models.list_models(direction=direction)
        except Exception as exc:  # a broken registry must not break the panel
            logging.error("Model registry could not be read: %s", exc)
            return []

    def describeModel(self, model) -> str:
        from CrossModalitySynthLib.slicer_support import models

        return models.describe(model) if model is not None else "No model selected."

    def modelCache(self) -> str:
        from CrossModalitySynthLib.slicer_support import models

        return models.cache_location()

    def startFetch(self, modelIds):
        from CrossModalitySynthLib.slicer_support.models import FetchTask

        return FetchTask(modelIds).start()

    def importModel(self, path):
        from CrossModalitySynthLib.slicer_support import models

        return models.import_zip(path)

    def clearModels(self):
        from CrossModalitySynthLib.slicer_support import models

        return models.clear_downloaded()

    # ---- inputs ---------------------------------------------------------------------------------
    @staticmethod
    def inputSlots(model, direction: str):
        """The input selectors to show: the model's inputs, or all of the direction's kind."""
        if model is not None and model.slots:
            return model.slots
        return ["ct"] if direction == "CT->MR" else ["t1In", "t1Opp", "t2"]

    @staticmethod
    def _slotNode(parameterNode, slot):
        return getattr(parameterNode, slot + "Volume")

    def firstInputNode(self, parameterNode, model):
        slots = self.inputSlots(model, DIRECTIONS.get(parameterNode.direction, "MR->CT"))
        return self._slotNode(parameterNode, slots[0]) if slots else None

    def missingForRun(self, parameterNode, model, slots) -> Optional[str]:
        """Why Apply cannot run yet (a tooltip), or None."""
        if model is None:
            return "Select a model (see the Models section to fetch or import one)."
        if not model.installed:
            return "The model is not downloaded yet: press 'Fetch selected models' in the Models section."
        chosen = {}
        for slot, sequence in zip(model.slots, model.inputs):
            node = self._slotNode(parameterNode, slot)
            if node is None:
                return "Select the {} volume.".format(sequence)
            if node.GetID() in chosen:
                return "'{}' is selected as both {} and {}; select a different volume for each input.".format(
                    node.GetName(), chosen[node.GetID()], sequence)
            chosen[node.GetID()] = sequence
        return None

    def request(self, parameterNode):
        """A SynthesisRequest from the panel's parameters."""
        from CrossModalitySynthLib.slicer_support import models
        from CrossModalitySynthLib.slicer_support.synthesis import SynthesisRequest

        info = {m.id: m for m in models.list_models()}.get(parameterNode.modelId)
        if info is None:
            raise ValueError("Select a model first.")
        inputs = {name: self._slotNode(parameterNode, slot) for name, slot in zip(info.input_names, info.slots)}
        mrToCt = info.direction == "MR->CT"
        return SynthesisRequest(
            model=parameterNode.modelId,
            inputs=inputs,
            liver_model=(parameterNode.liverModelId or None) if mrToCt else None,
            output_volume=parameterNode.outputVolume,
            output_segmentation=parameterNode.outputSegmentation if mrToCt else None,
            device=DEVICES.get(parameterNode.device, "auto"),
            precision=parameterNode.precision,
        )

    # ---- run ------------------------------------------------------------------------------------
    def ensureDependencies(self) -> None:
        """torch through the PyTorch extension, other packages with the user's consent."""
        from CrossModalitySynthLib.slicer_support import dependencies

        dependencies.ensure_all(slicer, lambda text: slicer.util.confirmOkCancelDisplay(text, "Cross-Modality Synthesis"),
                                testing=slicer.app.testingEnabled())

    def worker(self):
        """This session's ``cmsynth worker`` (its process starts with the first request; after a
        Cancel, with the next). Stopped by :meth:`cleanup`, which also runs when Slicer quits."""
        if self._worker is None:
            from CrossModalitySynthLib.slicer_support.process import child_environment
            from CrossModalitySynthLib.slicer_support.worker import CmsynthWorker

            self._worker = CmsynthWorker(env=child_environment(self.childEnvironment()),
                                         tmp_parent=slicer.app.temporaryPath)
        if not self._quitConnected:
            slicer.app.connect("aboutToQuit()", self.cleanup)
            self._quitConnected = True
        return self._worker

    def cleanup(self) -> None:
        """Stop the worker (its process tree) and remove its temporary folder."""
        if self._quitConnected:
            slicer.app.disconnect("aboutToQuit()", self.cleanup)
            self._quitConnected = False
        if self._worker is not None:
            self._worker.stop(timeout=5.0)
            self._worker = None

    def start(self, parameterNode):
        """Start a run on the session's worker (returns the SynthesisJob; the caller polls it)."""
        from CrossModalitySynthLib.slicer_support.synthesis import SynthesisJob

        return SynthesisJob(self.request(parameterNode), slicer.mrmlScene, worker=self.worker()).start()

    def run(self, request, timeout=None):
        """Run a request to the end on the session's worker (blocking; for scripts and tests) and
        return the SynthesisResult."""
        from CrossModalitySynthLib.slicer_support.synthesis import SynthesisJob

        job = SynthesisJob(request, slicer.mrmlScene, worker=self.worker()).start()
        return job.wait(timeout=timeout)

    @staticmethod
    def childEnvironment():
        """Slicer's start-up environment (what Slicer recommends for a PythonSlicer child)."""
        startup = getattr(slicer.util, "startupEnvironment", None)
        return startup() if startup is not None else None

    @staticmethod
    def resultText(result) -> str:
        precision = (result.summary or {}).get("precision")
        loaded = list(getattr(result, "models_already_loaded", None) or [])
        text = "Done in {:.1f} s{}{}: '{}'".format(
            result.seconds, " ({})".format(precision) if precision else "",
            " ({} already loaded: {})".format("model" if len(loaded) == 1 else "models", ", ".join(loaded))
            if loaded else "", result.volume_node.GetName())
        if result.segmentation_node is not None:
            text += " and '{}' ({} liver voxels)".format(result.segmentation_node.GetName(), result.liver_voxels)
        warnings = (result.summary or {}).get("warnings") or []
        if warnings:
            text += ". Warnings: " + " ".join(warnings)
        return text + "."

    # ---- views ----------------------------------------------------------------------------------
    def showCompare(self, inputNode, syntheticNode, segmentationNode=None) -> None:
        """The compare layout: input | synthetic, linked, liver outline on both, liver in 3D."""
        from CrossModalitySynthLib.slicer_support import views

        scene = slicer.mrmlScene
        layoutNode = views.layout_node(scene)
        before = None
        if layoutNode is not None and layoutNode.GetViewArrangement() != views.COMPARE_LAYOUT_ID:
            self._releaseCompare()
            before = views.view_state(scene)  # what the compare layout changes, put back when it is left
        views.register_compare_layout(scene)
        if before is not None:
            def onLayoutModified(caller, event, before=before):
                if caller.GetViewArrangement() != views.COMPARE_LAYOUT_ID:
                    self._releaseCompare()
                    views.restore_view_state(scene, before)

            self._compareObservation = (layoutNode, layoutNode.AddObserver(vtk.vtkCommand.ModifiedEvent, onLayoutModified))
        slicer.app.processEvents()  # the layout manager creates the views of the new layout
        views.assign_compare_views(scene, inputNode, syntheticNode, segmentationNode)
        slicer.util.resetSliceViews()
        if segmentationNode is not None:
            centre = views.segment_centroid_ras(segmentationNode, inputNode)
            if centre is not None:
                views.center_slices_on(scene, centre)
            layoutManager = slicer.app.layoutManager()
            if layoutManager is not None and layoutManager.threeDViewCount:
                layoutManager.threeDWidget(0).threeDView().resetFocalPoint()

    def showEvaluation(self, referenceNode, differenceNode, tableNode) -> None:
        slicer.util.setSliceViewerLayers(background=referenceNode, foreground=differenceNode, foregroundOpacity=0.5)
        layoutManager = slicer.app.layoutManager()
        layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
        slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(tableNode.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()

    # ---- evaluate / reader study ----------------------------------------------------------------
    def evaluate(self, syntheticNode, referenceNode, maskNode=None, differenceNode=None, tableNode=None):
        from CrossModalitySynthLib.slicer_support.evaluation import evaluate_nodes

        return evaluate_nodes(syntheticNode, referenceNode, maskNode, differenceNode, tableNode, scene=slicer.mrmlScene)

    def openReaderSession(self, studyFolder, readerId):
        from CrossModalitySynthLib.slicer_support.reader import ReaderController

        return ReaderController(studyFolder, readerId, slicer.mrmlScene)

    def showReaderTrial(self) -> None:
        slicer.util.resetSliceViews()


#
# CrossModalitySynthTest
#


class CrossModalitySynthTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer: phantom -> bundled demo models on CPU -> checks; cancel; failure."""

    SYNTH_MODEL = "demo-t1dual-to-ct"
    LIVER_MODEL = "demo-liver-unet-t1in"

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_widget_and_parameter_node()
        self.setUp()
        self.test_synthesis_on_phantom()
        self.setUp()
        self.test_cancel_leaves_scene_unchanged()
        self.setUp()
        self.test_failure_shows_message_and_leaves_scene_unchanged()

    def _phantom(self):
        """The small phantom case (the same files as the Sample Data entry), written locally."""
        from CrossModalitySynthLib.phantom import write_cases

        folder = os.path.join(slicer.app.temporaryPath, "CrossModalitySynthTest")
        case = os.path.join(folder, "case_000")
        if not os.path.isfile(os.path.join(case, "labels.nii.gz")):
            write_cases(folder, n_cases=1, seed=0, size="small", overwrite=True)
        return case

    def _load(self, path, name):
        return slicer.util.loadVolume(path, properties={"name": name})

    def _nodeIds(self):
        nodes = slicer.mrmlScene.GetNodes()
        return sorted(nodes.GetItemAsObject(i).GetID() for i in range(nodes.GetNumberOfItems()))

    def _request(self, inputs, **kwargs):
        from CrossModalitySynthLib.slicer_support.synthesis import SynthesisRequest

        return SynthesisRequest(model=self.SYNTH_MODEL, inputs=inputs, device="cpu", **kwargs)

    def test_widget_and_parameter_node(self):
        """The panel sets itself up: widget, parameter node, empty input selectors, Apply disabled."""
        self.delayDisplay("The panel and its parameter node")
        widget = slicer.modules.crossmodalitysynth.widgetRepresentation().self()
        pn = widget.logic.getParameterNode()
        self.assertIsNone(pn.evalMask)
        self.assertEqual(pn.direction, "MRI -> CT")
        case = self._phantom()
        t1in = self._load(os.path.join(case, "t1_in.nii.gz"), "T1 in")
        self._load(os.path.join(case, "t1_opp.nii.gz"), "T1 opp")
        widget.enter()
        for name in ("t1InSelector", "t1OppSelector", "t2Selector", "ctSelector"):
            self.assertIsNone(getattr(widget.ui, name).currentNode(), name + " must start empty")
        self.assertFalse(widget.ui.applyButton.enabled)
        widget._parameterNode.t1InVolume = t1in
        widget._parameterNode.t1OppVolume = t1in
        self.assertFalse(widget.ui.applyButton.enabled, "one volume as two inputs must not run")
        self.assertIn("both", widget.ui.applyButton.toolTip)
        widget._parameterNode.t1InVolume = None
        widget._parameterNode.t1OppVolume = None

    def test_synthesis_on_phantom(self):
        import numpy as np

        from CrossModalitySynthLib.io import read_volume
        from CrossModalitySynthLib.labels import liver_mask
        from CrossModalitySynthLib.slicer_support.mrml import segmentation_to_labels

        self.delayDisplay("Synthetic CT and liver from the phantom MRI with the bundled demo models")
        case = self._phantom()
        t1in = self._load(os.path.join(case, "t1_in.nii.gz"), "phantom T1 in")
        t1opp = self._load(os.path.join(case, "t1_opp.nii.gz"), "phantom T1 opp")
        logic = CrossModalitySynthLogic()
        self.addCleanup(logic.cleanup)  # stops the logic's worker
        result = logic.run(self._request({"t1_in": t1in, "t1_opp": t1opp}, liver_model=self.LIVER_MODEL), timeout=600)
        self.assertEqual(result.status, "succeeded", result.message)

        a, b = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        t1in.GetIJKToRASMatrix(a)
        result.volume_node.GetIJKToRASMatrix(b)
        for r in range(4):
            for c in range(4):
                self.assertEqual(a.GetElement(r, c), b.GetElement(r, c))
        self.assertEqual(result.volume_node.GetImageData().GetDimensions(), t1in.GetImageData().GetDimensions())
        display = result.volume_node.GetDisplayNode()
        self.assertEqual((display.GetWindow(), display.GetLevel()), (400.0, 40.0))

        segmentation = result.segmentation_node.GetSegmentation()
        self.assertTrue(segmentation.GetSegmentIdBySegmentName("liver"))
        import SimpleITK as sitk

        labels = segmentation_to_labels(result.segmentation_node, t1in)
        predicted = sitk.GetArrayFromImage(labels) > 0
        truth = liver_mask(sitk.GetArrayFromImage(read_volume(os.path.join(case, "labels.nii.gz"))))
        dice = 2.0 * np.logical_and(predicted, truth).sum() / float(predicted.sum() + truth.sum())
        self.assertGreater(dice, 0.8, "liver Dice {:.3f}".format(dice))

        logic.showCompare(t1in, result.volume_node, result.segmentation_node)
        self.delayDisplay("Dice {:.3f}; compare layout shown".format(dice))

    def test_cancel_leaves_scene_unchanged(self):
        import numpy as np

        from CrossModalitySynthLib.slicer_support.synthesis import SynthesisJob

        self.delayDisplay("Cancel a long run: the scene must stay as it was")
        case = self._phantom()
        t1in = self._load(os.path.join(case, "t1_in.nii.gz"), "T1 in")
        t1opp = self._load(os.path.join(case, "t1_opp.nii.gz"), "T1 opp")
        for node in (t1in, t1opp):  # 28 -> 308 slices: long enough to cancel in the middle
            arr = slicer.util.arrayFromVolume(node)
            slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(np.tile(arr, (11, 1, 1))))
        picked = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "picked output")
        picked.SetAndObserveImageData(vtk.vtkImageData())
        before = self._nodeIds()
        job = SynthesisJob(self._request({"t1_in": t1in, "t1_opp": t1opp}, output_volume=picked, batch_size=1),
                           slicer.mrmlScene).start()
        import time

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            job.poll()
            slicer.app.processEvents()
            if job.last_progress is not None and job.last_progress.stage == "synthesize":
                break
            time.sleep(0.05)
        job.cancel()
        result = job.wait(timeout=60)
        self.assertEqual(result.status, "cancelled")
        self.assertEqual(self._nodeIds(), before)
        self.assertEqual(picked.GetName(), "picked output")
        self.assertEqual(picked.GetImageData().GetNumberOfPoints(), 0)
        self.delayDisplay("Cancelled; scene unchanged")

    def test_failure_shows_message_and_leaves_scene_unchanged(self):
        self.delayDisplay("A CT given as MRI: one-line message, scene unchanged")
        case = self._phantom()
        ct = self._load(os.path.join(case, "ct_on_mr.nii.gz"), "CT as MRI")
        ct2 = self._load(os.path.join(case, "ct_on_mr.nii.gz"), "CT as MRI, again")
        before = self._nodeIds()
        logic = CrossModalitySynthLogic()
        self.addCleanup(logic.cleanup)
        result = logic.run(self._request({"t1_in": ct, "t1_opp": ct2}), timeout=300)
        self.assertEqual(result.status, "failed")
        self.assertIn("looks like a CT", result.message)
        self.assertNotIn("\n", result.message)
        self.assertEqual(self._nodeIds(), before)
        self.delayDisplay("Failure reported: " + result.message)
