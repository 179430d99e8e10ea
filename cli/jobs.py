"""CLI commands around the send journal: ``resume``, ``retry``, ``jobs``, and the journal of ``send``.

``resume [JOB_ID]`` sends again what a job left unsent or in doubt (``pending``,
``in-flight``, ``unknown``, ``not-sent``) with the job's saved options; without an
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
import threading
import time
from typing import Any

from core.config import StoreConfig
from core.engine import Item
from core.journal import (
    FINAL_OK_STATES,
    RESUME_STATES,
    RETRY_STATES,
    Journal,
    JournalRecorder,
    prepare_rerun,
    run_rerun,
)
from core.report import build_report, write_report

from .common import Progress, add_log_level, install_sigint, print_summary
from .exit_codes import ExitCode

__all__ = ["add_journal_commands", "open_send_journal", "COMMANDS", "send_options"]


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


def send_options(args: argparse.Namespace, cfg: StoreConfig) -> dict[str, Any]:
    """What ``resume`` needs to redo a send: the config and the engine options (no secrets)."""
    return {
        "config": cfg.to_dict(),
        "strategy": args.strategy,
        "max_retries": args.max_retries,
        "continue_on_error": not args.stop_on_error,
        "paths": list(args.paths),
    }


def open_send_journal(
    args: argparse.Namespace, cfg: StoreConfig, job_id: str, items: list[Item]
) -> tuple[Journal | None, JournalRecorder | None]:
    """Open the journal for ``send``, record the job and print its ID on stderr.

    A default journal that cannot be opened only costs a warning; an explicit
    ``--journal FILE`` that cannot be opened raises OSError/sqlite3.Error.
    """
    if getattr(args, "no_journal", False):
        return None, None  # no journal, so no job ID to resume or retry
    print(f"job {job_id}", file=sys.stderr, flush=True)
    try:
        journal = Journal(args.journal)
        journal.create_job(job_id, getattr(args, "profile", None) or cfg.peer, cfg.peer, send_options(args, cfg), items)
    except (OSError, sqlite3.Error) as exc:
        if args.journal:
            raise
        print(f"warning: no journal for this send ({exc})", file=sys.stderr)
        return None, None
    return journal, journal.recorder(job_id)


def _open(args: argparse.Namespace) -> Journal | None:
    if args.journal and not os.path.exists(args.journal):
        print(f"no journal at {args.journal}", file=sys.stderr)
        return None
    try:
        return Journal(args.journal)
    except (OSError, sqlite3.Error) as exc:
        print(f"cannot open the journal {args.journal or '(default)'}: {exc}", file=sys.stderr)
        return None


def _row_outcome(row: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    status = row["status"] or "failure"
    message = row["message"] or {
        "pending": "not sent yet (the job was interrupted)",
        "in-flight": "outcome unknown - the job was interrupted during the C-STORE",
    }.get(row["state"], "")
    return {
        "path": row["path"],
        "status": status,
        "state": row["state"],
        "message": message,
        "status_code": row["status_code"],
        "sop_class_uid": row["sop_class_uid"],
        "sop_instance_uid": row["sop_instance_uid"],
        "transfer_syntax": row["transfer_syntax"],
        "tries": row["attempts"],
        "attempts_detail": [_attempt_dict(a) for a in attempts],
    }


def _attempt_dict(a: dict[str, Any]) -> dict[str, Any]:
    return {
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


def _rerun(args: argparse.Namespace, states: tuple[str, ...], verb: str) -> int:
    journal = _open(args)
    if journal is None:
        return ExitCode.USAGE
    with journal:
        job_id = args.job_id
        if not job_id:
            waiting = journal.interrupted_jobs()
            if not waiting:
                print("nothing to resume: no interrupted job in the journal", file=sys.stderr)
                return ExitCode.OK
            job_id = waiting[0].id
        try:
            plan = prepare_rerun(journal, job_id, states)
        except KeyError:
            print(f"no job {job_id!r} in the journal {journal.path}", file=sys.stderr)
            return ExitCode.USAGE
        except ValueError as exc:
            print(str(exc), file=sys.stderr)
            return ExitCode.USAGE
        if plan.job.state == "running":
            print(f"job {plan.job.id} is still running in another process; not touching it", file=sys.stderr)
            return ExitCode.USAGE
        try:
            cfg = StoreConfig.from_dict(plan.config)
        except ValueError as exc:
            print(f"job {plan.job.id}: saved settings are not usable: {exc}", file=sys.stderr)
            return ExitCode.USAGE
        print(f"job {plan.job.id}: {verb} {len(plan.items)} instance(s) to {cfg.peer}", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        result = None
        if plan.items:
            progress = Progress(sys.stderr, enabled=not args.quiet)
            cancel = threading.Event()
            install_sigint(cancel)
            result = run_rerun(journal, plan, progress, cancel)
            print_summary(result.summary(), time.monotonic() - t0, sys.stderr)
        rows = journal.instances(plan.job.id)
        fresh = {o.index: o.to_dict() for o in (result.outcomes if result else [])}
        attempts: dict[int, list[dict[str, Any]]] = {}
        for a in journal.attempts(plan.job.id):
            attempts.setdefault(a["idx"], []).append(a)
        outcomes = []
        for row in rows:
            o = _row_outcome(row, attempts.get(row["idx"], []))
            if row["idx"] in fresh:
                o = {**fresh[row["idx"]], "tries": row["attempts"], "attempts_detail": o["attempts_detail"]}
            outcomes.append(o)
        counts: dict[str, Any] = {"total": len(rows)}
        for row in rows:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        if args.report:
            job_info = {
                "id": plan.job.id,
                "peer": cfg.peer,
                "calling_ae": cfg.local_ae_title,
                "command": verb,
                "started": plan.job.started,
                "elapsed_s": round(time.monotonic() - t0, 3),
            }
            try:
                write_report(args.report, build_report(outcomes, counts, result.associations if result else [], job_info))
            except OSError as exc:
                print(f"cannot write the report {args.report}: {exc}", file=sys.stderr)
        left = [r for r in rows if r["state"] not in FINAL_OK_STATES and r["state"] != "skipped"]
        print(
            f"job {plan.job.id}: {len(rows) - len(left) - counts.get('skipped', 0)} stored, "
            f"{len(left)} not stored" + (f", {counts['skipped']} skipped" if counts.get("skipped") else ""),
            file=sys.stderr,
        )
        if result is not None and result.no_association:
            print(f"no association could be established: {result.error or 'see above'}", file=sys.stderr)
            return ExitCode.NO_ASSOCIATION
        return ExitCode.OK if not left else ExitCode.SOME_FAILED


def cmd_resume(args: argparse.Namespace) -> int:
    """``resume [JOB_ID]``: send again the job's not-sent, in-flight and unknown instances."""
    return _rerun(args, RESUME_STATES, "resuming")


def cmd_retry(args: argparse.Namespace) -> int:
    """``retry JOB_ID``: send again the job's failed and not-sent instances."""
    return _rerun(args, RETRY_STATES, "retrying")


def cmd_jobs(args: argparse.Namespace) -> int:
    """``jobs``: list jobs newest first (``--json``: a JSON list)."""
    journal = _open(args)
    if journal is None:
        return ExitCode.USAGE
    with journal:
        jobs = journal.jobs(args.limit)
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
