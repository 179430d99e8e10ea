"""What the commands share: the parser class, the peer options, option names in messages, a quiet stream."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any, NoReturn, TextIO

from core.config import DEFAULT_CALLING_AE, StoreConfig

from .exit_codes import ExitCode

__all__ = [
    "Parser",
    "add_peer",
    "add_log_level",
    "config_from_args",
    "cli_words",
    "QuietStream",
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


class QuietStream:
    """A text stream that never raises on write: errors are dropped (a closed terminal, a closed pipe) and
    characters the stream cannot encode are escaped (a file name that is not UTF-8), so the send goes on.

    Wraps ``sys.stdout`` / ``sys.stderr`` for a command's run (see :func:`cli.main.main`), so that
    progress and summary lines never stop a send, its journal or its report.
    """

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except UnicodeEncodeError:  # e.g. a file name that is not UTF-8, inside a message: show its bytes
            encoding = getattr(self._stream, "encoding", None) or "utf-8"
            return self.write(text.encode(encoding, "backslashreplace").decode(encoding))
        except OSError:
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.flush()

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
