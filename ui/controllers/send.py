"""A send job in the window: the plan before it, the :class:`ui.workers.SendWorker`, progress and results.

The flow of a send is :mod:`core`'s (the worker runs it); this controller chooses what to
send, plans it first and asks for a confirmation when the plan blocks something, marks the
rows of the file tree as the engine's events arrive, and keeps each job's record for the
summary, *Retry failed* and the failure report.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from core import events as ev
from core.engine import JobResult
from core.events import InstanceFinished
from core.preflight import InstancePlan, needs_confirmation, summary_text
from core.probe import saved_map_for
from core.profiles import Profile
from core.send import Rerun, SendOptions, SendRequest

from .. import states as st
from ..diagnostics import DiagnosticsModel
from ..models import InstanceTreeModel, Node
from ..progress import ProgressTracker
from ..qtcompat import emit
from ..results import PacsResults
from ..wording import journal_note
from ..workers import GuiGate, SendWorker, TaskWorker, ThreadPool, tagged
from .local_pacs import LocalPacsController
from .plan import apply_plans, plan, plan_args

LOGGER = logging.getLogger(__name__)

#: Seconds between batches of per-instance events from the send worker (see EngineEventAdapter).
EVENT_BATCH_S = 0.1
#: Rows marked "queued" per turn of the event loop when a send starts.
QUEUE_CHUNK = 2500
#: Milliseconds between progress updates while sending.
PROGRESS_MS = 250
#: Seconds a send stopped to quit may finish its current instance before it is cut off between PDUs.
QUIT_GRACE_S = 1.0

_JOURNAL_EVENTS = (ev.JournalFailed, ev.JournalSetAside, ev.JournalUnavailable)
_STATE_OF = {s.value: s for s in (st.STORED, st.WARNING, st.FAILED, st.NOT_SENT, st.UNKNOWN, st.SKIPPED)}
#: States of instances that went out to the PACS (a failure counts when the PACS answered it).
_WENT_OUT = frozenset({st.STORED, st.WARNING, st.UNKNOWN})


def _freeze_heap() -> None:
    """Leave what exists now (the tree of 10,000 rows, the scan's records) out of the garbage collector's
    full collections until the send ends or is dropped (:func:`gc.freeze`; undone by :func:`gc.unfreeze`).

    A full collection holds the GIL while it walks every tracked object: 40-80 ms with 10,000 files
    listed, and when the send's thread triggers one, every call of the GUI thread into Python (a
    paint, a timer) waits that long. Frozen, those objects are not walked; what the send creates
    still is. Both calls take constant time.
    """
    gc.collect(1)  # the young garbage of the scan and the plan goes now, not into the frozen set
    gc.freeze()


class JobCounts(NamedTuple):
    """A send's instances by how they ended (each instance in one count; skipped ones in none)."""

    stored: int  # the PACS answered Success
    warned: int  # stored, with a Warning status
    failed: int  # refused by the PACS (a status, a refused SOP class), not convertible, unreadable mid-send...
    not_sent: int  # the user stopped the send first (cancel, close)
    unreachable: int  # never reached the PACS: it was down, refused the association or was judged broken
    unknown: int  # the data set went out, no answer came (or the journal could not record the answer)


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
    association_errors: list[str] = field(default_factory=list)
    #: From the progress tracker at the end: instances sent, seconds taken, average (inst/s, bytes/s).
    sent: int = 0
    elapsed_s: float = 0.0
    rates: tuple[float, float] = (0.0, 0.0)
    #: Why the send journal could not be written (the send stopped then), else "".
    journal_error: str = ""
    #: What else happened to the send journal, in plain words (set aside, unavailable).
    journal_notes: list[str] = field(default_factory=list)
    _counts: tuple[dict[str, Any], JobCounts] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.by_index:
            self.by_index = dict(enumerate(self.nodes))

    @property
    def counts(self) -> JobCounts:
        """The job's counts: the summary's, with the failures that never reached the PACS and the unknown outcomes apart.

        Counted once when the job has ended (a summary of 10,000 outcomes is read several times then).
        """
        cached = self._counts
        if cached is not None and cached[0] is self.summary:
            return cached[1]
        counts = self._count()
        if self.finished:
            self._counts = (self.summary, counts)
        return counts

    def _count(self) -> JobCounts:
        s = self.summary
        not_sent = s.get("not_sent", 0)
        unreachable = unknown = 0
        for o in self.outcomes.values():
            unreachable += st.never_reached(o.get("state", ""), o)
            unknown += o.get("state") == st.UNKNOWN.value
        failed = s.get("failure", 0) - not_sent - unreachable - unknown
        return JobCounts(s.get("success", 0), s.get("warning", 0), failed, not_sent, unreachable, unknown)

    def why_nothing_sent(self) -> str:
        """Why nothing reached the PACS: the last association's failure, else the job's error or the reason of the
        instances not sent ("" when the PACS answered: the failures' reasons are said apart)."""
        if self.association_errors:
            return self.association_errors[-1]
        if self.error:
            return self.error
        return self.why_unreachable() or self._commonest(lambda o: o.get("state") == st.NOT_SENT.value)

    def why_unreachable(self) -> str:
        """The commonest reason of the instances the PACS could not take (down, association refused, judged broken)."""
        return self._commonest(lambda o: st.never_reached(o.get("state", ""), o))

    def _commonest(self, chosen: Any) -> str:
        reasons: dict[str, int] = {}
        for o in self.outcomes.values():
            if o.get("message") and chosen(o):
                reasons[o["message"]] = reasons.get(o["message"], 0) + 1
        return max(reasons, key=lambda m: reasons[m]) if reasons else ""


def outcome_label(job: SendRecord) -> str:
    """How a send ended, in two or three words: ``Done``, ``Done with warnings``, ``Cancelled``, ``Stopped``
    (the journal could not be written), ``Some not stored`` or ``Nothing stored`` (the progress line's prefix
    and the bar's colour)."""
    stored, warn, failed, not_sent, unreachable, unknown = job.counts
    if job.journal_error:
        return "Stopped"
    if job.cancelled:
        return "Cancelled"
    if not stored and not warn:
        return "Nothing stored"
    if failed or not_sent or unreachable or unknown:
        return "Some not stored"
    return "Done with warnings" if warn else "Done"


class SendController(QObject):
    """Runs one send job at a time: plan first, then the SendWorker; rows follow the engine's events.

    Args:
        model: the file tree's model: rows are marked queued, sending, then with their outcome.
        diag_model: the diagnostics pane's model: the job, its associations and their contexts.
        pool: where the plan and the send run.
        gate: lets the send step aside while the GUI thread paints (see :class:`ui.workers.GuiGate`).
        local_pacs: started first when the send goes to the local test profile.
        journal_path: the send journal every send is recorded in (None: no journal).
        parent: the owning QObject.

    Signals:
        info_changed(str): a line for the progress row (planning, connecting, cancelling…).
        busy_changed(bool): a send began waiting for its plan (True), or was dropped before it started (False).
        plan_filled(object): the plan before the send is in the Plan column; the list of
            :class:`core.preflight.InstancePlan`.
        plan_failed(str): no plan before the send (why); it goes ahead, the Plan column is cleared.
        confirmation_needed(object, object): ``(plans, core.profiles.Profile)``: the plan blocks some
            instances or converts them lossily; answer with :meth:`confirm`.
        send_started(object, int): ``(SendRecord, number of instances)``; the worker got its job.
        progressed(object): every 250 ms while sending and once at the end; the :class:`ui.progress.ProgressTracker`.
        arrival_checked(object): the arrival check's result (see ``SendWorker.arrival_checked``).
        journal_noted(object): the send journal was set aside, is unavailable or could not be written (the
            :class:`core.events.JournalSetAside`, ``JournalUnavailable`` or ``JournalFailed``).
        send_finished(object): the job ended; its :class:`SendRecord` (now :attr:`last_job`).
    """

    info_changed = Signal(str)
    busy_changed = Signal(bool)
    plan_filled = Signal(object)
    plan_failed = Signal(str)
    confirmation_needed = Signal(object, object)
    send_started = Signal(object, int)
    progressed = Signal(object)
    arrival_checked = Signal(object)
    journal_noted = Signal(object)
    send_finished = Signal(object)

    def __init__(
        self,
        model: InstanceTreeModel,
        diag_model: DiagnosticsModel,
        pool: ThreadPool,
        gate: GuiGate,
        local_pacs: LocalPacsController,
        journal_path: str | None = None,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.model = model
        self.diag_model = diag_model
        self.pool = pool
        self.gate = gate
        self.local_pacs = local_pacs
        self.journal_path = journal_path
        self.tracker = ProgressTracker()
        #: The job being sent (None between jobs) and the last one that ended.
        self.job: SendRecord | None = None
        self.last_job: SendRecord | None = None
        #: Every job that ended in this session, oldest first (the failure report covers them).
        self.jobs: list[SendRecord] = []
        #: Each instance's outcome per PACS profile (the tree shows the chosen profile's).
        self.results = PacsResults()
        self._worker: SendWorker | None = None
        self._preflight: tuple[list[Node], Profile] | None = None  # a send waiting for its plan
        self._preflight_gen = 0
        self._plan_summary = ""
        self._to_queue: tuple[list[Node], int, SendWorker | None] = ([], 0, None)
        self._closing = False
        self.timer = QTimer(self)
        self.timer.setInterval(PROGRESS_MS)
        self.timer.timeout.connect(self._on_timer_timeout)

    # -- state ---------------------------------------------------------------------------------------

    @property
    def worker(self) -> SendWorker | None:
        """The running send's worker, or None."""
        return self._worker

    @property
    def sending(self) -> bool:
        """True while the worker runs."""
        return self._worker is not None

    @property
    def busy(self) -> bool:
        """True while a send waits for its plan or its confirmation, or runs."""
        return self._worker is not None or self._preflight is not None

    @property
    def cancelling(self) -> bool:
        """True once the running send was asked to stop."""
        return self._worker is not None and self._worker.cancel_event.is_set()

    def retry_nodes(self) -> list[Node]:
        """The instances *Retry failed* sends: failed, not sent, unknown."""
        return [n for n in self.model.leaves() if n.state in st.RETRY_STATES]

    # -- starting ------------------------------------------------------------------------------------

    def start(self, nodes: Sequence[Node], profile: Profile, preflight: bool = True) -> bool:
        """Start a job for `nodes` to `profile`'s PACS (a valid profile); False when one is already busy.

        With `preflight` the plan comes first (from the profile's saved acceptance map when
        it covers the files, else a quick negotiation): the Plan column fills, and when
        anything is blocked or would be converted lossily ``confirmation_needed`` asks
        before the first byte goes out.
        """
        if self.busy or not nodes:
            return False
        if profile.is_local_test and not self.local_pacs.running:
            emit(self.info_changed, "Starting the local test PACS first…")
            self.local_pacs.start_then(lambda: self.start(nodes, profile, preflight))
            return True
        profile = self.local_pacs.resolve(profile)  # this window's local test PACS, wherever it listens
        if preflight:
            return self._start_preflight(list(nodes), profile)
        return self.launch(list(nodes), profile)

    def _start_preflight(self, nodes: list[Node], p: Profile) -> bool:
        _freeze_heap()  # from the plan on (its worker allocates too); thawed when the send ends or is dropped
        self._preflight = (nodes, p)
        emit(self.busy_changed, True)
        from_map = " from its saved acceptance map…" if saved_map_for(p) else "…"
        emit(self.info_changed, f"Planning {len(nodes)} instance(s) against {p.name}{from_map}")
        self._preflight_gen += 1
        worker = TaskWorker(tagged, self._preflight_gen, plan, *plan_args(nodes, p, False))
        worker.succeeded.connect(self._on_preflight_succeeded)
        worker.failed.connect(self._on_preflight_failed)
        self.pool.start(worker, "preflight")
        return True

    @Slot(object)
    def _on_preflight_succeeded(self, tagged: tuple[int, list[InstancePlan]]) -> None:
        gen, plans = tagged
        if self._preflight is None or gen != self._preflight_gen:
            return  # cancelled, or the plan of an earlier, cancelled send
        nodes, p = self._preflight
        apply_plans(self.model, nodes, plans)
        emit(self.plan_filled, plans)
        self._plan_summary = summary_text(plans)
        emit(self.info_changed, f"Plan: {self._plan_summary}.")
        if not needs_confirmation(plans):
            QTimer.singleShot(0, self._launch_after_preflight)  # let the plan column paint first
            return
        emit(self.info_changed, "Plan ready: waiting for confirmation (some instances are blocked or lossy).")
        emit(self.confirmation_needed, plans, p)

    @Slot()
    def _launch_after_preflight(self) -> None:
        pending, self._preflight = self._preflight, None
        if pending is not None:
            self.launch(*pending)

    def confirm(self, go: bool) -> None:
        """Answer ``confirmation_needed``: send anyway (True) or send nothing (False)."""
        pending, self._preflight = self._preflight, None
        if pending is None:
            return
        if go:
            self.launch(*pending)
        else:
            emit(self.info_changed, "Send cancelled after the plan: nothing was sent (see the Plan column).")
            gc.unfreeze()
            emit(self.busy_changed, False)

    @Slot(object)
    def _on_preflight_failed(self, exc: Exception) -> None:
        if getattr(exc, "tag", None) != self._preflight_gen:
            return
        pending, self._preflight = self._preflight, None
        if pending is None:
            return
        # the send will meet the same problem and report it per instance (and in the journal)
        LOGGER.info("No plan before sending (%s); sending anyway", exc)
        self._plan_summary = ""
        self.model.set_plans((n, "") for n in pending[0])
        self.model.flush()
        emit(self.plan_failed, str(exc))
        self.launch(*pending)

    def _new_job(self, nodes: list[Node], p: Profile) -> tuple[SendRecord, SendRequest, int, str, int]:
        """A new job's record and request (raises ValueError when the profile is not usable)."""
        nodes = [n for n in nodes if n.inst is not None]
        config = p.to_store_config()
        job = SendRecord(uuid.uuid4().hex[:12], p, list(nodes), plan_summary=self._plan_summary)
        request = SendRequest(
            config,
            instances=tuple(n.inst for n in nodes if n.inst is not None),
            options=SendOptions(p.strategy, p.max_retries, parallel=p.parallel_associations, verify_arrival=p.verify_arrival),
            journal_path=self.journal_path,
            profile=p.name,
            job_id=job.job_id,
            origin="gui",
        )
        return job, request, len(nodes), p.strategy, p.max_retries

    def _rerun_job(
        self, nodes: list[Node], p: Profile, rerun: Any, by_index: dict[int, Node]
    ) -> tuple[SendRecord, SendRequest, int, str, int]:
        job = SendRecord(rerun.job.id, p, list(nodes), by_index=dict(by_index), resumed=True)
        opts = rerun.options
        request = SendRequest(
            options=SendOptions(verify_arrival=bool(opts.get("verify_arrival", p.verify_arrival))),  # the rest: the job's
            journal_path=self.journal_path,
            rerun=Rerun(rerun.job.id, plan=rerun),
        )
        return job, request, len(rerun.items), opts.get("strategy", "standard"), int(opts.get("max_retries", 4))

    def launch(self, nodes: list[Node], p: Profile, rerun: Any = None, by_index: dict[int, Node] | None = None) -> bool:
        """Start the SendWorker for `nodes` (no plan, no questions); `rerun` resumes a journalled job.

        Args:
            nodes: the rows sent (for a resume: the rows of the plan's items).
            p: the profile sent with (named in the journal and the report).
            rerun: a :class:`core.send.RerunPlan` to resume instead of a new job.
            by_index: for a resume, the row of each of the plan's item indexes.
        """
        if self._worker is not None:
            return False
        try:
            job, request, n, strategy, max_retries = (
                self._rerun_job(nodes, p, rerun, by_index or {}) if rerun is not None else self._new_job(nodes, p)
            )
        except ValueError as exc:
            emit(self.info_changed, f"Cannot send: {exc}")
            gc.unfreeze()
            return False
        worker = SendWorker(request, batch_s=EVENT_BATCH_S, gate=self.gate)
        self._connect(worker)
        self._worker, self.job = worker, job
        verb = "Resume" if rerun is not None else "Send"
        self.diag_model.begin_job(
            f"{verb} {time.strftime('%H:%M:%S')}",
            f"{n} instance(s) to {p.name} ({p.remote_ae_title}@{p.remote_host}:"
            f"{p.remote_port}), strategy {strategy}, up to {max_retries} fallback "
            f"step(s), job {job.job_id}" + (f"; plan: {job.plan_summary}" if job.plan_summary else ""),
        )
        self._plan_summary = ""
        self.tracker.reset(n, sum(node.size for node in job.by_index.values()))
        emit(self.send_started, job, n)
        emit(self.info_changed, f"Connecting to {p.remote_ae_title}@{p.remote_host}:{p.remote_port}…")
        self.timer.start()
        LOGGER.info("%s %s: %d instance(s) to %s@%s:%s", verb, job.job_id, n, p.remote_ae_title, p.remote_host, p.remote_port)
        # mark the rows "queued" a few thousand per turn of the event loop, then start the worker
        self._to_queue = (list(job.by_index.values()), 0, worker)
        self._queue_rows()
        return True

    def resume(self, nodes: list[Node], p: Profile, rerun: Any, by_index: dict[int, Node]) -> bool:
        """Resume a journalled job (a :class:`core.send.RerunPlan`) to `p`; this window's local test PACS starts first.

        A job to the local test PACS goes to the port this window's SCP listens on now, whatever
        port the journal recorded.
        """
        if p.is_local_test and not self.local_pacs.running:
            emit(self.info_changed, "Starting the local test PACS first…")
            self.local_pacs.start_then(lambda: self.resume(nodes, p, rerun, by_index))
            return True
        p = self.local_pacs.resolve(p)
        if p.is_local_test:
            rerun = replace(rerun, config={**rerun.config, "remote_port": p.remote_port})
        return self.launch(nodes, p, rerun=rerun, by_index=by_index)

    def _connect(self, worker: SendWorker) -> None:
        worker.job_started.connect(self._on_worker_job_started)
        worker.association_requested.connect(self._on_worker_association_requested)
        worker.association_negotiated.connect(self._on_worker_association_negotiated)
        worker.association_failed.connect(self._on_worker_association_failed)
        worker.association_released.connect(self._on_worker_association_released)
        worker.instance_started.connect(self._on_worker_instance_started)
        worker.instance_finished.connect(self._on_worker_instance_finished)
        worker.instances_batched.connect(self._on_worker_instances_batched)
        worker.job_finished.connect(self._on_worker_job_finished)
        worker.arrival_check_started.connect(self._on_worker_arrival_check_started)
        worker.arrival_checked.connect(self._on_worker_arrival_checked)
        worker.result_ready.connect(self._on_worker_result_ready)
        worker.event_received.connect(self._on_worker_event_received)

    @Slot()
    def _queue_rows(self) -> None:
        nodes, start, worker = self._to_queue
        end = start + QUEUE_CHUNK
        self.model.set_states(nodes[start:end], st.QUEUED)
        if end < len(nodes) and worker is self._worker:
            self._to_queue = (nodes, end, worker)
            QTimer.singleShot(0, self._queue_rows)
            return
        self._to_queue = ([], 0, None)
        if worker is self._worker and worker is not None and not self._closing:
            self.model.flush()
            _freeze_heap()
            self.pool.start(worker, "send")

    # -- cancelling ----------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the running job after the current instance, or drop a send still waiting for its plan."""
        if self._worker is not None:
            self._worker.cancel()
            emit(self.info_changed, "Cancelling after the current instance; the rest will be marked “not sent”…")
        elif self._preflight is not None:
            self._preflight = None  # the plan's result is ignored when it comes
            emit(self.info_changed, "Send cancelled before it started: nothing was sent.")
            gc.unfreeze()
            emit(self.busy_changed, False)

    def stop_to_quit(self, grace_s: float = QUIT_GRACE_S) -> None:
        """Stop the running job because the window closes: after the current instance when that takes
        less than `grace_s` seconds, else at once between PDUs (the association is aborted). Either way
        the journal records every outcome and keeps the rest for a resume; ``send_finished`` follows."""
        worker = self._worker
        if worker is None:
            self.cancel()
            return
        worker.cancel()
        emit(self.info_changed, "Stopping the send; what is left stays in the send journal for Resume…")
        QTimer.singleShot(int(grace_s * 1000), lambda: self._stop_now(worker))

    def _stop_now(self, worker: SendWorker) -> None:
        if worker is self._worker:  # still running: cut the instance in flight off
            LOGGER.info("Stopping the send now (the window is closing)")
            worker.stop()

    def shutdown(self) -> None:
        """Stop the running job at once and start no other (the window is closing)."""
        self._closing = True
        if self._worker is not None:
            self._worker.stop()
        self.timer.stop()
        gc.unfreeze()

    # -- the engine's events -------------------------------------------------------------------------

    def _node_for(self, index: int) -> Node | None:
        job = self.job
        return job.by_index.get(index) if job is not None else None

    @Slot(object)
    def _on_worker_job_started(self, e: Any) -> None:
        self.tracker.reset(e.total, e.total_bytes)

    @Slot(object)
    def _on_worker_association_requested(self, e: Any) -> None:
        self.diag_model.association_requested(e)
        if self.job is not None and not self.cancelling:
            emit(
                self.info_changed,
                f"Requesting an association (strategy {e.strategy}, {e.n_contexts} presentation contexts, attempt {e.attempt})…",
            )

    @Slot(object)
    def _on_worker_association_negotiated(self, e: Any) -> None:
        record = e.negotiation.to_dict()
        if self.job is not None:
            self.job.associations.append(record)
        self.diag_model.association_negotiated(record)

    @Slot(object)
    def _on_worker_association_failed(self, e: Any) -> None:
        record = e.negotiation.to_dict()
        if self.job is not None:
            self.job.associations.append(record)
            self.job.association_errors.append(e.message)
        self.diag_model.association_failed(e.message, record)

    @Slot(object)
    def _on_worker_association_released(self, e: Any) -> None:
        self.diag_model.association_released(e)

    @Slot(object)
    def _on_worker_instance_started(self, e: Any) -> None:
        node = self._node_for(e.index)
        if node is not None:
            self.model.set_state(node, st.SENDING, None, sending_as=(e.transfer_syntax, e.converted_from))

    @Slot(object)
    def _on_worker_instances_batched(self, events: list[Any]) -> None:
        with self.gate:
            for e in events:
                if isinstance(e, InstanceFinished):
                    self._on_worker_instance_finished(e)
                else:
                    self._on_worker_instance_started(e)

    @Slot(object)
    def _on_worker_instance_finished(self, e: Any) -> None:
        node = self._node_for(e.index)
        if node is None or self.job is None:
            return
        o = e.outcome.to_dict()
        self.job.outcomes[e.index] = o
        state = _STATE_OF.get(o.get("state", ""), st.FAILED)
        self.model.set_state(node, state, o)
        self.results.record(self.job.profile.name, node, state, o)
        if state == st.NOT_SENT or st.never_reached(state, o):
            self.tracker.add_not_sent(unreachable=state != st.NOT_SENT)
        else:
            self.tracker.add(e.bytes_sent, state in _WENT_OUT or (state == st.FAILED and o.get("status_code") is not None))

    @Slot(object)
    def _on_worker_job_finished(self, e: Any) -> None:
        self.diag_model.end_job(e)
        if self.job is not None:
            self.job.summary = dict(e.summary or {})
            self.job.error = e.error
            self.job.cancelled = e.cancelled

    @Slot(object)
    def _on_worker_event_received(self, e: ev.Event) -> None:
        if not isinstance(e, _JOURNAL_EVENTS):
            return
        note = journal_note(e)
        job = self.job
        if job is not None and isinstance(e, ev.JournalFailed):
            job.journal_error = e.message
        elif job is not None:
            job.journal_notes.append(note)
        if isinstance(e, ev.JournalFailed):
            emit(self.info_changed, "The send journal could not be written: stopping before the next instance…")
        emit(self.journal_noted, e)

    @Slot(int)
    def _on_worker_arrival_check_started(self, n: int) -> None:
        emit(self.info_changed, f"Checking that the PACS holds the {n} stored instance(s)…")

    @Slot(object)
    def _on_worker_arrival_checked(self, info: dict[str, Any]) -> None:
        job = self.job
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
                self.results.record(job.profile.name, node, node.state, node.outcome)
        for m in info.get("messages", []):
            LOGGER.info("Arrival check: %s", m)
        emit(self.arrival_checked, info)

    @Slot(object)
    def _on_worker_result_ready(self, result: JobResult | dict[str, Any]) -> None:
        job, self.job = self.job, None
        self._worker = None
        self.timer.stop()
        gc.unfreeze()
        if job is None:
            self.tracker.finish()
            return
        job.finished = time.time()
        if isinstance(result, JobResult):
            missing = [o for o in result.outcomes if o.index not in job.outcomes]  # the events brought the rest
            for o in missing:
                job.outcomes[o.index] = o.to_dict()
            job.associations = [a.to_dict() for a in result.associations]
            job.summary = result.summary()
            job.error = result.error
            job.cancelled = result.cancelled
        else:
            job.error = result.get("error")
            n = self._mark_unsent(job)
            job.summary = {"total": len(job.by_index), "success": 0, "warning": 0, "failure": n, "not_sent": n}
        self.model.flush()
        self.tracker.finish(outcome_label(job))
        job.sent, job.elapsed_s, job.rates = self.tracker.sent, self.tracker.elapsed_s, self.tracker.rates()
        self.last_job = job
        self.jobs.append(job)
        emit(self.progressed, self.tracker)
        emit(self.send_finished, job)

    def jobs_to(self, profile: str) -> list[SendRecord]:
        """The jobs of this session that went to `profile`, oldest first."""
        return [j for j in self.jobs if j.profile.name == profile]

    def _mark_unsent(self, job: SendRecord) -> int:
        """The job could not run at all: its queued rows end "not sent" with the job's error; returns how many."""
        count = 0
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
                self.results.record(job.profile.name, n, st.NOT_SENT, o)
                self.tracker.add_not_sent()
                count += 1
        return count

    @Slot()
    def _on_timer_timeout(self) -> None:
        emit(self.progressed, self.tracker)
