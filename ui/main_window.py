"""The main window: drop studies, choose a PACS, send, watch, retry, report.

Layout: a header row (file actions, the PACS selector with *Test connection*,
Send / Cancel), a progress row, a summary banner after a send, then a vertical
splitter with the file tree on top and, below, the diagnostics pane beside the
log pane. The window keeps the layout, the actions and menus, drag and drop and
the view state; each concern's state and work live in a controller
(:mod:`ui.controllers`), whose signals the window turns into text and widget states.
Every file or network operation runs on a worker thread (:mod:`ui.workers`).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from PySide6.QtCore import QModelIndex, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMenuBar,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.probe import AcceptanceMap
from core.profiles import Profile, ProfileStore
from core.scp import ACCEPT_CHOICES

from .banners import ResumeBanner, SummaryBanner
from .controllers.echo import EchoController, echo_line, format_echo
from .controllers.local_pacs import LocalPacsController
from .controllers.plan import PlanController
from .controllers.probe import ProbeController
from .controllers.report import ReportController
from .controllers.resume import ResumeController
from .controllers.scan import ScanController
from .controllers.send import SendController, SendRecord
from .diagnostics import DiagnosticsModel, DiagnosticsPane
from .dialogs import ExportDialog, confirmation_box, details_box, show_about
from .file_tree import FileTreeView
from .logpane import LogBuffer, LogPane
from .models import HEADERS as HEADERS_TEXT
from .models import Col, InstanceTreeModel, Node, ProblemFilterProxy, human_size
from .probe_dialog import ProbeDialog, map_summary
from .profiles_ui import ProfileListModel, ProfilesDialog
from .progress import ProgressTracker
from .qtcompat import emit
from .throughput import ThroughputPlot
from .workers import GuiGate, ScanWorker, ThreadPool

LOGGER = logging.getLogger(__name__)

BLUE_TEXT, GREEN_TEXT, RED_TEXT = "color:#2563eb;", "color:#15803d;", "color:#b91c1c;"

#: What the local test PACS's "Accepts" choices do.
ACCEPT_TIPS = {
    "everything": "Accept every transfer syntax",
    "implicit": "Rehearse fallback: only Implicit VR Little Endian; compressed files are decompressed before sending",
    "uncompressed": "Only uncompressed syntaxes",
}


class MainWindow(QMainWindow):
    """DICOM Courier's main window.

    Args:
        store: the PACS profiles (loaded).
        log_buffer: the logging handler whose records the log pane shows.
        data_dir: where the local test PACS writes what it receives.
        parent: the owning widget.
        settings_path: the INI file the layout (and dismissed interrupted jobs) are kept in (None: not kept).
        journal_path: the send journal every send is recorded in (None: no journal).

    Attributes:
        scan_controller, send_controller, plan_controller, probe_controller, resume_controller,
        local_pacs_controller, echo_controller, report_controller: the window's concerns
        (see :mod:`ui.controllers`); their signals say when work starts and ends.

    Signals:
        confirmation_requested(object): the plan asks before sending; the (non-modal) QMessageBox
            (:attr:`confirm_box`, with :attr:`confirm_send_button` and :attr:`confirm_cancel_button`).
    """

    confirmation_requested = Signal(object)

    def __init__(
        self,
        store: ProfileStore,
        log_buffer: LogBuffer,
        data_dir: str,
        parent: QWidget | None = None,
        settings_path: str | None = None,
        journal_path: str | None = None,
    ):
        super().__init__(parent)
        self.settings_path = settings_path
        self.journal_path = journal_path
        self.setWindowTitle("DICOM Courier")
        self.setAcceptDrops(True)
        self.store = store
        self.data_dir = data_dir
        self.pool = ThreadPool(self)
        self.gate = GuiGate()  # the send worker steps aside while the tree paints (see GuiGate)
        self.profiles = ProfileListModel(store, self)
        self.model = InstanceTreeModel(self)
        self.model.gate = self.gate
        self.proxy = ProblemFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.diag_model = DiagnosticsModel(self)
        self._build_controllers()
        self._pending_paths: list[str] = []
        self.confirm_box: QMessageBox | None = None
        self.probe_dialog: ProbeDialog | None = None

        self._build_actions()
        self._build_ui(log_buffer)
        self._build_menus()
        self.counts_timer = QTimer(self)
        self.counts_timer.setSingleShot(True)
        self.counts_timer.setInterval(200)
        self.counts_timer.timeout.connect(self._update_counts)
        self.model.contents_changed.connect(self.counts_timer.start)
        self.view.selection_changed.connect(self._update_send_button)
        self._connect_controllers()
        self._select_profile(store.last_used)
        self._update_counts()
        self.local_pacs_controller.refresh()
        self.resize(1500, 900)
        self.restore_view_state()
        if self.journal_path:
            QTimer.singleShot(0, self.resume_controller.check_interrupted_jobs)

    # -- construction ------------------------------------------------------------------------------

    def _build_controllers(self) -> None:
        pool = self.pool
        self.scan_controller = ScanController(self.model, pool, self.gate, self)
        self.local_pacs_controller = LocalPacsController(self.profiles, pool, self.data_dir, self)
        local = self.local_pacs_controller
        self.send_controller = SendController(self.model, self.diag_model, pool, self.gate, local, self.journal_path, self)
        self.resume_controller = ResumeController(
            self.model, self.store, self.send_controller, pool, self.journal_path, self.settings_path, self
        )
        self.plan_controller = PlanController(self.model, pool, local, self)
        self.probe_controller = ProbeController(self.profiles, pool, local, self)
        self.echo_controller = EchoController(pool, local, self)
        self.report_controller = ReportController(pool, self)

    def _connect_controllers(self) -> None:
        scan, send, resume = self.scan_controller, self.send_controller, self.resume_controller
        scan.scan_started.connect(self._on_scan_scan_started)
        scan.batch_added.connect(self._on_scan_batch_added)
        scan.scan_progressed.connect(self._on_scan_scan_progressed)
        scan.scan_finished.connect(self._on_scan_scan_finished)
        send.info_changed.connect(self._on_send_info_changed)
        send.busy_changed.connect(self._on_send_busy_changed)
        send.plan_filled.connect(self._on_send_plan_filled)
        send.confirmation_needed.connect(self._on_send_confirmation_needed)
        send.send_started.connect(self._on_send_send_started)
        send.progressed.connect(self._on_send_progressed)
        send.arrival_checked.connect(self._on_send_arrival_checked)
        send.send_finished.connect(self._on_send_send_finished)
        resume.interrupted_jobs_found.connect(self._on_resume_interrupted_jobs_found)
        resume.resume_prepared.connect(self._on_resume_resume_prepared)
        resume.resume_failed.connect(self._on_resume_resume_failed)
        resume.info_changed.connect(self._on_resume_info_changed)
        self.plan_controller.plan_started.connect(self._on_plan_plan_started)
        self.plan_controller.plan_finished.connect(self._on_plan_plan_finished)
        self.probe_controller.probe_started.connect(self._on_probe_probe_started)
        self.probe_controller.probe_progressed.connect(self._on_probe_probe_progressed)
        self.probe_controller.probe_finished.connect(self._on_probe_probe_finished)
        self.echo_controller.echo_started.connect(self._on_echo_echo_started)
        self.echo_controller.echo_finished.connect(self._on_echo_echo_finished)
        self.local_pacs_controller.running_changed.connect(self._on_local_pacs_running_changed)
        self.local_pacs_controller.accept_changed.connect(self._on_local_pacs_accept_changed)
        self.local_pacs_controller.status_changed.connect(self._on_local_pacs_status_changed)
        self.report_controller.report_written.connect(self._on_report_report_written)

    def _action(self, text: str, slot: Any, shortcut: Any = None, tip: str = "", checkable: bool = False) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.setCheckable(checkable)
        (a.toggled if checkable else a.triggered).connect(slot)
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        self._build_file_actions()
        self._build_send_actions()
        self._build_pacs_actions()
        self.act_cancel.setEnabled(False)
        self.act_retry.setEnabled(False)
        self.act_export.setEnabled(False)

    def _build_file_actions(self) -> None:
        keys = QKeySequence.StandardKey
        self.act_add_files = self._action(
            "Add files…",
            self.choose_files,
            keys.Open,
            "Add DICOM files or a DICOMDIR (Ctrl+O); you can also drop them on the window",
        )
        self.act_add_folder = self._action(
            "Add folder…", self.choose_folder, "Ctrl+Shift+O", "Add every file in a folder and its subfolders (Ctrl+Shift+O)"
        )
        self.act_remove = self._action(
            "Remove selected", self.remove_selected, keys.Delete, "Remove the selected rows from the list (Del)"
        )
        self.act_clear = self._action("Clear all", self.clear_all, "Ctrl+Shift+Backspace", "Empty the list")
        self.act_failed_only = self._action(
            "Show failed only",
            self.set_failed_only,
            "Ctrl+F",
            "Show only failed, not sent and unreadable files (Ctrl+F)",
            checkable=True,
        )
        self.act_export = self._action(
            "Export failure report…",
            self.choose_export,
            "Ctrl+E",
            "Write the failed and warned instances to HTML, CSV or JSON (Ctrl+E)",
        )
        self.act_copy = self._action(
            "Copy", self.copy_selected, keys.Copy, "Copy the selected files' states and reasons as tab-separated text (Ctrl+C)"
        )
        self.act_quit = self._action("Quit", self.close, keys.Quit)

    def _build_send_actions(self) -> None:
        self.act_send = self._action(
            "Send",
            self.send,
            "Ctrl+Return",
            "Send the selected studies/series, or everything when nothing is selected (Ctrl+Enter)",
        )
        self.act_plan = self._action(
            "Plan",
            self.plan,
            "Ctrl+Shift+P",
            "Work out what will happen to each selected instance before sending: as stored, "
            "converted, or blocked and why (asks the PACS; nothing is stored) (Ctrl+Shift+P)",
        )
        self.act_cancel = self._action(
            "Cancel", self.cancel_send, "Esc", "Stop after the current instance; the rest are marked 'not sent' (Esc)"
        )
        self.act_retry = self._action(
            "Retry failed", self.retry_failed, "Ctrl+R", "Send the failed and not-sent instances again (Ctrl+R)"
        )

    def _build_pacs_actions(self) -> None:
        self.act_test = self._action(
            "Test connection",
            self.test_connection,
            "Ctrl+T",
            "C-ECHO the selected PACS and show the round trip and accepted context (Ctrl+T)",
        )
        self.act_probe = self._action(
            "Probe",
            self.probe_used,
            "Ctrl+Shift+T",
            "Ask the PACS which SOP classes and transfer syntaxes it accepts: the classes "
            "of the loaded files (all storage classes when none are loaded) x every "
            "transfer syntax; nothing is stored (Ctrl+Shift+T)",
        )
        self.act_probe_all = self._action(
            "Probe all storage SOP classes",
            self.probe_all,
            None,
            "Probe every storage SOP class pynetdicom knows (about 170) x every transfer syntax; takes a few dozen associations",
        )
        self.act_show_map = self._action(
            "Show acceptance map…",
            self.show_saved_map,
            None,
            "Show the acceptance map saved with the selected profile by its last probe",
        )
        self.act_profiles = self._action(
            "Manage PACS profiles…",
            self.manage_profiles,
            "Ctrl+P",
            "Add, edit, duplicate, delete, import or export PACS profiles (Ctrl+P)",
        )
        self.act_scp = self._action(
            "Run local test PACS",
            self.local_pacs_controller.set_running,
            "Ctrl+Shift+L",
            "Start or stop the built-in Storage SCP on this computer (Ctrl+Shift+L)",
            checkable=True,
        )

    def _button(self, action: QAction, text: str | None = None) -> QPushButton:
        b = QPushButton(text or action.text(), self)
        b.setToolTip(action.toolTip())
        b.clicked.connect(action.trigger)
        action.enabledChanged.connect(b.setEnabled)
        b.setEnabled(action.isEnabled())
        return b

    def _build_ui(self, log_buffer: LogBuffer) -> None:
        central = QWidget(self)
        outer = QVBoxLayout(central)
        outer.setContentsMargins(8, 6, 8, 4)
        outer.setSpacing(6)
        outer.addLayout(self._build_header())
        outer.addLayout(self._build_progress_row())
        self.resume_banner = ResumeBanner(self)  # an interrupted job in the journal: offer to resume it
        self.resume_banner.resume_button.clicked.connect(self.resume_interrupted)
        self.resume_banner.dismiss_button.clicked.connect(self.dismiss_interrupted)
        outer.addWidget(self.resume_banner)
        outer.addWidget(self._build_summary_banner())
        outer.addWidget(self._build_panes(log_buffer), 1)
        self.setCentralWidget(central)
        self._build_status_bar()

    def _build_header(self) -> QHBoxLayout:
        """Files | PACS (selector, profiles, test, probe, result) | plan, send, cancel."""
        head = QHBoxLayout()
        for act in (self.act_add_files, self.act_add_folder, self.act_remove, self.act_clear):
            head.addWidget(self._button(act))
        head.addSpacing(18)
        head.addWidget(QLabel("PACS:", self))
        self.profile_box = QComboBox(self)
        self.profile_box.setModel(self.profiles)
        self.profile_box.setMinimumWidth(200)
        self.profile_box.setToolTip("The PACS to send to (Ctrl+P to manage profiles)")
        self.profile_box.currentIndexChanged.connect(self._on_profile_box_changed)
        head.addWidget(self.profile_box)
        edit = QPushButton("Profiles…", self)
        edit.setToolTip(self.act_profiles.toolTip())
        edit.clicked.connect(self.act_profiles.trigger)
        head.addWidget(edit)
        self.test_button = self._button(self.act_test)
        head.addWidget(self.test_button)
        self.probe_button = self._button(self.act_probe)
        head.addWidget(self.probe_button)
        self.echo_label = QLabel(self)
        self.echo_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        head.addWidget(self.echo_label, 1)
        head.addWidget(self._button(self.act_plan))
        self.send_button = self._button(self.act_send)
        self.send_button.setDefault(True)
        self.send_button.setStyleSheet("QPushButton{font-weight:bold;padding:4px 18px;}")
        head.addWidget(self.send_button)
        head.addWidget(self._button(self.act_cancel))
        return head

    def _build_progress_row(self) -> QHBoxLayout:
        prow = QHBoxLayout()
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%v / %m")
        self.progress.setMaximumWidth(420)
        self.progress_label = QLabel(
            "Drop DICOM files, folders or a DICOMDIR anywhere on this window, or use Add files / Add folder.", self
        )
        self.plot = ThroughputPlot(self)
        self.plot.setFixedWidth(380)
        prow.addWidget(self.progress)
        prow.addWidget(self.progress_label, 1)
        prow.addWidget(self.plot)
        return prow

    def _build_summary_banner(self) -> SummaryBanner:
        self.banner = SummaryBanner(self)
        self.failed_only_box = QCheckBox("Show failed only", self.banner)
        self.failed_only_box.setToolTip(self.act_failed_only.toolTip())
        self.failed_only_box.toggled.connect(self.act_failed_only.setChecked)
        self.act_failed_only.toggled.connect(self.failed_only_box.setChecked)
        self.banner.add_widget(self.failed_only_box)
        self.retry_button = self._button(self.act_retry)
        self.banner.add_widget(self.retry_button)
        self.banner.add_widget(self._button(self.act_export))
        return self.banner

    def _build_panes(self, log_buffer: LogBuffer) -> QSplitter:
        """The file tree over the diagnostics and log panes."""
        self.view = FileTreeView(self.model, self.proxy, self.gate, self)
        self.view.customContextMenuRequested.connect(self._on_view_context_menu_requested)
        self.view.doubleClicked.connect(self._on_view_double_clicked)
        self.diag_pane = DiagnosticsPane(self.diag_model, self)
        self.log_pane = LogPane(log_buffer, self)
        self.bottom = QSplitter(Qt.Orientation.Horizontal, self)
        self.bottom.addWidget(self.diag_pane)
        self.bottom.addWidget(self.log_pane)
        self.bottom.setStretchFactor(0, 3)
        self.bottom.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self.bottom)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        return self.splitter

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.scan_bar = QProgressBar(self)
        self.scan_bar.setRange(0, 0)
        self.scan_bar.setMaximumWidth(140)
        self.scan_bar.hide()
        self.counts_label = QLabel(self)
        self.scp_label = QLabel(self)
        sb.addWidget(self.counts_label, 1)
        sb.addPermanentWidget(self.scan_bar)
        sb.addPermanentWidget(self.scp_label)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        acts = (self.act_add_files, self.act_add_folder, None, self.act_remove, self.act_clear, None, self.act_export)
        for a in (*acts, None, self.act_quit):
            m.addSeparator() if a is None else m.addAction(a)
        m = mb.addMenu("&Send")
        for a in (self.act_plan, self.act_send, self.act_cancel, None, self.act_retry, self.act_failed_only):
            m.addSeparator() if a is None else m.addAction(a)
        m = mb.addMenu("&PACS")
        for a in (self.act_profiles, self.act_test, None, self.act_probe, self.act_probe_all, self.act_show_map):
            m.addSeparator() if a is None else m.addAction(a)
        self._build_local_pacs_menu(mb)
        self._build_view_menu(mb)
        m = mb.addMenu("&Help")
        about = QAction("About DICOM Courier", self)
        about.triggered.connect(lambda: show_about(self))
        m.addAction(about)

    def _build_local_pacs_menu(self, mb: QMenuBar) -> None:
        local = self.local_pacs_controller
        m = mb.addMenu("&Local test PACS")
        m.addAction(self.act_scp)
        accepts = m.addMenu("Accepts")
        accepts.setToolTipsVisible(True)
        self.scp_accept_group = QActionGroup(self)
        self.scp_accept_actions: dict[str, QAction] = {}
        for key, label in ACCEPT_CHOICES.items():
            a = QAction(label.capitalize(), self)
            a.setCheckable(True)
            a.setChecked(key == local.accept)
            a.setToolTip(ACCEPT_TIPS[key])
            a.triggered.connect(lambda _c=False, k=key: local.set_accept(k))
            self.scp_accept_group.addAction(a)
            accepts.addAction(a)
            self.scp_accept_actions[key] = a
        self.act_scp_keep = QAction("Keep received files", self)
        self.act_scp_keep.setCheckable(True)
        self.act_scp_keep.toggled.connect(local.set_keep_files)
        self.act_scp_keep.setToolTip(
            f"Write what the local test PACS receives to {local.store_dir} (off: it only counts; takes effect at the next start)"
        )
        m.addAction(self.act_scp_keep)
        m.setToolTipsVisible(True)
        use = QAction("Use the “Local test PACS” profile", self)
        use.triggered.connect(lambda: self._select_profile(self.store.local_test().name))
        m.addAction(use)

    def _build_view_menu(self, mb: QMenuBar) -> None:
        m = mb.addMenu("&View")
        self.act_show_diag = self._pane_action("Diagnostics pane", "Ctrl+D", self.diag_pane, m)
        self.act_show_log = self._pane_action("Log pane", "Ctrl+L", self.log_pane, m)
        m.addSeparator()
        m.addAction(self.act_failed_only)
        expand = QAction("Expand all", self)
        expand.triggered.connect(self.view.expandAll)
        collapse = QAction("Collapse all", self)
        collapse.triggered.connect(self.view.collapseAll)
        m.addAction(expand)
        m.addAction(collapse)

    def _pane_action(self, text: str, shortcut: str, pane: QWidget, menu: QMenu) -> QAction:
        a = QAction(text, self)
        a.setCheckable(True)
        a.setChecked(True)
        a.setShortcut(QKeySequence(shortcut))
        a.toggled.connect(pane.setVisible)
        self.addAction(a)
        menu.addAction(a)
        return a

    # -- the file tree -----------------------------------------------------------------------------

    @Slot(QModelIndex)
    def _on_view_double_clicked(self, index: QModelIndex) -> None:
        self.show_details(self.view.to_source(index))

    def show_details(self, index: QModelIndex) -> QMessageBox | None:
        """Show everything known about one file (the reason, status, conversion, notes) in a dialog."""
        box = details_box(self, index)
        if box is not None:
            box.open()
        return box

    @Slot()
    def copy_selected(self) -> str:
        """Put the selected files (or every file under selected rows) on the clipboard as TSV; returns the text."""
        chosen: dict[int, Node] = {}
        for idx in self.view.selected_source_indexes():
            for leaf in idx.internalPointer().leaves():
                chosen[leaf.uid] = leaf
        cols = (Col.STATE, Col.STATUS, Col.SENT_AS, Col.DETAILS)
        lines = ["\t".join(["file"] + [HEADERS_TEXT[c] for c in cols])]
        for _uid, leaf in sorted(chosen.items()):
            i = self.model.index_of(leaf)
            cells = [str(self.model.index(i.row(), c, i.parent()).data() or "") for c in cols]
            lines.append("\t".join([leaf.inst.path if leaf.inst else "", *cells]))
        text = "\n".join(lines) + "\n"
        if chosen:
            QGuiApplication.clipboard().setText(text)
            self.statusBar().showMessage(f"Copied {len(chosen)} file(s) to the clipboard", 5000)
        return text

    @Slot(object)
    def _on_view_context_menu_requested(self, pos: Any) -> None:
        menu = QMenu(self)
        index = self.view.indexAt(pos)
        if index.isValid():
            details = menu.addAction("Details…")
            details.triggered.connect(lambda: self.show_details(self.view.to_source(index)))
            menu.addSeparator()
        for a in (self.act_copy, None, self.act_send, self.act_retry, None, self.act_remove, None, self.act_failed_only):
            menu.addSeparator() if a is None else menu.addAction(a)
        menu.exec(self.view.viewport().mapToGlobal(pos))

    def set_failed_only(self, on: bool) -> None:
        """Show only problem rows (and their parents); see :meth:`FileTreeView.set_failed_only`."""
        if self.view.set_failed_only(on):
            self._update_send_button()

    # -- files -------------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        md = event.mimeData()
        if md.hasUrls() and any(u.isLocalFile() for u in md.urls()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        # nothing expensive in the handler: queue the paths, scan on a worker
        self._pending_paths.extend(paths)
        QTimer.singleShot(0, self._start_pending_scan)

    @Slot()
    def _start_pending_scan(self) -> None:
        paths, self._pending_paths = self._pending_paths, []
        if paths:
            self.add_paths(paths)

    @Slot()
    def choose_files(self) -> None:
        """Ask for files (DICOM or DICOMDIR) and add them."""
        paths, _ = QFileDialog.getOpenFileNames(self, "Add DICOM files", "", "All files (*)")
        if paths:
            self.add_paths(paths)

    @Slot()
    def choose_folder(self) -> None:
        """Ask for a folder and add every file below it."""
        path = QFileDialog.getExistingDirectory(self, "Add a folder")
        if path:
            self.add_paths([path])

    def add_paths(self, paths: list[str]) -> ScanWorker:
        """Scan `paths` on a worker; the tree fills as records arrive."""
        return self.scan_controller.add_paths(paths)

    @Slot(int)
    def _on_scan_scan_started(self, n_paths: int) -> None:
        self.scan_bar.show()
        self._set_info(f"Scanning {n_paths} path(s)…")

    @Slot(int)
    def _on_scan_batch_added(self, _n: int) -> None:
        with self.gate:
            if self.model.rowCount() <= 3:
                self.view.expandToDepth(1)

    @Slot(int)
    def _on_scan_scan_progressed(self, seen: int) -> None:
        self._set_info(f"Scanning… {seen} file(s) read")

    @Slot(int)
    def _on_scan_scan_finished(self, seen: int) -> None:
        if not self.scan_controller.busy:
            self.scan_bar.hide()
        self._update_counts()
        s = self.model.stats()
        self._set_info(
            f"Scan finished: {seen} file(s) read. {s['instances']} DICOM instance(s) ready to send"
            + (f", {s['bad']} not DICOM or unreadable (listed at the end with the reason)" if s["bad"] else "")
            + "."
        )

    @Slot()
    def remove_selected(self) -> None:
        """Remove the selected rows (not while sending)."""
        if not self.send_controller.sending:
            self.model.remove(self.view.selected_source_indexes())
            self._update_counts()

    @Slot()
    def clear_all(self) -> None:
        """Empty the list (not while sending)."""
        if not self.send_controller.sending:
            self.model.clear()
            self.banner.hide()
            self._update_counts()

    # -- counts and labels -------------------------------------------------------------------------

    def _set_info(self, text: str) -> None:
        """Show `text` in the progress row, unless a send's progress is there."""
        if not self.send_controller.sending:
            self.progress_label.setText(text)

    @Slot()
    def _update_counts(self) -> None:
        s = self.model.stats()
        if not s["files"]:
            self.counts_label.setText("No files yet - drop DICOM files, folders or a DICOMDIR on the window.")
        else:
            self.counts_label.setText(
                f"{s['files']} file(s): {s['instances']} DICOM instance(s) in {s['patients']} patient(s), "
                f"{s['studies']} study(ies), {s['series']} series, {human_size(s['bytes'])}"
                + (f"; {s['bad']} not DICOM or unreadable" if s["bad"] else "")
            )
        self._update_send_button()

    @Slot()
    def _update_send_button(self) -> None:
        sel = self.view.selected_source_indexes()
        n = len(self.model.sendable_under(sel)) if sel else self.model.stats()["instances"]
        self.send_button.setText(f"Send selected ({n})" if sel else f"Send all ({n})")
        busy = self.send_controller.busy
        self.act_send.setEnabled(n > 0 and not busy)
        self.act_plan.setEnabled(n > 0 and not busy and not self.plan_controller.busy)
        self.act_remove.setEnabled(not busy)
        self.act_clear.setEnabled(not busy)
        self.act_cancel.setEnabled(busy)
        retry = len(self.send_controller.retry_nodes())
        self.act_retry.setEnabled(retry > 0 and not busy)
        self.retry_button.setText(f"Retry failed ({retry})" if retry else "Retry failed")
        self.act_export.setEnabled(self.send_controller.last_job is not None and not busy)
        self.act_probe.setEnabled(not self.probe_controller.busy)
        self.act_probe_all.setEnabled(not self.probe_controller.busy)
        p = self.current_profile()
        self.act_show_map.setEnabled(bool(p is not None and p.acceptance_map))
        self.resume_banner.resume_button.setEnabled(not busy)

    def _show_result(self, label: QLabel, style: str, text: str, tip: str | None = None) -> None:
        label.setStyleSheet(style)
        label.setText(text)
        if tip is not None:
            label.setToolTip(tip)

    # -- profiles and the connection test ----------------------------------------------------------

    def current_profile(self) -> Profile | None:
        """The profile chosen in the selector."""
        return self.profiles.profile(self.profile_box.currentIndex())

    def _select_profile(self, name: str) -> None:
        row = self.profiles.row_of(name) if name else -1
        self.profile_box.setCurrentIndex(row if row >= 0 else 0)

    @Slot(int)
    def _on_profile_box_changed(self, row: int) -> None:
        p = self.profiles.profile(row)
        self.echo_label.clear()
        if hasattr(self, "act_show_map"):
            self.act_show_map.setEnabled(bool(p is not None and p.acceptance_map))
        if p is not None and p.name != self.store.last_used:
            self.store.last_used = p.name
            self.profiles._save()

    @Slot()
    def manage_profiles(self) -> None:
        """Open the profile manager."""
        current = self.current_profile()
        ProfilesDialog(self.profiles, self.pool, self).exec()
        self._select_profile(current.name if current else "")

    @Slot()
    def test_connection(self) -> None:
        """C-ECHO the selected PACS in the background."""
        p = self.current_profile()
        if p is not None:
            self.echo_controller.start(p)

    @Slot(object)
    def _on_echo_echo_started(self, p: Profile) -> None:
        self.act_test.setEnabled(False)
        self._show_result(self.echo_label, BLUE_TEXT, f"Testing {p.remote_ae_title}@{p.remote_host}:{p.remote_port}…")

    @Slot(object, object)
    def _on_echo_echo_finished(self, result: dict[str, Any] | None, error: str | None) -> None:
        self.act_test.setEnabled(True)
        p = self.echo_controller.profile or self.current_profile()
        if error is not None:
            self._show_result(self.echo_label, RED_TEXT, f"✗ {error}", error)
        elif result is not None:
            good = result.get("status") != "failure"
            self._show_result(self.echo_label, GREEN_TEXT if good else RED_TEXT, echo_line(result), format_echo(result))
        self.diag_model.echo_result(p.name if p else "?", result, error)

    # -- probe -------------------------------------------------------------------------------------

    def _used_sop_classes(self) -> list[str]:
        return [n.inst.sop_class_uid for n in self.model.leaves() if n.kind == "instance" and n.inst is not None]

    @Slot()
    def probe_used(self) -> bool:
        """Probe the SOP classes of the loaded files (every storage class when none is loaded)."""
        return self.start_probe("used" if self._used_sop_classes() else "all")

    @Slot()
    def probe_all(self) -> bool:
        """Probe every storage SOP class pynetdicom knows."""
        return self.start_probe("all")

    def start_probe(self, which: str = "used", profile: Profile | None = None, syntaxes: str = "all") -> bool:
        """Probe the chosen PACS on a worker; the map opens in a dialog and is saved with the profile."""
        p = profile or self.current_profile()
        return p is not None and self.probe_controller.start(p, which, self._used_sop_classes(), syntaxes)

    @Slot(object, int)
    def _on_probe_probe_started(self, p: Profile, n_classes: int) -> None:
        self._update_send_button()
        self._show_result(
            self.echo_label,
            BLUE_TEXT,
            f"Probing {p.remote_ae_title}@{p.remote_host}:{p.remote_port}: {n_classes} SOP class(es) x every transfer syntax…",
        )

    @Slot(int, int)
    def _on_probe_probe_progressed(self, done: int, total: int) -> None:
        self.echo_label.setText(f"Probing… association {done} of {total}")

    @Slot(object, object)
    def _on_probe_probe_finished(self, amap: AcceptanceMap | None, error: str | None) -> None:
        p = self.probe_controller.profile or self.current_profile()
        if error is not None or amap is None:
            self._show_result(self.echo_label, RED_TEXT, f"✗ Probe failed: {error}", error or "")
        else:
            accepted = sum(1 for e in amap.sop_classes.values() if e.get("accepted"))
            self._show_result(
                self.echo_label,
                GREEN_TEXT if accepted else RED_TEXT,
                f"{'✓' if accepted else '✗'} Probe: {accepted} of {len(amap.sop_classes)} SOP "
                "class(es) accepted - map saved with the profile",
                map_summary(amap),
            )
            self.show_map(amap, p.name if p else "")
        self._update_send_button()

    def show_map(self, amap: AcceptanceMap, name: str = "") -> ProbeDialog:
        """Show `amap` in the (non-modal) acceptance map dialog."""
        if self.probe_dialog is not None:
            self.probe_dialog.close()
            self.probe_dialog.deleteLater()
        self.probe_dialog = ProbeDialog(amap, name, self)
        self.probe_dialog.show()
        return self.probe_dialog

    @Slot()
    def show_saved_map(self) -> ProbeDialog | None:
        """Show the acceptance map saved with the selected profile."""
        p = self.current_profile()
        if p is None or not p.acceptance_map:
            return None
        try:
            amap = AcceptanceMap.from_dict(p.acceptance_map)
        except ValueError as exc:
            LOGGER.warning("The profile's saved acceptance map is unusable: %s", exc)
            return None
        return self.show_map(amap, p.name)

    # -- plan --------------------------------------------------------------------------------------

    @Slot()
    def plan(self) -> None:
        """Plan the selected instances (or all) against the chosen PACS, in the background."""
        self.start_plan(self.model.sendable_under(self.view.selected_source_indexes()))

    def start_plan(self, nodes: list[Node], profile: Profile | None = None) -> bool:
        """Run the pre-flight plan for `nodes`; the Plan column and the banner show the result."""
        p = profile or self.current_profile()
        if p is None or self.send_controller.sending:
            return False
        return self.plan_controller.start(nodes, p)

    @Slot(object, int)
    def _on_plan_plan_started(self, p: Profile, n: int) -> None:
        self._update_send_button()
        self._set_info(f"Planning {n} instance(s) against {p.name}…")

    @Slot(object, object)
    def _on_plan_plan_finished(self, plans: list[Any] | None, error: str | None) -> None:
        if plans is not None:
            self.view.show_column(Col.PLAN, 260)
            self.banner.show_plan(plans)
            self._set_info("Plan ready: see the Plan column.")
        else:
            self.banner.show_plan_error(error or "")
            self._set_info("Planning failed.")
        self._update_send_button()

    # -- sending -----------------------------------------------------------------------------------

    @Slot()
    def send(self) -> None:
        """Send the selected studies/series (or everything) to the chosen PACS."""
        self.start_send(self.model.sendable_under(self.view.selected_source_indexes()))

    @Slot()
    def retry_failed(self) -> None:
        """Send the failed, not-sent and unknown instances again."""
        self.start_send(self.send_controller.retry_nodes())

    def start_send(self, nodes: list[Node], profile: Profile | None = None, preflight: bool = True) -> bool:
        """Start a job for `nodes`; returns False when it cannot start (the reason is shown).

        With `preflight` the plan comes first and, when anything is blocked or would be
        converted lossily, a non-modal confirmation asks before sending (:attr:`confirm_box`);
        see :meth:`SendController.start`.
        """
        if self.send_controller.busy or not nodes:
            return False
        p = profile or self.current_profile()
        if p is None:
            return False
        errors = p.errors()
        if errors:
            QMessageBox.warning(
                self,
                "Cannot send",
                f"The profile “{p.name}” is not valid:\n" + "\n".join(f"• {k}: {v}" for k, v in errors.items()),
            )
            return False
        return self.send_controller.start(nodes, p, preflight)

    @Slot()
    def cancel_send(self) -> None:
        """Stop the running job after the current instance (or drop a send still waiting for its plan)."""
        if self.send_controller.sending:
            self.act_cancel.setEnabled(False)
        elif self.confirm_box is not None:
            self.confirm_box.reject()  # answered "no": nothing is sent
            return
        self.send_controller.cancel()

    @Slot(str)
    def _on_send_info_changed(self, text: str) -> None:
        self.progress_label.setText(text)

    @Slot(bool)
    def _on_send_busy_changed(self, _busy: bool) -> None:
        self._update_send_button()

    @Slot(object)
    def _on_send_plan_filled(self, _plans: list[Any]) -> None:
        self.view.show_column(Col.PLAN, 260)

    @Slot(object, object)
    def _on_send_confirmation_needed(self, plans: list[Any], p: Profile) -> None:
        box, self.confirm_send_button, self.confirm_cancel_button = confirmation_box(self, plans, p.name)
        box.finished.connect(self._on_confirm_box_finished)
        self.confirm_box = box
        box.open()
        emit(self.confirmation_requested, box)

    @Slot(int)
    def _on_confirm_box_finished(self, _result: int) -> None:
        box, self.confirm_box = self.confirm_box, None
        if box is None:
            return
        go = box.clickedButton() is self.confirm_send_button
        box.deleteLater()
        self.send_controller.confirm(go)

    @Slot(object, int)
    def _on_send_send_started(self, _job: SendRecord, n: int) -> None:
        self.banner.hide()
        self.plot.clear()
        self.progress.setRange(0, max(1, n))
        self.progress.setValue(0)
        self._update_send_button()

    @Slot(object)
    def _on_send_progressed(self, tracker: ProgressTracker) -> None:
        sending = self.send_controller.sending
        self.progress.setMaximum(max(1, tracker.total))
        self.progress.setValue(min(tracker.done, tracker.total))
        if self.send_controller.cancelling:
            return
        if sending or tracker.t_end is not None:
            self.progress_label.setText(tracker.text())
        if sending and tracker.done:
            ips, bps = tracker.rates()
            self.plot.add_point(tracker.elapsed_s, ips, bps)

    @Slot(object)
    def _on_send_arrival_checked(self, _info: dict[str, Any]) -> None:
        self.view.show_column(Col.VERIFIED, 80)

    @Slot(object)
    def _on_send_send_finished(self, job: SendRecord) -> None:
        self.local_pacs_controller.refresh()
        self.banner.show_send(job)
        self._update_send_button()

    # -- resume (send journal) ---------------------------------------------------------------------

    @Slot(object)
    def _on_resume_interrupted_jobs_found(self, jobs: list[Any]) -> None:
        self.resume_banner.show_jobs(jobs)
        self._update_send_button()

    @Slot()
    def resume_interrupted(self) -> bool:
        """Resume the first interrupted job: re-read its files on a worker, then send what is left."""
        if not self.resume_controller.resume():
            return False
        self.resume_banner.resume_button.setEnabled(False)
        return True

    @Slot(object)
    def _on_resume_resume_prepared(self, _plan: Any) -> None:
        self.resume_banner.hide()
        self.view.expandToDepth(0 if self.model.rowCount() > 3 else 1)

    @Slot(str)
    def _on_resume_resume_failed(self, msg: str) -> None:
        self.resume_banner.resume_button.setEnabled(True)
        self.resume_banner.show_error(msg)

    @Slot(str)
    def _on_resume_info_changed(self, text: str) -> None:
        self._set_info(text)

    @Slot()
    def dismiss_interrupted(self) -> None:
        """Hide the resume banner for the shown jobs (they stay in the journal; remembered with the layout)."""
        self.resume_controller.dismiss()
        self.resume_banner.hide()

    # -- local test PACS ---------------------------------------------------------------------------

    @Slot(bool)
    def _on_local_pacs_running_changed(self, running: bool) -> None:
        self.act_scp.blockSignals(True)
        self.act_scp.setChecked(running)
        self.act_scp.blockSignals(False)

    @Slot(str)
    def _on_local_pacs_accept_changed(self, key: str) -> None:
        a = self.scp_accept_actions.get(key)
        if a is not None and not a.isChecked():
            a.setChecked(True)

    @Slot(str, object)
    def _on_local_pacs_status_changed(self, text: str, tip: str | None) -> None:
        self.scp_label.setText(text)
        if tip is not None:
            self.scp_label.setToolTip(tip)

    # -- failure report ----------------------------------------------------------------------------

    @Slot()
    def choose_export(self) -> None:
        """Ask for a file and format, then write the failure report."""
        if self.send_controller.last_job is None:
            return
        dlg = ExportDialog(os.path.expanduser("~"), self)
        if dlg.exec() == QDialog.DialogCode.Accepted and dlg.path.text().strip():
            self.export_failure_report(dlg.path.text().strip(), dlg.omit.isChecked())

    def export_failure_report(self, path: str, omit_patient: bool = False) -> bool:
        """Write the last job's failure report to `path` (format from the extension) on a worker."""
        job = self.send_controller.last_job
        return job is not None and self.report_controller.export(job, path, omit_patient)

    @Slot(str, str)
    def _on_report_report_written(self, path: str, error: str) -> None:
        if error:
            QTimer.singleShot(0, lambda: QMessageBox.warning(self, "Export failure report", f"Cannot write {path}: {error}"))
            return
        self.statusBar().showMessage(f"Failure report written to {path}", 15000)
        self.banner.add_report_link(path)

    # -- shutdown ----------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Cancel work, stop the local test PACS and wait for every thread."""
        self.send_controller.shutdown()
        self.scan_controller.shutdown()
        scp = self.local_pacs_controller.detach()
        self.pool.shutdown()
        if scp is not None:
            scp.stop()
        self.log_pane.timer.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_view_state()
        self.shutdown()
        super().closeEvent(event)

    # -- window state (size, splitters, columns, panes; never data) --------------------------------

    def _settings(self) -> QSettings | None:
        return QSettings(self.settings_path, QSettings.Format.IniFormat) if self.settings_path else None

    def save_view_state(self) -> None:
        """Remember the window's geometry, splitters, columns and panes (an INI file beside the profiles)."""
        st_ = self._settings()
        if st_ is None:
            return
        self.view.remember_columns()
        st_.setValue("window/geometry", self.saveGeometry())
        st_.setValue("window/splitter", self.splitter.saveState())
        st_.setValue("window/bottom", self.bottom.saveState())
        st_.setValue("tree/widths", json.dumps({int(k): v for k, v in self.view.column_widths.items()}))
        st_.setValue("tree/hidden", json.dumps(sorted(int(c) for c in self.view.hidden_columns)))
        st_.setValue("panes/diagnostics", self.act_show_diag.isChecked())
        st_.setValue("panes/log", self.act_show_log.isChecked())
        st_.setValue("panes/log_level", self.log_pane.level)
        st_.setValue("local_pacs/accept", self.local_pacs_controller.accept)
        st_.setValue("local_pacs/keep", self.act_scp_keep.isChecked())
        st_.sync()

    def restore_view_state(self) -> None:
        """Restore what :meth:`save_view_state` saved (anything missing or broken is ignored)."""
        st_ = self._settings()
        if st_ is None:
            return
        try:
            if st_.value("window/geometry") is not None:
                self.restoreGeometry(st_.value("window/geometry"))
            if st_.value("window/splitter") is not None:
                self.splitter.restoreState(st_.value("window/splitter"))
            if st_.value("window/bottom") is not None:
                self.bottom.restoreState(st_.value("window/bottom"))
            widths = json.loads(str(st_.value("tree/widths", "{}")))
            self.view.column_widths.update({Col(int(k)): int(v) for k, v in widths.items() if int(k) in set(Col)})
            hidden = json.loads(str(st_.value("tree/hidden", "null")))
            if isinstance(hidden, list):
                self.view.hidden_columns = {Col(int(c)) for c in hidden if int(c) in set(Col) and c != Col.ITEM}
            self.view.apply_columns()
            self.act_show_diag.setChecked(str(st_.value("panes/diagnostics", "true")).lower() != "false")
            self.act_show_log.setChecked(str(st_.value("panes/log", "true")).lower() != "false")
            level = int(st_.value("panes/log_level", self.log_pane.level))
            if level in (10, 20, 30, 40):
                self.log_pane.set_level(level)
            self.act_scp_keep.setChecked(str(st_.value("local_pacs/keep", "false")).lower() == "true")
            accept = str(st_.value("local_pacs/accept", self.local_pacs_controller.accept))
            if accept in ACCEPT_CHOICES:
                self.local_pacs_controller.set_accept(accept, restart=False)
        except (ValueError, TypeError) as exc:
            LOGGER.warning("Ignoring the saved window layout: %s", exc)
