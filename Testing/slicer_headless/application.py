"""Stand-ins for what only a running Slicer application has: ``slicer.app``, its main window, the
layout manager, the IO manager and the module manager (strict; not Qt, see :mod:`standin`).

Real underneath: the layout manager drives slicer-core's ``vtkMRMLLayoutLogic`` (which creates the
view nodes of each layout, as in Slicer) and one real ``vtkMRMLSliceLogic`` per slice view (which
creates the slice composite nodes); each slice view has a real ``vtkCornerAnnotation``. Loading a
volume goes through slicer-core's real ``vtkSlicerVolumesLogic``. The main window has the children
that ``slicer.util``'s ``set...Visible`` functions look up in Slicer's main window, by the same
object names, with Slicer's defaults (the Python console is hidden at start-up).
"""

import os
import time

import vtk

from . import ctk_mrml_widgets as cw
from . import qt_module as qt
from .standin import StandIn


class ModulePanel(qt.QWidget):
    PROPERTIES = {"helpAndAcknowledgmentVisible": True}


class PythonConsole(qt.QWidget):
    pass


class qSlicerModuleSelectorToolBar(qt.QToolBar):
    """The module selector: ``selectModule`` shows a module's panel (leaving the current one)."""

    def __init__(self, parent=None):
        qt.QToolBar.__init__(self, parent)
        self.objectName = "ModuleSelectorToolBar"
        self._select = None

    def selectModule(self, name):
        if self._select is None:
            raise RuntimeError("no module can be selected in this headless Slicer")
        self._select(name)


class qSlicerMainWindow(qt.QMainWindow):
    """The main window with the parts ``slicer.util`` hides and shows."""

    def __init__(self):
        qt.QMainWindow.__init__(self)
        self.objectName = "qSlicerMainWindow"
        for name in ("MainToolBar", "ViewToolBar", "MouseModeToolBar"):
            bar = qt.QToolBar(self)
            bar.objectName = name
        hidden_by_user = qt.QToolBar(self)  # a toolbar the user had hidden: must stay hidden afterwards
        hidden_by_user.objectName = "CaptureToolBar"
        hidden_by_user.setVisible(False)
        menu = qt.QMenuBar(self)
        menu.objectName = "menubar"
        self._console_dock = qt.QDockWidget(self)
        self._console_dock.objectName = "PythonConsoleDockWidget"
        self._console = PythonConsole()
        self._console_dock.setWidget(self._console)
        self._console_dock.setVisible(False)  # Slicer starts with the console closed
        panel_dock = qt.QDockWidget(self)
        panel_dock.objectName = "PanelDockWidget"
        panel = ModulePanel(panel_dock)
        panel.objectName = "ModulePanel"
        self._module_panel = panel
        probe = cw.ctkCollapsibleButton(panel_dock)
        probe.objectName = "DataProbeCollapsibleWidget"
        logo = qt.QLabel(panel_dock)
        logo.objectName = "LogoLabel"
        self._status_bar = qt.QStatusBar(self)
        self._status_bar.objectName = "StatusBar"
        self._module_selector = qSlicerModuleSelectorToolBar(self)


    def pythonConsole(self):
        return self._console

    def moduleSelector(self):
        return self._module_selector


class qMRMLSliceView(qt.QWidget):
    def __init__(self, parent=None):
        qt.QWidget.__init__(self, parent)
        self._corner = vtk.vtkCornerAnnotation()
        self._renders = 0

    def cornerAnnotation(self):
        return self._corner

    def forceRender(self):
        self._renders += 1

    def scheduleRender(self):
        self._renders += 1


class qMRMLSliceWidget(qt.QWidget):
    def __init__(self, slice_node, slice_logic, parent=None):
        qt.QWidget.__init__(self, parent)
        self._node = slice_node
        self._logic = slice_logic
        self._view = qMRMLSliceView(self)
        self._controller = qt.QWidget(self)

    def sliceView(self):
        return self._view

    def sliceController(self):
        return self._controller

    def mrmlSliceNode(self):
        return self._node

    def sliceLogic(self):
        return self._logic

    def mrmlSliceCompositeNode(self):
        return self._logic.GetSliceCompositeNode()


class qMRMLThreeDView(qt.QWidget):
    def resetFocalPoint(self):
        self._focal_resets = getattr(self, "_focal_resets", 0) + 1

    def forceRender(self):
        pass


class qMRMLThreeDWidget(qt.QWidget):
    def __init__(self, view_node, parent=None):
        qt.QWidget.__init__(self, parent)
        self._node = view_node
        self._view = qMRMLThreeDView(self)
        self._controller = qt.QWidget(self)

    def threeDView(self):
        return self._view

    def threeDController(self):
        return self._controller

    def mrmlViewNode(self):
        return self._node


class qSlicerLayoutManager(qt.QObject):
    """The layout manager over the real layout logic of the scene."""

    PROPERTIES = {"layout": 0, "threeDViewCount": 0, "tableViewCount": 0, "plotViewCount": 0}
    READ_ONLY = ("threeDViewCount", "tableViewCount", "plotViewCount")
    SIGNALS = ("layoutChanged(int)",)

    def __init__(self, app_logic, parent=None):
        qt.QObject.__init__(self, parent)
        import slicer

        self._slicer = slicer
        self._app_logic = app_logic
        self._layout_logic = slicer.vtkMRMLLayoutLogic()
        self._slice_widgets = {}
        self._three_d = {}
        self._scene = None

    def setMRMLScene(self, scene):
        self._scene = scene
        self._slice_widgets = {}
        self._three_d = {}
        self._layout_logic.SetMRMLScene(scene)
        self._update_views()

    def _layout_node(self):
        return self._layout_logic.GetLayoutNode()

    def _get_layout(self):
        return self._layout_node().GetViewArrangement()

    def _set_layout(self, value):
        self.setLayout(value)

    def setLayout(self, arrangement):
        self._layout_node().SetViewArrangement(int(arrangement))
        self._update_views()
        self._emit("layoutChanged", int(arrangement))

    def _view_nodes(self):
        col = self._layout_logic.GetViewNodes()
        return [col.GetItemAsObject(i) for i in range(col.GetNumberOfItems())]

    def _update_views(self):
        """Create the widgets (and slice logics) of the views of the current layout."""
        for node in self._view_nodes():
            if node.IsA("vtkMRMLSliceNode"):
                name = node.GetLayoutName()
                widget = self._slice_widgets.get(name)
                if widget is None or widget.mrmlSliceNode() is not node:
                    logic = self._slicer.vtkMRMLSliceLogic()
                    logic.SetMRMLApplicationLogic(self._app_logic)
                    logic.SetMRMLScene(self._scene)
                    logic.SetSliceNode(node)
                    self._slice_widgets[name] = qMRMLSliceWidget(node, logic)
            elif node.IsA("vtkMRMLViewNode"):
                name = node.GetLayoutName()
                if name not in self._three_d:
                    self._three_d[name] = qMRMLThreeDWidget(node)

    def _get_threeDViewCount(self):
        return len([n for n in self._view_nodes() if n.IsA("vtkMRMLViewNode")])

    def sliceViewNames(self):
        return [n.GetLayoutName() for n in self._view_nodes() if n.IsA("vtkMRMLSliceNode")]

    def sliceWidget(self, name):
        self._update_views()
        return self._slice_widgets.get(name)

    def threeDWidget(self, index):
        names = [n.GetLayoutName() for n in self._view_nodes() if n.IsA("vtkMRMLViewNode")]
        return self._three_d.get(names[index])

    def resetSliceViews(self):
        for name in self.sliceViewNames():
            self.sliceWidget(name).sliceLogic().FitSliceToAll()

    def all_slice_widgets(self):
        """Every slice widget created so far (test helper, not Slicer API)."""
        return dict(self._slice_widgets)


class qSlicerCoreIOManager(qt.QObject):
    """Loads volumes with the real volumes logic, as Slicer's volume reader plugin does."""

    def __init__(self, volumes_logic, app_logic):
        qt.QObject.__init__(self)
        self._volumes = volumes_logic
        self._app_logic = app_logic

    def fileType(self, filename):
        return "SceneFile" if str(filename).lower().endswith((".mrb", ".mrml")) else "VolumeFile"

    def saveNodes(self, filetype, properties, messages=None):
        """Save the scene as a Slicer data bundle (.mrb), with the real application logic."""
        if filetype != "SceneFile" or not properties["fileName"].lower().endswith(".mrb"):
            raise TypeError("the headless IO manager saves scenes as .mrb only")
        import shutil
        import tempfile

        path = properties["fileName"]
        folder = tempfile.mkdtemp(prefix="mrb-")
        try:
            bundle = os.path.join(folder, os.path.splitext(os.path.basename(path))[0])
            os.makedirs(bundle)
            if not self._app_logic.SaveSceneToSlicerDataBundleDirectory(bundle, None):
                return False
            return bool(self._app_logic.Zip(path, bundle))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def loadNodes(self, filetype, properties, loaded, messages):
        if filetype == "SceneFile":
            import tempfile

            return bool(self._app_logic.OpenSlicerDataBundle(properties["fileName"], tempfile.mkdtemp(prefix="mrb-")))
        if filetype != "VolumeFile":
            raise TypeError(f"the headless IO manager loads volumes only, not {filetype}")
        path = properties["fileName"]
        name = properties.get("name") or os.path.basename(path).split(".")[0]
        options = 1 if properties.get("labelmap") else 0
        node = self._volumes.AddArchetypeVolume(path, name, options)
        if node is None:
            return False
        if not node.GetDisplayNode():
            node.CreateDefaultDisplayNodes()
        loaded.AddItem(node)
        if properties.get("show", True) and not properties.get("labelmap"):
            selection = self._app_logic.GetSelectionNode()
            selection.SetActiveVolumeID(node.GetID())
            self._app_logic.PropagateVolumeSelection(0)
        return True


class qSlicerModuleManager(qt.QObject):
    SIGNALS = ("moduleAboutToBeUnloaded(QString)", "moduleLoaded(QString)")


class CommandOptions(StandIn):
    PROPERTIES = {"noMainWindow": False, "testingEnabled": False}


class qSlicerApplication(qt.QObject):
    """``slicer.app``: versions, paths, managers, the event loop's timers, cursors, testing mode."""

    PROPERTIES = {"majorVersion": 5, "minorVersion": 8, "patchVersion": 1, "applicationName": "Slicer",
                  "applicationVersion": "", "temporaryPath": "", "cachePath": "", "slicerHome": "",
                  "documentationBaseUrl": "https://slicer.readthedocs.io/en/latest/"}
    READ_ONLY = ("majorVersion", "minorVersion", "patchVersion", "applicationName", "applicationVersion",
                 "temporaryPath", "cachePath", "slicerHome")
    SIGNALS = ("startupCompleted()", "aboutToQuit()")

    def __init__(self, version, temporary_path, app_logic, volumes_logic, testing=False, main_window=True):
        qt.QObject.__init__(self)
        major, minor, patch = version
        self._props.update(majorVersion=major, minorVersion=minor, patchVersion=patch,
                           applicationVersion=f"{major}.{minor}.{patch}", temporaryPath=temporary_path,
                           cachePath=os.path.join(temporary_path, "cache"))
        self._app_logic = app_logic
        self._main_thread = qt.QThread.currentThread()
        self._testing = testing
        self._startup_env = dict(os.environ)
        self._options = CommandOptions()
        self._options._props["noMainWindow"] = not main_window
        self._options._props["testingEnabled"] = testing
        self._main_window = qSlicerMainWindow() if main_window else None
        if self._main_window is not None:
            self._main_window.show()
        self._layout_manager = qSlicerLayoutManager(app_logic) if main_window else None
        self._io = qSlicerCoreIOManager(volumes_logic, app_logic)
        self._modules = qSlicerModuleManager()

    def thread(self):
        """The thread the application was created on (Qt's main thread)."""
        return self._main_thread

    def testingEnabled(self):
        return self._testing

    def commandOptions(self):
        return self._options

    def layoutManager(self):
        return self._layout_manager

    def moduleManager(self):
        return self._modules

    def coreIOManager(self):
        return self._io

    def applicationLogic(self):
        return self._app_logic

    def topLevelWidgets(self):
        return [self._main_window] if self._main_window is not None else []

    def startupEnvironment(self):
        return qt.QProcessEnvironment(self._startup_env)

    def setOverrideCursor(self, cursor):
        qt.state().override_cursor += 1

    def restoreOverrideCursor(self):
        qt.state().override_cursor -= 1

    def processEvents(self, *args):
        """Fire the timers that are due (the only events the headless Slicer has)."""
        now = time.monotonic()
        for timer in list(qt.state().timers):
            timer._fire_if_due(now)

    def translate(self, context, text):
        return text  # no translations installed: Qt returns the source text

    def moduleDocumentationUrl(self, name):
        return self.documentationBaseUrl + name
