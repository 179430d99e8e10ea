"""The main window's widgets, actions and menus (its layout), kept apart from its behaviour.

:class:`MainWindowLayout` follows Qt's multiple-inheritance pattern for designer-made UI
classes: :class:`ui.main_window.MainWindow` inherits it and calls :meth:`_setup_layout`, which
creates every action and widget as an attribute of the window. Only view-internal wiring is
done here (buttons mirror their actions, the panes follow their View actions); what the
actions do is connected by the window.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMenuBar,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.scp import ACCEPT_CHOICES

from .banners import ResumeBanner, SummaryBanner
from .diagnostics import DiagnosticsPane
from .file_tree import FileTreeView
from .logpane import LogBuffer, LogPane
from .models import Col, human_size
from .pacs_status import PacsStatusPanel
from .progress import ProgressTracker
from .throughput import ThroughputPlot

LOGGER = logging.getLogger(__name__)

_KEYS = QKeySequence.StandardKey

#: The window's actions: attribute -> (text, shortcut, checkable); their tooltips are in ACTION_TIPS.
ACTIONS: dict[str, tuple[str, Any, bool]] = {
    "act_add_files": ("Add files…", _KEYS.Open, False),
    "act_add_folder": ("Add folder…", "Ctrl+Shift+O", False),
    "act_remove": ("Remove selected", _KEYS.Delete, False),
    "act_clear": ("Clear all", "Ctrl+Shift+Backspace", False),
    "act_send": ("Send", "Ctrl+Return", False),
    "act_plan": ("Plan", "Ctrl+Shift+P", False),
    "act_cancel": ("Cancel", "Esc", False),
    "act_test": ("Test connection", "Ctrl+T", False),
    "act_probe": ("Probe", "Ctrl+Shift+T", False),
    "act_probe_all": ("Probe all storage SOP classes", None, False),
    "act_show_map": ("Show acceptance map…", None, False),
    "act_profiles": ("Manage PACS profiles…", "Ctrl+P", False),
    "act_failed_only": ("Show failed only", "Ctrl+F", True),
    "act_retry": ("Retry failed", "Ctrl+R", False),
    "act_export": ("Export failure report…", "Ctrl+E", False),
    "act_scp": ("Run local test PACS", "Ctrl+Shift+L", True),
    "act_copy": ("Copy", _KEYS.Copy, False),
    "act_quit": ("Quit", _KEYS.Quit, False),
}

ACTION_TIPS = {
    "act_add_files": "Add DICOM files or a DICOMDIR (Ctrl+O); you can also drop them on the window",
    "act_add_folder": "Add every file in a folder and its subfolders (Ctrl+Shift+O)",
    "act_remove": "Remove the selected rows from the list (Del)",
    "act_clear": "Empty the list and forget what was sent (asks first when there are results) (Ctrl+Shift+Backspace)",
    "act_send": "Send the selected studies/series, or everything when nothing is selected (Ctrl+Enter)",
    "act_plan": "Work out what will happen to each selected instance before sending: as stored, "
    "converted, or blocked and why (asks the PACS; nothing is stored) (Ctrl+Shift+P)",
    "act_cancel": "Stop after the current instance; the rest are marked 'not sent' (Esc)",
    "act_test": "Check that the selected PACS answers: a DICOM 'ping' (C-ECHO); nothing is stored. "
    "Shows the round trip and what the PACS accepted (Ctrl+T)",
    "act_probe": "Ask the PACS which kinds of object (SOP classes) and encodings (transfer syntaxes) it accepts: "
    "the kinds of the loaded files (all storage kinds when none are loaded) x every encoding; "
    "nothing is stored (Ctrl+Shift+T)",
    "act_probe_all": "Probe every storage SOP class pynetdicom knows (about 170) x every transfer syntax; "
    "takes a few dozen associations",
    "act_show_map": "Show the acceptance map saved with the selected profile by its last probe",
    "act_profiles": "Add, edit, duplicate, delete, import or export PACS profiles (Ctrl+P)",
    "act_failed_only": "Show only failed, not sent and unreadable files (Ctrl+F)",
    "act_retry": "Send the failed and not-sent instances again to the same PACS (Ctrl+R)",
    "act_export": "Write the failed and warned instances to HTML, CSV or JSON (Ctrl+E)",
    "act_scp": "Start or stop the built-in Storage SCP on this computer (Ctrl+Shift+L)",
    "act_copy": "Copy the selected files' states and reasons as tab-separated text (Ctrl+C)",
    "act_quit": "",
}

#: The progress line while nothing is being sent.
IDLE_TEXT = "Drop DICOM files, folders or a DICOMDIR anywhere on this window, or use Add files / Add folder."

#: The progress bar's colour once a send has ended, by how it ended (:func:`ui.controllers.send.outcome_label`).
BAR_STYLES = {
    "Done": "QProgressBar::chunk{background:#16a34a;}",
    "Done with warnings": "QProgressBar::chunk{background:#d97706;}",
    "Cancelled": "QProgressBar{background:#fef3c7;} QProgressBar::chunk{background:#9ca3af;}",
    "Stopped": "QProgressBar{background:#fee2e2;} QProgressBar::chunk{background:#9ca3af;}",
    "Some not stored": "QProgressBar{background:#fee2e2;} QProgressBar::chunk{background:#d97706;}",
    "Nothing stored": "QProgressBar{background:#fecaca;} QProgressBar::chunk{background:#dc2626;}",
}

#: What the local test PACS's "Accepts" choices do.
ACCEPT_TIPS = {
    "everything": "Accept every transfer syntax",
    "implicit": "Rehearse fallback: only Implicit VR Little Endian; compressed files are decompressed before sending",
    "uncompressed": "Only uncompressed syntaxes",
}


class MainWindowLayout(QMainWindow):
    """Builds the main window's actions, widgets and menus as attributes of the window.

    Before :meth:`_setup_layout` the window must have ``profiles`` (the profile list model),
    ``model``, ``proxy`` and ``gate`` (the file tree's), ``diag_model``, ``store`` and
    ``local_pacs_controller`` (whose state the Local test PACS menu shows). The layout (never
    data) is kept in the INI file at ``settings_path`` (see :meth:`save_view_state`).
    """

    profiles: Any
    model: Any
    proxy: Any
    gate: Any
    diag_model: Any
    store: Any
    local_pacs_controller: Any
    settings_path: str | None

    # the actions of ACTIONS, created by _build_actions
    act_add_files: QAction
    act_add_folder: QAction
    act_remove: QAction
    act_clear: QAction
    act_send: QAction
    act_plan: QAction
    act_cancel: QAction
    act_test: QAction
    act_probe: QAction
    act_probe_all: QAction
    act_show_map: QAction
    act_profiles: QAction
    act_failed_only: QAction
    act_retry: QAction
    act_export: QAction
    act_scp: QAction
    act_copy: QAction
    act_quit: QAction

    def _setup_layout(self, log_buffer: LogBuffer) -> None:
        """Create the actions, the widgets and the menus."""
        self._build_actions()
        self._build_ui(log_buffer)
        self._build_menus()

    def _build_actions(self) -> None:
        for name, (text, shortcut, checkable) in ACTIONS.items():
            a = QAction(text, self)
            if shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
            if ACTION_TIPS[name]:
                a.setToolTip(ACTION_TIPS[name])
                a.setStatusTip(ACTION_TIPS[name])
            a.setCheckable(checkable)
            self.addAction(a)
            setattr(self, name, a)
        for a in (self.act_cancel, self.act_retry, self.act_export):
            a.setEnabled(False)

    def _button(self, action: QAction, text: str | None = None) -> QPushButton:
        """A push button that triggers `action` and follows its enabled state."""
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
        self.pacs_panel = PacsStatusPanel(self)  # test and probe results wrap here, never in the header
        self.echo_label = self.pacs_panel.label
        outer.addWidget(self.pacs_panel)
        outer.addLayout(self._build_progress_row())
        self.resume_banner = ResumeBanner(self)  # an interrupted job in the journal: offer to resume it
        outer.addWidget(self.resume_banner)
        outer.addWidget(self._build_summary_banner())
        outer.addWidget(self._build_panes(log_buffer), 1)
        self.setCentralWidget(central)
        self._build_status_bar()

    def _build_header(self) -> QHBoxLayout:
        """PACS (selector, profiles, test, probe) | plan, send, cancel; the file actions sit over the tree."""
        head = QHBoxLayout()
        pacs = QLabel("PACS:", self)
        pacs.setToolTip("The PACS to send to (Ctrl+P to manage profiles)")
        head.addWidget(pacs)
        self.profile_box = QComboBox(self)
        self.profile_box.setModel(self.profiles)
        self.profile_box.setMinimumWidth(170)
        self.profile_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.profile_box.setMinimumContentsLength(16)
        self.profile_box.setToolTip("The PACS to send to (Ctrl+P to manage profiles)")
        head.addWidget(self.profile_box)
        edit = QPushButton("Profiles…", self)
        edit.setToolTip(self.act_profiles.toolTip())
        edit.clicked.connect(self.act_profiles.trigger)
        head.addWidget(edit)
        self.test_button = self._button(self.act_test)
        head.addWidget(self.test_button)
        self.probe_button = self._button(self.act_probe)
        head.addWidget(self.probe_button)
        head.addStretch(1)
        head.addWidget(self._button(self.act_plan))
        self.send_button = self._button(self.act_send)
        self.send_button.setDefault(True)
        self.send_button.setStyleSheet("QPushButton{font-weight:bold;padding:4px 18px;}")
        head.addWidget(self.send_button)
        self.cancel_button = self._button(self.act_cancel)
        head.addWidget(self.cancel_button)
        return head

    def _build_files_row(self) -> QHBoxLayout:
        """The file actions, over the file tree."""
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for act in (self.act_add_files, self.act_add_folder, self.act_remove, self.act_clear):
            row.addWidget(self._button(act))
        row.addStretch(1)
        return row

    def _build_progress_row(self) -> QHBoxLayout:
        prow = QHBoxLayout()
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(320)
        self.progress.setMinimumWidth(160)
        self.progress.setTextVisible(True)
        self.progress_label = QLabel(IDLE_TEXT, self)
        self.progress_label.setWordWrap(True)
        # two lines, always: its text changes 4 times a second while sending and must not re-lay out the window
        self.progress_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.progress_label.setFixedHeight(self.progress_label.fontMetrics().lineSpacing() * 2 + 4)
        self.plot = ThroughputPlot(self)
        self.plot.setFixedWidth(340)
        prow.addWidget(self.progress)
        prow.addWidget(self.progress_label, 1)
        prow.addWidget(self.plot)
        self._reset_progress()
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
        """The file actions, the file tree and the selected file's reason, over the diagnostics and log panes."""
        self.view = FileTreeView(self.model, self.proxy, self.gate, self)
        self.view.set_menu_actions(
            (self.act_copy, None, self.act_send, self.act_retry, None, self.act_remove, None, self.act_failed_only)
        )
        self.reason_label = QLabel(self)  # the selected file's state and reason, wrapped, never off screen
        self.reason_label.setWordWrap(True)
        self.reason_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reason_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.reason_label.hide()
        files = QWidget(self)
        fl = QVBoxLayout(files)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.setSpacing(3)
        fl.addLayout(self._build_files_row())
        fl.addWidget(self.view, 1)
        fl.addWidget(self.reason_label)
        self.diag_pane = DiagnosticsPane(self.diag_model, self)
        self.log_pane = LogPane(log_buffer, self)
        self.bottom = QSplitter(Qt.Orientation.Horizontal, self)
        self.bottom.addWidget(self.diag_pane)
        self.bottom.addWidget(self.log_pane)
        self.bottom.setStretchFactor(0, 3)
        self.bottom.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.addWidget(files)
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
        self.counts_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.scp_label = QLabel(self)
        self.scp_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.scp_label.setMinimumWidth(260)
        sb.addWidget(self.counts_label, 3)
        sb.addPermanentWidget(self.scan_bar)
        sb.addPermanentWidget(self.scp_label, 2)

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
        self.act_about = QAction("About DICOM Courier", self)
        m.addAction(self.act_about)

    def _build_local_pacs_menu(self, mb: QMenuBar) -> None:
        local = self.local_pacs_controller  # shown as it is now; the window follows its changes
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
            self.scp_accept_group.addAction(a)
            accepts.addAction(a)
            self.scp_accept_actions[key] = a
        self.act_scp_keep = QAction("Keep received files", self)
        self.act_scp_keep.setCheckable(True)
        self.act_scp_keep.setToolTip(
            f"Write what the local test PACS receives to {local.store_dir} (off: it only counts; takes effect at the next start)"
        )
        m.addAction(self.act_scp_keep)
        m.setToolTipsVisible(True)
        self.act_use_local_test = QAction("Use the “Local test PACS” profile", self)
        m.addAction(self.act_use_local_test)

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

    # -- showing state (no behaviour) ---------------------------------------------------------------

    def _show_counts(self, s: dict[str, int]) -> None:
        """The status bar's line about the loaded files (:meth:`InstanceTreeModel.stats`)."""
        if not s["files"]:
            self.counts_label.setText("No files yet - drop DICOM files, folders or a DICOMDIR on the window.")
            return
        self.counts_label.setText(
            f"{s['files']} file(s): {s['instances']} DICOM instance(s) in {s['patients']} patient(s), "
            f"{s['studies']} study(ies), {s['series']} series, {human_size(s['bytes'])}"
            + (f"; {s['indexes']} DICOMDIR index(es)" if s.get("indexes") else "")
            + (f"; {s['bad']} not DICOM or unreadable" if s["bad"] else "")
        )

    def _reset_progress(self) -> None:
        """Nothing is being sent: an empty bar without numbers, the hint, an empty plot."""
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.progress.setStyleSheet("")
        self.progress.setToolTip("")
        self.progress_label.setText(IDLE_TEXT)
        self.plot.clear()

    def _begin_progress(self, total: int) -> None:
        """Empty the progress bar (of `total` instances) and the throughput plot."""
        self.plot.clear()
        self.progress.setStyleSheet("")
        self.progress.setFormat("%v / %m")
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(0)
        self.progress.setToolTip("Instances that reached an outcome (stored, failed or skipped) of those sent")

    def _show_progress(self, tracker: ProgressTracker, sending: bool, cancelling: bool) -> None:
        """The bar, the rates line and a point on the plot, all from `tracker`.

        While cancelling the line keeps saying so and the plot stops; once the send has ended
        the bar takes the outcome's colour and the plot its average (the line shows the same).
        """
        self.progress.setMaximum(max(1, tracker.total))
        self.progress.setValue(min(tracker.done, tracker.total))
        if tracker.t_end is not None:
            self.progress_label.setText(tracker.text())
            self.progress.setStyleSheet(BAR_STYLES.get(tracker.label, ""))
            self.plot.set_average(*tracker.rates())
            return
        if cancelling or not sending:
            return
        self.progress_label.setText(tracker.text())
        if tracker.sent:
            ips, bps = tracker.rates()
            self.plot.add_point(tracker.elapsed_s, ips, bps)

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
