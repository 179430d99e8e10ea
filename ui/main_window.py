"""The main window: drop studies, choose a PACS, send, watch, retry, report.

Layout (built by :class:`ui.main_window_layout.MainWindowLayout`): a header row (file
actions, the PACS selector with *Test connection*, Send / Cancel), a progress row, a
summary banner after a send, then a vertical splitter with the file tree on top and,
below, the diagnostics pane beside the log pane. The window wires the actions, takes
drops and keeps the view state; each concern's state and work live in a controller
(:mod:`ui.controllers`), whose signals the window turns into text and widget states.
Every file or network operation runs on a worker thread (:mod:`ui.workers`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QMessageBox,
    QWidget,
)

from core.events import JournalFailed
from core.probe import AcceptanceMap
from core.profiles import Profile, ProfileStore

from . import states as st
from .controllers.echo import EchoController
from .controllers.local_pacs import LocalPacsController
from .controllers.plan import PlanController
from .controllers.probe import ProbeController
from .controllers.report import ReportController
from .controllers.resume import ResumeController
from .controllers.scan import ScanController
from .controllers.send import SendController, SendRecord
from .diagnostics import DiagnosticsModel
from .dialogs import ExportDialog, QuestionBox, confirmation_box, details_box, retry_text, show_about
from .logpane import LogBuffer
from .main_window_layout import MainWindowLayout
from .models import BAD, Col, InstanceTreeModel, Node, ProblemFilterProxy, reason_line
from .probe_dialog import ProbeDialog
from .profiles_ui import ProfileListModel, ProfilesDialog
from .progress import ProgressTracker
from .qtcompat import emit
from .wording import journal_note, plain_reason
from .workers import GuiGate, ScanWorker, ThreadPool

LOGGER = logging.getLogger(__name__)


class MainWindow(MainWindowLayout):
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
        question_asked(object): another non-modal question is open, the QMessageBox: re-send instances
            the PACS already holds (:attr:`resend_box`), discard results (:attr:`clear_box`), stop a
            send to quit (:attr:`close_box`). Each box's buttons are named in its ``buttons`` dict.
    """

    confirmation_requested = Signal(object)
    question_asked = Signal(object)

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
        self.resend_box: QMessageBox | None = None
        self.clear_box: QMessageBox | None = None
        self.close_box: QMessageBox | None = None
        self.probe_dialog: ProbeDialog | None = None
        self._quit_when_stopped = False  # the user chose to stop the send and quit
        self._closing = False
        self._plan_for: tuple[str, frozenset[int]] | None = None  # (profile, instance uids) the Plan column is for

        self._setup_layout(log_buffer)
        self._connect_actions()
        self.counts_timer = QTimer(self)
        self.counts_timer.setSingleShot(True)
        self.counts_timer.setInterval(200)
        self.counts_timer.timeout.connect(self._update_counts)
        self.model.contents_changed.connect(self.counts_timer.start)
        self._connect_controllers()
        self._select_profile(store.last_used)
        self._shown_profile = self.current_profile().name if self.current_profile() else ""
        self._update_counts()
        self.local_pacs_controller.refresh()
        self.fit_to_screen()
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
        send.info_changed.connect(self.progress_label.setText)
        send.busy_changed.connect(self._update_send_button)
        send.plan_filled.connect(self._on_send_plan_filled)
        send.plan_failed.connect(self._on_send_plan_failed)
        send.confirmation_needed.connect(self._on_send_confirmation_needed)
        send.send_started.connect(self._on_send_send_started)
        send.progressed.connect(self._on_send_progressed)
        send.arrival_checked.connect(self._on_send_arrival_checked)
        send.send_finished.connect(self._on_send_send_finished)
        send.journal_noted.connect(self._on_journal_noted)
        resume.journal_noted.connect(self._on_journal_noted)
        resume.interrupted_jobs_found.connect(self._on_resume_interrupted_jobs_found)
        resume.resume_prepared.connect(self._on_resume_resume_prepared)
        resume.resume_failed.connect(self._on_resume_resume_failed)
        resume.info_changed.connect(self._set_info)
        self.plan_controller.plan_started.connect(self._on_plan_plan_started)
        self.plan_controller.plan_finished.connect(self._on_plan_plan_finished)
        self.probe_controller.probe_started.connect(self._on_probe_probe_started)
        self.probe_controller.probe_progressed.connect(self.pacs_panel.show_probe_progress)
        self.probe_controller.probe_finished.connect(self._on_probe_probe_finished)
        self.echo_controller.echo_started.connect(self._on_echo_echo_started)
        self.echo_controller.echo_ticked.connect(self.pacs_panel.show_echo_tick)
        self.echo_controller.echo_cancelled.connect(self._on_echo_echo_cancelled)
        self.echo_controller.echo_finished.connect(self._on_echo_echo_finished)
        self.pacs_panel.cancel_button.clicked.connect(self.echo_controller.cancel)
        for sig in (self.profiles.rowsInserted, self.profiles.rowsRemoved, self.profiles.modelReset):
            sig.connect(self._on_profiles_changed)
        self._on_profiles_changed()
        self.local_pacs_controller.running_changed.connect(self._on_local_pacs_running_changed)
        self.local_pacs_controller.accept_changed.connect(self._on_local_pacs_accept_changed)
        self.local_pacs_controller.status_changed.connect(self._on_local_pacs_status_changed)
        self.report_controller.report_written.connect(self._on_report_report_written)

    def _connect_actions(self) -> None:
        for action, slot in (
            (self.act_add_files, self.choose_files),
            (self.act_add_folder, self.choose_folder),
            (self.act_remove, self.remove_selected),
            (self.act_clear, self.clear_all),
            (self.act_send, self.send),
            (self.act_plan, self.plan),
            (self.act_cancel, self.cancel_send),
            (self.act_test, self.test_connection),
            (self.act_probe, self.probe_used),
            (self.act_probe_all, self.probe_all),
            (self.act_show_map, self.show_saved_map),
            (self.act_profiles, self.manage_profiles),
            (self.act_retry, self.retry_failed),
            (self.act_export, self.choose_export),
            (self.act_copy, self.copy_selected),
            (self.act_quit, self.close),
            (self.act_about, lambda: show_about(self)),
            (self.act_use_local_test, lambda: self._select_profile(self.store.local_test().name)),
        ):
            action.triggered.connect(slot)
        self.act_failed_only.toggled.connect(self.set_failed_only)
        self.act_scp.toggled.connect(self.local_pacs_controller.set_running)
        self.act_scp_keep.toggled.connect(self.local_pacs_controller.set_keep_files)
        for key, a in self.scp_accept_actions.items():
            a.triggered.connect(lambda _c=False, k=key: self.local_pacs_controller.set_accept(k))
        self.profile_box.currentIndexChanged.connect(self._on_profile_box_changed)
        self.view.details_requested.connect(self.show_details)
        self.view.selection_changed.connect(self._on_view_selection_changed)
        self.view.current_changed.connect(self._show_reason)
        self.resume_banner.resume_button.clicked.connect(self.resume_interrupted)
        self.resume_banner.dismiss_button.clicked.connect(self.dismiss_interrupted)

    # -- the file tree -----------------------------------------------------------------------------

    @Slot(QModelIndex)
    def show_details(self, index: QModelIndex) -> QMessageBox | None:
        """Show everything known about one file (the reason, status, conversion, notes) in a dialog."""
        box = details_box(self, index)
        if box is not None:
            box.open()
        return box

    @Slot()
    def copy_selected(self) -> str:
        """Put the selected files (or every file under selected rows) on the clipboard as TSV; returns the text."""
        n, text = self.view.selected_tsv()
        if n:
            QGuiApplication.clipboard().setText(text)
            self.statusBar().showMessage(f"Copied {n} file(s) to the clipboard", 5000)
        return text

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
        if not self.send_controller.busy:
            self.model.remove(self.view.selected_source_indexes())
            self._update_counts()

    @Slot()
    def clear_all(self) -> bool:
        """Empty the list (not while sending); asks first when there are results to lose.

        Returns True when the list was emptied now (False: nothing to do, or the question is open).
        """
        if self.send_controller.busy or not self.model.leaves():
            return False
        if self.send_controller.jobs or any(n.plan for n in self.model.leaves()):
            n = sum(1 for x in self.model.leaves() if x.state in st.FINAL_STATES)
            self._ask(
                "clear_box",
                QuestionBox(
                    self,
                    "Clear all",
                    f"Remove all {len(self.model.leaves())} file(s) from the list and forget what was sent?",
                    f"The results of {n} instance(s) (stored, failed, not sent) and any plan are discarded from this "
                    "window. Files already stored stay at the PACS; the send journal keeps its record. "
                    "Export the failure report first if you need it.",
                    [
                        ("clear", "Clear all", QMessageBox.ButtonRole.DestructiveRole),
                        ("keep", "Keep", QMessageBox.ButtonRole.RejectRole),
                    ],
                    default="keep",
                    icon=QMessageBox.Icon.Warning,
                ),
                self._on_clear_box_finished,
            )
            return False
        self._clear_now()
        return True

    def _on_clear_box_finished(self, answer: str) -> None:
        if answer == "clear" and not self.send_controller.busy:
            self._clear_now()

    def _clear_now(self) -> None:
        self.model.clear()
        self.send_controller.results.clear()
        self.send_controller.jobs.clear()
        self.send_controller.last_job = None
        self._clear_plan()
        self.banner.hide()
        self.reason_label.hide()
        self._reset_progress()
        self._update_counts()

    def _ask(self, attr: str, box: QuestionBox, then: Any) -> None:
        """Open `box` as attribute `attr` without blocking the event loop; `then(answer)` runs when it closes."""
        old = getattr(self, attr)
        if old is not None:
            old.close()

        def finished(_result: int) -> None:
            if getattr(self, attr) is box:
                setattr(self, attr, None)
            answer = box.answer()
            box.deleteLater()
            then(answer)

        box.finished.connect(finished)
        setattr(self, attr, box)
        box.open()
        emit(self.question_asked, box)

    # -- counts and labels -------------------------------------------------------------------------

    def _set_info(self, text: str) -> None:
        """Show `text` in the progress row, unless a send's progress is there."""
        if not self.send_controller.sending:
            self.progress_label.setText(text)

    @Slot()
    def _update_counts(self) -> None:
        self._show_counts(self.model.stats())
        self._update_send_button()

    @Slot()
    def _update_send_button(self) -> None:
        sel = self.view.selected_source_indexes()
        n = len(self.model.sendable_under(sel)) if sel else self.model.stats()["instances"]
        self.send_button.setText(f"Send selected ({n})" if sel else f"Send all ({n})")
        self.send_button.setToolTip(
            (f"Send the {n} selected instance(s); click an empty spot of the list to send everything" if sel else "")
            + ("\n" if sel else "")
            + self.act_send.toolTip()
        )
        busy = self.send_controller.busy
        has_files = bool(self.model.leaves())
        self.act_send.setEnabled(n > 0 and not busy)
        self.act_plan.setEnabled(n > 0 and not busy and not self.plan_controller.busy)
        self.act_remove.setEnabled(bool(sel) and not busy)
        self.act_clear.setEnabled(has_files and not busy)
        self.act_cancel.setEnabled(busy and not self.send_controller.cancelling)
        self.profile_box.setEnabled(not busy)
        failed, not_sent = self._retry_counts()
        self.act_retry.setEnabled(bool(failed or not_sent) and not busy)
        self.retry_button.setText(retry_text(failed, not_sent))
        self.act_export.setEnabled(self._report_possible() and not busy)
        self.act_probe.setEnabled(not self.probe_controller.busy)
        self.act_probe_all.setEnabled(not self.probe_controller.busy)
        self.act_test.setEnabled(not self.echo_controller.busy)
        p = self.current_profile()
        self.act_show_map.setEnabled(bool(p is not None and p.acceptance_map))
        self.resume_banner.resume_button.setEnabled(not busy)

    def _retry_counts(self) -> tuple[int, int]:
        """``(failed, not sent)`` among the instances *Retry* would send (failed counts unknown outcomes too;
        not sent: stopped by the user, or the PACS could not be reached)."""
        failed = not_sent = 0
        for node in self.send_controller.retry_nodes():
            if node.state == st.NOT_SENT or st.never_reached(node.state, node.outcome):
                not_sent += 1
            else:
                failed += 1
        return failed, not_sent

    def _report_possible(self) -> bool:
        p = self.current_profile()
        return p is not None and bool(self.send_controller.jobs_to(p.name))

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
        self.pacs_panel.clear()
        if hasattr(self, "act_show_map"):
            self.act_show_map.setEnabled(bool(p is not None and p.acceptance_map))
        if p is not None and p.name != self.store.last_used:
            self.store.last_used = p.name
            self.profiles._save()
        if hasattr(self, "_shown_profile") and p is not None and p.name != self._shown_profile:
            self._show_results_of(p.name)

    def _show_results_of(self, name: str) -> None:
        """The tree, the banner and the progress row show what happened at `name`'s PACS (or nothing yet)."""
        self._shown_profile = name
        self.send_controller.results.show(self.model, name)
        self._clear_plan()
        jobs = self.send_controller.jobs_to(name)
        if jobs:
            self.banner.show_send(jobs[-1])
        else:
            self.banner.hide()
        self._reset_progress()
        self._show_reason(self.view.to_source(self.view.currentIndex()))
        self._update_send_button()

    @Slot()
    def _on_profiles_changed(self) -> None:
        """The "No PACS yet?" hint only while the local test PACS is the only profile."""
        self.view.show_pacs_hint = not any(not p.is_local_test for p in self.store.profiles)
        self.view.viewport().update()

    def fit_to_screen(self) -> None:
        """Take most of the screen the window is on, never more than it (at most 1500 x 960)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            self.resize(1280, 800)
            return
        avail = screen.availableGeometry()
        w = min(1500, avail.width() - 16)
        h = min(960, avail.height() - 40)
        self.resize(max(640, w), max(480, h))
        frame = self.frameGeometry()
        self.move(
            avail.left() + max(0, (avail.width() - frame.width()) // 2),
            avail.top() + max(0, (avail.height() - frame.height()) // 2),
        )

    @Slot()
    def manage_profiles(self) -> None:
        """Open the profile manager (its connection tests reach this window's local test PACS)."""
        current = self.current_profile()
        ProfilesDialog(self.profiles, self.pool, self, local_pacs=self.local_pacs_controller).exec()
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
        self.pacs_panel.show_echo_started(p, self.echo_controller.seconds_left())

    @Slot()
    def _on_echo_echo_cancelled(self) -> None:
        self.act_test.setEnabled(True)
        self.pacs_panel.show_echo_cancelled()

    @Slot(object, object)
    def _on_echo_echo_finished(self, result: dict[str, Any] | None, error: str | None) -> None:
        self.act_test.setEnabled(True)
        self.pacs_panel.show_echo_result(result, error)
        p = self.echo_controller.profile or self.current_profile()
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
        self.pacs_panel.show_probe_started(p, n_classes)

    @Slot(object, object)
    def _on_probe_probe_finished(self, amap: AcceptanceMap | None, error: str | None) -> None:
        self.pacs_panel.show_probe_result(amap, error)
        if error is None and amap is not None:
            p = self.probe_controller.profile or self.current_profile()
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
            p = self.plan_controller.profile
            self._plan_for = (p.name if p else "", frozenset(n.uid for n in self.plan_controller.planned))
            self.view.show_column(Col.PLAN, 260)
            self.banner.show_plan(plans)
            self._set_info("Plan ready: see the Plan column.")
        else:
            self._clear_plan()
            self.banner.show_plan_error(error or "")
            self._set_info("Planning failed.")
        self._update_send_button()

    def _clear_plan(self) -> None:
        """Forget the plan: empty and hide the Plan column (and its banner)."""
        self._plan_for = None
        leaves = [n for n in self.model.leaves() if n.plan]
        if leaves:
            self.model.set_plans((n, "") for n in leaves)
            self.model.flush()
        if not self.view.isColumnHidden(Col.PLAN):
            self.view.hide_column(Col.PLAN)
        if self.banner.kind == "plan":
            self.banner.hide()

    @Slot()
    def _on_view_selection_changed(self) -> None:
        """A plan stays only while it covers what *Send* would send now."""
        if self._plan_for is not None and not self.send_controller.busy:
            chosen = {n.uid for n in self.model.sendable_under(self.view.selected_source_indexes())}
            if not chosen <= self._plan_for[1]:
                self._clear_plan()
        self._update_send_button()

    @Slot(QModelIndex)
    def _show_reason(self, index: QModelIndex) -> None:
        """Under the tree: the current file's state and reason, wrapped (the Details column may be narrow)."""
        node = index.internalPointer() if index.isValid() else None
        text = reason_line(node) if node is not None else ""
        self.reason_label.setText(text)
        self.reason_label.setVisible(bool(text))

    # -- sending -----------------------------------------------------------------------------------

    @Slot()
    def send(self) -> None:
        """Send the selected studies/series (or everything) to the chosen PACS.

        Instances this PACS already holds (stored in this session) are skipped unless the user
        chooses to send them again: a question with both choices, never silently.
        """
        nodes = self.model.sendable_under(self.view.selected_source_indexes())
        p = self.current_profile()
        if not nodes or p is None or self.send_controller.busy:
            return
        stored = self.send_controller.results.stored(p.name, nodes)
        if not stored:
            self.start_send(nodes)
            return
        held = {id(n) for n in stored}
        rest = [n for n in nodes if id(n) not in held]
        choices = [("again", f"Send all {len(nodes)} again", QMessageBox.ButtonRole.AcceptRole)]
        if rest:
            choices.insert(0, ("rest", f"Send the {len(rest)} not stored", QMessageBox.ButtonRole.AcceptRole))
        choices.append(("cancel", "Cancel", QMessageBox.ButtonRole.RejectRole))
        self._ask(
            "resend_box",
            QuestionBox(
                self,
                "Already stored",
                f"{p.name} already holds {len(stored)} of these {len(nodes)} instance(s): they were stored there "
                "earlier in this session.",
                (f"Send only the {len(rest)} that are not stored there yet, or send all again?" if rest else "Send them again?"),
                choices,
                default="rest" if rest else "cancel",  # Enter never re-sends what the PACS holds
            ),
            lambda answer: self._on_resend_answered(answer, nodes, rest),
        )

    def _on_resend_answered(self, answer: str, nodes: list[Node], rest: list[Node]) -> None:
        if answer == "rest":
            self.start_send(rest)
        elif answer == "again":
            self.start_send(nodes)

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

    @Slot(object)
    def _on_send_plan_filled(self, _plans: list[Any]) -> None:
        self._plan_for = None  # the plan of this send, not one to keep after it
        self.view.show_column(Col.PLAN, 260)

    @Slot(str)
    def _on_send_plan_failed(self, error: str) -> None:
        self._clear_plan()
        self.progress_label.setText(f"No plan before sending ({plain_reason(error).what}); sending anyway…")

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
    def _on_send_send_started(self, job: SendRecord, n: int) -> None:
        current = self.current_profile()
        if current is not None and job.profile.name != current.name and self.profiles.row_of(job.profile.name) >= 0:
            self._select_profile(job.profile.name)  # a resume goes to its job's PACS: show that PACS's results
        self.banner.hide()
        self._begin_progress(n)
        self._update_send_button()

    @Slot(object)
    def _on_send_progressed(self, tracker: ProgressTracker) -> None:
        self._show_progress(tracker, self.send_controller.sending, self.send_controller.cancelling)
        self._show_reason(self.view.to_source(self.view.currentIndex()))  # the current row's state moves on

    @Slot(object)
    def _on_send_arrival_checked(self, _info: dict[str, Any]) -> None:
        self.view.show_column(Col.VERIFIED, 80)

    @Slot(object)
    def _on_send_send_finished(self, job: SendRecord) -> None:
        self.local_pacs_controller.refresh()
        self.banner.show_send(job)
        self._update_send_button()
        if self.close_box is not None:  # asked to quit while sending, and the send ended before the answer
            self.close_box.close()
            self._quit_when_stopped = True
        if self._quit_when_stopped:
            QTimer.singleShot(0, self.close)

    # -- resume (send journal) ---------------------------------------------------------------------

    @Slot(object)
    def _on_journal_noted(self, event: Any) -> None:
        """The send journal was set aside, is unavailable or could not be written: say so in plain words."""
        text = journal_note(event)
        failed = isinstance(event, JournalFailed)
        self.statusBar().showMessage(text, 30000)
        if not self.send_controller.sending:  # during a send the summary at its end says it
            self.banner.show_notice(text, error=failed)

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
        """Ask for a file, a format and which sends, then write the failure report."""
        p = self.current_profile()
        jobs = self.send_controller.jobs_to(p.name) if p is not None else []
        if not jobs:
            return
        dlg = ExportDialog(os.path.expanduser("~"), self, p.name if p else "", len(jobs))
        if dlg.exec() == QDialog.DialogCode.Accepted and dlg.path.text().strip():
            self.export_failure_report(dlg.path.text().strip(), dlg.omit.isChecked(), last_only=dlg.last_only())

    def export_failure_report(self, path: str, omit_patient: bool = False, last_only: bool = False) -> bool:
        """Write the failure report of the chosen PACS to `path` (format from the extension) on a worker.

        It covers every send to that PACS since the app started (or only the last one), plus the
        files that could not be read or were skipped, with their reasons.
        """
        p = self.current_profile()
        jobs = self.send_controller.jobs_to(p.name) if p is not None else []
        if not jobs:
            return False
        if last_only:
            jobs = jobs[-1:]
        bad = [n.inst for n in self.model.leaves() if n.kind == BAD and n.inst is not None]
        return self.report_controller.export(jobs, path, omit_patient, bad)

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
        if self.send_controller.busy and not self._closing:
            # never lose a send by closing: ask, then stop between instances and let the journal record it
            event.ignore()
            if not self._quit_when_stopped:
                self._ask_before_closing()
            return
        self._closing = True
        self.save_view_state()
        self.shutdown()
        super().closeEvent(event)

    def _ask_before_closing(self) -> None:
        job = self.send_controller.job
        t = self.send_controller.tracker
        p = job.profile.name if job is not None else "the PACS"
        self._ask(
            "close_box",
            QuestionBox(
                self,
                "A send is running",
                f"A send to {p} is running: {t.done} of {t.total} instance(s) done. Stop it and quit?",
                "It stops within a second or two (a large instance is cut off mid-way and sent again later). "
                "The instances not sent yet stay in the send journal: the next time DICOM Courier starts it "
                "offers to resume them.",
                [
                    ("stop", "Stop sending and quit", QMessageBox.ButtonRole.DestructiveRole),
                    ("keep", "Keep sending", QMessageBox.ButtonRole.RejectRole),
                ],
                default="keep",
                icon=QMessageBox.Icon.Warning,
            ),
            self._on_close_box_finished,
        )

    def _on_close_box_finished(self, answer: str) -> None:
        if answer != "stop":
            return
        self._quit_when_stopped = True
        if self.send_controller.sending:
            self.act_cancel.setEnabled(False)
            self.send_controller.stop_to_quit()
            self.progress_label.setText("Stopping the send, then quitting (what is left stays in the journal for Resume)…")
        else:  # still planning or asking: nothing was sent yet
            if self.confirm_box is not None:
                self.confirm_box.reject()
            self.send_controller.cancel()
            QTimer.singleShot(0, self.close)
