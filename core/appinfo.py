"""The application's name, version and the licences of what it bundles (for the About box).

Read from ``pyproject.toml`` and ``resources/licenses.json`` beside the code, which
also works in the frozen app (both are bundled at its root).
"""

from __future__ import annotations

import json
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "app_info", "licences"]

ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def app_info() -> dict[str, str]:
    """``{"name", "version", "description"}`` from pyproject.toml (fallbacks when it is absent)."""
    try:
        project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        return {
            "name": "DICOM Courier",
            "version": str(project.get("version", "?")),
            "description": str(project.get("description", "")),
        }
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return {"name": "DICOM Courier", "version": "?", "description": ""}


def licences() -> list[dict[str, Any]]:
    """Bundled Python packages and native libraries with their licences (name, version, license)."""
    try:
        data = json.loads((ROOT / "resources" / "licenses.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return list(data.get("python_packages", [])) + list(data.get("native_libraries", []))
