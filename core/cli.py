"""Command-line interface: ``python main.py <command>`` (also the ``dicom-courier`` script).

Commands: ``send``, ``echo``, ``probe``, ``scp``; ``resume``, ``retry``, ``jobs`` (see
:mod:`core.cli_jobs`). Exit codes for ``send``: 0 every DICOM
instance stored (warnings included), 1 some were not, 2 usage or configuration
error, 3 no association could be established. ``echo``: 0 or 3.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import uuid
from typing import Any, TextIO

from . import cli_jobs
from . import events as ev
from .cli_probe import add_probe_command, add_send_options, cmd_probe, run_dry_run, run_verify
from .config import DEFAULT_CALLING_AE, StoreConfig
from .engine import SendJob, items_from_scan
from .errors import CourierError
from .journal import multicast as ev_multicast
from .outcomes import InstanceState, Status
from .report import build_report, write_report
from .scan import scan_paths
from .strategies import STRATEGY_ORDER

LOGGER = logging.getLogger(__name__)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_NO_ASSOCIATION = 0, 1, 2, 3
DEFAULT_PARALLEL = 1

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors, as we want
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_peer(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", required=True, help="PACS host name or IP address")
    p.add_argument("--port", required=True, type=int, help="PACS port")
    p.add_argument("--called-ae", required=True, help="the PACS's AE title (called AE title)")
    p.add_argument("--calling-ae", default=DEFAULT_CALLING_AE, help=f"our AE title (default {DEFAULT_CALLING_AE})")
    p.add_argument("--acse-timeout", type=float, default=30.0, metavar="S", help="association timeout, seconds")
    p.add_argument("--dimse-timeout", type=float, default=60.0, metavar="S", help="response timeout, seconds")
    p.add_argument("--network-timeout", type=float, default=60.0, metavar="S", help="network inactivity timeout, seconds")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="S", help="TCP connect timeout, seconds")
    p.add_argument("--max-pdu", type=int, default=262144, metavar="BYTES", help="our maximum PDU length in bytes (0 = unlimited)")
    tls = p.add_argument_group("TLS (the key passphrase comes from the keyring or COURIER_TLS_KEY_PASSWORD)")
    tls.add_argument("--tls", action="store_true", help="use DICOM over TLS (PS3.15 B.1, TLS 1.2 or newer)")
    tls.add_argument("--tls-ca", metavar="FILE", help="CA certificate(s) to verify the PACS (PEM)")
    tls.add_argument("--tls-cert", metavar="FILE", help="our client certificate (PEM)")
    tls.add_argument("--tls-key", metavar="FILE", help="our client private key (PEM)")
    tls.add_argument("--tls-ca-secret", metavar="ID", help="CA certificate from Google Cloud Secret Manager")
    tls.add_argument("--tls-cert-secret", metavar="ID", help="client certificate from Google Cloud Secret Manager")
    tls.add_argument("--tls-key-secret", metavar="ID", help="client key from Google Cloud Secret Manager")
    tls.add_argument("--gcp-project", metavar="ID", help="project for short secret names")
    tls.add_argument(
        "--no-verify-hostname",
        action="store_true",
        help="do not check that the PACS certificate names the host (the chain is still verified)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for every command."""
    parser = _Parser(prog="dicom-courier", description="Send DICOM files to a PACS and know what happened.")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default) or ERROR")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    send = sub.add_parser("send", help="send files, folders or DICOMDIRs (C-STORE)")
    _add_peer(send)
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
    add_send_options(send)
    send.add_argument("paths", nargs="+", metavar="PATH")
    send.add_argument("--log-level", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    cli_jobs.add_send_options(send)

    echo = sub.add_parser("echo", help="C-ECHO a PACS and show the negotiation")
    _add_peer(echo)
    echo.add_argument("--log-level", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    add_probe_command(sub, _add_peer)

    scp = sub.add_parser("scp", help="run the embedded Storage SCP (local test PACS)")
    scp.add_argument("--port", type=int, default=11112)
    scp.add_argument("--ae-title", default="COURIER")
    scp.add_argument("--store-dir", default=None, help="where to write received files (default: keep none)")
    scp.add_argument(
        "--accept", default="everything", help="everything, implicit, uncompressed, a strategy name, or comma-separated UIDs"
    )
    scp.add_argument("--bind", default="127.0.0.1", help="address to listen on (default loopback)")
    scp.add_argument("--log-level", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    cli_jobs.add_journal_commands(sub)
    return parser


def _config(args: argparse.Namespace, **extra: Any) -> StoreConfig:
    return StoreConfig.from_dict(
        {
            "remote_host": args.host,
            "remote_port": args.port,
            "remote_ae_title": args.called_ae,
            "local_ae_title": args.calling_ae,
            "acse_timeout": args.acse_timeout,
            "dimse_timeout": args.dimse_timeout,
            "network_timeout": args.network_timeout,
            "connect_timeout": args.connect_timeout,
            "max_pdu": args.max_pdu,
            "tls_enabled": bool(args.tls),
            "tls_ca_cert_file": args.tls_ca,
            "tls_client_cert_file": args.tls_cert,
            "tls_client_key_file": args.tls_key,
            "tls_ca_cert_secret_name": args.tls_ca_secret,
            "tls_client_cert_secret_name": args.tls_cert_secret,
            "tls_client_key_secret_name": args.tls_key_secret,
            "gcp_project_id": args.gcp_project,
            "tls_verify_hostname": not args.no_verify_hostname,
            **extra,
        }
    )


class Progress:
    """Prints a one-line progress bar (instances, MB, rate) and each failure, on `stream`."""

    def __init__(self, stream: TextIO, enabled: bool = True):
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.total = self.done = 0
        self.total_bytes = self.bytes = 0
        self.t0 = time.monotonic()
        self._last = 0.0
        self._said: set[str] = set()

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.JobStarted):
            self.total, self.total_bytes, self.t0 = event.total, event.total_bytes, time.monotonic()
        elif isinstance(event, ev.InstanceFinished):
            self.done += 1
            self.bytes += event.bytes_sent
            o = event.outcome
            said = o.message.removeprefix("not sent: ") in self._said  # an association failure, said already
            cancelled = o.message.endswith("the send was cancelled")
            if o.status == Status.FAILURE and not said and not cancelled:
                self._clear()
                print(f"FAILED  {o.path or o.sop_instance_uid}: {o.message}", file=self.stream)
            self._draw()
        elif isinstance(event, ev.AssociationFailed):
            if event.message not in self._said:  # the same refusal is said once
                self._said.add(event.message)
                self._clear()
                print(f"association failed: {event.message}", file=self.stream)
        elif isinstance(event, ev.JobFinished):
            self._draw(force=True)
            if self.enabled:
                print(file=self.stream)

    def _clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 0.2):
            return
        self._last = now
        el = max(now - self.t0, 1e-6)
        mb = self.bytes / 1e6
        line = (
            f"\r{self.done}/{self.total} instances  {mb:.1f}/{self.total_bytes / 1e6:.1f} MB  "
            f"{self.done / el:.0f} inst/s  {mb / el:.1f} MB/s"
        )
        self.stream.write(line)
        self.stream.flush()


def _print_summary(summary: dict[str, Any], elapsed: float, stream: TextIO) -> None:
    not_sent = summary.get("not_sent", 0)
    parts = [f"{summary['warning']} with warnings", f"{summary['failure'] - not_sent} failed"]
    if not_sent:
        parts.append(f"{not_sent} not sent" + (" (cancelled)" if summary.get("cancelled") else ""))
    parts.append(f"{summary['skipped']} skipped")
    if summary.get("converted"):
        parts.append(f"{summary['converted']} converted")
    print(
        f"Stored {summary['success'] + summary['warning']} of {summary['total']} ({', '.join(parts)}) "
        f"over {summary['associations']} association(s) in {elapsed:.1f} s",
        file=stream,
    )


def cmd_send(args: argparse.Namespace) -> int:
    """``send``: scan, send, report; returns the exit code."""
    try:
        cfg = _config(args, allow_lossy=args.allow_lossy, **cli_jobs.retry_config(args))
    except ValueError as exc:
        print(f"configuration error: {_cli_words(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        print(f"no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    problem = _report_problem(getattr(args, "report", None))
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    t0 = time.monotonic()
    instances = scan_paths(args.paths)
    if not instances:
        print("nothing to send: no files found in " + ", ".join(args.paths), file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        return run_dry_run(args, cfg, instances)
    if args.parallel < 1:
        print("configuration error: --parallel must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    job_id = uuid.uuid4().hex[:12]
    items = items_from_scan(instances)
    try:
        journal, recorder = cli_jobs.open_send_journal(args, cfg, job_id, items)
    except Exception as exc:  # an explicit --journal FILE that cannot be used
        print(f"cannot use the journal {args.journal}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    cancel = threading.Event()
    _install_sigint(cancel)
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
        arrival, result.outcomes = run_verify(args, cfg, result.outcomes)
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
    _print_summary(summary, time.monotonic() - t0, sys.stderr)
    if result.no_association:
        reason = (result.error or _first_failure(result)).removeprefix("not sent: ")
        print(
            "no association could be established; nothing was sent"
            if reason in progress._said
            else f"no association could be established: {reason}",
            file=sys.stderr,
        )
        return EXIT_NO_ASSOCIATION
    dicom = [o for o in result.outcomes if o.status != Status.SKIPPED or o.state == InstanceState.NOT_SENT]
    if arrival is not None and any(o.verified not in (None, "committed", "found") for o in dicom):
        return EXIT_SOME_FAILED
    return EXIT_OK if all(o.stored for o in dicom) else EXIT_SOME_FAILED


_OPTION_NAMES = {
    "remote_port": "--port",
    "remote_host": "--host",
    "remote_ae_title": "--called-ae",
    "local_ae_title": "--calling-ae",
    "acse_timeout": "--acse-timeout",
    "dimse_timeout": "--dimse-timeout",
    "network_timeout": "--network-timeout",
    "connect_timeout": "--connect-timeout",
    "max_pdu": "--max-pdu",
    "retry_attempts": "--retry-attempts",
    "retry_total_s": "--retry-total",
    "retry_backoff_s": "--retry-backoff",
}


def _cli_words(message: str) -> str:
    """Name the command-line option instead of the config key in a validation message."""
    for key, option in _OPTION_NAMES.items():
        message = message.replace(f"config key '{key}'", option)
    return message


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
            return o.message
    return "unknown reason"


def _install_sigint(cancel: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        print("\ncancelling after the current instance (Ctrl+C again to stop now)", file=sys.stderr)
        cancel.set()

    signal.signal(signal.SIGINT, handler)


def cmd_echo(args: argparse.Namespace) -> int:
    """``echo``: C-ECHO with round-trip time and negotiation; 0 or 3."""
    from .echo import echo

    try:
        cfg = _config(args)
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        r = echo(cfg)
    except CourierError as exc:
        print(f"C-ECHO to {cfg.peer} failed: {exc}", file=sys.stderr)
        return EXIT_NO_ASSOCIATION
    neg = r["negotiation"]
    acc = neg["accepted"][0] if neg["accepted"] else {}
    print(
        f"C-ECHO to {cfg.peer}: status 0x{r['status_code']:04X} ({r['message']}), round trip {r['rtt_ms']:.1f} ms, "
        f"association {r['associate_ms']:.1f} ms"
    )
    print(
        f"  accepted context: {acc.get('abstract_syntax_name', '?')} / "
        f"{acc.get('transfer_syntax', '?')}; peer max PDU {neg.get('peer_max_pdu')} bytes; "
        f"implementation {neg.get('peer_implementation_class_uid')} {neg.get('peer_implementation_version_name')}"
    )
    t = r.get("tls")
    if t:
        warn = " (expires within 30 days!)" if t.get("expires_soon") else ""
        print(
            f"  TLS: {t.get('protocol', '?')}, cipher {t.get('cipher', '?')}; PACS certificate "
            f"{t.get('peer_subject', '?')}, issued by {t.get('peer_issuer', '?')}, "
            f"valid until {t.get('peer_not_after', '?')}{warn}"
        )
    return EXIT_OK if r["status"] != "failure" else EXIT_NO_ASSOCIATION


def cmd_scp(args: argparse.Namespace) -> int:
    """``scp``: run the embedded Storage SCP until interrupted."""
    from .scp import EmbeddedSCP

    try:
        scp = EmbeddedSCP(
            args.port,
            args.ae_title,
            args.store_dir,
            args.accept,
            args.bind,
            on_store=lambda uid, path: print(f"stored {uid}" + (f" -> {path}" if path else ""), flush=True),
        )
        scp.start()
    except (ValueError, OSError) as exc:
        print(f"cannot start the Storage SCP: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"Storage SCP {args.ae_title} listening on {args.bind}:{scp.port}, accepting "
        f"{len(scp.syntaxes)} transfer syntax(es); Ctrl+C to stop",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        scp.stop()
    return EXIT_OK


COMMANDS = {
    "send": cmd_send,
    "echo": cmd_echo,
    "scp": cmd_scp,
    "probe": lambda args: cmd_probe(args, _config),
    **cli_jobs.COMMANDS,
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        print(f"unknown log level {args.log_level!r}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    if level >= logging.WARNING:
        # the engine explains every failure in its own words; the libraries' ERROR lines and
        # tracebacks (pynetdicom's SSL and PDU errors, pydicom's codec attempts) only confuse here
        for name in ("pynetdicom", "pydicom", "py.warnings"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    return COMMANDS[args.command](args)
