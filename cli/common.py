"""What the commands share: the parser class, the peer options, progress and summary output."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any, NoReturn, TextIO

from core import events as ev
from core.config import DEFAULT_CALLING_AE, StoreConfig
from core.outcomes import Status

from .exit_codes import ExitCode

__all__ = [
    "Parser",
    "add_peer",
    "add_log_level",
    "config_from_args",
    "cli_words",
    "Progress",
    "print_summary",
    "install_sigint",
]


class Parser(argparse.ArgumentParser):
    """argparse, exiting with :attr:`ExitCode.USAGE` on a usage error."""

    def error(self, message: str) -> NoReturn:
        """Print the usage and `message` on stderr and exit 2."""
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def add_log_level(p: argparse.ArgumentParser) -> None:
    """Accept ``--log-level`` after the command too (the top-level option holds the default)."""
    p.add_argument("--log-level", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_peer(p: argparse.ArgumentParser) -> None:
    """Add the connection options: host, port, AE titles, timeouts, max PDU and TLS."""
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


def config_from_args(args: argparse.Namespace, **extra: Any) -> StoreConfig:
    """The connection options as a validated :class:`core.config.StoreConfig`.

    Raises:
        ValueError: a bad value (the message names the config key; see :func:`cli_words`).
    """
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
    "max_resends": "--max-resends",
    "reconnect_attempts": "--reconnect-attempts",
    "retry_total_s": "--retry-total",
    "retry_backoff_s": "--retry-backoff",
}


def cli_words(message: str) -> str:
    """Name the command-line option instead of the config key in a validation message."""
    for key, option in _OPTION_NAMES.items():
        message = message.replace(f"config key '{key}'", option)
    return message


class Progress:
    """Prints a one-line progress bar (instances, MB, rate) and each failure, on `stream`."""

    def __init__(self, stream: TextIO, enabled: bool = True):
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.total = self.done = 0
        self.total_bytes = self.bytes = 0
        self.t0 = time.monotonic()
        self._last = 0.0
        self.said: set[str] = set()

    def __call__(self, event: ev.Event) -> None:
        """The engine's event callback."""
        if isinstance(event, ev.JobStarted):
            self.total, self.total_bytes, self.t0 = event.total, event.total_bytes, time.monotonic()
        elif isinstance(event, ev.InstanceFinished):
            self.done += 1
            self.bytes += event.bytes_sent
            o = event.outcome
            said = o.message.removeprefix("not sent: ") in self.said  # an association failure, said already
            cancelled = o.message.endswith("the send was cancelled")
            if o.status == Status.FAILURE and not said and not cancelled:
                self._clear()
                print(f"FAILED  {o.path or o.sop_instance_uid}: {o.message}", file=self.stream)
            self._draw()
        elif isinstance(event, ev.AssociationFailed):
            if event.message not in self.said:  # the same refusal is said once
                self.said.add(event.message)
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


def print_summary(summary: dict[str, Any], elapsed: float, stream: TextIO) -> None:
    """Print ``Stored N of M (...) over K association(s) in S s``; `elapsed` in seconds."""
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


def install_sigint(cancel: threading.Event) -> None:
    """Ctrl+C sets `cancel` (the send stops after the current instance); a second Ctrl+C stops now."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        print("\ncancelling after the current instance (Ctrl+C again to stop now)", file=sys.stderr)
        cancel.set()

    signal.signal(signal.SIGINT, handler)
