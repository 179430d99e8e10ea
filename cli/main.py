"""The command line's parser and dispatch: ``main(argv)`` runs one command and returns its exit code."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from . import jobs, network, send
from .common import Parser, QuietStream
from .exit_codes import ExitCode

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = {"send": send.cmd_send, **network.COMMANDS, **jobs.COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for every command."""
    parser = Parser(prog="dicom-courier", description="Send DICOM files to a PACS and know what happened.")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default) or ERROR")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    send.add_send_command(sub)
    network.add_network_commands(sub)
    jobs.add_journal_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on `argv` (default ``sys.argv[1:]``); returns the exit code.

    Output that cannot be written (a closed terminal or pipe) is dropped: it never stops a command.
    The modules of a command are imported when it runs (``--help`` loads no pydicom).
    """
    with contextlib.redirect_stdout(QuietStream(sys.stdout)), contextlib.redirect_stderr(QuietStream(sys.stderr)):
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        print(f"unknown log level {args.log_level!r}", file=sys.stderr)
        return ExitCode.USAGE
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    if level >= logging.WARNING:
        # the engine explains every failure in its own words; the libraries' ERROR lines and
        # tracebacks (pynetdicom's SSL and PDU errors, pydicom's codec attempts) only confuse here
        for name in ("pynetdicom", "pydicom", "py.warnings"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    return int(COMMANDS[args.command](args))
