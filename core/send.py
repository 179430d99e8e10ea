"""One home for the send flow: a :class:`SendRequest` in, a :class:`SendResult` out.

:func:`run_send` runs a whole send for both front ends (the CLI's ``send``, ``resume`` and
``retry``, the GUI's send worker):

1. check the request (files exist, the report can be written) and scan the paths;
2. record the job in the send journal (:mod:`core.journal`), or, for a resume or retry,
   read the job back and re-read its files (:func:`prepare_rerun`);
3. run the engine (:class:`core.engine.SendJob`), the journal recording each step first;
4. check arrival (:mod:`core.verify`) when asked;
5. write the report (:mod:`core.report`).

Progress leaves through ``on_event`` (:mod:`core.events`, any thread); cancellation comes in
through a ``threading.Event`` checked between C-STOREs, and a hard stop through another one
checked between PDUs (the association is aborted; the journal and the report are still written). :func:`run_dry_run` is the same
request planned instead of sent (:mod:`core.preflight`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import events as ev
from .config import StoreConfig
from .engine import Item, JobResult, SendJob, items_from_scan
from .errors import SendRequestError
from .journal import RESUME_STATES, RETRY_STATES, JobRecord, Journal, add_set_aside_event, new_job_id
from .outcomes import ArrivalCheck, InstanceOutcome, InstanceState
from .report import build_report, report_path_problem, write_report
from .scan import ScannedInstance, read_instance, scan_paths
from .strategies import parse_strategy

LOGGER = logging.getLogger(__name__)

__all__ = [
    "SendOptions",
    "Rerun",
    "RerunPlan",
    "SendRequest",
    "SendResult",
    "DryRunResult",
    "run_send",
    "run_dry_run",
    "prepare_rerun",
]


@dataclass(frozen=True)
class SendOptions:
    """How to send.

    Attributes:
        strategy: the first transfer-syntax strategy (:mod:`core.strategies`).
        max_retries: how many more conservative strategies may follow (0-4; less than 0 counts as 0).
        continue_on_error: False stops at the first failure; the rest are reported skipped.
        parallel: associations at once (>= 1); each study stays on one.
        verify_arrival: after the send, ask the PACS whether it holds what it acknowledged.
        commit_port: port to receive a storage commitment report on a new association
            (PS3.4 J.3.3), or None to wait on the request's association only.
        commit_timeout_s: how long to wait for that report, seconds.

    Raises:
        ValueError: a bad strategy or `parallel` below 1.
    """

    strategy: str = "standard"
    max_retries: int = 4
    continue_on_error: bool = True
    parallel: int = 1
    verify_arrival: bool = False
    commit_port: int | None = None
    commit_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        parse_strategy(self.strategy)
        if self.parallel < 1:
            raise ValueError(f"parallel must be at least 1, not {self.parallel}")


@dataclass
class RerunPlan:
    """What a resume or retry of a journalled job will send.

    Attributes:
        job: the job record.
        config: the saved connection config (a dict for :class:`core.config.StoreConfig`).
        options: the saved send options (``strategy``, ``max_retries``, ``continue_on_error``...).
        items: engine items to send, indexed as in the job.
    """

    job: JobRecord
    config: dict[str, Any]
    options: dict[str, Any]
    items: list[Item]


@dataclass(frozen=True)
class Rerun:
    """Send a journalled job again instead of new files.

    Attributes:
        job_id: the job (a unique prefix is enough); None takes the latest interrupted job.
        retry: False resumes (instances not sent, in flight or unknown); True retries
            (those and the failed ones).
        plan: the plan already prepared with :func:`prepare_rerun` (the GUI reads the files
            before it shows them); None prepares it in :func:`run_send`.
    """

    job_id: str | None = None
    retry: bool = False
    plan: RerunPlan | None = None


@dataclass(frozen=True)
class SendRequest:
    """Everything a send needs.

    Attributes:
        config: the connection (for a rerun: None, the job's saved settings are used).
        paths: files, folders or DICOMDIRs to scan (when `instances` is empty).
        instances: scanner records to send, in order (their position is the job's index).
        options: how to send; a rerun takes strategy, retries and continue-on-error from the
            job, and the arrival-check settings from here.
        journal_path: the send journal (SQLite); None sends without one.
        journal_required: True when an unusable journal stops the send (an explicit file);
            False sends without it and reports :class:`core.events.JournalUnavailable`.
        profile: the profile's name, recorded in the journal (default: the peer).
        report_path: write the JSON or CSV report there; None writes none.
        rerun: resume or retry a journalled job instead of sending `paths` / `instances`.
        job_id: the new job's ID (default: a fresh one).
        origin: who asked (e.g. ``"gui"``), recorded in the journal's options.
    """

    config: StoreConfig | None = None
    paths: tuple[str, ...] = ()
    instances: tuple[ScannedInstance, ...] = ()
    options: SendOptions = field(default_factory=SendOptions)
    journal_path: str | None = None
    journal_required: bool = False
    profile: str | None = None
    report_path: str | None = None
    rerun: Rerun | None = None
    job_id: str | None = None
    origin: str | None = None


@dataclass(frozen=True)
class SendResult:
    """What a send did.

    Attributes:
        job_id: the job's ID; None when a resume without a job ID found no interrupted job.
        job: the engine's result for this run (its outcomes carry the arrival check's
            ``verified``); None when nothing was sent.
        config: the connection used.
        arrival: the arrival check, or None when none ran.
        job_counts: a rerun's whole job after this run: instances per state, plus ``total``.
        elapsed_s: seconds from the request to the end (scan and report included).
        journal_error: why the send stopped when the journal could not be written (the
            outcomes it did not record say so), else None.
    """

    job_id: str | None
    job: JobResult | None = None
    config: StoreConfig | None = None
    arrival: ArrivalCheck | None = None
    job_counts: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    journal_error: str | None = None


def _ignore(event: ev.Event) -> None:
    """The default event callback."""


def run_send(
    request: SendRequest,
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> SendResult:
    """Run a whole send: journal job, engine (or the rerun of a journalled job), arrival check, report.

    Args:
        request: what to send and how.
        on_event: receives :mod:`core.events` records: the journal's :class:`~core.events.JobCreated`
            (or :class:`~core.events.JournalUnavailable`), a rerun's :class:`~core.events.RerunPrepared`,
            the engine's events, :class:`~core.events.ArrivalCheckStarted` / ``Finished``,
            :class:`~core.events.ReportWritten` / ``ReportFailed``, the journal's
            :class:`~core.events.JournalSetAside` and :class:`~core.events.JournalFailed`. An engine
            event is passed on after the journal has recorded it (within 50 ms, from the sending
            thread or the journal's; :mod:`core.journal`).
        cancel: set it to stop before the next C-STORE; the association is released, the rest
            are reported not sent (cancelled), and no arrival check runs. A journal that cannot
            be written stops the send the same way (``SendResult.journal_error``).
        stop: set it to stop now (a second Ctrl+C, SIGTERM, the window closed): the association
            is aborted between PDUs, the instance in flight is recorded as outcome unknown (or
            not sent when its data set was not fully written), the rest as not sent ("the send
            was stopped"); the journal and the report are still written, no arrival check runs.

    Returns:
        a :class:`SendResult`. Peer and file problems are outcomes, never exceptions.

    Raises:
        SendRequestError: the send cannot start (no such file, nothing to send, report path
            not writable, a required journal unusable, no such job, saved settings no longer
            valid). Nothing was sent.
        JobBusyError: (a SendRequestError) the job to resume is being sent by another process
            (named with its pid, host and since when). Nothing was sent.
        ValueError: a bad strategy.
    """
    on_event = on_event or _ignore
    cancel = cancel or threading.Event()
    stop = stop or threading.Event()
    t0 = time.monotonic()
    if request.report_path:
        problem = report_path_problem(request.report_path)
        if problem:
            raise SendRequestError(problem)
    if request.rerun is not None:
        return _run_rerun(request, request.rerun, on_event, _Stops(cancel, stop), t0)
    return _run_new(request, on_event, _Stops(cancel, stop), t0)


@dataclass(frozen=True)
class _Stops:
    """The two ways a user ends a send: `cancel` before the next instance, `stop` now."""

    cancel: threading.Event
    stop: threading.Event

    def any(self) -> bool:
        return self.cancel.is_set() or self.stop.is_set()


def _instances(request: SendRequest) -> list[ScannedInstance]:
    """The request's instances, scanning its paths when it holds none."""
    if request.instances:
        return list(request.instances)
    missing = [p for p in request.paths if not os.path.exists(p)]
    if missing:
        raise SendRequestError(f"no such file or folder: {', '.join(missing)}")
    instances = scan_paths(list(request.paths))
    if not instances:
        raise SendRequestError("nothing to send: no files found in " + ", ".join(request.paths))
    return instances


def _journal_options(request: SendRequest, cfg: StoreConfig) -> dict[str, Any]:
    """What a resume needs to redo the send: the config (no secrets) and the engine options."""
    opts = request.options
    out: dict[str, Any] = {
        "config": cfg.to_dict(),
        "strategy": opts.strategy,
        "max_retries": opts.max_retries,
        "continue_on_error": opts.continue_on_error,
        "parallel": opts.parallel,
        "paths": list(request.paths),
        "verify_arrival": opts.verify_arrival,
    }
    if request.origin:
        out["app"] = request.origin
    return out


def _open_new_job(
    request: SendRequest, cfg: StoreConfig, job_id: str, items: list[Item], on_event: ev.EventCallback
) -> Journal | None:
    """Record the job in the journal; None when there is no journal (or an optional one failed)."""
    if not request.journal_path:
        return None
    try:
        journal = Journal(request.journal_path)
        add_set_aside_event(journal, on_event)
        journal.create_job(job_id, request.profile or cfg.peer, cfg.peer, _journal_options(request, cfg), items)
    except (OSError, sqlite3.Error) as exc:
        if request.journal_required:
            raise SendRequestError(f"cannot use the journal {request.journal_path}: {exc}") from exc
        LOGGER.info("No journal for send %s (%s)", job_id, exc)
        on_event(ev.JournalUnavailable(str(exc)))
        return None
    on_event(ev.JobCreated(job_id, journal.path))
    return journal


def _run_new(request: SendRequest, on_event: ev.EventCallback, stops: _Stops, t0: float) -> SendResult:
    cfg = request.config
    if cfg is None:
        raise SendRequestError("a send needs the connection settings (config)")
    instances = _instances(request)
    opts = request.options
    job_id = request.job_id or new_job_id()
    items = items_from_scan(instances)
    journal = _open_new_job(request, cfg, job_id, items, on_event)
    recorder = journal.recorder(job_id, on_event, stops.cancel) if journal is not None else None
    engine_cancel = recorder.stop if recorder else stops.cancel  # the recorder also stops it when the journal fails
    try:
        job = SendJob(
            cfg,
            opts.strategy,
            opts.max_retries,
            opts.continue_on_error,
            recorder or on_event,  # the recorder passes each event on once it is in the journal
            engine_cancel,
            job_id,
            parallel=opts.parallel,
            stop=stops.stop,
        )
        result = job.run(items)
    finally:
        if journal is not None:
            journal.close()  # commits the last group, gives the job back
    if recorder is not None:
        recorder.settle(result)
    arrival = _check_arrival(request.options, cfg, result, on_event, _Stops(engine_cancel, stops.stop))
    if request.report_path:
        job_info: dict[str, Any] = {
            "id": job_id,
            "peer": cfg.peer,
            "calling_ae": cfg.local_ae_title,
            "strategy": opts.strategy,
            "implicit_vr_only": cfg.implicit_vr_only,
            "started": t0,
            "elapsed_s": round(time.monotonic() - t0, 3),
        }
        if result.stopped:
            job_info["stopped"] = True
        if arrival is not None:
            job_info["arrival_check"] = arrival.to_dict()
        report = build_report(result.outcomes, result.summary(), result.associations, job_info)
        _write(request.report_path, report, on_event)
    journal_error = recorder.error.message if recorder is not None and recorder.error else None
    return SendResult(job_id, result, cfg, arrival, elapsed_s=time.monotonic() - t0, journal_error=journal_error)


def _check_arrival(
    opts: SendOptions, cfg: StoreConfig, result: JobResult, on_event: ev.EventCallback, stops: _Stops
) -> ArrivalCheck | None:
    """Ask the PACS whether it holds the stored instances; set each outcome's ``verified``.

    Runs when asked, after a send that reached the peer and was not cancelled. Never raises:
    a check that cannot run at all is an :class:`~core.outcomes.ArrivalCheck` with ``error``.
    """
    if not opts.verify_arrival or result.no_association or stops.any():
        return None
    from .verify import apply_to_outcomes, verify_arrival

    stored = [o for o in result.outcomes if o.stored]
    if stored:
        on_event(ev.ArrivalCheckStarted(len(stored)))
    try:
        answer = verify_arrival(cfg, stored, listen_port=opts.commit_port, timeout_s=opts.commit_timeout_s)
    except Exception as exc:  # never raises for a peer problem: a bug or a bad setting, reported as data
        LOGGER.error("Arrival check failed: %s", exc)
        check = ArrivalCheck(len(stored), messages=(f"arrival check failed: {exc}",), error=str(exc))
    else:
        result.outcomes = apply_to_outcomes(result.outcomes, answer)
        check = ArrivalCheck(
            len(stored),
            {o.index: o.verified for o in result.outcomes if o.verified},
            answer.counts(),
            tuple(answer.methods),
            tuple(answer.messages),
            dict(answer.commitment),
            dict(answer.series),
        )
    on_event(ev.ArrivalCheckFinished(check))
    return check


def _write(path: str, report: dict[str, Any], on_event: ev.EventCallback) -> None:
    """Write the report; a failure is an event, not an exception (the send is done)."""
    try:
        write_report(path, report)
    except (OSError, sqlite3.Error) as exc:  # a rerun's report reads the journal as it goes
        LOGGER.info("Cannot write the report %s: %s", path, exc)
        on_event(ev.ReportFailed(path, str(exc)))
    else:
        on_event(ev.ReportWritten(path))


# -- resume and retry ---------------------------------------------------------------------------------


def prepare_rerun(journal: Journal, job_id: str, states: Sequence[str] = RESUME_STATES) -> RerunPlan:
    """Build the items of a resume (``RESUME_STATES``) or retry (``RETRY_STATES``) of `job_id`.

    Both also take the failed instances marked ``resumable`` (they never reached the peer
    because it was unavailable). Each file is read again (header only); a file that is gone, no longer
    readable, or now holds another SOP Instance UID becomes a failure item (the
    engine reports it with its reason and sends nothing for it).

    Raises:
        KeyError: no such job.
        ValueError: the job has no saved connection config.
    """
    job = journal.job(job_id)
    if job is None:
        raise KeyError(job_id)
    known = StoreConfig.known_keys()
    config = {k: v for k, v in (job.options.get("config") or {}).items() if k in known}
    if not config:
        raise ValueError(f"job {job.id} has no saved connection settings")
    items = []
    for row in _rerun_rows(journal, job.id, states):
        path = row["path"]
        if not path:
            inst = ScannedInstance(
                "",
                "failure",
                "cannot be sent again: it was an in-memory data set, not a file",
                sop_instance_uid=row["sop_instance_uid"] or "",
                index=row["idx"],
            )
            items.append(Item(row["idx"], "", inst))
            continue
        inst = replace(read_instance(path), index=row["idx"])
        if inst.status == "ok" and row["sop_instance_uid"] and inst.sop_instance_uid != row["sop_instance_uid"]:
            inst = replace(
                inst,
                status="failure",
                reason=f"the file changed since the job started: it now holds SOP Instance UID "
                f"{inst.sop_instance_uid}, not {row['sop_instance_uid']}",
            )
        items.append(Item(row["idx"], path, inst))
    return RerunPlan(job, config, {k: v for k, v in job.options.items() if k != "config"}, items)


def _rerun_rows(journal: Journal, job_id: str, states: Sequence[str]) -> Iterator[dict[str, Any]]:
    """The job's rows a rerun sends: those in `states`, and failed ones marked ``resumable``."""
    for row in journal.iter_instances(job_id):
        if row["state"] in states or (row["state"] == InstanceState.FAILED and row.get("resumable")):
            yield row


def _open_journal_for_rerun(request: SendRequest) -> Journal:
    path = request.journal_path
    if not path:
        raise SendRequestError("a resume or retry needs the send journal")
    if request.journal_required and not os.path.exists(path):
        raise SendRequestError(f"no journal at {path}")
    try:
        return Journal(path)
    except (OSError, sqlite3.Error) as exc:
        raise SendRequestError(f"cannot open the journal {path}: {exc}") from exc


def _claim_rerun(journal: Journal, rerun: Rerun) -> JobRecord | None:
    """Pick the job to send again and claim it for this process (None: no job ID given and none to resume).

    Without a job ID: the latest job not running with something to resume, else the latest
    one running elsewhere (its claim fails and names the process).

    Raises:
        SendRequestError: no such job, or the journal cannot be written.
        JobBusyError: another process runs the job.
    """
    if rerun.plan is not None:
        job: JobRecord | None = rerun.plan.job
    elif rerun.job_id:
        job = journal.job(rerun.job_id)
        if job is None:
            raise SendRequestError(f"no job {rerun.job_id!r} in the journal {journal.path}")
    else:
        waiting = journal.interrupted_jobs() or [j for j in journal.jobs() if j.state == "running" and j.resumable]
        job = waiting[0] if waiting else None
    if job is None:
        return None
    try:
        journal.claim(job.id)
    except KeyError:
        raise SendRequestError(f"no job {job.id!r} in the journal {journal.path}") from None
    except sqlite3.Error as exc:
        raise SendRequestError(f"cannot use the journal {journal.path}: {exc}") from exc
    return job


def _plan_rerun(journal: Journal, rerun: Rerun, job_id: str) -> RerunPlan:
    """The rerun's items, read after the claim: what another run stored meanwhile is not sent again."""
    states = RETRY_STATES if rerun.retry else RESUME_STATES
    try:
        if rerun.plan is None:
            return prepare_rerun(journal, job_id, states)
        todo = {row["idx"] for row in _rerun_rows(journal, job_id, states)}
        return replace(rerun.plan, items=[it for it in rerun.plan.items if it.index in todo])
    except KeyError:
        raise SendRequestError(f"no job {job_id!r} in the journal {journal.path}") from None
    except ValueError as exc:
        raise SendRequestError(str(exc)) from exc


def _run_rerun(request: SendRequest, rerun: Rerun, on_event: ev.EventCallback, stops: _Stops, t0: float) -> SendResult:
    with _open_journal_for_rerun(request) as journal:  # closing it gives the job back
        add_set_aside_event(journal, on_event)
        try:
            before = _claim_rerun(journal, rerun)
            if before is None:
                return SendResult(None, elapsed_s=time.monotonic() - t0)
            plan = _plan_rerun(journal, rerun, before.id)
        except sqlite3.DatabaseError as exc:  # damage that the check on opening did not see
            raise SendRequestError(f"cannot read the journal {journal.path}: {exc}") from exc
        try:
            cfg = StoreConfig.from_dict(plan.config)
        except ValueError as exc:
            raise SendRequestError(f"job {plan.job.id}: saved settings are not usable: {exc}") from exc
        on_event(ev.RerunPrepared(plan.job.id, len(plan.items), cfg.peer, rerun.retry))
        result = None
        arrival = None
        recorder = journal.recorder(plan.job.id, on_event, stops.cancel)
        if plan.items:
            opts = plan.options
            job = SendJob(
                cfg,
                opts.get("strategy", "standard"),
                int(opts.get("max_retries", 4)),
                bool(opts.get("continue_on_error", True)),
                recorder,  # passes each event on once it is in the journal
                recorder.stop,
                plan.job.id,
                stop=stops.stop,
            )
            try:
                result = job.run(plan.items)
            finally:
                recorder.close()
            recorder.settle(result)
            arrival = _check_arrival(request.options, cfg, result, on_event, _Stops(recorder.stop, stops.stop))
        else:
            journal.release(plan.job.id, before.state)  # nothing sent: the job stays as it was
        counts = journal.counts(plan.job.id)
        if request.report_path:
            fresh = result.outcomes if result else []
            job_info: dict[str, Any] = {
                "id": plan.job.id,
                "peer": cfg.peer,
                "calling_ae": cfg.local_ae_title,
                "command": "retrying" if rerun.retry else "resuming",
                "implicit_vr_only": cfg.implicit_vr_only,
                "started": plan.job.started,
                "elapsed_s": round(time.monotonic() - t0, 3),
            }
            if arrival is not None:
                job_info["arrival_check"] = arrival.to_dict()
            report = build_report(
                lambda: _whole_job_outcomes(journal, plan.job.id, fresh), counts, result.associations if result else [], job_info
            )
            _write(request.report_path, report, on_event)
    journal_error = recorder.error.message if recorder.error else None
    return SendResult(plan.job.id, result, cfg, arrival, counts, time.monotonic() - t0, journal_error)


def _whole_job_outcomes(journal: Journal, job_id: str, fresh: Sequence[InstanceOutcome]) -> Iterator[dict[str, Any]]:
    """The report entries of every instance of the job, one at a time: this run's outcomes, the journal's for the rest."""
    now = {o.index: o for o in fresh}
    attempts = journal.iter_attempts(job_id)
    pending = next(attempts, None)
    for row in journal.iter_instances(job_id):
        mine: list[dict[str, Any]] = []
        while pending is not None and pending[0] <= row["idx"]:
            if pending[0] == row["idx"]:
                mine = pending[1]
            pending = next(attempts, None)
        entry = _row_outcome(row, mine)
        if row["idx"] in now:
            entry = {**now[row["idx"]].to_dict(), "tries": row["attempts"], "attempts_detail": entry["attempts_detail"]}
        yield entry


_ROW_MESSAGES = {
    InstanceState.PENDING: "not sent yet (the job was interrupted)",
    InstanceState.IN_FLIGHT: "outcome unknown - the job was interrupted during the C-STORE",
}


def _row_outcome(row: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """A report entry from a journal row (an instance this run did not send)."""
    return {
        "path": row["path"],
        "status": row["status"] or "failure",
        "state": row["state"],
        "message": row["message"] or _ROW_MESSAGES.get(row["state"], ""),
        "status_code": row["status_code"],
        "sop_class_uid": row["sop_class_uid"],
        "sop_instance_uid": row["sop_instance_uid"],
        "transfer_syntax": row["transfer_syntax"],
        "tries": row["attempts"],
        "attempts_detail": [
            {
                "attempt": a["attempt"],
                "run": a["run"],
                "started": a["started"],
                "transfer_syntax": a["transfer_syntax"],
                "association": a["association"],
                "result": a["result"] or "unknown (interrupted)",
                "status_code": a["status_code"],
                "message": a["message"],
                "elapsed_s": a["elapsed_s"],
            }
            for a in attempts
        ],
    }


# -- the dry run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DryRunResult:
    """What a dry run planned.

    Attributes:
        plans: one :class:`core.preflight.InstancePlan` per instance, in input order.
        counts: :func:`core.preflight.summarize` of the plans.
        source: ``"acceptance map"`` or ``"negotiation"``.
    """

    plans: list[Any]
    counts: dict[str, int]
    source: str


def run_dry_run(request: SendRequest, acceptance: Any = None, on_event: ev.EventCallback | None = None) -> DryRunResult:
    """Plan the request instead of sending it (:func:`core.preflight.plan_instances`); write the plan report.

    Args:
        request: as for :func:`run_send` (journal and rerun are not used; nothing is sent).
        acceptance: a probe's :class:`core.probe.AcceptanceMap` (or its dict) to plan from;
            None negotiates (associations released at once, nothing stored).
        on_event: receives :class:`~core.events.ReportWritten` / ``ReportFailed``.

    Returns:
        a :class:`DryRunResult`.

    Raises:
        SendRequestError: as :func:`run_send` (files, report path).
        core.preflight.PlanError: the peer could not be reached or refused the association.
        CourierError: TLS could not be set up.
    """
    from .preflight import plan_instances, summarize

    on_event = on_event or _ignore
    cfg = request.config
    if cfg is None:
        raise SendRequestError("a dry run needs the connection settings (config)")
    if request.report_path:
        problem = report_path_problem(request.report_path)
        if problem:
            raise SendRequestError(problem)
    instances = _instances(request)
    opts = request.options
    t0 = time.monotonic()
    plans = plan_instances(instances, acceptance, cfg, opts.strategy, opts.max_retries, parallel=opts.parallel)
    counts = summarize(plans)
    source = "acceptance map" if acceptance is not None else "negotiation"
    if request.report_path:
        summary = {
            "total": counts["total"],
            "planned": counts["total"] - counts["skipped"],
            "as_stored": counts["as-stored"],
            "convert": counts["convert"],
            "blocked": counts["blocked"],
            "lossy": counts["lossy"],
            "skipped": counts["skipped"],
            "with_findings": counts["findings"],
            "dry_run": True,
        }
        job = {
            "id": new_job_id(),
            "peer": cfg.peer,
            "calling_ae": cfg.local_ae_title,
            "strategy": opts.strategy,
            "dry_run": True,
            "started": t0,
            "elapsed_s": round(time.monotonic() - t0, 3),
            "plan_source": source,
        }
        _write(request.report_path, build_report([p.to_outcome() for p in plans], summary, [], job), on_event)
    return DryRunResult(plans, counts, source)
