"""Work-arounds for bugs in the Qt binding.

PySide6 6.12.0: ``SignalInstance.emit()`` returns ``True`` without taking a
reference, so every ``signal.emit(...)`` made from Python drops one reference
to ``True``. After a few hundred emissions (a send of a few dozen files) the
interpreter aborts with "Fatal Python error: bool_dealloc: deallocating True
or False". :func:`emit` emits and, when the running binding has this bug
(probed once at import), gives the reference back. Every emission in ``ui/``
goes through it.

The same binding's ``QModelRoleData.setData()`` / ``clearData()`` return
``None`` without a reference; :func:`fill_role_data` (used by the models'
``multiData``) gives those back too.

Worse, the same is true of (nearly) every method returning ``void``:
``QRect.setWidth``, ``QWidget.update``, ``QLabel.setText``, ``QPainter.setPen``,
``QPainterPath.lineTo``... each call drops one reference to ``None``. On Python
3.12+ ``None`` is immortal and nothing happens; on 3.11 its count (a few
thousand at start) reaches zero after a few thousand calls (a minute of a send
with a live plot) and the interpreter aborts with "none_dealloc". Such calls
cannot all be wrapped, so when the probe at import sees the drop on an
interpreter where ``None`` is mortal, :func:`pin_none` gives ``None`` 2**40
extra references: the immortality that CPython 3.12 gives it anyway.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QModelRoleData, QObject, QRect, Signal

__all__ = ["emit", "EMIT_DROPS_BOOL_REF", "fill_role_data", "SETDATA_DROPS_NONE_REF", "VOID_CALLS_DROP_NONE_REF", "pin_none"]


class _Probe(QObject):
    fired = Signal()


def _probe() -> bool:
    p = _Probe()
    before = sys.getrefcount(True)
    result = p.fired.emit()  # type: ignore[func-returns-value]  # the stub says None; 6.12 returns True
    del result
    dropped = sys.getrefcount(True) < before
    if dropped:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    return dropped


#: True when this binding's ``emit()`` drops a reference to the bool it returns.
EMIT_DROPS_BOOL_REF = _probe()


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, safe on bindings whose ``emit`` drops a bool reference."""
    result = signal.emit(*args)
    if EMIT_DROPS_BOOL_REF and isinstance(result, bool):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(result))


def _probe_set_data() -> bool:
    rd = QModelRoleData(0)
    before = sys.getrefcount(None)
    result = rd.setData("probe")  # type: ignore[func-returns-value]  # the value is what we count
    del result
    dropped = sys.getrefcount(None) < before
    if dropped:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
    return dropped


#: True when ``QModelRoleData.setData`` drops a reference to the None it returns.
SETDATA_DROPS_NONE_REF = _probe_set_data()
_NONE = ctypes.py_object(None)
_incref = ctypes.pythonapi.Py_IncRef


def fill_role_data(span: Any, value_for: Any) -> None:
    """Fill a ``QModelRoleDataSpan``: ``value_for(role)`` for each entry (None clears it)."""
    fix = SETDATA_DROPS_NONE_REF
    for rd in span:
        rd.setData(value_for(rd.role()))
        if fix:
            _incref(_NONE)


def _probe_void_call() -> bool:
    r = QRect()
    before = sys.getrefcount(None)
    for _ in range(8):
        r.setWidth(1)
    lost = before - sys.getrefcount(None)
    for _ in range(max(0, lost)):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
    return lost > 0


#: True when this binding's void methods drop a reference to the None they return.
VOID_CALLS_DROP_NONE_REF = _probe_void_call()

_PINNED = 1 << 40


def pin_none() -> bool:
    """Make ``None`` practically immortal (2**40 extra references) on an interpreter where it is not.

    Returns True when references were added. Python 3.12+ (immortal objects) needs nothing.
    """
    if sys.version_info >= (3, 12) or sys.getrefcount(None) > _PINNED:
        return False
    ref = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt is the object's first field
    ref.value += _PINNED
    return True


if VOID_CALLS_DROP_NONE_REF:
    pin_none()
