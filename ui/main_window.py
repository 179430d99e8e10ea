"""The main window: drop studies, choose a PACS, send, watch, retry, report.

Layout: a header row (file actions, the PACS selector with *Test connection*,
Send / Cancel), a progress row, a summary banner after a send, then a vertical
splitter with the file tree on top and, below, the diagnostics pane beside the
log pane. Every file or network operation runs on a worker thread
(:mod:`ui.workers`); slots here only update models and widgets.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSettings, QSize, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QPainter,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from core.convert import syntax_label
from core.echo import echo
from core.engine import JobResult
from core.events import InstanceFinished
from core.profiles import Profile, ProfileStore
from core.scan import ScannedInstance
from core.scp import ACCEPT_CHOICES, EmbeddedSCP
from core.send import Rerun, SendOptions, SendRequest

from . import states as st
from .diagnostics import DiagnosticsModel, DiagnosticsPane
from .failure_report import build_failure_report, report_format, write_failure_report
from .logpane import LogBuffer, LogPane
from .models import HEADERS as HEADERS_TEXT
from .models import Col, InstanceTreeModel, Node, ProblemFilterProxy, human_size
from .probe_dialog import ProbeDialog, map_summary
from .profiles_ui import ProfileListModel, ProfilesDialog, format_echo
from .progress import ProgressTracker, format_duration
from .qtcompat import emit
from .throughput import ThroughputPlot
from .workers import GuiGate, ProbeWorker, ScanWorker, SendWorker, TaskWorker, ThreadPool

LOGGER = logging.getLogger(__name__)

#: Seconds between batches of per-instance events from the send worker (see EngineEventAdapter).
EVENT_BATCH_S = 0.1
#: Rows marked "queued" per turn of the event loop when a send starts.
QUEUE_CHUNK = 2500

_STATE_OF = {s.value: s for s in (st.STORED, st.WARNING, st.FAILED, st.NOT_SENT, st.UNKNOWN, st.SKIPPED)}


@dataclass
class SendRecord:
    """One send job as the window saw it (for the summary, Retry failed and the report)."""

    job_id: str
    profile: Profile
    nodes: list[Node]
    started: float = field(default_factory=time.time)
    finished: float = 0.0
    outcomes: dict[int, dict[str, Any]] = field(default_factory=dict)
    associations: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cancelled: bool = False
    by_index: dict[int, Node] = field(default_factory=dict)
    arrival: dict[str, Any] = field(default_factory=dict)
    resumed: bool = False
    plan_summary: str = ""

    def __post_init__(self) -> None:
        if not self.by_index:
            self.by_index = dict(enumerate(self.nodes))


def _local_scp_start(port: int, accept: str, store_dir: str | None) -> EmbeddedSCP:
    """Start the embedded SCP on `port`, or on a free port when it is taken (worker thread)."""
    try:
        return EmbeddedSCP(port, "COURIER", store_dir, accept).start()
    except OSError:
        LOGGER.info("Port %d is in use; the local test PACS takes a free port instead", port)
        return EmbeddedSCP(0, "COURIER", store_dir, accept).start()


class FileTreeView(QTreeView):
    """The file tree; when empty it says what to do."""

    gate: Any = contextlib.nullcontext()  # MainWindow sets its GuiGate

    HINT = (
        "Drop DICOM files, folders or a DICOMDIR here\n(or use Add files… / Add folder…)\n\n"
        "No PACS yet? Choose “Local test PACS” and press Send:\nthe built-in test PACS starts by itself."
    )

    def dataChanged(
        self,
        topLeft: QModelIndex | QPersistentModelIndex,
        bottomRight: QModelIndex | QPersistentModelIndex,  # noqa: N803
        roles: Any = (),
    ) -> None:
        # A changed range repaints the whole viewport; while a send runs most changes are to rows
        # that are scrolled out of view or folded away, and each repaint calls into Python per cell.
        if topLeft.isValid() and bottomRight.isValid() and topLeft.parent() == bottomRight.parent():
            first, last = self.visualRect(topLeft), self.visualRect(bottomRight)
            if first.isEmpty() and last.isEmpty() and not self.isExpanded(topLeft.parent()) and topLeft.parent().isValid():
                return  # folded away
            if not last.isEmpty() and last.bottom() < 0:
                return  # above the viewport
            if not first.isEmpty() and first.top() > self.viewport().height():
                return  # below the viewport
            if topLeft != bottomRight and not first.isEmpty() and not last.isEmpty():
                # QAbstractItemView repaints the whole viewport for any range; repaint only the
                # changed cells (rows and columns), so a paint during a send enters Python for
                # far fewer cells (there are no editors to refresh)
                self.viewport().update(first.united(last))
                return
        super().dataChanged(topLeft, bottomRight, roles)

    def paintEvent(self, event: Any) -> None:
        with self.gate:
            super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0:
            p = QPainter(self.viewport())
            p.setPen(self.palette().placeholderText().color())
            f = p.font()
            f.setPointSizeF(f.pointSizeF() * 1.25)
            p.setFont(f)
            p.drawText(self.viewport().rect(), int(Qt.AlignmentFlag.AlignCenter), self.HINT)
            p.end()


class ExportDialog(QDialog):
    """Asks where to write the failure report, in which format, and whether to leave patient data out."""

    def __init__(self, default_dir: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export failure report")
        self.fmt = QComboBox(self)
        for label, ext in (
            ("HTML page (opens in any browser)", "html"),
            ("CSV (spreadsheet)", "csv"),
            ("JSON (for scripts)", "json"),
        ):
            self.fmt.addItem(label, ext)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = QLineEdit(os.path.join(default_dir, f"courier-failures-{stamp}.html"), self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        self.fmt.currentIndexChanged.connect(self._on_fmt_changed)
        self.omit = QCheckBox("Leave patient names and IDs out of the report", self)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format", self.fmt)
        form.addRow("File", row)
        form.addRow("", self.omit)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(
            QLabel(
                "Lists every failed or warned instance with the reason, the PACS's comment, the hint,\n"
                "the transfer syntax tried and the fallback steps, plus the profile and the negotiation.",
                self,
            )
        )
        lay.addLayout(form)
        lay.addWidget(bb)
        self.resize(640, 200)

    def _on_fmt_changed(self, _i: int) -> None:
        base, _ext = os.path.splitext(self.path.text())
        self.path.setText(f"{base}.{self.fmt.currentData()}")

    def _browse(self) -> None:
        ext = self.fmt.currentData()
        path, _ = QFileDialog.getSaveFileName(self, "Export failure report", self.path.text(), f"{ext.upper()} (*.{ext})")
        if path:
            self.path.setText(path)


class MainWindow(QMainWindow):
    """DICOM Courier's main window.

    Args:
        store: the PACS profiles (loaded).
        log_buffer: the logging handler whose records the log pane shows.
        data_dir: where the local test PACS writes what it receives.

    Signals:
        scan_finished(int): a scan ended; files seen.
        send_finished(object): a send ended; its :class:`SendRecord`.
        echo_finished(object, object): ``(result dict or None, error or None)``.
        report_written(str, str): ``(path, error or "")``.
        plan_finished(object, object): ``(list of core.preflight.InstancePlan or None, error or None)``.
        local_scp_changed(bool): the local test PACS started (True) or stopped (False).
        probe_finished(object, object): ``(core.probe.AcceptanceMap or None, error or None)``.
        confirmation_requested(object): the plan asks before sending; the (non-modal) QMessageBox.
        interrupted_jobs_found(object): the journal's interrupted jobs at start (a list, maybe empty).

    Args:
        journal_path: the send journal every send is recorded in (None: no journal).
    """

    scan_finished = Signal(int)
    probe_finished = Signal(object, object)
    confirmation_requested = Signal(object)
    interrupted_jobs_found = Signal(object)
    plan_finished = Signal(object, object)
    send_finished = Signal(object)
    echo_finished = Signal(object, object)
    report_written = Signal(str, str)
    local_scp_changed = Signal(bool)

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
        self.tracker = ProgressTracker()
        self.scp: EmbeddedSCP | None = None
        self.scp_accept = "everything"
        self._scp_busy = False
        self._after_scp: list[Any] = []
        self._scans: list[ScanWorker] = []
        self._scan_seen = 0
        self._send: SendWorker | None = None
        self.last_job: SendRecord | None = None
        self._job: SendRecord | None = None
        self._pending_paths: list[str] = []
        self._planning = False
        self._plan_nodes: list[Node] = []
        self._preflight: tuple[list[Node], Profile] | None = None  # a send waiting for its plan
        self._preflight_gen = 0
        self._plan_summary = ""
        self._to_queue: tuple[list[Node], int, Any] = ([], 0, None)
        self._closing = False
        self.confirm_box: QMessageBox | None = None
        self._probe: ProbeWorker | None = None
        self.probe_dialog: ProbeDialog | None = None
        self.interrupted: list[Any] = []
        self._dismissed_jobs: set[str] = set()

        self._build_actions()
        self._build_ui(log_buffer)
        self._build_menus()
        self.counts_timer = QTimer(self)
        self.counts_timer.setSingleShot(True)
        self.counts_timer.setInterval(200)
        self.counts_timer.timeout.connect(self._update_counts)
        self.model.contents_changed.connect(self.counts_timer.start)
        self.view.selectionModel().selectionChanged.connect(self._update_send_button)
        self.progress_timer = QTimer(self)
        self.progress_timer.setInterval(250)
        self.progress_timer.timeout.connect(self._update_progress)
        self.scp_timer = QTimer(self)
        self.scp_timer.setInterval(1000)
        self.scp_timer.timeout.connect(self._update_scp_label)
        self._select_profile(store.last_used)
        self._update_counts()
        self._update_scp_label()
        self.resize(1500, 900)
        self.restore_view_state()
        if self.journal_path:
            QTimer.singleShot(0, self.check_interrupted_jobs)

    # -- construction ------------------------------------------------------------------------------

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
        self.act_add_files = self._action(
            "Add files…",
            self.choose_files,
            QKeySequence.StandardKey.Open,
            "Add DICOM files or a DICOMDIR (Ctrl+O); you can also drop them on the window",
        )
        self.act_add_folder = self._action(
            "Add folder…", self.choose_folder, "Ctrl+Shift+O", "Add every file in a folder and its subfolders (Ctrl+Shift+O)"
        )
        self.act_remove = self._action(
            "Remove selected",
            self.remove_selected,
            QKeySequence.StandardKey.Delete,
            "Remove the selected rows from the list (Del)",
        )
        self.act_clear = self._action("Clear all", self.clear_all, "Ctrl+Shift+Backspace", "Empty the list")
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
        self.act_failed_only = self._action(
            "Show failed only",
            self.set_failed_only,
            "Ctrl+F",
            "Show only failed, not sent and unreadable files (Ctrl+F)",
            checkable=True,
        )
        self.act_retry = self._action(
            "Retry failed", self.retry_failed, "Ctrl+R", "Send the failed and not-sent instances again (Ctrl+R)"
        )
        self.act_export = self._action(
            "Export failure report…",
            self.choose_export,
            "Ctrl+E",
            "Write the failed and warned instances to HTML, CSV or JSON (Ctrl+E)",
        )
        self.act_scp = self._action(
            "Run local test PACS",
            self.toggle_local_scp,
            "Ctrl+Shift+L",
            "Start or stop the built-in Storage SCP on this computer (Ctrl+Shift+L)",
            checkable=True,
        )
        self.act_copy = self._action(
            "Copy",
            self.copy_selected,
            QKeySequence.StandardKey.Copy,
            "Copy the selected files' states and reasons as tab-separated text (Ctrl+C)",
        )
        self.act_quit = self._action("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_cancel.setEnabled(False)
        self.act_retry.setEnabled(False)
        self.act_export.setEnabled(False)

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

        # header: files | PACS | send
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
        outer.addLayout(head)

        # progress row
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
        outer.addLayout(prow)

        # an interrupted job in the journal: offer to resume it (non-modal)
        self.resume_banner = QFrame(self)
        self.resume_banner.setObjectName("resumeBanner")
        self.resume_banner.setStyleSheet("#resumeBanner{background:#ede9fe;border-radius:4px;}")
        rrow = QHBoxLayout(self.resume_banner)
        rrow.setContentsMargins(10, 4, 10, 4)
        self.resume_label = QLabel(self.resume_banner)
        self.resume_label.setTextFormat(Qt.TextFormat.RichText)
        self.resume_label.setWordWrap(True)
        rrow.addWidget(self.resume_label, 1)
        self.resume_button = QPushButton("Resume", self.resume_banner)
        self.resume_button.setToolTip(
            "Send again what the interrupted job left unsent or in doubt (instances the PACS confirmed are not sent again)"
        )
        self.resume_button.clicked.connect(self.resume_interrupted)
        self.dismiss_button = QPushButton("Dismiss", self.resume_banner)
        self.dismiss_button.setToolTip("Hide this; the job stays in the journal (main.py resume can still send it)")
        self.dismiss_button.clicked.connect(self.dismiss_interrupted)
        rrow.addWidget(self.resume_button)
        rrow.addWidget(self.dismiss_button)
        self.resume_banner.hide()
        outer.addWidget(self.resume_banner)

        # summary banner
        self.banner = QFrame(self)
        self.banner.setObjectName("banner")
        brow = QHBoxLayout(self.banner)
        brow.setContentsMargins(10, 4, 10, 4)
        self.banner_label = QLabel(self.banner)
        self.banner_label.setTextFormat(Qt.TextFormat.RichText)
        self.banner_label.setWordWrap(True)
        self.banner_label.setOpenExternalLinks(True)
        brow.addWidget(self.banner_label, 1)
        self.failed_only_box = QCheckBox("Show failed only", self.banner)
        self.failed_only_box.setToolTip(self.act_failed_only.toolTip())
        self.failed_only_box.toggled.connect(self.act_failed_only.setChecked)
        self.act_failed_only.toggled.connect(self.failed_only_box.setChecked)
        brow.addWidget(self.failed_only_box)
        self.retry_button = self._button(self.act_retry)
        brow.addWidget(self.retry_button)
        brow.addWidget(self._button(self.act_export))
        self.banner.hide()
        outer.addWidget(self.banner)

        # tree
        self.view = FileTreeView(self)
        self.view.gate = self.gate
        # the view shows the model directly; the filter proxy only while "failed only" is on
        # (every proxied cell costs extra Python calls while painting, see set_failed_only)
        self.view.setModel(self.model)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setAllColumnsShowFocus(True)
        self.view.setIconSize(QSize(16, 16))
        hdr = self.view.header()
        hdr.setStretchLastSection(True)
        hdr.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        hdr.customContextMenuRequested.connect(self._on_header_menu)
        self._column_widths = {
            Col.ITEM: 235,
            Col.PATIENT_ID: 75,
            Col.DATE: 80,
            Col.MODALITY: 50,
            Col.COUNT: 40,
            Col.SOP_CLASS: 145,
            Col.SYNTAX: 110,
            Col.SIZE: 70,
            Col.STATE: 130,
            Col.STATUS: 110,
            Col.SENT_AS: 215,
            Col.PLAN: 260,
            Col.VERIFIED: 80,
        }
        self._hidden_columns = {Col.PLAN, Col.VERIFIED}
        self._apply_columns()
        hdr.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_tree_menu)
        self.view.doubleClicked.connect(self._on_view_double_clicked)
        self.view.setToolTip("")

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
        outer.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

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
        for a in (
            self.act_add_files,
            self.act_add_folder,
            None,
            self.act_remove,
            self.act_clear,
            None,
            self.act_export,
            None,
            self.act_quit,
        ):
            m.addSeparator() if a is None else m.addAction(a)
        m = mb.addMenu("&Send")
        for a in (self.act_plan, self.act_send, self.act_cancel, None, self.act_retry, self.act_failed_only):
            m.addSeparator() if a is None else m.addAction(a)
        m = mb.addMenu("&PACS")
        m.addAction(self.act_profiles)
        m.addAction(self.act_test)
        m.addSeparator()
        m.addAction(self.act_probe)
        m.addAction(self.act_probe_all)
        m.addAction(self.act_show_map)
        m = mb.addMenu("&Local test PACS")
        m.addAction(self.act_scp)
        accepts = m.addMenu("Accepts")
        accepts.setToolTipsVisible(True)
        self.scp_accept_group = QActionGroup(self)
        self.scp_accept_actions: dict[str, QAction] = {}
        for key, label in ACCEPT_CHOICES.items():
            a = QAction(label.capitalize(), self)
            a.setCheckable(True)
            a.setChecked(key == self.scp_accept)
            a.setToolTip(
                {
                    "everything": "Accept every transfer syntax",
                    "implicit": "Rehearse fallback: only Implicit VR Little Endian; compressed files are "
                    "decompressed before sending",
                    "uncompressed": "Only uncompressed syntaxes",
                }[key]
            )
            a.triggered.connect(lambda _c=False, k=key: self.set_scp_accept(k))
            self.scp_accept_group.addAction(a)
            accepts.addAction(a)
            self.scp_accept_actions[key] = a
        self.scp_store_dir = os.path.join(self.data_dir, "local-test-pacs")
        self.act_scp_keep = QAction("Keep received files", self)
        self.act_scp_keep.setCheckable(True)
        self.act_scp_keep.setToolTip(
            f"Write what the local test PACS receives to {self.scp_store_dir} "
            "(off: it only counts; takes effect at the next start)"
        )
        m.addAction(self.act_scp_keep)
        m.setToolTipsVisible(True)
        use = QAction("Use the “Local test PACS” profile", self)
        use.triggered.connect(lambda: self._select_profile(self.store.local_test().name))
        m.addAction(use)
        m = mb.addMenu("&View")
        self.act_show_diag = QAction("Diagnostics pane", self)
        self.act_show_diag.setCheckable(True)
        self.act_show_diag.setChecked(True)
        self.act_show_diag.setShortcut(QKeySequence("Ctrl+D"))
        self.act_show_diag.toggled.connect(self.diag_pane.setVisible)
        self.act_show_log = QAction("Log pane", self)
        self.act_show_log.setCheckable(True)
        self.act_show_log.setChecked(True)
        self.act_show_log.setShortcut(QKeySequence("Ctrl+L"))
        self.act_show_log.toggled.connect(self.log_pane.setVisible)
        for a in (self.act_show_diag, self.act_show_log):
            self.addAction(a)
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.act_failed_only)
        expand = QAction("Expand all", self)
        expand.triggered.connect(self.view.expandAll)
        collapse = QAction("Collapse all", self)
        collapse.triggered.connect(self.view.collapseAll)
        m.addAction(expand)
        m.addAction(collapse)
        m = mb.addMenu("&Help")
        about = QAction("About DICOM Courier", self)
        about.triggered.connect(self._show_about)
        m.addAction(about)

    def _show_about(self) -> None:
        """Name, version, purpose and the licences of the bundled libraries."""
        from html import escape

        from core.appinfo import app_info, licences

        info = app_info()
        rows = "".join(
            f"<tr><td>{escape(str(x.get('name', '')))}</td><td>{escape(str(x.get('version', '')))}</td>"
            f"<td>{escape(str(x.get('license', '')))}</td></tr>"
            for x in licences()
        )
        QMessageBox.about(
            self,
            "About DICOM Courier",
            f"<h3>{escape(info['name'])} {escape(info['version'])}</h3><p>{escape(info['description'])}</p>"
            "<p>MIT licence. The standalone app bundles the libraries below under their own "
            "licences (pylibjpeg-libjpeg is GPL-3.0).</p>"
            f"<table cellspacing='4'><tr><th align='left'>Library</th><th align='left'>Version</th>"
            f"<th align='left'>Licence</th></tr>{rows}</table>",
        )

    # -- menus on the tree --------------------------------------------------------------------------

    @Slot(object)
    def _on_header_menu(self, pos: Any) -> None:
        menu = QMenu(self)
        for col in Col:
            if col == Col.ITEM:
                continue
            a = menu.addAction(self.model.headerData(col, Qt.Orientation.Horizontal))
            a.setCheckable(True)
            a.setChecked(not self.view.isColumnHidden(col))
            a.toggled.connect(lambda on, c=col: self.view.setColumnHidden(c, not on))
        menu.exec(self.view.header().mapToGlobal(pos))

    @Slot(QModelIndex)
    def _on_view_double_clicked(self, index: QModelIndex) -> None:
        self.show_details(self.to_source(index))

    def show_details(self, index: QModelIndex) -> QMessageBox | None:
        """Show everything known about one file (the reason, status, conversion, notes) in a dialog."""
        if not index.isValid():
            return None
        node: Node = index.internalPointer()
        if node.kind not in ("instance", "bad") or node.inst is None:
            return None
        box = QMessageBox(self)
        box.setWindowTitle(os.path.basename(node.inst.path))
        box.setIcon(QMessageBox.Icon.Critical if node.state in st.PROBLEM_STATES else QMessageBox.Icon.Information)
        box.setText(f"<b>{st.LABELS.get(node.state, node.state)}</b>")
        box.setInformativeText(self.model.index(index.row(), Col.ITEM, index.parent()).data(Qt.ItemDataRole.ToolTipRole))
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()
        return box

    @Slot()
    def copy_selected(self) -> str:
        """Put the selected files (or every file under selected rows) on the clipboard as TSV; returns the text."""
        chosen: dict[int, Node] = {}
        for idx in self.selected_source_indexes():
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
    def _on_tree_menu(self, pos: Any) -> None:
        menu = QMenu(self)
        index = self.view.indexAt(pos)
        if index.isValid():
            details = menu.addAction("Details…")
            details.triggered.connect(lambda: self.show_details(self.to_source(index)))
            menu.addSeparator()
        for a in (self.act_copy, None, self.act_send, self.act_retry, None, self.act_remove, None, self.act_failed_only):
            menu.addSeparator() if a is None else menu.addAction(a)
        menu.exec(self.view.viewport().mapToGlobal(pos))

    # -- files -----------------------------------------------------------------------------------------

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
        worker = ScanWorker(paths, gate=self.gate)
        worker.batch_scanned.connect(self._on_scan_batch_scanned)
        worker.progressed.connect(self._on_scan_progressed)
        worker.finished.connect(self._on_scan_finished)
        self._scans.append(worker)
        self.scan_bar.show()
        self._set_info(f"Scanning {len(paths)} path(s)…")
        LOGGER.info("Scanning %d path(s)", len(paths))
        self.pool.start(worker, "scan")
        return worker

    @Slot(object)
    def _on_scan_batch_scanned(self, batch: list[ScannedInstance]) -> None:
        with self.gate:
            self.model.add_instances(batch)
            if self.model.rowCount() <= 3:
                self.view.expandToDepth(1)

    @Slot(int)
    def _on_scan_progressed(self, seen: int) -> None:
        self._set_info(f"Scanning… {seen} file(s) read")

    @Slot(int)
    def _on_scan_finished(self, seen: int) -> None:
        worker = self.sender()
        self._scans = [w for w in self._scans if w is not worker]
        if not self._scans:
            self.scan_bar.hide()
        self._update_counts()
        s = self.model.stats()
        self._set_info(
            f"Scan finished: {seen} file(s) read. {s['instances']} DICOM instance(s) ready to send"
            + (f", {s['bad']} not DICOM or unreadable (listed at the end with the reason)" if s["bad"] else "")
            + "."
        )
        LOGGER.info("Scan finished: %d file(s)", seen)
        emit(self.scan_finished, seen)

    @Slot()
    def remove_selected(self) -> None:
        """Remove the selected rows (not while sending)."""
        if self._send is not None:
            return
        idx = [self.to_source(i) for i in self.view.selectionModel().selectedRows(0)]
        self.model.remove(idx)
        self._update_counts()

    @Slot()
    def clear_all(self) -> None:
        """Empty the list (not while sending)."""
        if self._send is None:
            self.model.clear()
            self.banner.hide()
            self._update_counts()

    def selected_source_indexes(self) -> list[QModelIndex]:
        """Selected rows as indexes of the tree model."""
        return [self.to_source(i) for i in self.view.selectionModel().selectedRows(0)]

    # -- counts and labels -------------------------------------------------------------------------

    def _set_info(self, text: str) -> None:
        if self._send is None:
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
    def _update_send_button(self, *_a: Any) -> None:
        sel = self.selected_source_indexes()
        n = len(self.model.sendable_under(sel)) if sel else self.model.stats()["instances"]
        self.send_button.setText(f"Send selected ({n})" if sel else f"Send all ({n})")
        busy = self._send is not None or self._preflight is not None
        self.act_send.setEnabled(n > 0 and not busy)
        self.act_plan.setEnabled(n > 0 and not busy and not self._planning)
        self.act_remove.setEnabled(not busy)
        self.act_clear.setEnabled(not busy)
        self.act_cancel.setEnabled(busy)
        retry = sum(1 for n_ in self.model.leaves() if n_.state in st.RETRY_STATES)
        self.act_retry.setEnabled(retry > 0 and not busy)
        self.retry_button.setText(f"Retry failed ({retry})" if retry else "Retry failed")
        self.act_export.setEnabled(self.last_job is not None and not busy)
        self.act_probe.setEnabled(self._probe is None)
        self.act_probe_all.setEnabled(self._probe is None)
        p = self.current_profile()
        self.act_show_map.setEnabled(bool(p is not None and p.acceptance_map))
        self.resume_button.setEnabled(not busy)

    # -- profiles ----------------------------------------------------------------------------------

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
        if p is None:
            return
        errors = p.errors()
        if errors:
            self._show_echo(None, "the profile is not valid: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
            return
        self.act_test.setEnabled(False)
        self.echo_label.setStyleSheet("color:#2563eb;")
        self.echo_label.setText(f"Testing {p.remote_ae_title}@{p.remote_host}:{p.remote_port}…")
        worker = TaskWorker(echo, p.to_config_dict())
        worker.succeeded.connect(self._on_echo_succeeded)
        worker.failed.connect(self._on_echo_failed)
        self._echo_profile = p
        self.pool.start(worker, "echo")

    @Slot(object)
    def _on_echo_succeeded(self, result: dict[str, Any]) -> None:
        self._show_echo(result, None)

    @Slot(object)
    def _on_echo_failed(self, exc: Exception) -> None:
        msg = str(exc)
        p = getattr(self, "_echo_profile", None)
        if p is not None and p.is_local_test and self.scp is None:
            msg += " - the local test PACS is not running: start it from the Local test PACS menu (Ctrl+Shift+L)"
        self._show_echo(None, msg)

    def _show_echo(self, result: dict[str, Any] | None, error: str | None) -> None:
        self.act_test.setEnabled(True)
        p = getattr(self, "_echo_profile", None) or self.current_profile()
        name = p.name if p else "?"
        if error is not None:
            self.echo_label.setStyleSheet("color:#b91c1c;")
            self.echo_label.setText(f"✗ {error}")
            self.echo_label.setToolTip(error)
        else:
            assert result is not None
            good = result.get("status") != "failure"
            self.echo_label.setStyleSheet("color:#15803d;" if good else "color:#b91c1c;")
            neg = result.get("negotiation") or {}
            acc = (neg.get("accepted") or [{}])[0]
            ctx = f" - accepted {syntax_label(acc.get('transfer_syntax'))}" if acc.get("transfer_syntax") else ""
            info = result.get("tls") or {}
            tls = f" - {info.get('protocol') or 'TLS'}" if info.get("tls") else ""
            if info.get("expires_soon"):
                tls += f" (certificate expires in {info.get('days_left')} days)"
            self.echo_label.setText(
                f"{'✓' if good else '✗'} C-ECHO {result.get('message', '')}: {result.get('rtt_ms', 0):.1f} ms{ctx}{tls}"
            )
            self.echo_label.setToolTip(format_echo(result))
        self.diag_model.echo_result(name, result, error)
        emit(self.echo_finished, result, error)

    # -- probe -------------------------------------------------------------------------------------

    @Slot()
    def probe_used(self) -> bool:
        """Probe the SOP classes of the loaded files (every storage class when none is loaded)."""
        used = [n.inst.sop_class_uid for n in self.model.leaves() if n.kind == "instance" and n.inst is not None]
        return self.start_probe("used" if used else "all")

    @Slot()
    def probe_all(self) -> bool:
        """Probe every storage SOP class pynetdicom knows."""
        return self.start_probe("all")

    def start_probe(self, which: str = "used", profile: Profile | None = None, syntaxes: str = "all") -> bool:
        """Probe the chosen PACS on a worker; the map opens in a dialog and is saved with the profile."""
        from core.probe import resolve_sop_classes

        p = profile or self.current_profile()
        if p is None or self._probe is not None:
            return False
        if p.errors():
            self._show_probe(None, "the profile is not valid: " + "; ".join(f"{k}: {v}" for k, v in p.errors().items()))
            return False
        if p.is_local_test and self.scp is None:
            self._after_scp.append(lambda: self.start_probe(which, None, syntaxes))
            self.start_local_scp()
            return True
        used = [n.inst.sop_class_uid for n in self.model.leaves() if n.kind == "instance" and n.inst is not None]
        try:
            classes = resolve_sop_classes(which, used)
        except ValueError as exc:
            self._show_probe(None, str(exc))
            return False
        worker = ProbeWorker(p.to_config_dict(), classes, syntaxes)
        worker.progressed.connect(self._on_probe_progressed)
        worker.succeeded.connect(self._on_probe_succeeded)
        worker.failed.connect(self._on_probe_failed)
        self._probe = worker
        self._probe_profile = p
        self._update_send_button()
        self.echo_label.setStyleSheet("color:#2563eb;")
        self.echo_label.setText(
            f"Probing {p.remote_ae_title}@{p.remote_host}:{p.remote_port}: {len(classes)} SOP class(es) x every transfer syntax…"
        )
        LOGGER.info("Probing %s@%s:%s (%d SOP classes)", p.remote_ae_title, p.remote_host, p.remote_port, len(classes))
        self.pool.start(worker, "probe")
        return True

    @Slot(int, int)
    def _on_probe_progressed(self, done: int, total: int) -> None:
        self.echo_label.setText(f"Probing… association {done} of {total}")

    @Slot(object)
    def _on_probe_succeeded(self, amap: Any) -> None:
        self._show_probe(amap, None)

    @Slot(object)
    def _on_probe_failed(self, exc: Exception) -> None:
        self._show_probe(None, getattr(exc, "message", None) or str(exc))

    def _show_probe(self, amap: Any, error: str | None) -> None:
        self._probe = None
        p = getattr(self, "_probe_profile", None) or self.current_profile()
        if error is not None or amap is None:
            self.echo_label.setStyleSheet("color:#b91c1c;")
            self.echo_label.setText(f"✗ Probe failed: {error}")
            self.echo_label.setToolTip(error or "")
            LOGGER.warning("Probe failed: %s", error)
        else:
            accepted = sum(1 for e in amap.sop_classes.values() if e.get("accepted"))
            self.echo_label.setStyleSheet("color:#15803d;" if accepted else "color:#b91c1c;")
            self.echo_label.setText(
                f"{'✓' if accepted else '✗'} Probe: {accepted} of {len(amap.sop_classes)} SOP "
                "class(es) accepted - map saved with the profile"
            )
            self.echo_label.setToolTip(map_summary(amap))
            if p is not None:
                row = self.profiles.row_of(p.name)
                current = self.profiles.profile(row) if row >= 0 else None
                if current is not None:
                    self.profiles.replace_at(row, replace(current, acceptance_map=amap.to_dict()))
            self.show_map(amap, p.name if p else "")
        self._update_send_button()
        emit(self.probe_finished, amap, error)

    def show_map(self, amap: Any, name: str = "") -> ProbeDialog:
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
        from core.probe import AcceptanceMap

        p = self.current_profile()
        if p is None or not p.acceptance_map:
            return None
        try:
            amap = AcceptanceMap.from_dict(p.acceptance_map)
        except ValueError as exc:
            LOGGER.warning("The profile's saved acceptance map is unusable: %s", exc)
            return None
        return self.show_map(amap, p.name)

    # -- resume (send journal) ---------------------------------------------------------------------

    @Slot()
    def check_interrupted_jobs(self) -> None:
        """Look in the journal (on a worker) for a send whose process died; offer to resume it."""
        if not self.journal_path:
            return
        worker = TaskWorker(_interrupted_jobs, self.journal_path)
        worker.succeeded.connect(self._on_interrupted_succeeded)
        worker.failed.connect(self._on_interrupted_failed)
        self.pool.start(worker, "journal")

    def _remembered_dismissals(self) -> set[str]:
        st_ = self._settings()
        if st_ is None:
            return set()
        try:
            return {str(x) for x in json.loads(str(st_.value("journal/dismissed", "[]")))}
        except (ValueError, TypeError):
            return set()

    @Slot(object)
    def _on_interrupted_succeeded(self, jobs: list[Any]) -> None:
        dismissed = self._dismissed_jobs | self._remembered_dismissals()
        self.interrupted = [j for j in jobs if j.id not in dismissed]
        if self.interrupted:
            j = self.interrupted[0]
            c = j.counts
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(j.started))
            stored = c.get("stored", 0) + c.get("stored-warning", 0)
            doubt = c.get("in-flight", 0) + c.get("unknown", 0)
            more = f" ({len(self.interrupted) - 1} more interrupted job(s) in the journal)" if len(self.interrupted) > 1 else ""
            self.resume_label.setText(
                f"<b>A send was interrupted</b>: job {html.escape(j.id)} to {html.escape(j.profile or j.peer or '?')}, "
                f"started {when}: <b>{stored}</b> of {c.get('total', 0)} stored, <b>{j.resumable}</b> not sent"
                + (f" ({doubt} in doubt)" if doubt else "")
                + f". <i>Resume</i> sends only those.{more}"
            )
            self.resume_banner.show()
        else:
            self.resume_banner.hide()
        self._update_send_button()
        emit(self.interrupted_jobs_found, list(self.interrupted))

    @Slot(object)
    def _on_interrupted_failed(self, exc: Exception) -> None:
        LOGGER.warning("Cannot read the send journal %s: %s", self.journal_path, exc)
        emit(self.interrupted_jobs_found, [])

    @Slot()
    def resume_interrupted(self) -> bool:
        """Resume the first interrupted job: re-read its files on a worker, then send what is left."""
        if not self.interrupted or self._send is not None or self._preflight is not None or not self.journal_path:
            return False
        job = self.interrupted[0]
        self.resume_button.setEnabled(False)
        self._set_info(f"Preparing to resume job {job.id}…")
        worker = TaskWorker(_prepare_resume, self.journal_path, job.id)
        worker.succeeded.connect(self._on_resume_prepared)
        worker.failed.connect(self._on_resume_failed)
        self.pool.start(worker, "resume")
        return True

    @Slot(object)
    def _on_resume_prepared(self, plan: Any) -> None:
        from core.profiles import Profile as _Profile

        self.resume_banner.hide()
        self.interrupted = [j for j in self.interrupted if j.id != plan.job.id]
        insts = [it.inst for it in plan.items if it.inst is not None and it.inst.path]
        self.model.add_instances(insts)
        by_key = {n.key: n for n in self.model.leaves()}
        by_index: dict[int, Node] = {}
        for it in plan.items:
            if it.inst is not None and it.inst.path:
                node = by_key.get(os.path.normpath(os.path.abspath(it.inst.path)))
                if node is not None:
                    by_index[it.index] = node
        self.view.expandToDepth(0 if self.model.rowCount() > 3 else 1)
        name = plan.job.profile or plan.job.peer or "resumed job"
        p = self.store.get(name)
        try:
            same = p is not None and p.to_store_config().peer == plan.job.peer
        except ValueError:
            same = False
        if p is None or not same:
            p = _Profile.from_json({**plan.config, "name": name})
        if not plan.items:
            self._set_info(f"Job {plan.job.id}: nothing left to send.")
            return
        self._launch_send(list(by_index.values()), p, rerun=plan, by_index=by_index)

    @Slot(object)
    def _on_resume_failed(self, exc: Exception) -> None:
        self.resume_button.setEnabled(True)
        msg = f"Cannot resume: {exc}"
        self.resume_label.setText(
            self.resume_label.text().split("<br>")[0] + f"<br><span style='color:#b91c1c'>{html.escape(msg)}</span>"
        )
        LOGGER.error("%s", msg)

    @Slot()
    def dismiss_interrupted(self) -> None:
        """Hide the resume banner for the shown jobs (they stay in the journal; remembered with the layout)."""
        self._dismissed_jobs.update(j.id for j in self.interrupted)
        st_ = self._settings()
        if st_ is not None:
            keep = sorted(self._remembered_dismissals() | self._dismissed_jobs)[-200:]
            st_.setValue("journal/dismissed", json.dumps(keep))
            st_.sync()
        self.interrupted = []
        self.resume_banner.hide()

    # -- local test PACS ---------------------------------------------------------------------------

    @Slot(bool)
    def toggle_local_scp(self, on: bool) -> None:
        """Start or stop the local test PACS (menu action)."""
        if on and self.scp is None:
            self.start_local_scp()
        elif not on and self.scp is not None:
            self.stop_local_scp()

    def start_local_scp(self, accept: str | None = None, port: int | None = None) -> None:
        """Start the embedded Storage SCP on loopback (on a worker)."""
        if self._scp_busy or self.scp is not None:
            return
        if accept:
            self.set_scp_accept(accept, restart=False)
        prof = self.store.local_test()
        self._scp_busy = True
        self.scp_label.setText("Local test PACS: starting…")
        store_dir = self.scp_store_dir if self.act_scp_keep.isChecked() else None
        worker = TaskWorker(_local_scp_start, prof.remote_port if port is None else port, self.scp_accept, store_dir)
        worker.succeeded.connect(self._on_scp_started)
        worker.failed.connect(self._on_scp_failed)
        self.pool.start(worker, "scp-start")

    @Slot(object)
    def _on_scp_started(self, scp: EmbeddedSCP) -> None:
        self._scp_busy = False
        self.scp = scp
        prof = self.store.local_test()
        if prof.remote_port != scp.port:
            row = self.profiles.row_of(prof.name)
            self.profiles.replace_at(row, replace(prof, remote_port=scp.port))
        self.act_scp.blockSignals(True)
        self.act_scp.setChecked(True)
        self.act_scp.blockSignals(False)
        self.scp_timer.start()
        self._update_scp_label()
        LOGGER.info("Local test PACS running on 127.0.0.1:%d (accepts %s)", scp.port, self.scp_accept)
        emit(self.local_scp_changed, True)
        self._run_after_scp()

    @Slot(object)
    def _on_scp_failed(self, exc: Exception) -> None:
        self._scp_busy = False
        self.act_scp.blockSignals(True)
        self.act_scp.setChecked(False)
        self.act_scp.blockSignals(False)
        self._after_scp.clear()
        self.scp_label.setText(f"Local test PACS could not start: {exc}")
        LOGGER.error("Local test PACS could not start: %s", exc)
        emit(self.local_scp_changed, False)

    def stop_local_scp(self, then: Any = None) -> None:
        """Stop the embedded SCP (on a worker)."""
        scp, self.scp = self.scp, None
        self.scp_timer.stop()
        if scp is None:
            return
        self._scp_busy = True
        if then is not None:
            self._after_scp.append(then)
        worker = TaskWorker(scp.stop)
        worker.finished.connect(self._on_scp_stopped)
        self.pool.start(worker, "scp-stop")

    @Slot()
    def _on_scp_stopped(self) -> None:
        self._scp_busy = False
        self.act_scp.blockSignals(True)
        self.act_scp.setChecked(False)
        self.act_scp.blockSignals(False)
        self._update_scp_label()
        emit(self.local_scp_changed, False)
        self._run_after_scp()

    def _run_after_scp(self) -> None:
        todo, self._after_scp = self._after_scp, []
        for fn in todo:
            fn()

    def set_scp_accept(self, key: str, restart: bool = True) -> None:
        """Choose what the local test PACS accepts; restarts it when running."""
        self.scp_accept = key
        a = self.scp_accept_actions.get(key)
        if a is not None and not a.isChecked():
            a.setChecked(True)
        if restart and self.scp is not None:
            self.stop_local_scp(then=self.start_local_scp)
        self._update_scp_label()

    @Slot()
    def _update_scp_label(self) -> None:
        if self.scp is None:
            if not self._scp_busy:
                self.scp_label.setText("Local test PACS: off (Local test PACS menu)")
            return
        self.scp_label.setText(
            f"Local test PACS: running on 127.0.0.1:{self.scp.port}, accepts "
            f"{ACCEPT_CHOICES.get(self.scp_accept, self.scp_accept)}; "
            f"{len(self.scp.received)} received"
        )
        self.scp_label.setToolTip(
            f"Received files are written to {self.scp.store_dir}"
            if self.scp.store_dir
            else "Received instances are counted, not kept (Local test PACS › Keep received files)"
        )

    # -- sending -----------------------------------------------------------------------------------

    @Slot()
    def send(self) -> None:
        """Send the selected studies/series (or everything) to the chosen PACS."""
        sel = self.selected_source_indexes()
        self.start_send(self.model.sendable_under(sel))

    @Slot()
    def retry_failed(self) -> None:
        """Send the failed, not-sent and unknown instances again."""
        nodes = [n for n in self.model.leaves() if n.state in st.RETRY_STATES]
        self.start_send(nodes)

    def start_send(self, nodes: list[Node], profile: Profile | None = None, preflight: bool = True) -> bool:
        """Start a job for `nodes`; returns False when it cannot start (the reason is shown).

        With `preflight` the plan comes first (from the profile's saved acceptance map when
        it covers the files, else a quick negotiation): the Plan column fills, and when
        anything is blocked or would be converted lossily a non-modal confirmation asks
        before the first byte goes out (:attr:`confirm_box`).
        """
        if self._send is not None or self._preflight is not None or not nodes:
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
        if p.is_local_test and self.scp is None:
            self._set_info("Starting the local test PACS first…")
            self._after_scp.append(lambda: self.start_send(nodes, p, preflight))
            self.start_local_scp()
            return True
        if preflight:
            return self._start_preflight(list(nodes), p)
        return self._launch_send(list(nodes), p)

    def _start_preflight(self, nodes: list[Node], p: Profile) -> bool:
        self._preflight = (nodes, p)
        self._update_send_button()
        amap = saved_map_for(p)
        self._set_info(
            f"Planning {len(nodes)} instance(s) against {p.name}" + (" from its saved acceptance map…" if amap else "…")
        )
        self._preflight_gen += 1
        worker = TaskWorker(
            _tagged,
            self._preflight_gen,
            _plan,
            [n.inst for n in nodes],
            p.to_config_dict(),
            p.strategy,
            p.max_retries,
            p.parallel_associations,
            amap,
            False,
        )
        worker.succeeded.connect(self._on_preflight_succeeded)
        worker.failed.connect(self._on_preflight_failed)
        self.pool.start(worker, "preflight")
        return True

    @Slot(object)
    def _on_preflight_succeeded(self, tagged: tuple[int, list[Any]]) -> None:
        from core.preflight import needs_confirmation, summary_text

        gen, plans = tagged
        if self._preflight is None or gen != self._preflight_gen:
            return  # cancelled, or the plan of an earlier, cancelled send
        nodes, p = self._preflight
        self._fill_plan_column(nodes, plans)
        self._plan_summary = summary_text(plans)
        self._set_info(f"Plan: {self._plan_summary}.")
        if not needs_confirmation(plans):
            QTimer.singleShot(0, self._launch_after_preflight)  # let the plan column paint first
            return
        blocked = [pl for pl in plans if pl.plan == "blocked" or pl.lossy]
        reasons: dict[str, int] = {}
        for pl in blocked:
            reasons[pl.message] = reasons.get(pl.message, 0) + 1
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Send with blocked or lossy instances?")
        box.setText(f"<b>Plan</b> for {len(plans)} instance(s) to {html.escape(p.name)}: {html.escape(summary_text(plans))}.")
        box.setInformativeText(
            "\n".join(f"• {n} × {msg}" for msg, n in sorted(reasons.items(), key=lambda x: -x[1])[:6])
            + "\n\nBlocked instances will be reported as not sent. Send the rest?"
        )
        self.confirm_send_button = box.addButton("Send anyway", QMessageBox.ButtonRole.AcceptRole)
        self.confirm_cancel_button = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(self.confirm_cancel_button)
        box.finished.connect(self._on_confirm_box_finished)
        self.confirm_box = box
        self._set_info("Plan ready: waiting for confirmation (some instances are blocked or lossy).")
        box.open()
        emit(self.confirmation_requested, box)

    @Slot()
    def _launch_after_preflight(self) -> None:
        pending, self._preflight = self._preflight, None
        if pending is not None:
            self._launch_send(*pending)

    @Slot(int)
    def _on_confirm_box_finished(self, _result: int) -> None:
        box, self.confirm_box = self.confirm_box, None
        pending, self._preflight = self._preflight, None
        if box is None or pending is None:
            return
        go = box.clickedButton() is self.confirm_send_button
        box.deleteLater()
        if go:
            self._launch_send(*pending)
        else:
            self._set_info("Send cancelled after the plan: nothing was sent (see the Plan column).")
            self._update_send_button()

    @Slot(object)
    def _on_preflight_failed(self, exc: Exception) -> None:
        if getattr(exc, "tag", None) != self._preflight_gen:
            return
        pending, self._preflight = self._preflight, None
        if pending is None:
            return
        # the send will meet the same problem and report it per instance (and in the journal)
        LOGGER.info("No plan before sending (%s); sending anyway", exc)
        self._launch_send(*pending)

    def _fill_plan_column(self, nodes: list[Node], plans: list[Any]) -> None:
        self.model.set_plans(
            (node, plan.message + (f" ({len(plan.findings)} finding(s))" if plan.findings else ""))
            for node, plan in zip(nodes, plans, strict=False)
        )
        self.model.flush()
        self._show_column(Col.PLAN, 260)

    def _show_column(self, col: Col, width: int) -> None:
        if self.view.isColumnHidden(col):
            self._hidden_columns.discard(col)
            self.view.setColumnHidden(col, False)
            if self.view.columnWidth(col) < width // 2:
                self.view.setColumnWidth(col, width)

    def _launch_send(self, nodes: list[Node], p: Profile, rerun: Any = None, by_index: dict[int, Node] | None = None) -> bool:
        """Start the SendWorker for `nodes` (no plan, no questions)."""
        if self._send is not None:
            return False
        if rerun is not None:
            job = SendRecord(rerun.job.id, p, list(nodes), by_index=dict(by_index or {}), resumed=True)
            count, opts = len(rerun.items), rerun.options
            strategy, max_retries = opts.get("strategy", "standard"), int(opts.get("max_retries", 4))
            request = SendRequest(
                options=SendOptions(verify_arrival=bool(opts.get("verify_arrival", p.verify_arrival))),  # the rest: the job's
                journal_path=self.journal_path,
                rerun=Rerun(rerun.job.id, plan=rerun),
            )
        else:
            nodes = [n for n in nodes if n.inst is not None]
            try:
                config = p.to_store_config()
            except ValueError as exc:
                self._set_info(f"Cannot send: {exc}")
                return False
            job = SendRecord(uuid.uuid4().hex[:12], p, list(nodes), plan_summary=self._plan_summary)
            count, strategy, max_retries = len(nodes), p.strategy, p.max_retries
            request = SendRequest(
                config,
                instances=tuple(n.inst for n in nodes if n.inst is not None),
                options=SendOptions(p.strategy, p.max_retries, parallel=p.parallel_associations, verify_arrival=p.verify_arrival),
                journal_path=self.journal_path,
                profile=p.name,
                job_id=job.job_id,
                origin="gui",
            )
        worker = SendWorker(request, batch_s=EVENT_BATCH_S, gate=self.gate)
        worker.job_started.connect(self._on_send_job_started)
        worker.association_requested.connect(self._on_send_association_requested)
        worker.association_negotiated.connect(self._on_send_association_negotiated)
        worker.association_failed.connect(self._on_send_association_failed)
        worker.association_released.connect(self._on_send_association_released)
        worker.instance_started.connect(self._on_send_instance_started)
        worker.instance_finished.connect(self._on_send_instance_finished)
        worker.instances_batched.connect(self._on_send_instances_batched)
        worker.job_finished.connect(self._on_send_job_finished)
        worker.arrival_check_started.connect(self._on_send_arrival_check_started)
        worker.arrival_checked.connect(self._on_send_arrival_checked)
        worker.result_ready.connect(self._on_send_result_ready)
        self._send = worker
        self._job = job
        self.banner.hide()
        verb = "Resume" if rerun is not None else "Send"
        self.diag_model.begin_job(
            f"{verb} {time.strftime('%H:%M:%S')}",
            f"{count} instance(s) to {p.name} ({p.remote_ae_title}@{p.remote_host}:"
            f"{p.remote_port}), strategy {strategy}, up to {max_retries} fallback "
            f"step(s), job {job.job_id}" + (f"; plan: {job.plan_summary}" if job.plan_summary else ""),
        )
        self._plan_summary = ""
        self.tracker.reset(count, sum(n.size for n in job.by_index.values()))
        self.plot.clear()
        self.progress.setRange(0, max(1, count))
        self.progress.setValue(0)
        self.progress_label.setText(f"Connecting to {p.remote_ae_title}@{p.remote_host}:{p.remote_port}…")
        self.progress_timer.start()
        self._update_send_button()
        LOGGER.info("%s %s: %d instance(s) to %s@%s:%s", verb, job.job_id, count, p.remote_ae_title, p.remote_host, p.remote_port)
        # mark the rows "queued" a few thousand per turn of the event loop, then start the worker
        self._to_queue = (list(job.by_index.values()), 0, worker)
        self._queue_rows()
        return True

    @Slot()
    def _queue_rows(self) -> None:
        nodes, start, worker = self._to_queue
        end = start + QUEUE_CHUNK
        self.model.set_states(nodes[start:end], st.QUEUED)
        if end < len(nodes) and worker is self._send:
            self._to_queue = (nodes, end, worker)
            QTimer.singleShot(0, self._queue_rows)
            return
        self._to_queue = ([], 0, None)
        if worker is self._send and worker is not None and not self._closing:
            self.model.flush()
            self.pool.start(worker, "send")

    @Slot(int)
    def _on_send_arrival_check_started(self, n: int) -> None:
        self.progress_label.setText(f"Checking that the PACS holds the {n} stored instance(s)…")

    @Slot(object)
    def _on_send_arrival_checked(self, info: dict[str, Any]) -> None:
        job = self._job
        if job is None:
            return
        job.arrival = dict(info)
        for idx, state in info.get("verified", {}).items():
            node = job.by_index.get(idx)
            o = job.outcomes.get(idx)
            if o is not None:
                o["verified"] = state
            if node is not None and node.outcome is not None:
                self.model.set_state(node, node.state, {**node.outcome, "verified": state})
        for m in info.get("messages", []):
            LOGGER.info("Arrival check: %s", m)
        self._show_column(Col.VERIFIED, 80)

    @Slot()
    def plan(self) -> None:
        """Plan the selected instances (or all) against the chosen PACS, in the background."""
        self.start_plan(self.model.sendable_under(self.selected_source_indexes()))

    def start_plan(self, nodes: list[Node], profile: Profile | None = None) -> bool:
        """Run the pre-flight plan for `nodes`; the Plan column and the banner show the result."""
        p = profile or self.current_profile()
        if p is None or not nodes or self._planning or self._send is not None:
            return False
        if p.errors():
            self._show_plan(None, "the profile is not valid: " + "; ".join(f"{k}: {v}" for k, v in p.errors().items()))
            return False
        if p.is_local_test and self.scp is None:
            self._after_scp.append(lambda: self.start_plan(nodes, p))
            self.start_local_scp()
            return True
        self._planning = True
        self._plan_nodes = list(nodes)
        self._update_send_button()
        self._set_info(f"Planning {len(nodes)} instance(s) against {p.name}…")
        worker = TaskWorker(
            _plan,
            [n.inst for n in nodes],
            p.to_config_dict(),
            p.strategy,
            p.max_retries,
            p.parallel_associations,
            saved_map_for(p),
            True,
        )
        worker.succeeded.connect(self._on_plan_succeeded)
        worker.failed.connect(self._on_plan_failed)
        self.pool.start(worker, "plan")
        return True

    @Slot(object)
    def _on_plan_succeeded(self, plans: list[Any]) -> None:
        self._show_plan(plans, None)

    @Slot(object)
    def _on_plan_failed(self, exc: Exception) -> None:
        self._show_plan(None, str(exc))

    def _show_plan(self, plans: list[Any] | None, error: str | None) -> None:
        self._planning = False
        nodes, self._plan_nodes = self._plan_nodes, []
        if plans is not None:
            from core.preflight import needs_confirmation, summary_text

            self._fill_plan_column(nodes, plans)
            warn = needs_confirmation(plans)
            self.banner.setStyleSheet(f"#banner{{background:{'#fef3c7' if warn else '#dbeafe'};border-radius:4px;}}")
            self.banner_label.setText(
                f"<b>Plan</b> for {len(plans)} instance(s): {html.escape(summary_text(plans))}"
                + (" - check the blocked or lossy rows before sending" if warn else "")
                + ". Nothing was sent."
            )
            self._set_info("Plan ready: see the Plan column.")
        else:
            self.banner.setStyleSheet("#banner{background:#fee2e2;border-radius:4px;}")
            self.banner_label.setText(f"<b>No plan</b>: {html.escape(error or '')}")
            self._set_info("Planning failed.")
        self.banner.show()
        self._update_send_button()
        emit(self.plan_finished, plans, error)

    @Slot()
    def cancel_send(self) -> None:
        """Stop the running job after the current instance (or drop a send still waiting for its plan)."""
        if self._send is not None:
            self._send.cancel()
            self.act_cancel.setEnabled(False)
            self.progress_label.setText("Cancelling after the current instance; the rest will be marked “not sent”…")
        elif self.confirm_box is not None:
            self.confirm_box.reject()  # answered "no": nothing is sent
        elif self._preflight is not None:
            self._preflight = None  # the plan's result is ignored when it comes
            self._set_info("Send cancelled before it started: nothing was sent.")
            self._update_send_button()

    def _node_for(self, index: int) -> Node | None:
        job = self._job
        return job.by_index.get(index) if job is not None else None

    @Slot(object)
    def _on_send_job_started(self, e: Any) -> None:
        self.tracker.reset(e.total, e.total_bytes)

    @Slot(object)
    def _on_send_association_requested(self, e: Any) -> None:
        self.diag_model.association_requested(e)
        if self._job is not None and not self._send.cancel_event.is_set():  # type: ignore[union-attr]
            self.progress_label.setText(
                f"Requesting an association (strategy {e.strategy}, {e.n_contexts} presentation contexts, attempt {e.attempt})…"
            )

    @Slot(object)
    def _on_send_association_negotiated(self, e: Any) -> None:
        record = e.negotiation.to_dict()
        if self._job is not None:
            self._job.associations.append(record)
        self.diag_model.association_negotiated(record)

    @Slot(object)
    def _on_send_association_failed(self, e: Any) -> None:
        record = e.negotiation.to_dict()
        if self._job is not None:
            self._job.associations.append(record)
        self.diag_model.association_failed(e.message, record)

    @Slot(object)
    def _on_send_association_released(self, e: Any) -> None:
        self.diag_model.association_released(e)

    @Slot(object)
    def _on_send_instance_started(self, e: Any) -> None:
        node = self._node_for(e.index)
        if node is not None:
            self.model.set_state(node, st.SENDING, None, sending_as=(e.transfer_syntax, e.converted_from))

    @Slot(object)
    def _on_send_instances_batched(self, events: list[Any]) -> None:
        with self.gate:
            for e in events:
                if isinstance(e, InstanceFinished):
                    self._on_send_instance_finished(e)
                else:
                    self._on_send_instance_started(e)

    @Slot(object)
    def _on_send_instance_finished(self, e: Any) -> None:
        node = self._node_for(e.index)
        if node is None or self._job is None:
            return
        o = e.outcome.to_dict()
        self._job.outcomes[e.index] = o
        self.model.set_state(node, _STATE_OF.get(o.get("state", ""), st.FAILED), o)
        self.tracker.add(e.bytes_sent)

    @Slot(object)
    def _on_send_job_finished(self, e: Any) -> None:
        self.diag_model.end_job(e)
        if self._job is not None:
            self._job.summary = dict(e.summary or {})
            self._job.error = e.error
            self._job.cancelled = e.cancelled

    @Slot(object)
    def _on_send_result_ready(self, result: JobResult | dict[str, Any]) -> None:
        job, self._job = self._job, None
        self._send = None
        self.progress_timer.stop()
        self.tracker.finish()
        if job is None:
            return
        job.finished = time.time()
        if isinstance(result, JobResult):
            for o in result.outcomes:
                job.outcomes.setdefault(o.index, o.to_dict())
            job.associations = [a.to_dict() for a in result.associations]
            job.summary = result.summary()
            job.error = result.error
            job.cancelled = result.cancelled
        else:
            job.error = result.get("error")
            for i, n in job.by_index.items():
                if n.state in (st.QUEUED, st.SENDING):
                    o = {
                        "status": "failure",
                        "state": st.NOT_SENT.value,
                        "message": f"not sent: {job.error}",
                        "path": n.inst.path if n.inst else None,
                    }
                    job.outcomes[i] = o
                    self.model.set_state(n, st.NOT_SENT, o)
        self.model.flush()
        self.last_job = job
        self._update_progress()
        self._update_scp_label()
        self._show_summary(job)
        self._update_send_button()
        if job.resumed:
            QTimer.singleShot(0, self.check_interrupted_jobs)
        emit(self.send_finished, job)

    @Slot()
    def _update_progress(self) -> None:
        self.progress.setMaximum(max(1, self.tracker.total))
        self.progress.setValue(min(self.tracker.done, self.tracker.total))
        if self._send is not None and self._send.cancel_event.is_set():
            return
        if self._send is not None or self.tracker.t_end is not None:
            self.progress_label.setText(self.tracker.text())
        if self._send is not None and self.tracker.done:
            ips, bps = self.tracker.rates()
            self.plot.add_point(self.tracker.elapsed_s, ips, bps)

    def _show_summary(self, job: SendRecord) -> None:
        s = job.summary
        stored, warn, fail = s.get("success", 0), s.get("warning", 0), s.get("failure", 0)
        not_sent, skipped, conv = s.get("not_sent", 0), s.get("skipped", 0), s.get("converted", 0)
        failed = fail - not_sent
        if job.error and not stored and not warn:
            colour, head = "#fee2e2", "Nothing was stored"
        elif failed or not_sent:
            colour, head = "#fee2e2", "Some instances were not stored"
        elif warn:
            colour, head = "#fef3c7", "All stored, some with warnings"
        else:
            colour, head = "#dcfce7", "All stored"
        if job.cancelled:
            colour, head = "#fef3c7", "Cancelled"
        self.banner.setStyleSheet(f"#banner{{background:{colour};border-radius:4px;}}")
        parts = [
            f"<b>{stored}</b> stored" + (f" ({conv} converted)" if conv else ""),
            f"<b>{warn}</b> with warnings",
            f"<b style='color:#b91c1c'>{failed}</b> failed",
            f"<b>{not_sent}</b> not sent",
        ]
        if skipped:
            parts.append(f"{skipped} skipped")
        text = (
            f"<b>{head}</b> - {job.profile.name}: "
            + " · ".join(parts)
            + f" - {s.get('associations', 0)} association(s), {format_duration(job.finished - job.started)}"
        )
        counts = job.arrival.get("counts") or {}
        if counts:
            bad, unsure = counts.get("not found", 0), counts.get("not checked", 0)
            text += (
                "<br>Arrival check: "
                + ", ".join(f"<b>{n}</b> {k}" for k, n in sorted(counts.items()))
                + (
                    " - <b style='color:#b91c1c'>the PACS does not hold every instance it acknowledged</b>"
                    if bad
                    else " - <b style='color:#b45309'>could not confirm every instance</b> (see the log)"
                    if unsure
                    else ""
                )
            )
        elif job.arrival.get("messages"):
            text += "<br>Arrival check: " + html.escape("; ".join(job.arrival["messages"])[:300])
        if job.plan_summary:
            text += f"<br>Plan before sending: {html.escape(job.plan_summary)}."
        if job.resumed:
            text += f"<br>Resumed job {html.escape(job.job_id)}: only instances left unsent or in doubt were sent."
        if job.error:
            text += f"<br><span style='color:#b91c1c'>{html.escape(job.error)}</span>"
        self.banner_label.setText(text)
        self.banner.show()

    def set_failed_only(self, on: bool) -> None:
        """Show only problem rows (and their parents).

        The filter proxy sits between the model and the view only while the filter is on:
        each proxied cell costs two more Python calls per paint, and Python calls made from
        the GUI thread wait for the GIL while the engine works.
        """
        if on == (self.view.model() is self.proxy):
            return
        self._remember_columns()
        self.proxy.set_only_problems(on)
        self.view.setModel(self.proxy if on else self.model)
        self.view.selectionModel().selectionChanged.connect(self._update_send_button)
        self._apply_columns()
        if on:
            self.view.expandAll()
        else:
            self.view.expandToDepth(0 if self.model.rowCount() > 3 else 1)
        self._update_send_button()

    def _remember_columns(self) -> None:
        for col in Col:
            if self.view.isColumnHidden(col):
                self._hidden_columns.add(col)
            else:
                self._hidden_columns.discard(col)
                if col != Col.DETAILS:
                    self._column_widths[col] = self.view.columnWidth(col)

    def _apply_columns(self) -> None:
        for col in Col:
            self.view.setColumnHidden(col, col in self._hidden_columns)
            if col in self._column_widths:
                self.view.setColumnWidth(col, self._column_widths[col])

    def to_source(self, index: QModelIndex) -> QModelIndex:
        """A view index as an index of the tree model."""
        return self.proxy.mapToSource(index) if index.model() is self.proxy else index

    def to_view(self, index: QModelIndex) -> QModelIndex:
        """A tree-model index as an index of whatever the view shows."""
        return self.proxy.mapFromSource(index) if self.view.model() is self.proxy else index

    # -- failure report ----------------------------------------------------------------------------

    @Slot()
    def choose_export(self) -> None:
        """Ask for a file and format, then write the failure report."""
        if self.last_job is None:
            return
        dlg = ExportDialog(os.path.expanduser("~"), self)
        if dlg.exec() == QDialog.DialogCode.Accepted and dlg.path.text().strip():
            self.export_failure_report(dlg.path.text().strip(), dlg.omit.isChecked())

    def export_failure_report(self, path: str, omit_patient: bool = False) -> bool:
        """Write the last job's failure report to `path` (format from the extension) on a worker."""
        job = self.last_job
        if job is None:
            return False
        outcomes = [
            job.outcomes.get(i, {"status": "failure", "state": st.NOT_SENT.value, "message": "no outcome"}) for i in job.by_index
        ]
        insts = [n.inst for n in job.by_index.values()]
        worker = TaskWorker(_write_report, path, outcomes, insts, job, omit_patient)
        worker.succeeded.connect(self._on_report_succeeded)
        worker.failed.connect(self._on_report_failed)
        self._report_path = path
        self.pool.start(worker, "report")
        return True

    @Slot(object)
    def _on_report_succeeded(self, path: str) -> None:
        url = QUrl.fromLocalFile(os.path.abspath(path)).toString()
        self.statusBar().showMessage(f"Failure report written to {path}", 15000)
        self.banner_label.setText(
            self.banner_label.text().split("<br><i>")[0]
            + f"<br><i>Report written: <a href='{html.escape(url)}'>{html.escape(path)}</a></i>"
        )
        LOGGER.info("Failure report written to %s", path)
        emit(self.report_written, path, "")

    @Slot(object)
    def _on_report_failed(self, exc: Exception) -> None:
        path = getattr(self, "_report_path", "")
        msg = getattr(exc, "strerror", None) or str(exc)
        LOGGER.error("Cannot write the failure report %s: %s", path, msg)
        QTimer.singleShot(0, lambda: QMessageBox.warning(self, "Export failure report", f"Cannot write {path}: {msg}"))
        emit(self.report_written, path, msg)

    # -- shutdown ----------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Cancel work, stop the local test PACS and wait for every thread."""
        self._closing = True
        if self._send is not None:
            self._send.cancel()
        for w in self._scans:
            w.cancel_event.set()
        scp, self.scp = self.scp, None
        self.pool.shutdown()
        if scp is not None:
            scp.stop()
        self.progress_timer.stop()
        self.scp_timer.stop()
        self.log_pane.timer.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_view_state()
        self.shutdown()
        super().closeEvent(event)

    # -- window state (size, splitters, columns, panes; never data) --------------------------------

    def _settings(self) -> Any:
        return QSettings(self.settings_path, QSettings.Format.IniFormat) if self.settings_path else None

    def save_view_state(self) -> None:
        """Remember the window's geometry, splitters, columns and panes (an INI file beside the profiles)."""
        st_ = self._settings()
        if st_ is None:
            return
        self._remember_columns()
        st_.setValue("window/geometry", self.saveGeometry())
        st_.setValue("window/splitter", self.splitter.saveState())
        st_.setValue("window/bottom", self.bottom.saveState())
        st_.setValue("tree/widths", json.dumps({int(k): v for k, v in self._column_widths.items()}))
        st_.setValue("tree/hidden", json.dumps(sorted(int(c) for c in self._hidden_columns)))
        st_.setValue("panes/diagnostics", self.act_show_diag.isChecked())
        st_.setValue("panes/log", self.act_show_log.isChecked())
        st_.setValue("panes/log_level", self.log_pane.level)
        st_.setValue("local_pacs/accept", self.scp_accept)
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
            self._column_widths.update({Col(int(k)): int(v) for k, v in widths.items() if int(k) in set(Col)})
            hidden = json.loads(str(st_.value("tree/hidden", "null")))
            if isinstance(hidden, list):
                self._hidden_columns = {Col(int(c)) for c in hidden if int(c) in set(Col) and c != Col.ITEM}
            self._apply_columns()
            self.act_show_diag.setChecked(str(st_.value("panes/diagnostics", "true")).lower() != "false")
            self.act_show_log.setChecked(str(st_.value("panes/log", "true")).lower() != "false")
            level = int(st_.value("panes/log_level", self.log_pane.level))
            if level in (10, 20, 30, 40):
                self.log_pane.set_level(level)
            self.act_scp_keep.setChecked(str(st_.value("local_pacs/keep", "false")).lower() == "true")
            accept = str(st_.value("local_pacs/accept", self.scp_accept))
            if accept in ACCEPT_CHOICES:
                self.set_scp_accept(accept, restart=False)
        except (ValueError, TypeError) as exc:
            LOGGER.warning("Ignoring the saved window layout: %s", exc)


def _plan(
    insts: list[ScannedInstance],
    cfg: dict[str, Any],
    strategy: str,
    max_retries: int,
    parallel: int,
    amap: dict[str, Any] | None = None,
    validate: bool = True,
) -> list[Any]:
    """The pre-flight plan (worker thread): from the saved map, else negotiates with the PACS; stores nothing."""
    from core.preflight import plan_instances

    return plan_instances(insts, amap or None, cfg, strategy, max_retries, parallel, validate=validate)


def _tagged(tag: int, fn: Any, *args: Any) -> tuple[int, Any]:
    """``(tag, fn(*args))``; an exception leaves with ``.tag`` set (so a late answer can be told apart)."""
    try:
        return tag, fn(*args)
    except Exception as exc:
        exc.tag = tag  # type: ignore[attr-defined]
        raise


def saved_map_for(p: Profile) -> dict[str, Any] | None:
    """The profile's saved acceptance map when it was made for the profile's current peer, else None."""
    m = p.acceptance_map
    if not m or not isinstance(m.get("sop_classes"), dict):
        return None
    peer = m.get("peer") or {}
    same = (
        str(peer.get("host", "")).strip() == p.remote_host.strip()
        and str(peer.get("port")) == str(p.remote_port)
        and str(peer.get("called_ae", "")).strip() == p.remote_ae_title.strip()
        and str(peer.get("calling_ae", "")).strip() == p.local_ae_title.strip()
    )
    return m if same else None


def _interrupted_jobs(path: str) -> list[Any]:
    """Jobs of the journal at `path` whose process died mid-send and that left something to resume (worker)."""
    from core.journal import Journal

    if not os.path.exists(path):
        return []
    with Journal(path) as journal:
        return [j for j in journal.interrupted_jobs() if j.state == "interrupted"]


def _prepare_resume(path: str, job_id: str) -> Any:
    """The :class:`core.send.RerunPlan` of a resume (reads each file's header again; worker thread)."""
    from core.journal import Journal
    from core.send import prepare_rerun

    with Journal(path) as journal:
        return prepare_rerun(journal, job_id)


def _write_report(path: str, outcomes: list[dict[str, Any]], insts: list[Any], job: SendRecord, omit_patient: bool) -> str:
    """Build and write the failure report (worker thread)."""
    report = build_failure_report(
        outcomes,
        insts,
        job.associations,
        job.profile.to_json(),
        job.summary,
        job.started,
        job.finished or time.time(),
        omit_patient,
        job.job_id,
    )
    return write_failure_report(path, report, report_format(path))
