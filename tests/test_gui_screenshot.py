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
    out = Path(__file__).resolve().parent / "artifacts" / "main-py-screenshot.png"  # kept by CI
    out.parent.mkdir(exist_ok=True)
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
    assert (width, height) == (1280, 800), "the whole window on a laptop's screen"
    assert len(data) > 100_000, "the window should be full of text, not blank"
    assert not (tmp_path / "config").exists(), "screenshot mode must not touch the user's profiles"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.qt_log_level_fail("WARNING")
@pytest.mark.qt_log_ignore("propagateSizeHints")
def test_screenshots_after_a_cancelled_send_and_a_failed_connection(qtbot, window, picky, tmp_path) -> None:
    """PNGs for a reviewer (tests/artifacts/, kept by CI) of the window at 1280 x 800, and what they must show."""
    import socket

    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    from core.profiles import Profile
    from helpers.gui import ct_series, drop, inside, save_shot, use_profile
    from ui import states as st
    from ui.models import Col

    window.resize(1280, 800)
    scp = picky(delay_s=0.03, syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian))
    use_profile(window, scp, name="Main PACS", strategy="conservative")
    drop(qtbot, window, [tmp_path / "cts"] if ct_series(tmp_path / "cts", 400) else [])
    window.view.expandAll()
    with qtbot.waitSignal(window.send_controller.send_finished, timeout=90000):
        window.send_button.click()
        qtbot.waitUntil(lambda: window.model.counts().get(st.STORED, 0) >= 20, timeout=30000)
        window.cancel_button.click()
    stored = window.model.counts()[st.STORED]
    not_sent = next(n for n in window.model.leaves() if n.state == st.NOT_SENT)
    window.view.setCurrentIndex(window.view.to_view(window.model.index_of(not_sent)))
    window.view.scrollTo(window.view.to_view(window.model.index_of(not_sent)))
    qtbot.wait(400)
    path = save_shot(window, "window-after-cancelled-send")
    assert png_size(path) == (1280, 800)
    assert window.progress_label.text().startswith(f"Cancelled: {stored} / 400 instances")
    assert window.reason_label.isVisible() and "cancelled" in window.reason_label.text()
    hdr = window.view.header()
    assert 0 <= hdr.sectionViewportPosition(Col.DETAILS) < window.view.viewport().width() - 100
    for b in (window.send_button, window.cancel_button, window.retry_button):
        assert inside(b, 1280, 800), b.text()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    window.profiles.insert(
        window.profiles.rowCount(),
        Profile(name="Stopped PACS", remote_host="127.0.0.1", remote_port=port, remote_ae_title="STOPPED"),
    )
    window._select_profile("Stopped PACS")
    window.view.clearSelection()
    with qtbot.waitSignal(window.echo_controller.echo_finished, timeout=30000):
        window.test_button.click()
    with qtbot.waitSignal(window.send_controller.send_finished, timeout=60000):
        window.send_button.click()
    qtbot.wait(400)
    path = save_shot(window, "window-after-failed-connection")
    assert png_size(path) == (1280, 800)
    assert window.echo_label.text().startswith(f"✗ Could not reach the PACS at 127.0.0.1:{port}")
    assert "Nothing was sent" in window.banner.label.text() and "Why:" in window.banner.label.text()
    assert window.progress.text() == "0 / 400"
    for b in (window.send_button, window.cancel_button):
        assert inside(b, 1280, 800), b.text()
