"""Driving the main window offscreen: open it, point it at a peer, drop files, send and wait, read its models."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .data import TEST_FILES


def open_window(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Yield the main window with private config and data folders and the core log in its log pane."""
    monkeypatch.setenv("DICOM_COURIER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DICOM_COURIER_DATA_DIR", str(tmp_path / "data"))
    from ui.app import build_window
    from ui.logpane import LogBuffer

    buf = LogBuffer()
    core_log = logging.getLogger("core")
    old_level = core_log.level
    core_log.addHandler(buf)
    core_log.setLevel(logging.INFO)
    w = build_window(buf, str(tmp_path / "config"), str(tmp_path / "data"))
    qtbot.addWidget(w)
    w.show()
    yield w
    w.shutdown()
    core_log.removeHandler(buf)
    core_log.setLevel(old_level)


def use_profile(window: Any, scp: Any, name: str = "Picky", **kw: Any) -> Any:
    """Select (adding or replacing) a profile named `name` that reaches `scp` (anything with .port and .ae_title)."""
    from core.profiles import Profile

    p = Profile(
        name=name,
        remote_host="127.0.0.1",
        remote_port=scp.port,
        remote_ae_title=kw.pop("remote_ae_title", scp.ae_title),
        strategy=kw.pop("strategy", "compression"),
        acse_timeout_s=5,
        dimse_timeout_s=10,
        network_timeout_s=10,
        connect_timeout_s=5,
        **kw,
    )
    row = window.profiles.row_of(name)
    if row >= 0:
        window.profiles.replace_at(row, p)
    else:
        window.profiles.insert(window.profiles.rowCount(), p)
        row = window.profiles.rowCount() - 1
    window.profile_box.setCurrentIndex(row)
    return p


def study_folder(tmp_path: Path) -> Path:
    """CT (Explicit VR LE), MR, JPEG 2000 (a conversion), RT Plan (a class the picky PACS refuses) and junk."""
    folder = tmp_path / "study"
    folder.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtplan.dcm", "README.txt"):
        shutil.copy(TEST_FILES / name, folder / name)
    shutil.copy(TEST_FILES / "MR_truncated.dcm", folder / "broken.dcm")
    return folder


def drop(qtbot: Any, window: Any, paths: list[Path]) -> None:
    """Drag `paths` onto the window as a copy and wait until their scan has finished."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = window.rect().center()
    enter = QDragEnterEvent(
        QPointF(centre), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    assert enter.dropAction() == Qt.DropAction.CopyAction
    ev = QDropEvent(QPointF(centre), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.scan_controller.scan_finished, timeout=30000):
        QApplication.sendEvent(window, ev)
        assert ev.isAccepted()


def send_and_wait(
    qtbot: Any, window: Any, start: Callable[[], Any] | None = None, timeout: int = 60000, confirm: bool = True
) -> Any:
    """Start a send and wait for its end; the plan's confirmation (blocked or lossy instances) is accepted."""
    from PySide6.QtCore import QTimer

    asked: list[Any] = []

    def on_asked(box: Any) -> None:
        asked.append(box)
        if confirm:
            QTimer.singleShot(0, window.confirm_send_button.click)

    window.confirmation_requested.connect(on_asked)
    try:
        with qtbot.waitSignal(window.send_controller.send_finished, timeout=timeout) as blocker:
            (start or window.send_button.click)()
    finally:
        window.confirmation_requested.disconnect(on_asked)
    return blocker.args[0]


def states_by_file(window: Any) -> dict[str, str]:
    """File name -> the state shown for it."""
    return {Path(n.inst.path).name: n.state for n in window.model.leaves()}


def diag_text(model: Any) -> str:
    """The diagnostics tree as indented ``name | value`` lines."""
    out: list[str] = []

    def walk(parent: Any, depth: int) -> None:
        for r in range(model.rowCount(parent)):
            a, b = model.index(r, 0, parent), model.index(r, 1, parent)
            out.append("  " * depth + f"{a.data()} | {b.data()}")
            walk(a, depth + 1)

    from PySide6.QtCore import QModelIndex

    walk(QModelIndex(), 0)
    return "\n".join(out)


def ct_series(folder: Path, n: int, name: str = "TEST^PATIENT") -> list[Path]:
    """`n` small CT instances (Explicit VR LE) of one invented patient, study and series in `folder`."""
    import pydicom
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    src = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    src.PatientName = name
    src.StudyInstanceUID, src.SeriesInstanceUID = generate_uid(), generate_uid()
    out = []
    for i in range(n):
        src.SOPInstanceUID = generate_uid()
        src.InstanceNumber = i + 1
        p = folder / f"ct{i:04d}.dcm"
        src.save_as(p, enforce_file_format=True)
        out.append(p)
    return out


def answer(qtbot: Any, window: Any, attr: str, key: str, timeout: int = 5000) -> Any:
    """Wait for the window's non-modal question `attr` (``resend_box``, ``clear_box``, ``close_box``), click `key`."""
    qtbot.waitUntil(lambda: getattr(window, attr) is not None, timeout=timeout)
    box = getattr(window, attr)
    from PySide6.QtCore import Qt

    assert box.isVisible() and box.windowModality() != Qt.WindowModality.ApplicationModal  # open(): the loop runs on
    text = box.text() + "\n" + box.informativeText()
    box.choices[key].click()
    qtbot.waitUntil(lambda: getattr(window, attr) is None, timeout=timeout)
    return text


def inside(widget: Any, screen_width: int, screen_height: int) -> bool:
    """True when `widget` is shown and lies wholly within a screen of that size (window coordinates from 0, 0)."""
    from PySide6.QtCore import QPoint

    top_left = widget.mapTo(widget.window(), QPoint(0, 0))
    win = widget.window().geometry()
    x, y = win.x() + top_left.x(), win.y() + top_left.y()
    return (
        widget.isVisible() and x >= 0 and y >= 0 and x + widget.width() <= screen_width and y + widget.height() <= screen_height
    )


def save_shot(widget: Any, name: str) -> Path:
    """Save `widget` as ``tests/artifacts/<name>.png`` (kept by CI for review) and return the path."""
    folder = Path(__file__).resolve().parent.parent / "artifacts"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.png"
    assert widget.grab().save(str(path)), path
    return path
