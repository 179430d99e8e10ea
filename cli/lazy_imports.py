"""Defer a module that the command line imports through pydicom but almost never uses.

``import pydicom`` imports ``requests`` (about 40 ms here, a fifth of the CLI's start-up) because
pydicom's test-data downloader might use it; a send never does. :func:`defer` puts a stand-in
module in ``sys.modules``: ``import requests`` then costs nothing, and the first attribute used
(``requests.get``, ``requests.Session``) imports the real module, whose namespace the stand-in
takes over, so every module that imported it sees the real thing.

numpy cannot be deferred this way: pydicom's decoder plugins (pylibjpeg) use numpy types while
they are imported. Only the command line calls :func:`defer` (:func:`cli.main.main`); the GUI and
library users import as usual. A module already imported is left alone.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from typing import Any

__all__ = ["DEFERRED", "defer", "is_loaded"]

#: Modules the CLI defers: ``requests`` (pydicom's test-data downloads, Google auth's HTTP transport).
DEFERRED = ("requests",)

_lock = threading.RLock()


class _Deferred(types.ModuleType):
    """Stands in for a module until an attribute is needed, then shows the real module's namespace."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_load(self), name)

    def __dir__(self) -> list[str]:
        return dir(_load(self))


def _load(stand_in: _Deferred) -> types.ModuleType:
    """Import the real module once, put it in ``sys.modules`` and copy its namespace into `stand_in`."""
    with _lock:
        real = stand_in.__dict__.get("_deferred_real")
        if real is None:
            name = stand_in.__name__
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
            real = importlib.import_module(name)
            stand_in.__dict__.update(real.__dict__)
            stand_in.__dict__["_deferred_real"] = real
        return real


class _Existing(importlib.abc.Loader):
    """Hands ``import`` a module that is already in ``sys.modules``, leaving its spec as it was."""

    def __init__(self, module: types.ModuleType):
        self.module = module
        self.spec = module.__spec__
        self.loader = getattr(module, "__loader__", None)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self.spec  # ``import`` set ours on it: put the real one back
        module.__loader__ = self.loader


class _SubmoduleFinder(importlib.abc.MetaPathFinder):
    """Before a submodule of a deferred package is imported (``import requests.adapters``), import the package.

    The package's own import brings the submodule in (or not); either way it is imported once.
    """

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        root = fullname.partition(".")[0]
        stand_in = sys.modules.get(root)
        if root == fullname or not isinstance(stand_in, _Deferred) or "_deferred_real" in stand_in.__dict__:
            return None
        _load(stand_in)
        module = sys.modules.get(fullname)
        if module is None:  # the package did not import it: the usual finders do
            return None
        return importlib.util.spec_from_loader(fullname, _Existing(module))


_finder = _SubmoduleFinder()


def defer(names: tuple[str, ...] = DEFERRED) -> None:
    """Put a stand-in in ``sys.modules`` for each of `names` that is installed and not imported yet."""
    with _lock:
        for name in names:
            if name in sys.modules:
                continue
            spec = importlib.util.find_spec(name)
            if spec is None:  # not installed: ``import`` fails as it would have
                continue
            stand_in = _Deferred(name)
            # ``import`` reads __spec__ (not initializing: the stand-in is returned as is) and, for a
            # submodule, the package's __path__ (then _SubmoduleFinder loads the package first)
            stand_in.__spec__ = spec
            if spec.submodule_search_locations is not None:
                stand_in.__path__ = list(spec.submodule_search_locations)
            sys.modules[name] = stand_in
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)


def is_loaded(name: str) -> bool:
    """True when `name` has really been imported (a stand-in alone does not count)."""
    module = sys.modules.get(name)
    if module is None:
        return False
    return not isinstance(module, _Deferred) or "_deferred_real" in module.__dict__
