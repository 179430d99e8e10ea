"""The core/ui boundary: `core` never imports Qt (STYLE.md rule 1)."""

from __future__ import annotations

import subprocess
import sys

from helpers.process import PROJECT_ROOT


def test_core_imports_no_qt() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import core\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    try:\n"
        "        importlib.import_module('core.' + m.name)\n"
        "    except ImportError as exc:\n"
        "        print('skipped', m.name, exc, file=sys.stderr)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"core loaded Qt modules: {out.stdout.strip()}"


def test_failure_report_and_progress_are_qt_free() -> None:
    code = (
        "import sys\nimport ui.failure_report, ui.progress\nprint(','.join(n for n in sys.modules if n.startswith('PySide6')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
