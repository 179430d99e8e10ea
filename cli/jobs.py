"""CLI commands around the send journal: ``resume``, ``retry`` and ``jobs``.

``resume [JOB_ID]`` sends again what a job left unsent or in doubt (pending, in flight,
outcome unknown, not sent: ``core.journal.RESUME_STATES``) with the job's saved options; without an
ID it takes the latest interrupted job. ``retry JOB_ID`` also sends the
instances that failed. Instances already stored are never sent again. Exit codes
as ``send``, for the whole job after the run: 0 every DICOM instance stored,
1 some are not, 2 usage error (no such job, journal unreadable), 3 no association.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from typing import TYPE_CHECKING, Any

from core import events as ev
from core.errors import SendRequestError
from core.journal import FINAL_OK_STATES, Journal, default_journal_path
from core.outcomes import InstanceState

from .common import add_log_level
from .exit_codes import ExitCode
from .interrupts import Interrupts
from .output import Progress, config_problem, print_end, print_summary, say_job_event, with_hint

if TYPE_CHECKING:
    from core.send import SendResult

__all__ = ["add_journal_commands", "cmd_resume", "cmd_retry", "cmd_jobs", "COMMANDS"]


def add_journal_commands(sub: Any) -> None:
    """Add ``resume``, ``retry`` and ``jobs`` to the CLI's subparsers."""
    for name, helptext in (
        ("resume", "send again what an interrupted job left unsent or in doubt"),
        ("retry", "send again a job's failed and unsent instances"),
    ):
        p = sub.add_parser(name, help=helptext)
        if name == "resume":
            p.add_argument("job_id", nargs="?", metavar="JOB_ID", help="the job (default: latest interrupted)")
        else:
            p.add_argument("job_id", metavar="JOB_ID")
        p.add_argument("--journal", metavar="FILE", help="journal file (default: the user data dir's)")
        p.add_argument("--report", metavar="FILE", help="write a report of the whole job (.json or .csv)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        add_log_level(p)
    jobs = sub.add_parser("jobs", help="list the jobs in the journal, newest first")
    jobs.add_argument("--journal", metavar="FILE", help="journal file (default: the user data dir's)")
    jobs.add_argument("--json", action="store_true", help="print a JSON list")
    jobs.add_argument("--limit", type=int, default=None, help="show at most this many jobs")
    add_log_level(jobs)


def _open(args: argparse.Namespace) -> Journal | None:
    if args.journal and not os.path.exists(args.journal):
        print(f"no journal at {args.journal}", file=sys.stderr)
        return None
    try:
        return Journal(args.journal)
    except (OSError, sqlite3.Error) as exc:
        print(f"cannot open the journal {args.journal or '(default)'}: {exc}", file=sys.stderr)
        return None


def _rerun(args: argparse.Namespace, retry: bool) -> int:
    """``resume`` / ``retry``: send the job again with its saved settings; prints the whole job's state."""
    from core.send import Rerun, SendRequest, run_send  # here, not at start-up: pydicom and pynetdicom

    request = SendRequest(
        journal_path=args.journal or default_journal_path(),
        journal_required=bool(args.journal),
        report_path=args.report,
        rerun=Rerun(args.job_id, retry),
    )
    output = _RerunOutput(Progress(sys.stderr, enabled=not args.quiet), "retrying" if retry else "resuming")
    with Interrupts() as interrupts:
        try:
            # a second signal sets interrupts.stop_now: the hard stop (the association is aborted between PDUs)
            result = run_send(request, output, interrupts.cancel, interrupts.stop_now)
        except SendRequestError as exc:
            print(exc.message, file=sys.stderr)
            return interrupts.exit_code or ExitCode.USAGE
        code = _rerun_summary(result, output.progress)
    return interrupts.exit_code or code


def _rerun_summary(result: SendResult, progress: Progress) -> int:
    """Print what the rerun did and the whole job's state; returns the exit code."""
    if result.job_id is None:
        print("nothing to resume: no interrupted job in the journal", file=sys.stderr)
        return ExitCode.OK
    job = result.job
    said: list[str] = []
    if job is not None:
        if job.no_association and not job.cancelled:
            said.append(with_hint((job.error or "").removeprefix("not sent: ")))
        print_end(job.outcomes, progress, sys.stderr, skip=said)
        print_summary(job.summary(), result.elapsed_s, sys.stderr, progress.stored_bytes)
    counts = result.job_counts
    stored = sum(counts.get(s, 0) for s in FINAL_OK_STATES)
    skipped = counts.get(InstanceState.SKIPPED, 0)
    left = counts.get("total", 0) - stored - skipped
    print(
        f"job {result.job_id}: {stored} stored, {left} not stored" + (f", {skipped} skipped" if skipped else ""),
        file=sys.stderr,
    )
    if job is not None and job.no_association and not job.cancelled:
        problem = config_problem(job.first_exception)
        if problem:
            print(f"configuration error: {problem}", file=sys.stderr)
            return ExitCode.USAGE
        print(f"no association could be established: {with_hint(job.error or 'see above')}", file=sys.stderr)
        return ExitCode.NO_ASSOCIATION
    if result.journal_error:  # what the journal did not record cannot be called stored
        return ExitCode.SOME_FAILED
    return ExitCode.OK if not left else ExitCode.SOME_FAILED


class _RerunOutput:
    """Prints a rerun's events: what will be sent, the progress bar, report problems."""

    def __init__(self, progress: Progress, verb: str):
        self.progress = progress
        self.verb = verb

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RerunPrepared):
            print(f"job {event.job_id}: {self.verb} {event.count} instance(s) to {event.peer}", file=sys.stderr, flush=True)
        elif not say_job_event(event, sys.stderr):
            self.progress(event)


def cmd_resume(args: argparse.Namespace) -> int:
    """``resume [JOB_ID]``: send again the job's instances not sent, in flight or of unknown outcome."""
    return _rerun(args, retry=False)


def cmd_retry(args: argparse.Namespace) -> int:
    """``retry JOB_ID``: send again the job's failed instances and those not sent."""
    return _rerun(args, retry=True)


def cmd_jobs(args: argparse.Namespace) -> int:
    """``jobs``: list jobs newest first (``--json``: a JSON list)."""
    journal = _open(args)
    if journal is None:
        return ExitCode.USAGE
    try:
        with journal:
            jobs = journal.jobs(args.limit)
    except (sqlite3.Error, UnicodeDecodeError) as exc:  # damage that the check on opening did not see
        print(f"cannot read the journal {journal.path}: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    if args.json:
        print(json.dumps([j.to_dict() for j in jobs], indent=2))
        return ExitCode.OK
    if not jobs:
        print("no jobs in the journal")
        return ExitCode.OK
    print(
        f"{'JOB':<12}  {'STARTED (UTC)':<20}  {'STATE':<11}  {'STORED':>7}  {'FAILED':>6}  {'UNKNOWN':>7}  "
        f"{'NOT SENT':>8}  {'TOTAL':>6}  PROFILE"
    )
    for j in jobs:
        d = j.to_dict()
        print(
            f"{j.id:<12}  {d['started']:<20}  {j.state:<11}  {d['stored'] + d['stored_warning']:>7}  "
            f"{d['failed']:>6}  {d['unknown'] + d['in_flight']:>7}  {d['not_sent'] + d['pending']:>8}  "
            f"{d['total']:>6}  {j.profile or ''}"
        )
    return ExitCode.OK


COMMANDS = {"resume": cmd_resume, "retry": cmd_retry, "jobs": cmd_jobs}
