"""Stand-ins for CTK's and Slicer's qMRML widget classes (strict; not Qt, see :mod:`standin`).

``qMRMLNodeComboBox`` follows Slicer's rules, read from qMRMLNodeComboBox.cxx and
qMRMLSceneModel: it lists the nodes of the scene whose class is one of ``nodeTypes`` (a subclass
too, unless ``showChildNodeTypes`` is false), leaving out nodes hidden from editors; with
``noneEnabled`` false it makes the first listed node current as soon as there is one (when the
scene is set, or a node is added), and when the current node is removed it moves to another one
(or to none when ``noneEnabled``). It observes the real MRML scene with VTK observers.
"""

import types

from . import qt_module as qt


# --------------------------------------------------------------------------- ctk


class ctkCollapsibleButton(qt.QAbstractButton):
    PROPERTIES = {"collapsed": False, "collapsedHeight": 14, "contentsFrameShape": 0, "contentsLineWidth": 1,
                  "contentsMidLineWidth": 0, "contentsFrameShadow": 0}
    SIGNALS = ("contentsCollapsed(bool)",)

    def __init__(self, *args):
        qt.QAbstractButton.__init__(self, *args)
        self._props["checkable"] = True
        self._props["checked"] = True

    def _set_collapsed(self, value):
        value = bool(value)
        if value != self._props["collapsed"]:
            self._props["collapsed"] = value
            self._props["checked"] = not value
            self._emit("contentsCollapsed", value)


class ctkMessageBox(qt.QMessageBox):
    """A message box: ``exec_`` records it and returns the next prepared answer (default: Ok)."""

    PROPERTIES = {"text": "", "icon": 0, "standardButtons": 0, "detailedText": "", "informativeText": "",
                  "dontShowAgainVisible": False, "dontShowAgainSettingsKey": ""}

    def exec_(self):
        st = qt.state()
        st.message_boxes.append({"title": self.windowTitle, "text": self.text, "icon": self.icon})
        return st.message_box_answers.pop(0) if st.message_box_answers else qt.QMessageBox.Ok


def _ctk_placeholder(name, base):
    return qt._not_instantiable(name, base)


_CTK = {
    "ctkCollapsibleButton": ctkCollapsibleButton,
    "ctkMessageBox": ctkMessageBox,
}
for _name, _base in (("ctkCheckBox", qt.QCheckBox), ("ctkComboBox", qt.QComboBox), ("ctkSliderWidget", qt.QWidget),
                     ("ctkDoubleSlider", qt.QWidget), ("ctkRangeWidget", qt.QWidget),
                     ("ctkDoubleRangeSlider", qt.QWidget), ("ctkPathLineEdit", qt.QWidget),
                     ("ctkDirectoryButton", qt.QWidget), ("ctkColorPickerButton", qt.QWidget),
                     ("ctkCheckablePushButton", qt.QPushButton), ("ctkDoubleSpinBox", qt.QWidget),
                     ("ctkCollapsibleGroupBox", qt.QWidget), ("ctkFlowLayout", qt.QLayout),
                     ("ctkWidgetsUtils", object)):
    _CTK[_name] = _ctk_placeholder(_name, _base)


def build_ctk_module():
    mod = types.ModuleType("ctk", "Headless stand-in for Slicer's 'ctk' module (not CTK)")
    for name, obj in _CTK.items():
        setattr(mod, name, obj)
    return mod


# --------------------------------------------------------------------------- qMRML


class qMRMLWidget(qt.QWidget):
    SIGNALS = ("mrmlSceneChanged(vtkMRMLScene*)",)

    def __init__(self, parent=None):
        qt.QWidget.__init__(self, parent)
        self._scene = None

    def setMRMLScene(self, scene):
        if scene is not self._scene:
            self._scene = scene
            self._emit("mrmlSceneChanged", scene)

    def mrmlScene(self):
        return self._scene


class qSlicerWidget(qMRMLWidget):
    pass


class qMRMLNodeComboBox(qt.QWidget):
    PROPERTIES = {"nodeTypes": [], "showChildNodeTypes": True, "hideChildNodeTypes": [], "noneEnabled": False,
                  "addEnabled": True, "removeEnabled": True, "renameEnabled": False, "editEnabled": False,
                  "baseName": "", "noneDisplay": "None", "showHidden": False, "selectNodeUponCreation": True,
                  "currentNodeID": "", "interactionNodeSingletonTag": ""}
    READ_ONLY = ("currentNodeID",)
    SIGNALS = ("currentNodeChanged(vtkMRMLNode*)", "currentNodeChanged(bool)", "currentNodeIDChanged(QString)",
               "nodeAdded(vtkMRMLNode*)", "nodeActivated(vtkMRMLNode*)", "nodeAddedByUser(vtkMRMLNode*)",
               "nodeAboutToBeRemoved(vtkMRMLNode*)", "mrmlSceneChanged(vtkMRMLScene*)")

    def __init__(self, parent=None):
        qt.QWidget.__init__(self, parent)
        self._scene = None
        self._current = None
        self._observers = []

    # ---- filtering ---------------------------------------------------------------------------
    def _get_currentNodeID(self):
        return self._current.GetID() if self._current is not None else ""

    def _set_nodeTypes(self, value):
        self._props["nodeTypes"] = list(value)
        self._refresh()

    def _set_showChildNodeTypes(self, value):
        self._props["showChildNodeTypes"] = bool(value)
        self._refresh()

    def _set_noneEnabled(self, value):
        self._props["noneEnabled"] = bool(value)
        self._refresh()

    def _accepts(self, node):
        types_ = self._props["nodeTypes"]
        if node.GetHideFromEditors() and not self._props["showHidden"]:
            return False
        for t in types_:
            if self._props["showChildNodeTypes"]:
                if node.IsA(t):
                    return True
            elif node.GetClassName() == t:
                return True
        return False

    def nodes(self):
        """The nodes the list shows, in scene order."""
        if self._scene is None:
            return []
        col = self._scene.GetNodes()
        out = []
        for i in range(col.GetNumberOfItems()):
            node = col.GetItemAsObject(i)
            if self._accepts(node):
                out.append(node)
        return out

    def nodeCount(self):
        return len(self.nodes())

    def nodeFromIndex(self, index):
        return self.nodes()[index]

    # ---- scene ------------------------------------------------------------------------------
    def setMRMLScene(self, scene):
        for obs_scene, tag in self._observers:
            obs_scene.RemoveObserver(tag)
        self._observers = []
        self._scene = scene
        if scene is not None:
            self._observers = [(scene, scene.AddObserver(scene.NodeAddedEvent, self._onNodeAdded)),
                               (scene, scene.AddObserver(scene.NodeRemovedEvent, self._onNodeRemoved))]
        self._setCurrent(None)
        self._refresh()
        self._emit("mrmlSceneChanged", scene)

    def mrmlScene(self):
        return self._scene

    def _onNodeAdded(self, caller, event):
        self._refresh()

    def _onNodeRemoved(self, caller, event):
        if self._current is not None and (self._scene is None or self._scene.GetNodeByID(self._current.GetID()) is None
                                          or self._current not in self.nodes()):
            self._setCurrent(None)
        self._refresh()

    def _refresh(self):
        if self._current is not None and self._current not in self.nodes():
            self._setCurrent(None)
        if self._current is None and not self._props["noneEnabled"]:
            listed = self.nodes()
            if listed:
                self._setCurrent(listed[0])

    # ---- selection ----------------------------------------------------------------------------
    def currentNode(self):
        return self._current

    def setCurrentNode(self, node):
        if node is not None and node not in self.nodes():
            return  # the real combo box ignores a node it does not list
        self._setCurrent(node)

    def setCurrentNodeID(self, node_id):
        self.setCurrentNode(self._scene.GetNodeByID(node_id) if (self._scene and node_id) else None)

    def _setCurrent(self, node):
        if node is self._current:
            return
        self._current = node
        self._emit("currentNodeChanged", node)
        self._emit("currentNodeIDChanged", node.GetID() if node is not None else "")

    def currentText(self):
        return self._current.GetName() if self._current is not None else self._props["noneDisplay"]


def _placeholder(name, base):
    return qt._not_instantiable(name, base)


QMRML = {
    "qMRMLWidget": qMRMLWidget,
    "qSlicerWidget": qSlicerWidget,
    "qMRMLNodeComboBox": qMRMLNodeComboBox,
    "qMRMLSliderWidget": _placeholder("qMRMLSliderWidget", qt.QWidget),
    "qMRMLRangeWidget": _placeholder("qMRMLRangeWidget", qt.QWidget),
    "qMRMLSpinBox": _placeholder("qMRMLSpinBox", qt.QWidget),
    "qMRMLScreenShotDialog": _placeholder("qMRMLScreenShotDialog", qt.QWidget),
    "qMRMLUtils": _placeholder("qMRMLUtils", object),
}
