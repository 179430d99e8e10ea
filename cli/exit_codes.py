"""The command line's exit codes, defined once for every command."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    """What a command's exit status means.

    ``send``, ``resume``, ``retry``: OK every DICOM instance stored (warnings included),
    SOME_FAILED some were not (or the arrival check did not confirm them), USAGE a usage or
    configuration error, NO_ASSOCIATION no association could be established.
    ``send --dry-run``: SOME_FAILED means something is blocked. ``echo``: OK or NO_ASSOCIATION.
    ``probe``: OK the map was made, USAGE, NO_ASSOCIATION.

    A send, resume or retry ended by a signal exits 128 + the signal's number, the shell's
    convention, after writing the journal, the report and the summary: HANGUP (SIGHUP, the
    terminal was closed), INTERRUPTED (SIGINT, Ctrl+C), TERMINATED (SIGTERM).
    """

    OK = 0
    SOME_FAILED = 1
    USAGE = 2
    NO_ASSOCIATION = 3
    HANGUP = 129
    INTERRUPTED = 130
    TERMINATED = 143
