"""Work-arounds for bugs in the Qt binding.

PySide6 6.12.0: ``SignalInstance.emit()`` returns ``True`` without taking a
reference, so every ``signal.emit(...)`` made from Python drops one reference
to ``True``. After a few hundred emissions (a send of a few dozen files) the
interpreter aborts with "Fatal Python error: bool_dealloc: deallocating True
or False". :func:`emit` emits and, when the running binding has this bug
(probed once at import), gives the reference back. Every emission in ``ui/``
goes through it.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal

__all__ = ["emit", "EMIT_DROPS_BOOL_REF"]


class _Probe(QObject):
    fired = Signal()


def _probe() -> bool:
    p = _Probe()
    before = sys.getrefcount(True)
    result = p.fired.emit()
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
