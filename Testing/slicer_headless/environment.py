"""A headless Slicer for the module file: Slicer's real Python layer over slicer-core's real MRML.

Real:
- the MRML scene, the application logic and the Volumes, Segmentations, Colors and
  SubjectHierarchy module logics (slicer-core from PyPI), the layout logic and slice logics;
- Slicer's own Python layer at a release tag, from ``../shared/slicer-reference/<tag>``, put first
  on ``slicer``'s package path: ``slicer.util``, ``slicer.i18n``, ``slicer.parameterNodeWrapper``,
  ``slicer.ScriptedLoadableModule`` and (5.12) ``slicer.packaging``, plus ``SampleData``;
- the module file ``CrossModalitySynth.py``, loaded and instantiated as Slicer's scripted-module
  factory does, and the project's library;
- the ``cmsynth`` child process, started through a ``PythonSlicer`` launcher on the PATH, as in
  Slicer. The launcher runs this Python; ``-m pip`` calls are recorded in a log and not run, so no
  test ever changes the environment.

Stand-ins (strict, see :mod:`standin`; they are not Qt): the ``qt`` and ``ctk`` modules, the qMRML
widget classes, ``slicer.app`` with its main window, layout manager, IO manager and module manager.
"""

import importlib
import importlib.util
import json
import os
import stat
import sys
import types

from .standin import StandIn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MODULE_DIR = os.path.join(REPO, "CrossModalitySynth")
MODULE_FILE = os.path.join(MODULE_DIR, "CrossModalitySynth.py")
TAGS = ("v5.8.1", "v5.12.3")
VERSIONS = {"v5.8.1": (5, 8, 1), "v5.12.3": (5, 12, 3)}


def reference_root():
    """``../shared/slicer-reference`` beside the checkout (or $CMSYNTH_SLICER_REFERENCE)."""
    return os.environ.get("CMSYNTH_SLICER_REFERENCE") or os.path.join(os.path.dirname(REPO), "shared",
                                                                       "slicer-reference")


LAUNCHER = """#!{python}
# Headless stand-in for Slicer's PythonSlicer launcher: runs this Python; records, never runs, pip.
import json, os, sys
log = os.environ.get("CMSYNTH_HEADLESS_LAUNCH_LOG")
if log:
    with open(log, "a") as f:
        f.write(json.dumps({{"argv": sys.argv[1:], "mark": os.environ.get("CMSYNTH_HEADLESS_MARK")}}) + "\\n")
if sys.argv[1:3] == ["-m", "pip"]:
    sys.exit(0)
os.execv(sys.executable, [sys.executable] + sys.argv[1:])
"""


class qSlicerScriptedLoadableModule(StandIn):
    """The ``parent`` a scripted module's class gets (``slicer.modules.<name>`` in Slicer)."""

    PROPERTIES = {"title": "", "categories": [], "dependencies": [], "contributors": [], "helpText": "",
                  "acknowledgementText": "", "icon": None, "path": "", "hidden": False, "index": -1, "name": ""}
    READ_ONLY = ("path", "name")

    def __init__(self, path, name):
        StandIn.__init__(self)
        self._props["path"] = path
        self._props["name"] = name
        self._widget_rep = None
        self._factory = None

    def widgetRepresentation(self):
        if self._widget_rep is None:
            self._widget_rep = self._factory()
        return self._widget_rep


class HeadlessSlicer:
    """Builds the headless Slicer in this process (once per process: it owns ``sys.modules['qt']``).

    :param tag: ``v5.8.1`` or ``v5.12.3``.
    :param workdir: folder for the launcher, the temporary path and the logs.
    :param testing: Slicer's testing mode (``--testing``).
    """

    def __init__(self, tag, workdir, testing=False):
        if tag not in VERSIONS:
            raise ValueError(f"unknown Slicer tag {tag}")
        ref = os.path.join(reference_root(), tag)
        if not os.path.isfile(os.path.join(ref, "slicer", "util.py")):
            raise FileNotFoundError(f"Slicer's Python layer for {tag} is missing at {ref}")
        self.tag, self.ref, self.workdir = tag, ref, workdir
        os.makedirs(workdir, exist_ok=True)
        self.launch_log = os.path.join(workdir, "launches.jsonl")
        self._install_launcher()

        from . import ctk_mrml_widgets, qt_module

        sys.modules["qt"] = qt_module.build_module()
        sys.modules["ctk"] = ctk_mrml_widgets.build_ctk_module()
        import slicer

        self.slicer = slicer
        for name, cls in ctk_mrml_widgets.QMRML.items():
            setattr(slicer, name, cls)
        self._install_python_layer()

        # the MRML side of the application
        self.scene = slicer.vtkMRMLScene()
        self.app_logic = slicer.vtkSlicerApplicationLogic()
        self.app_logic.SetMRMLScene(self.scene)
        color_logic = self.app_logic.GetColorLogic()
        color_logic.SetMRMLScene(self.scene)
        color_logic.AddDefaultColorNodes()
        self.logics = {"Colors": color_logic, "Volumes": slicer.vtkSlicerVolumesLogic(),
                       "Segmentations": slicer.vtkSlicerSegmentationsModuleLogic(),
                       "SubjectHierarchy": slicer.vtkSlicerSubjectHierarchyModuleLogic()}
        for name, logic in self.logics.items():
            if name != "Colors":
                logic.SetMRMLScene(self.scene)
            logic.SetMRMLApplicationLogic(self.app_logic)
            self.app_logic.SetModuleLogic(name, logic)
        slicer.mrmlScene = self.scene
        slicer.modules = types.SimpleNamespace(**{
            name.lower(): types.SimpleNamespace(logic=(lambda lg=logic: lg), name=name)
            for name, logic in self.logics.items()})

        from .application import qSlicerApplication

        tmp = os.path.join(workdir, "SlicerTemp")
        os.makedirs(tmp, exist_ok=True)
        self.app = qSlicerApplication(VERSIONS[tag], tmp, self.app_logic, self.logics["Volumes"], testing=testing)
        slicer.app = self.app
        layout_manager = self.app.layoutManager()
        layout_manager.setMRMLScene(self.scene)
        layout_manager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutConventionalView)

        self.module = None
        self.widget = None
        if self.app.topLevelWidgets():
            self.app.topLevelWidgets()[0].moduleSelector()._select = self._select_module

    def _select_module(self, name):
        if name != "CrossModalitySynth":
            raise RuntimeError(f"module {name} is not loaded in this headless Slicer")
        rep = self.module.widgetRepresentation()
        if not rep.isEntered:
            self.enter_module()

    # ---- set-up ----------------------------------------------------------------------------
    def _install_launcher(self):
        bindir = os.path.join(self.workdir, "bin")
        os.makedirs(bindir, exist_ok=True)
        path = os.path.join(bindir, "PythonSlicer")
        with open(path, "w") as f:
            f.write(LAUNCHER.format(python=sys.executable))
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
        os.environ["CMSYNTH_HEADLESS_LAUNCH_LOG"] = self.launch_log

    def _install_python_layer(self):
        """Slicer's own Python modules of the tag, in place of slicer-core's ``slicer.util``."""
        slicer = self.slicer
        slicer.__path__.insert(0, os.path.join(self.ref, "slicer"))
        for name in [m for m in sys.modules if m == "slicer.util" or m.startswith("slicer.util.")]:
            del sys.modules[name]
        slicer.util = importlib.import_module("slicer.util")
        if not os.path.samefile(os.path.dirname(slicer.util.__file__), os.path.join(self.ref, "slicer")):
            raise RuntimeError("slicer.util did not come from the reference folder")
        for name in ("slicer.i18n", "slicer.parameterNodeWrapper", "slicer.ScriptedLoadableModule"):
            mod = importlib.import_module(name)
            setattr(slicer, name.split(".", 1)[1], mod)
        for folder in ("SampleData", "DataProbeLib"):
            sys.path.insert(0, os.path.join(self.ref, folder))
        slicer.selfTests = {}

    # ---- the module, as Slicer's scripted-module factory loads it ------------------------------
    def load_module(self):
        slicer = self.slicer
        if MODULE_DIR not in sys.path:
            sys.path.insert(0, MODULE_DIR)
        spec = importlib.util.spec_from_file_location("CrossModalitySynth", MODULE_FILE)
        pymod = importlib.util.module_from_spec(spec)
        sys.modules["CrossModalitySynth"] = pymod
        spec.loader.exec_module(pymod)
        self.pymodule = pymod
        parent = qSlicerScriptedLoadableModule(MODULE_FILE, "CrossModalitySynth")
        instance = pymod.CrossModalitySynth(parent)
        parent._factory = self._make_widget
        slicer.modules.crossmodalitysynth = parent
        slicer.modules.CrossModalitySynthInstance = instance
        self.module = parent
        return instance

    def _make_widget(self):
        from .ctk_mrml_widgets import qSlicerWidget
        from .qt_module import QVBoxLayout

        class qSlicerScriptedLoadableModuleWidget(qSlicerWidget):
            PROPERTIES = {"isEntered": False}
            READ_ONLY = ("isEntered",)

            def self(self):
                return self._python_widget

        rep = qSlicerScriptedLoadableModuleWidget(self.app.topLevelWidgets()[0]._module_panel
                                                  if self.app.topLevelWidgets() else None)
        rep.setLayout(QVBoxLayout())
        rep.setMRMLScene(self.scene)
        widget = self.pymodule.CrossModalitySynthWidget(rep)
        widget.setup()
        rep._python_widget = widget
        self.slicer.modules.CrossModalitySynthWidget = widget
        self.widget = widget
        return rep

    def startup_completed(self):
        self.app._emit("startupCompleted")

    def enter_module(self):
        rep = self.module.widgetRepresentation()
        rep._props["isEntered"] = True
        rep._python_widget.enter()
        return rep._python_widget

    def exit_module(self):
        rep = self.module.widgetRepresentation()
        rep._python_widget.exit()
        rep._props["isEntered"] = False

    def unload_module(self):
        self.app.moduleManager()._emit("moduleAboutToBeUnloaded", "CrossModalitySynth")

    # ---- what the user does ----------------------------------------------------------------
    def load_volume(self, path, name):
        return self.slicer.util.loadVolume(path, properties={"name": name})

    def process_events_until(self, condition, timeout_s, interval_s=0.05):
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.app.processEvents()
            if condition():
                return True
            time.sleep(interval_s)
        return False

    def launches(self):
        """The PythonSlicer command lines run so far: [{"argv": [...], "mark": ...}]."""
        if not os.path.isfile(self.launch_log):
            return []
        with open(self.launch_log) as f:
            return [json.loads(line) for line in f if line.strip()]
