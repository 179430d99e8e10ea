"""Start the desktop app: ``python main.py`` (or ``--gui``), or ``--screenshot FILE.png`` for review.

Everything is wired here and passed in explicitly: the logging handler, the
profile store, the data directory, the window.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from typing import Any

LOGGER = logging.getLogger(__name__)


def _parse(args: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dicom-courier", description="DICOM Courier desktop app")
    p.add_argument("--gui", action="store_true", help="open the window (the default)")
    p.add_argument(
        "--screenshot",
        metavar="FILE.png",
        help="render the window offscreen after a demo send to the local test PACS, save it, exit",
    )
    p.add_argument("--log-level", default="INFO", help="lowest level kept in the log pane (default INFO)")
    p.add_argument("paths", nargs="*", help="files or folders to add at start")
    return p.parse_args(args)


#: The screen the screenshot mode (and the GUI tests) render on: a common laptop's.
SCREEN_SIZE = (1280, 800)


def offscreen_platform(folder: str, size: tuple[int, int] = SCREEN_SIZE) -> str:
    """The ``-platform`` value giving Qt's offscreen plugin one screen of `size` pixels (96 dpi).

    Writes the plugin's JSON configuration into `folder` (the plugin reads it at start-up);
    without it the offscreen screen is 800 x 800.
    """
    import json

    path = os.path.join(folder, f"offscreen-{size[0]}x{size[1]}.json")
    screen = {
        "name": "laptop",
        "x": 0,
        "y": 0,
        "width": size[0],
        "height": size[1],
        "logicalDpi": 96,
        "logicalBaseDpi": 96,
        "dpr": 1,
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"synchronousWindowSystemEvents": False, "windowFrameMargins": False, "screens": [screen]}, f)
    return f"offscreen:configfile={path}"


def install_logging(level: int = logging.INFO) -> Any:
    """Attach the log pane's buffer to the root logger; route Qt's messages into logging."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    from .logpane import LogBuffer

    buffer = LogBuffer()
    logging.captureWarnings(True)  # pydicom's warnings about odd files go to the log pane, not stderr
    root = logging.getLogger()
    root.addHandler(buffer)
    root.setLevel(min(root.level or logging.WARNING, level))
    for name in ("core", "ui"):
        logging.getLogger(name).setLevel(level)
    # pynetdicom logs every PDU and store at Info (the local test PACS's too): Debug detail for a radiographer
    logging.getLogger("pynetdicom").setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))
    qt_logger = logging.getLogger("qt")
    levels = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }

    def handler(mode: Any, context: Any, message: str) -> None:
        qt_logger.log(levels.get(mode, logging.WARNING), "%s", message)

    qInstallMessageHandler(handler)
    return buffer


def build_window(
    log_buffer: Any, config_dir: str | None = None, data_dir: str | None = None, remember_layout: bool = False
) -> Any:
    """Create the main window with its profile store (tests call this too).

    With `remember_layout`, the window's size, splitters, columns and panes are kept in
    ``window.ini`` beside ``profiles.json``.
    """
    from core.profiles import ProfileStore
    from core.profiles import config_dir as default_config_dir
    from core.profiles import data_dir as default_data_dir

    from .main_window import MainWindow

    folder = config_dir or default_config_dir()
    store = ProfileStore(os.path.join(folder, "profiles.json"))
    store.load()
    if store.read_only_reason:
        LOGGER.warning("%s", store.read_only_reason)
    data = data_dir or default_data_dir()
    # the same journal as the CLI's (core.journal.default_journal_path) unless a data dir is given
    journal = os.path.join(data, "journal.sqlite")
    return MainWindow(
        store,
        log_buffer,
        data,
        settings_path=os.path.join(folder, "window.ini") if remember_layout else None,
        journal_path=journal,
    )


def run_gui(args: list[str]) -> int:
    """Run the app; returns the exit code.

    Args:
        args: the command line without the program name (``[]``, ``["--gui"]``,
            ``["--screenshot", "shot.png"]``, optionally followed by paths).
    """
    ns = _parse(args)
    qt_args = sys.argv[:1]
    if ns.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        if os.environ["QT_QPA_PLATFORM"].startswith("offscreen"):  # a laptop's screen, 1280 x 800
            qt_args += ["-platform", offscreen_platform(tempfile.mkdtemp(prefix="courier-screen-"))]
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(qt_args)
    app.setApplicationName("DICOM Courier")
    app.setOrganizationName("dicom-courier")
    if ns.screenshot:
        QApplication.setStyle("Fusion")  # the same look on every machine
    level = getattr(logging, str(ns.log_level).upper(), logging.INFO)
    buffer = install_logging(level if isinstance(level, int) else logging.INFO)
    if ns.screenshot:
        return _screenshot(app, buffer, ns.screenshot)
    window = build_window(buffer, remember_layout=True)
    window.show()
    if ns.paths:
        window.add_paths(ns.paths)
    return int(app.exec())


# -- screenshot mode ----------------------------------------------------------------------------------


def demo_files() -> list[str]:
    """pydicom's bundled test files (top level of its ``test_files`` folder)."""
    import pydicom.data

    folder = os.path.join(os.path.dirname(pydicom.data.__file__), "test_files")
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))


def _run_demo(window: Any, paths: list[str], timeout_s: float) -> bool:
    """Scan `paths`, start an Implicit-only local test PACS and send everything to it; True when the send ended."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    done = {"ok": False}

    def fail_after() -> None:
        LOGGER.error("Screenshot: the demo did not finish within %.0f s", timeout_s)
        loop.quit()

    def on_scan(_n: int) -> None:
        window.local_pacs_controller.set_accept("implicit", restart=False)
        window.local_pacs_controller.start(port=0)

    def on_scp(running: bool) -> None:
        if running:
            window._select_profile(window.store.local_test().name)
            window.start_send(window.model.sendable_under(None))

    def on_sent(_job: Any) -> None:
        done["ok"] = True
        loop.quit()

    def on_confirm(_box: Any) -> None:  # blocked or lossy instances: send the rest, as a user would
        QTimer.singleShot(0, window.confirm_send_button.click)

    window.scan_controller.scan_finished.connect(on_scan)
    window.local_pacs_controller.running_changed.connect(on_scp)
    window.confirmation_requested.connect(on_confirm)
    window.send_controller.send_finished.connect(on_sent)
    window.add_paths(paths)
    QTimer.singleShot(int(timeout_s * 1000), fail_after)
    loop.exec()
    return done["ok"]


def _arrange_for_shot(window: Any) -> None:
    """Show a readable mix: a few conversions of different kinds, every failure, the unreadable files."""
    from . import states as st
    from .models import INSTANCE

    view, model = window.view, window.model
    view.collapseAll()
    picked: list[Any] = []
    kinds: set[str] = set()
    for n in model.leaves():
        o = n.outcome or {}
        if n.kind == INSTANCE and o.get("converted_from") and len(picked) < 3 and o["converted_from"] not in kinds:
            kinds.add(o["converted_from"])
            picked.append(n)
    picked += [n for n in model.leaves() if n.kind == INSTANCE and n.state in st.PROBLEM_STATES]
    for n in picked:
        p = model.index_of(n).parent()
        while p.isValid():
            view.expand(view.to_view(p))
            p = p.parent()
    group = next((i for i in range(model.rowCount()) if model.index(i, 0).data() == "Not DICOM or unreadable"), None)
    if group is not None:
        view.expand(view.to_view(model.index(group, 0)))
    view.scrollToTop()
    total = sum(window.splitter.sizes())
    window.splitter.setSizes([int(total * 0.66), total - int(total * 0.66)])
    window.diag_pane.view.setColumnWidth(0, 260)
    width = sum(window.bottom.sizes())
    window.bottom.setSizes([int(width * 0.6), width - int(width * 0.6)])
    window.log_pane.pull()


def _screenshot(app: Any, buffer: Any, out: str, timeout_s: float = 180.0) -> int:
    """Scan pydicom's test files, send them to an Implicit-only local test PACS, save the window as PNG."""
    from PySide6.QtCore import QEventLoop, QTimer

    try:
        demo = demo_files()
    except OSError:  # the standalone app does not bundle pydicom's test files
        print("--screenshot needs pydicom's test files, which only a source install has", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="courier-shot-")
    window = build_window(buffer, os.path.join(tmp, "config"), os.path.join(tmp, "data"))
    window.resize(*SCREEN_SIZE)  # the whole of a laptop's screen: every button must still be in view
    window.show()
    sent = _run_demo(window, demo, timeout_s)
    _arrange_for_shot(window)
    end = QEventLoop()
    QTimer.singleShot(400, end.quit)
    end.exec()
    ok = window.grab().save(out)
    window.shutdown()
    window.close()
    if not ok:
        print(f"cannot write {out}", file=sys.stderr)
        return 1
    print(f"screenshot written to {out}" + ("" if sent else " (the demo send did not finish)"))
    return 0 if sent else 1
