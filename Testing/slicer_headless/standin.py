"""The base of every stand-in widget: a strict imitation of a PythonQt-wrapped QObject.

PythonQt exposes a Qt object's properties as attributes (``button.enabled = False``), its slots and
methods as methods, and its signals as attributes with ``connect``/``disconnect``; ``obj.connect(
"clicked(bool)", fn)`` connects by signature. A stand-in class declares exactly the properties
(``PROPERTIES``) and signals (``SIGNALS``) of the real class it stands for, and defines its methods;
reading or writing anything else raises ``AttributeError``, as it would on the real class. This is
NOT Qt: there is no painting, no layout geometry and no event loop beyond the timers that
:meth:`Application.processEvents` fires.

Slots run as PythonQt runs them: a Python slot gets as many of the signal's arguments as it takes,
and an exception raised in a slot is reported (here: recorded in :data:`SLOT_ERRORS` and logged)
instead of reaching the code that emitted the signal.
"""

import inspect
import logging
import traceback

#: exceptions raised by slots, as PythonQt prints them to the console: [(slot repr, traceback text)]
SLOT_ERRORS = []
#: Qt warnings that the real Qt would print (qWarning), e.g. "QShortcut: no widget parent defined"
QT_WARNINGS = []


def _arity(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    n = 0
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


def call_slot(fn, args):
    """Call ``fn`` with as many of ``args`` as it takes; report an exception as PythonQt does."""
    n = _arity(fn)
    try:
        fn(*(args if n is None else args[:n]))
    except Exception:
        SLOT_ERRORS.append((repr(fn), traceback.format_exc()))
        logging.error("Exception in a Qt slot (PythonQt prints it and goes on):\n%s", traceback.format_exc())


class BoundSignal:
    """``obj.clicked``: connect, disconnect, emit."""

    def __init__(self, owner, name):
        self._owner = owner
        self._name = name

    def connect(self, fn):
        self._owner._slots.setdefault(self._name, []).append(fn)

    def disconnect(self, fn=None):
        slots = self._owner._slots.get(self._name, [])
        if fn is None:
            slots.clear()
        elif fn in slots:
            slots.remove(fn)

    def emit(self, *args):
        self._owner._emit(self._name, *args)


class StandIn:
    """Strict stand-in base: declared properties, signals and methods only."""

    #: property name -> default value (merged along the class hierarchy)
    PROPERTIES = {}
    #: properties that cannot be written
    READ_ONLY = ()
    #: signal signatures, e.g. "clicked(bool)" (merged along the class hierarchy)
    SIGNALS = ()

    @classmethod
    def _all(cls, attr):
        merged = {} if attr == "PROPERTIES" else set()
        for klass in reversed(cls.__mro__):
            value = klass.__dict__.get(attr)
            if value is None:
                continue
            if attr == "PROPERTIES":
                merged.update(value)
            else:
                merged.update(value)
        return merged

    @classmethod
    def _signal_names(cls):
        return {s.split("(", 1)[0] for s in cls._all("SIGNALS")}

    def __init__(self):
        object.__setattr__(self, "_props", dict(self._all("PROPERTIES")))
        object.__setattr__(self, "_slots", {})
        object.__setattr__(self, "_dynamic", {})

    def _strict_error(self, name, what="attribute"):
        return AttributeError(
            f"{type(self).__name__} (headless stand-in) has no {what} '{name}': the real class has no "
            "such property, method or signal")

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        props = self.__dict__.get("_props", {})
        if name in props:
            getter = getattr(type(self), "_get_" + name, None)
            return getter(self) if getter else props[name]
        if name in self._signal_names():
            return BoundSignal(self, name)
        raise self._strict_error(name)

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name not in self._props:
            raise self._strict_error(name, "writable property")
        if name in self._all("READ_ONLY"):
            raise AttributeError(f"{type(self).__name__}.{name} is read-only")
        setter = getattr(type(self), "_set_" + name, None)
        if setter:
            setter(self, value)
        else:
            self._props[name] = value

    # ---- PythonQt's string connect -----------------------------------------------------------
    def connect(self, signature, fn):
        if signature not in self._all("SIGNALS"):
            raise self._strict_error(signature, "signal")
        BoundSignal(self, signature.split("(", 1)[0]).connect(fn)
        return True

    def disconnect(self, signature, fn=None):
        if signature not in self._all("SIGNALS"):
            raise self._strict_error(signature, "signal")
        BoundSignal(self, signature.split("(", 1)[0]).disconnect(fn)
        return True

    def _emit(self, name, *args):
        for fn in list(self._slots.get(name, [])):
            call_slot(fn, args)
