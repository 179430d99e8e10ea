"""``send``: scan, send, report; ``send --dry-run``: plan and report, send nothing.

Exit codes (:class:`~cli.exit_codes.ExitCode`): 0 every DICOM instance stored (warnings
included), 1 some were not, 2 usage or configuration error (no DICOM file in the paths, a TLS
file, key or secret that cannot be used), 3 no association could be established, 128 + N after
signal N (130 Ctrl+C, 143 SIGTERM, 129 SIGHUP). ``--dry-run``: 0 nothing blocked, 1 something
blocked, 2 usage or configuration, 3 no association.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from core import events as ev
from core.errors import CourierError, SendRequestError
from core.journal import default_journal_path
from core.outcomes import InstanceState, Status
from core.strategy_names import STRATEGY_ORDER

from .common import add_log_level, add_peer, cli_words, config_from_args
from .exit_codes import ExitCode
from .interrupts import Interrupts
from .output import Progress, config_problem, print_end, print_summary, say_job_event, shown, with_hint

if TYPE_CHECKING:
    from core.send import SendRequest, SendResult

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
    send.add_argument(
        "--max-retries",
        type=int,
        default=4,
        help="fallback steps: how many more conservative transfer-syntax strategies to try when the PACS "
        "refuses a proposal (never re-sends an instance; see --max-resends)",
    )
    send.add_argument("--stop-on-error", action="store_true", help="stop at the first failure")
    send.add_argument("--allow-lossy", action="store_true", help="allow lossless-to-lossy conversion")
    send.add_argument(
        "--implicit-vr-only",
        action="store_true",
        help="send everything as Implicit VR Little Endian (for older PACS that abort on newer VRs such as UC, UR, SV, UV)",
    )
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
        "--max-resends",
        type=int,
        default=None,
        metavar="N",
        help="how many times one instance may be sent again: after 'out of resources' (0xA7xx), or once, alone, "
        "after the association broke while it was in flight; 0 = never re-send an instance (default 3)",
    )
    send.add_argument(
        "--reconnect-attempts",
        type=int,
        default=None,
        metavar="N",
        help="how many times to open an association again while the PACS is down or busy (default 5); never re-sends an instance",
    )
    send.add_argument("--retry-attempts", type=int, default=None, help=argparse.SUPPRESS)  # old name: sets both
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
        ("max_resends", "max_resends"),
        ("reconnect_attempts", "reconnect_attempts"),
        ("retry_total", "retry_total_s"),
        ("retry_backoff", "retry_backoff_s"),
    ):
        value = getattr(args, opt, None)
        if value is not None:
            out[key] = value
    return out


def cmd_send(args: argparse.Namespace) -> int:
    """``send``: build the request from the arguments, run it, print the outcome; returns the exit code."""
    from core.send import SendOptions, SendRequest, run_send  # here, not at start-up: pydicom and pynetdicom

    try:
        cfg = config_from_args(args, allow_lossy=args.allow_lossy, implicit_vr_only=args.implicit_vr_only, **_retry_config(args))
        options = SendOptions(
            args.strategy,
            args.max_retries,
            not args.stop_on_error,
            max(1, args.parallel) if args.dry_run else args.parallel,
            args.verify_arrival,
            args.commit_port,
            args.commit_timeout,
        )
    except ValueError as exc:
        print(f"configuration error: {cli_words(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE
    request = SendRequest(
        cfg,
        paths=tuple(args.paths),
        options=options,
        journal_path=None if args.no_journal else (args.journal or default_journal_path()),
        journal_required=bool(args.journal),
        report_path=args.report,
    )
    if args.dry_run:
        return _dry_run(args, request)
    output = _SendOutput(Progress(sys.stderr, enabled=not args.quiet))
    with Interrupts() as interrupts:
        try:
            # a second signal sets interrupts.stop_now: the hard stop (the association is aborted between PDUs)
            result = run_send(request, output, interrupts.cancel, interrupts.stop_now)
        except SendRequestError as exc:
            print(exc.message, file=sys.stderr)
            return interrupts.exit_code or ExitCode.USAGE
        code = _exit_code(result, output.progress, args)
        _say_how_to_resume(result, output.journal)
    return interrupts.exit_code or code


def _say_how_to_resume(result: SendResult, journal: ev.JobCreated | None) -> None:
    """After a cancelled send with a journal: the command that sends the rest."""
    summary = result.job.summary() if result.job is not None else {}
    if journal is None or not summary.get("cancelled") or not summary.get("not_sent"):
        return
    where = "" if journal.journal_path == default_journal_path() else f" --journal {shown(journal.journal_path)}"
    print(f"to send the rest: dicom-courier resume {journal.job_id}{where}", file=sys.stderr)


class _SendOutput:
    """Prints the send's events: the job ID, the progress bar, the arrival check, report problems."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.journal: ev.JobCreated | None = None

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.JobCreated):
            self.journal = event
            print(f"job {event.job_id}", file=sys.stderr, flush=True)
        elif isinstance(event, ev.ArrivalCheckFinished):
            _print_arrival(event)
        elif not say_job_event(event, sys.stderr):
            self.progress(event)


def _print_arrival(event: ev.ArrivalCheckFinished) -> None:
    check = event.check
    if check.error:
        print(f"Arrival check failed: {check.error}", file=sys.stderr)
        return
    counts = check.counts
    print(
        "Arrival check: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        if counts
        else "Arrival check: nothing was stored",
        file=sys.stderr,
    )
    for m in check.messages:
        print(f"  {m}", file=sys.stderr)


def _exit_code(result: SendResult, progress: Progress, args: argparse.Namespace) -> int:
    """Print the end of the send and the summary; returns the exit code.

    0 every DICOM instance stored (and confirmed when checked), 1 not, 2 no DICOM file or a
    configuration error (TLS files, key, secret), 3 no association.
    """
    job = result.job
    assert job is not None  # a new send always runs the engine
    outcomes = job.outcomes
    dicom = [o for o in outcomes if not (o.status == Status.SKIPPED and o.state == InstanceState.SKIPPED)]
    if not dicom:
        reasons = sorted({o.message for o in outcomes})
        print(
            f"nothing to send: no DICOM file in {', '.join(map(shown, args.paths))} "
            f"({len(outcomes)} file(s) skipped: {'; '.join(reasons[:3])})",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    code = ExitCode.OK
    said: list[str] = []
    problem = config_problem(job.first_exception)
    if job.no_association and not job.cancelled:
        reason = with_hint((job.error or _first_failure(outcomes)).removeprefix("not sent: "))
        said.append(reason)
        if problem:
            print(f"configuration error: {problem}; nothing was sent", file=sys.stderr)
            code = ExitCode.USAGE
        else:
            print(f"no association could be established: {reason}", file=sys.stderr)
            code = ExitCode.NO_ASSOCIATION
    print_end(outcomes, progress, sys.stderr, skip=said)
    print_summary(job.summary(), result.elapsed_s, sys.stderr, progress.stored_bytes)
    if code != ExitCode.OK:
        return code
    if result.journal_error:  # what the journal did not record cannot be called stored
        return ExitCode.SOME_FAILED
    if result.arrival is not None and any(o.verified not in (None, "committed", "found") for o in dicom):
        return ExitCode.SOME_FAILED
    return ExitCode.OK if all(o.stored for o in dicom) else ExitCode.SOME_FAILED


def _first_failure(outcomes: list[Any]) -> str:
    for o in outcomes:
        if o.status == Status.FAILURE:
            return str(o.message)
    return "unknown reason"


def _dry_run(args: argparse.Namespace, request: SendRequest) -> int:
    """``send --dry-run``: plan, print, write the report with ``status: planned``; 0, 1, 2 or 3."""
    from core.preflight import PlanError, summary_text
    from core.probe import AcceptanceMap
    from core.send import run_dry_run

    amap = None
    if args.acceptance_map:
        try:
            with open(args.acceptance_map, encoding="utf-8") as f:
                amap = AcceptanceMap.from_dict(json.load(f))
        except (OSError, ValueError) as exc:
            print(f"cannot read the acceptance map {args.acceptance_map}: {exc}", file=sys.stderr)
            return ExitCode.USAGE
    output = _SendOutput(Progress(sys.stderr, enabled=False))
    try:
        planned = run_dry_run(request, amap, output)
    except SendRequestError as exc:
        print(exc.message, file=sys.stderr)
        return ExitCode.USAGE
    except CourierError as exc:
        if config_problem(exc):  # a TLS file, key or secret: the settings, not the peer
            print(f"configuration error: {exc.message.removeprefix('cannot plan: ')}", file=sys.stderr)
            return ExitCode.USAGE
        print(with_hint(exc.message if isinstance(exc, PlanError) else f"cannot plan: {exc.message}"), file=sys.stderr)
        return ExitCode.NO_ASSOCIATION
    for p in planned.plans:
        name = shown(p.path) or p.sop_instance_uid
        print(f"{p.plan:<9} {name}: {p.message}")
        for finding in p.findings:
            print(f"          {finding.severity}: {finding}")
    print(f"Plan: {summary_text(planned.plans)} (dry run: nothing was sent)", file=sys.stderr)
    if planned.counts["total"] == planned.counts["skipped"]:
        print(f"nothing to send: no DICOM file in {', '.join(map(shown, args.paths))}", file=sys.stderr)
        return ExitCode.USAGE
    return ExitCode.SOME_FAILED if planned.counts["blocked"] else ExitCode.OK
