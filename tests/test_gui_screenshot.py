"""``python main.py --screenshot FILE.png``: a realistic window, rendered offscreen, exit code 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.process import PROJECT_ROOT

pytestmark = [pytest.mark.gui, pytest.mark.timeout(300)]


def test_screenshot_mode_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "shot.png"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "DICOM_COURIER_CONFIG_DIR": str(tmp_path / "config"),
        "DICOM_COURIER_DATA_DIR": str(tmp_path / "data"),
    }
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "main.py"), "--screenshot", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 1200 and height >= 800
    assert len(data) > 100_000, "the window should be full of text, not blank"
    assert not (tmp_path / "config").exists(), "screenshot mode must not touch the user's profiles"
