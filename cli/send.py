"""``send``: scan, send, report; ``send --dry-run``: plan and report, send nothing.

Exit codes (:class:`~cli.exit_codes.ExitCode`): 0 every DICOM instance stored (warnings
included), 1 some were not, 2 usage or configuration error, 3 no association could be
established. ``--dry-run``: 0 nothing blocked, 1 something blocked, 2 usage, 3 no association.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from typing import Any

from core.config import StoreConfig
from core.engine import SendJob, items_from_scan
from core.errors import CourierError
from core.journal import multicast as ev_multicast
from core.outcomes import InstanceState, Status
from core.report import build_report, write_report
from core.scan import scan_paths
from core.strategies import STRATEGY_ORDER

from . import jobs
from .common import Progress, add_log_level, add_peer, cli_words, config_from_args, install_sigint, print_summary
from .exit_codes import ExitCode

__all__ = ["add_send_command", "cmd_send"]

DEFAULT_PARALLEL = 1


def add_send_command(sub: Any) -> None:
    """Register ``send`` on the subparsers `sub`."""
    send = sub.add_parser("send", help="send files, folders or DICOMDIRs (C-STORE)")
    add_peer(send)
    send.add_argument(
        "--strategy",
        default="standard",
        choices=[s.value for s in STRATEGY_ORDER],
        help="first transfer-syntax strategy (default standard); more conservative ones follow",
    )
    send.add_argument("--max-retries", type=int, default=4, help="how many more conservative strategies to try")
    send.add_argument("--stop-on-error", action="store_true", help="stop at the first failure")
    send.add_argument("--allow-lossy", action="store_true", help="allow lossless-to-lossy conversion")
    send.add_argument("--report", metavar="FILE", help="write a report (.json or .csv)")
    send.add_argument(
        "--parallel",
        type=int,
        default=DEFAULT_PARALLEL,
        metavar="N",
        help=f"associations to use at once, each study on one (default {DEFAULT_PARALLEL})",
    )
    send.add_argument("--quiet", action="store_true", help="no progress bar")
    send.add_argument(
        "--dry-run", action="store_true", help="plan each instance (as stored / convert / blocked) and send nothing"
    )
    send.add_argument(
        "--acceptance-map", metavar="FILE", help="a probe's JSON map to plan from (else a quick negotiation is made)"
    )
    send.add_argument(
        "--verify-arrival",
        action="store_true",
        help="after the send, check that the PACS holds each instance (storage commitment, else C-FIND)",
    )
    send.add_argument(
        "--commit-port", type=int, metavar="PORT", help="listen on PORT for a storage commitment report sent on a new association"
    )
    send.add_argument(
        "--commit-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for the storage commitment report (default 10)",
    )
    send.add_argument("paths", nargs="+", metavar="PATH")
    add_log_level(send)
    send.add_argument("--journal", metavar="FILE", help="journal file (default: journal.sqlite in the user data dir)")
    send.add_argument("--no-journal", action="store_true", help="do not record the job in a journal")
    send.add_argument(
        "--retry-attempts",
        type=int,
        default=None,
        metavar="N",
        help="transient failures: retries per instance / broken associations in a row (default 5)",
    )
    send.add_argument(
        "--retry-total",
        type=float,
        default=None,
        metavar="S",
        help="longest outage (peer down, busy) to wait out, seconds (default 120)",
    )
    send.add_argument(
        "--retry-backoff",
        type=float,
        default=None,
        metavar="S",
        help="first back-off delay, doubled each retry, with jitter (default 1)",
    )


def _retry_config(args: argparse.Namespace) -> dict[str, Any]:
    """The retry keys of StoreConfig set on the command line."""
    out: dict[str, Any] = {}
    for opt, key in (
        ("retry_attempts", "retry_attempts"),
        ("retry_total", "retry_total_s"),
        ("retry_backoff", "retry_backoff_s"),
    ):
        value = getattr(args, opt, None)
        if value is not None:
            out[key] = value
    return out


def cmd_send(args: argparse.Namespace) -> int:
    """``send``: scan, send, report; returns the exit code."""
    try:
        cfg = config_from_args(args, allow_lossy=args.allow_lossy, **_retry_config(args))
    except ValueError as exc:
        print(f"configuration error: {cli_words(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        print(f"no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return ExitCode.USAGE
    problem = _report_problem(getattr(args, "report", None))
    if problem:
        print(problem, file=sys.stderr)
        return ExitCode.USAGE
    t0 = time.monotonic()
    instances = scan_paths(args.paths)
    if not instances:
        print("nothing to send: no files found in " + ", ".join(args.paths), file=sys.stderr)
        return ExitCode.USAGE
    if args.dry_run:
        return _dry_run(args, cfg, instances)
    if args.parallel < 1:
        print("configuration error: --parallel must be at least 1", file=sys.stderr)
        return ExitCode.USAGE
    job_id = uuid.uuid4().hex[:12]
    items = items_from_scan(instances)
    try:
        journal, recorder = jobs.open_send_journal(args, cfg, job_id, items)
    except Exception as exc:  # an explicit --journal FILE that cannot be used
        print(f"cannot use the journal {args.journal}: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    cancel = threading.Event()
    install_sigint(cancel)
    progress = Progress(sys.stderr, enabled=not args.quiet)
    job = SendJob(
        cfg,
        args.strategy,
        args.max_retries,
        not args.stop_on_error,
        ev_multicast(recorder, progress),
        cancel,
        job_id,
        parallel=args.parallel,
    )
    result = job.run(items)
    if journal is not None:
        journal.close()
    summary = result.summary()
    arrival = None
    if args.verify_arrival and not result.no_association:
        arrival, result.outcomes = _verify(args, cfg, result.outcomes)
    if args.report:
        job_info = {
            "id": job_id,
            "peer": cfg.peer,
            "calling_ae": cfg.local_ae_title,
            "strategy": args.strategy,
            "started": t0,
            "elapsed_s": round(time.monotonic() - t0, 3),
        }
        if arrival is not None:
            job_info["arrival_check"] = arrival
        try:
            write_report(args.report, build_report(result.outcomes, summary, result.associations, job_info))
        except OSError as exc:
            print(f"cannot write the report {args.report}: {exc}", file=sys.stderr)
    print_summary(summary, time.monotonic() - t0, sys.stderr)
    if result.no_association:
        reason = (result.error or _first_failure(result)).removeprefix("not sent: ")
        print(
            "no association could be established; nothing was sent"
            if reason in progress.said
            else f"no association could be established: {reason}",
            file=sys.stderr,
        )
        return ExitCode.NO_ASSOCIATION
    dicom = [o for o in result.outcomes if o.status != Status.SKIPPED or o.state == InstanceState.NOT_SENT]
    if arrival is not None and any(o.verified not in (None, "committed", "found") for o in dicom):
        return ExitCode.SOME_FAILED
    return ExitCode.OK if all(o.stored for o in dicom) else ExitCode.SOME_FAILED


def _report_problem(path: str | None) -> str:
    """Why the report cannot be written there (checked before sending), or ""."""
    if not path:
        return ""
    if os.path.isdir(path):
        return f"--report {path}: this is a folder; give a file name ending in .json or .csv"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"--report {path}: the folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"--report {path}: the folder {folder} is not writable"
    if not path.lower().endswith((".json", ".csv")):
        return f"--report {path}: the file name must end in .json or .csv"
    return ""


def _first_failure(result: Any) -> str:
    for o in result.outcomes:
        if o.status == Status.FAILURE:
            return str(o.message)
    return "unknown reason"


def _dry_run(args: argparse.Namespace, cfg: StoreConfig, instances: list[Any]) -> int:
    """``send --dry-run``: plan, print, write the report with ``status: planned``; 0, 1, 2 or 3."""
    from core.preflight import PlanError, plan_instances, summarize, summary_text
    from core.probe import AcceptanceMap

    amap = None
    if getattr(args, "acceptance_map", None):
        try:
            with open(args.acceptance_map, encoding="utf-8") as f:
                amap = AcceptanceMap.from_dict(json.load(f))
        except (OSError, ValueError) as exc:
            print(f"cannot read the acceptance map {args.acceptance_map}: {exc}", file=sys.stderr)
            return ExitCode.USAGE
    t0 = time.monotonic()
    try:
        plans = plan_instances(
            instances, amap, cfg, args.strategy, args.max_retries, parallel=max(1, getattr(args, "parallel", 1))
        )
    except PlanError as exc:
        print(exc.message, file=sys.stderr)
        return ExitCode.NO_ASSOCIATION
    except CourierError as exc:
        print(f"cannot plan: {exc.message}", file=sys.stderr)
        return ExitCode.NO_ASSOCIATION
    for p in plans:
        name = p.path or p.sop_instance_uid
        print(f"{p.plan:<9} {name}: {p.message}")
        for finding in p.findings:
            print(f"          {finding.severity}: {finding}")
    counts = summarize(plans)
    print(f"Plan: {summary_text(plans)} (dry run: nothing was sent)", file=sys.stderr)
    if args.report:
        outcomes = [p.to_outcome() for p in plans]
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
            "id": uuid.uuid4().hex[:12],
            "peer": cfg.peer,
            "calling_ae": cfg.local_ae_title,
            "strategy": args.strategy,
            "dry_run": True,
            "started": t0,
            "elapsed_s": round(time.monotonic() - t0, 3),
            "plan_source": "acceptance map" if amap is not None else "negotiation",
        }
        try:
            write_report(args.report, build_report(outcomes, summary, [], job))
        except OSError as exc:
            print(f"cannot write the report {args.report}: {exc}", file=sys.stderr)
    return ExitCode.SOME_FAILED if counts["blocked"] else ExitCode.OK


def _verify(args: argparse.Namespace, cfg: StoreConfig, outcomes: list[Any]) -> tuple[dict[str, Any], list[Any]]:
    """``send --verify-arrival``: check the stored outcomes; returns a summary and the outcomes with ``verified`` set."""
    from core.verify import apply_to_outcomes, verify_arrival

    stored = [o for o in outcomes if o.stored]
    result = verify_arrival(cfg, stored, listen_port=args.commit_port, timeout_s=args.commit_timeout)
    outcomes = apply_to_outcomes(outcomes, result)
    counts = result.counts()
    print(
        "Arrival check: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        if counts
        else "Arrival check: nothing was stored",
        file=sys.stderr,
    )
    for m in result.messages:
        print(f"  {m}", file=sys.stderr)
    return {
        "methods": result.methods,
        "counts": counts,
        "messages": result.messages,
        "commitment": result.commitment,
        "series": result.series,
    }, outcomes
