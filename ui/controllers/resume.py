"""Sends the journal shows with instances left unsent (a crash, a stop, a quit mid-send): offer them, resume one.

At start (and after a resumed send) the journal is read on a worker; the window offers the
first interrupted job in a banner. *Resume* reads the job's files again on a worker, puts
them in the file tree and sends only what the journal does not show as stored
(:func:`core.send.prepare_rerun`); *Dismiss* hides the jobs, remembered in the window's
settings file (the jobs stay in the journal: ``main.py resume`` can still send them).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from PySide6.QtCore import QObject, QSettings, QTimer, Signal, Slot

from core import events as ev
from core.journal import RESUME_STATES, JobRecord, Journal, add_set_aside_event
from core.outcomes import STORED_STATES
from core.profiles import Profile, ProfileStore
from core.send import RerunPlan, prepare_rerun

from ..models import InstanceTreeModel, Node
from ..qtcompat import emit
from ..workers import TaskWorker, ThreadPool
from .send import SendController

LOGGER = logging.getLogger(__name__)

#: The settings key of the dismissed job IDs (a JSON list) and how many are kept.
DISMISSED_KEY = "journal/dismissed"
MAX_DISMISSED = 200


def dismissed_jobs(settings_path: str | None) -> set[str]:
    """The job IDs dismissed in earlier sessions, from the INI file at `settings_path` (none when None)."""
    if not settings_path:
        return set()
    settings = QSettings(settings_path, QSettings.Format.IniFormat)
    try:
        return {str(x) for x in json.loads(str(settings.value(DISMISSED_KEY, "[]")))}
    except (ValueError, TypeError):
        return set()


def find_interrupted(
    journal_path: str,
    settings_path: str | None,
    exclude: frozenset[str] = frozenset(),
    on_event: ev.EventCallback | None = None,
) -> list[JobRecord]:
    """Jobs of the journal with instances left unsent, whatever ended them (worker thread).

    A job qualifies when no process runs it and some of its instances were never stored
    (pending, in flight, unknown or not sent): its process died, the user stopped it (also by
    quitting mid-send), or the PACS could not be reached. Jobs dismissed in an earlier session
    and those in `exclude` (this session's own, already shown in the window) are left out.
    A damaged journal is set aside and a fresh one started: `on_event` then gets the
    :class:`core.events.JournalSetAside`.
    """
    if not os.path.exists(journal_path):
        return []
    dismissed = dismissed_jobs(settings_path)
    with Journal(journal_path) as journal:
        if on_event is not None:
            add_set_aside_event(journal, on_event)
        jobs = journal.interrupted_jobs()
        # this session's own jobs are on screen already, unless a process died while running them
        jobs = [j for j in jobs if j.id not in dismissed and (j.id not in exclude or j.state == "interrupted")]
        return [j for j in jobs if _left_unsent(journal, j)]


def find_interrupted_and_notes(
    journal_path: str, settings_path: str | None, exclude: frozenset[str] = frozenset()
) -> tuple[list[JobRecord], list[ev.Event]]:
    """:func:`find_interrupted`, and the journal's events on the way (a damaged journal set aside)."""
    notes: list[ev.Event] = []
    return find_interrupted(journal_path, settings_path, exclude, notes.append), notes


def _left_unsent(journal: Journal, job: JobRecord) -> bool:
    """False when later jobs to the same peer stored every instance `job` left unsent (a send of the rest, a
    new send of the same files): there is nothing to resume any more."""
    later = [j for j in journal.jobs() if j.peer == job.peer and j.started > job.started and j.id != job.id]
    if not later:
        return True
    left = {r["sop_instance_uid"] for r in journal.instances(job.id, [s.value for s in RESUME_STATES])}
    if None in left:  # an instance whose UID was never read: it cannot be matched
        return True
    for j in later:
        left -= {r["sop_instance_uid"] for r in journal.instances(j.id, [s.value for s in STORED_STATES])}
        if not left:
            return False
    return True


def prepare_resume(journal_path: str, job_id: str) -> RerunPlan:
    """The :class:`core.send.RerunPlan` of a resume (reads each file's header again; worker thread)."""
    with Journal(journal_path) as journal:
        return prepare_rerun(journal, job_id)


class ResumeController(QObject):
    """Finds interrupted sends in the journal and resumes them through the send controller.

    Args:
        model: the file tree's model; a resumed job's files are added to it.
        store: the profiles; a resume sends with the job's profile when it still names the same peer.
        send: runs the resumed send.
        pool: where the journal is read and the files scanned again.
        journal_path: the send journal (None: nothing to resume).
        settings_path: the window's settings file, where dismissed jobs are remembered (None: this session only).
        parent: the owning QObject.

    Signals:
        interrupted_jobs_found(object): the journal was read; the list of interrupted
            :class:`core.journal.JobRecord` not dismissed (maybe empty, also when it cannot be read).
        journal_noted(object): reading it, the journal was found damaged and set aside
            (the :class:`core.events.JournalSetAside`).
        resume_prepared(object): the :class:`core.send.RerunPlan` is in the model; its send starts
            unless nothing is left to send.
        resume_failed(str): why the job could not be resumed.
        info_changed(str): a line for the progress row.
    """

    interrupted_jobs_found = Signal(object)
    journal_noted = Signal(object)
    resume_prepared = Signal(object)
    resume_failed = Signal(str)
    info_changed = Signal(str)

    def __init__(
        self,
        model: InstanceTreeModel,
        store: ProfileStore,
        send: SendController,
        pool: ThreadPool,
        journal_path: str | None,
        settings_path: str | None = None,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.model = model
        self.store = store
        self.send = send
        self.pool = pool
        self.journal_path = journal_path
        self.settings_path = settings_path
        #: The interrupted jobs on offer (the first is resumed), newest first.
        self.interrupted: list[JobRecord] = []
        self._dismissed: set[str] = set()
        send.send_finished.connect(self._on_send_send_finished)

    @Slot()
    def check_interrupted_jobs(self) -> None:
        """Read the journal on a worker for sends whose process died; ``interrupted_jobs_found`` tells."""
        if not self.journal_path:
            return
        own = frozenset(j.job_id for j in self.send.jobs)
        worker = TaskWorker(find_interrupted_and_notes, self.journal_path, self.settings_path, own)
        worker.succeeded.connect(self._on_find_succeeded)
        worker.failed.connect(self._on_find_failed)
        self.pool.start(worker, "journal")

    @Slot(object)
    def _on_find_succeeded(self, found: tuple[list[JobRecord], list[ev.Event]]) -> None:
        jobs, notes = found
        for note in notes:
            emit(self.journal_noted, note)
        self.interrupted = [j for j in jobs if j.id not in self._dismissed]
        emit(self.interrupted_jobs_found, list(self.interrupted))

    @Slot(object)
    def _on_find_failed(self, exc: Exception) -> None:
        LOGGER.warning("Cannot read the send journal %s: %s", self.journal_path, exc)
        emit(self.interrupted_jobs_found, [])

    @Slot(object)
    def _on_send_send_finished(self, job: Any) -> None:
        if job.resumed:
            QTimer.singleShot(0, self.check_interrupted_jobs)

    def resume(self) -> bool:
        """Resume the first interrupted job: re-read its files on a worker, then send what is left."""
        if not self.interrupted or self.send.busy or not self.journal_path:
            return False
        job = self.interrupted[0]
        emit(self.info_changed, f"Preparing to resume job {job.id}…")
        worker = TaskWorker(prepare_resume, self.journal_path, job.id)
        worker.succeeded.connect(self._on_prepare_succeeded)
        worker.failed.connect(self._on_prepare_failed)
        self.pool.start(worker, "resume")
        return True

    @Slot(object)
    def _on_prepare_succeeded(self, plan: RerunPlan) -> None:
        self.interrupted = [j for j in self.interrupted if j.id != plan.job.id]
        by_index = self._add_rows(plan)
        emit(self.resume_prepared, plan)
        if not plan.items:
            emit(self.info_changed, f"Job {plan.job.id}: nothing left to send.")
            return
        self.send.resume(list(by_index.values()), self._profile_for(plan), plan, by_index)

    def _add_rows(self, plan: RerunPlan) -> dict[int, Node]:
        """Add the plan's files to the model; the row of each item index."""
        insts = [it.inst for it in plan.items if it.inst is not None and it.inst.path]
        self.model.add_instances(insts)
        by_key = {n.key: n for n in self.model.leaves()}
        by_index: dict[int, Node] = {}
        for it in plan.items:
            if it.inst is not None and it.inst.path:
                node = by_key.get(os.path.normpath(os.path.abspath(it.inst.path)))
                if node is not None:
                    by_index[it.index] = node
        return by_index

    def _profile_for(self, plan: RerunPlan) -> Profile:
        """The job's profile when it still names the job's peer, else one made from the journalled config."""
        name = plan.job.profile or plan.job.peer or "resumed job"
        p = self.store.get(name)
        if p is not None and p.is_local_test:
            return p  # the window's local test PACS, on whatever port it listens now
        try:
            same = p is not None and p.to_store_config().peer == plan.job.peer
        except ValueError:
            same = False
        if p is None or not same:
            p = Profile.from_json({**plan.config, "name": name})
        return p

    @Slot(object)
    def _on_prepare_failed(self, exc: Exception) -> None:
        msg = f"Cannot resume: {exc}"
        LOGGER.error("%s", msg)
        emit(self.resume_failed, msg)

    def dismiss(self) -> None:
        """Stop offering the jobs on offer (remembered in the settings file; they stay in the journal)."""
        self._dismissed.update(j.id for j in self.interrupted)
        if self.settings_path:
            # a click, and a small INI file that the window also writes when it closes: written
            # here on the GUI thread so that the two writes cannot interleave
            settings = QSettings(self.settings_path, QSettings.Format.IniFormat)
            keep = sorted(dismissed_jobs(self.settings_path) | self._dismissed)[-MAX_DISMISSED:]
            settings.setValue(DISMISSED_KEY, json.dumps(keep))
            settings.sync()
        self.interrupted = []
