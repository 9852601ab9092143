"""``QUiLoader`` for the stand-ins: the .ui file is parsed for real (Qt Designer's XML).

Every ``<widget>`` becomes a stand-in of its class (an unknown class raises), every standard
property it sets must exist on the stand-in (``setattr`` on a strict stand-in raises otherwise),
dynamic properties (``stdset="0"``, e.g. ``SlicerParameterName``) go through ``setProperty``, layouts
reparent their widgets as Qt does, and the ``<connections>`` section is wired (signal signature
checked on the sender, slot looked up on the receiver).
"""

import xml.etree.ElementTree as ET

from . import ctk_mrml_widgets as cw
from . import qt_module as qt


def _classes():
    classes = dict(qt._CLASSES)
    classes.update(cw._CTK)
    classes.update(cw.QMRML)
    return classes


def _value(prop):
    """A property element's value as Python."""
    child = list(prop)[0]
    tag, text = child.tag, (child.text or "")
    if tag == "bool":
        return text.strip() == "true"
    if tag == "number":
        return int(text)
    if tag == "double":
        return float(text)
    if tag in ("string", "cstring"):
        return text
    if tag == "stringlist":
        return [s.text or "" for s in child.findall("string")]
    if tag in ("enum", "set"):
        return text.strip()
    if tag == "rect":
        return tuple(int(child.find(k).text) for k in ("x", "y", "width", "height"))
    if tag == "size":
        return (int(child.find("width").text), int(child.find("height").text))
    raise ValueError(f"property type <{tag}> is not handled by the headless .ui loader")


def _build_widget(elem, parent, classes, by_name):
    cls_name = elem.get("class")
    if cls_name not in classes:
        raise TypeError(f"the .ui file uses class {cls_name}, which the headless Slicer has no stand-in for")
    widget = classes[cls_name](parent)
    widget.objectName = elem.get("name", "")
    by_name[widget.objectName] = widget
    for prop in elem.findall("property"):
        name = prop.get("name")
        value = _value(prop)
        if prop.get("stdset") == "0":
            widget.setProperty(name, value)
        else:
            setattr(widget, name, value)  # strict: raises for a property the real class lacks
    layout_elem = elem.find("layout")
    if layout_elem is not None:
        widget.setLayout(_build_layout(layout_elem, classes, by_name))
    for child in elem.findall("widget"):
        _build_widget(child, widget, classes, by_name)
    return widget


def _build_layout(elem, classes, by_name):
    cls_name = elem.get("class")
    layout = classes[cls_name]()
    layout.objectName = elem.get("name", "")
    for item in elem.findall("item"):
        sub = list(item)[0]
        if sub.tag == "widget":
            layout.addWidget(_build_widget(sub, None, classes, by_name))
        elif sub.tag == "layout":
            layout.addLayout(_build_layout(sub, classes, by_name))
        elif sub.tag == "spacer":
            layout.addStretch()
        else:
            raise ValueError(f"layout item <{sub.tag}> is not handled by the headless .ui loader")
    return layout


def load_ui(path, parent=None):
    """The top-level widget of a .ui file, with its children and connections."""
    root = ET.parse(path).getroot()
    classes = _classes()
    by_name = {}
    top = _build_widget(root.find("widget"), parent, classes, by_name)
    connections = root.find("connections")
    for conn in (connections if connections is not None else []):
        sender = by_name[conn.find("sender").text]
        receiver = by_name[conn.find("receiver").text]
        slot_name = conn.find("slot").text.split("(", 1)[0]
        slot = getattr(receiver, slot_name)  # strict: raises when the receiver has no such slot
        sender.connect(conn.find("signal").text, slot)
    return top
