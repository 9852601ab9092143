"""Stand-ins for the ``qt`` module of Slicer's Python (PythonQt over Qt 5): strict, not Qt.

Each class has only the properties, methods and signals of the Qt class of the same name that the
module file, ``slicer.util``, the parameter-node wrapper and ``ScriptedLoadableModule`` use (see
:mod:`standin`). Semantics that the module relies on are kept: visibility and enabled state follow
the parent chain, checkable buttons emit ``toggled``, exclusive button groups refuse to uncheck their
checked button, auto-exclusive radio buttons uncheck their siblings, a combo box selects its first
item when filled and emits ``currentIndexChanged``, adding a widget to a layout reparents it.
Classes that the wrapper only compares against (``type(widget) in (qt.QSlider, ...)``) exist but
cannot be instantiated.
"""

import os
import types

from .standin import QT_WARNINGS, StandIn

_STATE = types.SimpleNamespace(settings={}, timers=[], file_dialog_answers=[], message_boxes=[],
                               message_box_answers=[], override_cursor=0)


def state():
    """The shared state: settings store, live timers, dialog answers and records."""
    return _STATE


class QObject(StandIn):
    PROPERTIES = {"objectName": ""}
    SIGNALS = ("destroyed()", "objectNameChanged(QString)")

    def __init__(self, parent=None):
        StandIn.__init__(self)
        self._parent = None
        self._children = []
        if parent is not None:
            self.setParent(parent)

    # PythonQt adds "name" as an alias of objectName
    def _get_name(self):
        return self._props["objectName"]

    def _set_name(self, value):
        self._props["objectName"] = value

    def parent(self):
        return self._parent

    def setParent(self, parent):
        if self._parent is not None and self in self._parent._children:
            self._parent._children.remove(self)
        self._parent = parent
        if parent is not None:
            parent._children.append(self)

    def children(self):
        return list(self._children)

    def findChildren(self, kind=None, name=None):
        if isinstance(kind, str):
            kind = _CLASSES.get(kind, kind)
        out = []
        for child in self._children:
            if (kind is None or (isinstance(kind, type) and isinstance(child, kind))
                    or (isinstance(kind, str) and type(child).__name__ == kind)) and \
                    (not name or child.objectName == name):
                out.append(child)
            out.extend(child.findChildren(kind, name))
        return out

    def findChild(self, kind, name=None):
        found = self.findChildren(kind, name)
        return found[0] if found else None

    def property(self, name):
        if name in self._props:
            return getattr(self, name)
        return self._dynamic.get(name)

    def setProperty(self, name, value):
        if name in self._props:
            setattr(self, name, value)
        else:
            self._dynamic[name] = value
        return True

    def className(self):
        return type(self).__name__

    def deleteLater(self):
        pass

    def blockSignals(self, block):
        old = getattr(self, "_blocked", False)
        self._blocked = bool(block)
        return old

    def _emit(self, name, *args):
        if getattr(self, "_blocked", False):
            return
        StandIn._emit(self, name, *args)


QObject.PROPERTIES = dict(QObject.PROPERTIES, name="")


class QWidget(QObject):
    PROPERTIES = {"enabled": True, "visible": False, "toolTip": "", "windowTitle": "", "geometry": None,
                  "statusTip": "", "whatsThis": "", "styleSheet": "", "sizePolicy": None, "minimumSize": None,
                  "maximumSize": None, "minimumWidth": 0, "minimumHeight": 0}

    def __init__(self, parent=None):
        QObject.__init__(self, parent)
        self._shown = None  # None: never shown or hidden explicitly (Qt's WA_WState_ExplicitShowHide unset)
        self._disabled = False
        self._layout = None

    def _get_visible(self):
        return self.isVisible()

    def _set_visible(self, value):
        self.setVisible(value)

    def _get_enabled(self):
        return self.isEnabled()

    def _set_enabled(self, value):
        self.setEnabled(value)

    def setVisible(self, visible):
        self._shown = bool(visible)

    def show(self):
        self.setVisible(True)

    def hide(self):
        self.setVisible(False)

    def setHidden(self, hidden):
        self.setVisible(not hidden)

    def isHidden(self):
        """Hidden explicitly, or a top-level widget never shown (as Qt's isHidden)."""
        return self._shown is False or (self._shown is None and not isinstance(self._parent, QWidget))

    def isVisible(self):
        if self._shown is False:
            return False
        parent = self._parent
        if isinstance(parent, QWidget):
            return parent.isVisible()
        return self._shown is True

    def isVisibleTo(self, ancestor):
        w = self
        while w is not None and w is not ancestor:
            if w._shown is False:
                return False
            w = w._parent
        return True

    def setEnabled(self, enabled):
        self._disabled = not bool(enabled)

    def setDisabled(self, disabled):
        self.setEnabled(not disabled)

    def isEnabled(self):
        if self._disabled:
            return False
        parent = self._parent
        return parent.isEnabled() if isinstance(parent, QWidget) else True

    def setToolTip(self, text):
        self._props["toolTip"] = text

    def layout(self):
        return self._layout

    def setLayout(self, layout):
        self._layout = layout
        layout._install(self)

    def update(self):
        pass

    def close(self):
        self.hide()
        return True


class QLayout(QObject):
    def __init__(self, parent=None):
        QObject.__init__(self, None)
        self._items = []
        self._widget = None
        if isinstance(parent, QWidget):
            parent.setLayout(self)

    def _install(self, widget):
        self._widget = widget
        self.setParent(widget)
        for item in self._items:
            self._adopt(item)

    def _adopt(self, item):
        if self._widget is None:
            return
        if isinstance(item, QWidget):
            item.setParent(self._widget)
        elif isinstance(item, QLayout):
            item._widget = self._widget
            item.setParent(self)
            for sub in item._items:
                item._adopt(sub)

    def addWidget(self, widget, *args):
        self._items.append(widget)
        self._adopt(widget)

    def addLayout(self, layout, *args):
        self._items.append(layout)
        self._adopt(layout)

    def addItem(self, item):
        pass

    def addStretch(self, *args):
        pass

    def addSpacing(self, *args):
        pass

    def count(self):
        return len(self._items)

    def parentWidget(self):
        return self._widget

    def setContentsMargins(self, *args):
        pass

    def setSpacing(self, *args):
        pass


class QVBoxLayout(QLayout):
    pass


class QHBoxLayout(QLayout):
    pass


class QGridLayout(QLayout):
    pass


class QFormLayout(QLayout):
    def addRow(self, *items):
        for item in items:
            if isinstance(item, str):
                item = QLabel(item)
            if isinstance(item, QLayout):
                self.addLayout(item)
            else:
                self.addWidget(item)


class QAbstractButton(QWidget):
    PROPERTIES = {"text": "", "checkable": False, "checked": False, "autoExclusive": False, "icon": None,
                  "iconSize": None, "shortcut": None, "autoRepeat": False, "down": False}
    SIGNALS = ("clicked()", "clicked(bool)", "toggled(bool)", "pressed()", "released()")

    def __init__(self, *args):
        text = args[0] if args and isinstance(args[0], str) else None
        parent = args[-1] if args and isinstance(args[-1], QObject) else None
        QWidget.__init__(self, parent)
        self._group = None
        if text is not None:
            self._props["text"] = text

    def _set_checked(self, value):
        self.setChecked(value)

    def setChecked(self, checked):
        checked = bool(checked)
        if not self._props["checkable"] or checked == self._props["checked"]:
            return
        group = self._group
        if not checked and group is not None and group.exclusive and group.checkedButton() is self:
            return  # an exclusive group keeps its checked button
        self._props["checked"] = checked
        if checked:
            for other in self._exclusive_peers():
                if other._props["checked"]:
                    other._props["checked"] = False
                    other._emit("toggled", False)
        self._emit("toggled", checked)

    def _exclusive_peers(self):
        if self._group is not None and self._group.exclusive:
            return [b for b in self._group._buttons if b is not self]
        if self._props["autoExclusive"] and self._group is None and self._parent is not None:
            return [c for c in self._parent.children()
                    if isinstance(c, QAbstractButton) and c is not self and c._props["autoExclusive"] and c._group is None]
        return []

    def isChecked(self):
        return self._props["checked"]

    def setCheckable(self, checkable):
        self._props["checkable"] = bool(checkable)

    def setText(self, text):
        self._props["text"] = text

    def setIcon(self, icon):
        self._props["icon"] = icon

    def click(self):
        """What a user's click does (only when the button is enabled and visible)."""
        if not self.isEnabled():
            raise RuntimeError(f"'{self.objectName}' is disabled: a user cannot click it")
        if self._props["checkable"]:
            self.setChecked(not self._props["checked"])
        self._emit("clicked", self._props["checked"])


class QPushButton(QAbstractButton):
    PROPERTIES = {"default": False, "flat": False, "autoDefault": False}


class QToolButton(QAbstractButton):
    PROPERTIES = {"popupMode": 0, "toolButtonStyle": 0, "autoRaise": False}


class QRadioButton(QAbstractButton):
    def __init__(self, *args):
        QAbstractButton.__init__(self, *args)
        self._props["checkable"] = True
        self._props["autoExclusive"] = True


class QCheckBox(QAbstractButton):
    PROPERTIES = {"tristate": False}
    SIGNALS = ("stateChanged(int)",)

    def __init__(self, *args):
        QAbstractButton.__init__(self, *args)
        self._props["checkable"] = True

    def setChecked(self, checked):
        before = self._props["checked"]
        QAbstractButton.setChecked(self, checked)
        if self._props["checked"] != before:
            self._emit("stateChanged", 2 if self._props["checked"] else 0)

    def checkState(self):
        return 2 if self._props["checked"] else 0


class QButtonGroup(QObject):
    PROPERTIES = {"exclusive": True}
    SIGNALS = ("buttonClicked(int)", "buttonToggled(int,bool)", "idClicked(int)")

    def __init__(self, parent=None):
        QObject.__init__(self, parent)
        self._buttons = []
        self._ids = {}

    def addButton(self, button, id=-1):
        button._group = self
        self._buttons.append(button)
        self._ids[id if id != -1 else -2 - len(self._buttons)] = button

    def buttons(self):
        return list(self._buttons)

    def button(self, id):
        return self._ids.get(id)

    def checkedButton(self):
        for b in self._buttons:
            if b._props["checked"]:
                return b
        return None

    def checkedId(self):
        b = self.checkedButton()
        for i, button in self._ids.items():
            if button is b:
                return i
        return -1

    def setExclusive(self, exclusive):
        self._props["exclusive"] = bool(exclusive)


class QLabel(QWidget):
    PROPERTIES = {"text": "", "wordWrap": False, "textFormat": None, "textInteractionFlags": None,
                  "alignment": None, "openExternalLinks": False, "pixmap": None}
    SIGNALS = ("linkActivated(QString)", "linkHovered(QString)")

    def __init__(self, *args):
        text = args[0] if args and isinstance(args[0], str) else None
        parent = args[-1] if args and isinstance(args[-1], QObject) else None
        QWidget.__init__(self, parent)
        if text is not None:
            self._props["text"] = text

    def setText(self, text):
        self._props["text"] = text

    def setPixmap(self, pixmap):
        self._props["pixmap"] = pixmap


class QLineEdit(QWidget):
    PROPERTIES = {"text": "", "placeholderText": "", "readOnly": False, "maxLength": 32767}
    SIGNALS = ("textChanged(QString)", "textEdited(QString)", "editingFinished()", "returnPressed()")

    def _set_text(self, value):
        self.setText(value)

    def setText(self, text):
        text = "" if text is None else str(text)
        if text != self._props["text"]:
            self._props["text"] = text
            self._emit("textChanged", text)

    def clear(self):
        self.setText("")


class QComboBox(QWidget):
    PROPERTIES = {"currentIndex": -1, "currentText": "", "currentData": None, "count": 0, "editable": False,
                  "maxVisibleItems": 10, "placeholderText": ""}
    READ_ONLY = ("currentText", "currentData", "count")
    SIGNALS = ("currentIndexChanged(int)", "currentIndexChanged(QString)", "currentTextChanged(QString)",
               "activated(int)")

    def __init__(self, parent=None):
        QWidget.__init__(self, parent)
        self._items = []

    def _get_currentText(self):
        i = self._props["currentIndex"]
        return self._items[i][0] if 0 <= i < len(self._items) else ""

    def _get_currentData(self):
        i = self._props["currentIndex"]
        return self._items[i][1] if 0 <= i < len(self._items) else None

    def _get_count(self):
        return len(self._items)

    def _set_currentIndex(self, value):
        self.setCurrentIndex(value)

    def setCurrentIndex(self, index):
        index = int(index)
        if not -1 <= index < len(self._items):
            index = -1
        if index != self._props["currentIndex"]:
            self._props["currentIndex"] = index
            self._emit("currentIndexChanged", index)
            self._emit("currentTextChanged", self._get_currentText())

    def addItem(self, text, userData=None):
        self._items.append((str(text), userData))
        if self._props["currentIndex"] == -1:
            self.setCurrentIndex(0)

    def addItems(self, texts):
        for t in texts:
            self.addItem(t)

    def clear(self):
        self._items = []
        self.setCurrentIndex(-1)

    def findData(self, data):
        for i, (_, d) in enumerate(self._items):
            if d == data:
                return i
        return -1

    def findText(self, text):
        for i, (t, _) in enumerate(self._items):
            if t == text:
                return i
        return -1

    def itemText(self, index):
        return self._items[index][0]

    def itemData(self, index):
        return self._items[index][1]


class QProgressBar(QWidget):
    PROPERTIES = {"value": 0, "minimum": 0, "maximum": 100, "format": "%p%", "textVisible": True, "orientation": 1}
    SIGNALS = ("valueChanged(int)",)

    def setValue(self, value):
        self._props["value"] = int(value)

    def setRange(self, minimum, maximum):
        self._props["minimum"], self._props["maximum"] = int(minimum), int(maximum)


class QFrame(QWidget):
    PROPERTIES = {"frameShape": 0, "frameShadow": 0}


class QDockWidget(QWidget):
    PROPERTIES = {"floating": False, "features": 0}
    SIGNALS = ("visibilityChanged(bool)",)

    def __init__(self, *args):
        parent = args[-1] if args and isinstance(args[-1], QObject) else None
        QWidget.__init__(self, parent)
        self._title_bar = None
        self._content = None

    def setTitleBarWidget(self, widget):
        self._title_bar = widget

    def titleBarWidget(self):
        return self._title_bar

    def setWidget(self, widget):
        self._content = widget
        widget.setParent(self)

    def widget(self):
        return self._content


class QToolBar(QWidget):
    PROPERTIES = {"movable": True, "floatable": True}


class QMenuBar(QWidget):
    pass


class QStatusBar(QWidget):
    def showMessage(self, text, timeout=0):
        self._message = text


class QMainWindow(QWidget):
    def __init__(self, parent=None):
        QWidget.__init__(self, parent)
        self._status_bar = None

    def statusBar(self):
        return self._status_bar


class QDialog(QWidget):
    SIGNALS = ("accepted()", "rejected()", "finished(int)")

    def exec_(self):
        return 1


class QMessageBox(QDialog):
    NoButton, Ok, Cancel, Yes, No, Close = 0, 0x400, 0x400000, 0x4000, 0x10000, 0x200000
    NoIcon, Information, Warning, Critical, Question = 0, 1, 2, 3, 4


class QTimer(QObject):
    PROPERTIES = {"interval": 0, "singleShot": False, "active": False}
    READ_ONLY = ("active",)
    SIGNALS = ("timeout()",)

    def __init__(self, parent=None):
        QObject.__init__(self, parent)
        self._due = None

    def _get_active(self):
        return self in _STATE.timers

    def setInterval(self, ms):
        self._props["interval"] = int(ms)

    def start(self, ms=None):
        import time

        if ms is not None:
            self._props["interval"] = int(ms)
        self._due = time.monotonic() + self._props["interval"] / 1000.0
        if self not in _STATE.timers:
            _STATE.timers.append(self)

    def stop(self):
        if self in _STATE.timers:
            _STATE.timers.remove(self)

    def isActive(self):
        return self in _STATE.timers

    def _fire_if_due(self, now):
        if self._due is None or now < self._due:
            return
        if self._props["singleShot"]:
            self.stop()
        else:
            self._due = now + self._props["interval"] / 1000.0
        self._emit("timeout")

    @staticmethod
    def singleShot(ms, fn):
        t = QTimer()
        t._props["singleShot"] = True
        t.connect("timeout()", fn)
        t.start(ms)


class QSettings(QObject):
    """Application settings, one store per headless session (the user's settings file)."""

    def value(self, key, default=None):
        return _STATE.settings.get(key, default)

    def setValue(self, key, value):
        _STATE.settings[key] = value

    def contains(self, key):
        return key in _STATE.settings

    def remove(self, key):
        _STATE.settings.pop(key, None)

    def allKeys(self):
        return list(_STATE.settings)

    def sync(self):
        pass


class QThread(QObject):
    """Threads: ``currentThread()`` is one object per Python thread."""

    _by_ident = {}

    @staticmethod
    def currentThread():
        import threading

        ident = threading.get_ident()
        if ident not in QThread._by_ident:
            QThread._by_ident[ident] = QThread()
        return QThread._by_ident[ident]


class QApplication(QObject):
    @staticmethod
    def setOverrideCursor(cursor):
        _STATE.override_cursor += 1

    @staticmethod
    def restoreOverrideCursor():
        _STATE.override_cursor -= 1


class QKeySequence:
    def __init__(self, text=""):
        self._text = str(text)

    def toString(self):
        return self._text


class QShortcut(QObject):
    PROPERTIES = {"key": None, "enabled": True, "context": 1, "autoRepeat": True}
    SIGNALS = ("activated()", "activatedAmbiguously()")

    def __init__(self, key=None, parent=None):
        QObject.__init__(self, parent)
        if not isinstance(parent, QWidget):
            QT_WARNINGS.append("QShortcut: no widget parent defined")
        self._props["key"] = key

    def setEnabled(self, enabled):
        self._props["enabled"] = bool(enabled)

    def isEnabled(self):
        return self._props["enabled"]

    def activate(self):
        """What pressing the key does (the shortcut's widget must have a window)."""
        if self._props["enabled"] and isinstance(self._parent, QWidget):
            self._emit("activated")


class QIcon:
    def __init__(self, path=None):
        self.path = path

    def isNull(self):
        return not (self.path and os.path.isfile(self.path))


class QFile:
    ReadOnly = 1

    def __init__(self, path):
        self._path = str(path)

    def exists(self):
        return os.path.isfile(self._path)

    def open(self, mode):
        return self.exists()

    def close(self):
        pass

    def fileName(self):
        return self._path


class QFileDialog(QDialog):
    @staticmethod
    def getOpenFileName(parent=None, caption="", directory="", filter=""):
        return _STATE.file_dialog_answers.pop(0) if _STATE.file_dialog_answers else ""

    @staticmethod
    def getExistingDirectory(parent=None, caption="", directory=""):
        return _STATE.file_dialog_answers.pop(0) if _STATE.file_dialog_answers else ""


class QUiLoader:
    def load(self, qfile, parent=None):
        from .ui_loader import load_ui

        return load_ui(qfile.fileName(), parent)


class Qt:
    WaitCursor = 3
    BusyCursor = 16
    ArrowCursor = 0
    Horizontal, Vertical = 1, 2
    Key_Return, Key_Enter = 0x01000004, 0x01000005
    ControlModifier = 0x04000000
    RichText, PlainText = 1, 0
    TextSelectableByMouse = 1


class QSize:
    def __init__(self, w=0, h=0):
        self._w, self._h = w, h

    def width(self):
        return self._w

    def height(self):
        return self._h


class QSizePolicy:
    Fixed, Minimum, Maximum, Preferred, Expanding = 0, 1, 4, 5, 7

    def __init__(self, *args):
        self._args = args


class QProcessEnvironment:
    def __init__(self, env):
        self._env = dict(env)

    def keys(self):
        return list(self._env)

    def value(self, key, default=""):
        return self._env.get(key, default)


def _not_instantiable(name, base):
    def __init__(self, *args, **kwargs):
        raise TypeError(f"qt.{name} is not provided by the headless Slicer (no stand-in); the module does not use it")
    return type(name, (base,), {"__init__": __init__})


QSlider = _not_instantiable("QSlider", QWidget)
QSpinBox = _not_instantiable("QSpinBox", QWidget)
QDoubleSpinBox = _not_instantiable("QDoubleSpinBox", QWidget)
QTextEdit = _not_instantiable("QTextEdit", QWidget)
QColor = _not_instantiable("QColor", object)
QAction = _not_instantiable("QAction", QObject)
QMenu = _not_instantiable("QMenu", QWidget)
QUrl = _not_instantiable("QUrl", object)
QDesktopServices = _not_instantiable("QDesktopServices", object)
QEvent = _not_instantiable("QEvent", object)

_CLASSES = {name: obj for name, obj in list(globals().items()) if isinstance(obj, type) and name.startswith("Q")}


def build_module():
    """The ``qt`` module object."""
    mod = types.ModuleType("qt", "Headless stand-in for Slicer's PythonQt 'qt' module (not Qt)")
    for name, obj in _CLASSES.items():
        setattr(mod, name, obj)
    mod.Qt = Qt
    return mod
