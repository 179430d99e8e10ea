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
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QModelRoleData, QObject, Signal

__all__ = ["emit", "EMIT_DROPS_BOOL_REF", "fill_role_data", "SETDATA_DROPS_NONE_REF"]


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
