"""How a send ends on SIGINT (Ctrl+C), SIGTERM or SIGHUP (a closed terminal): with a record.

The first signal sets the send's cancel event: the engine stops before the next C-STORE, releases
the association, records the rest as "not sent (cancelled)" in the journal, and the report and
the summary are written as for any other send. A second signal sets :attr:`Interrupts.stop_now`
(the hard stop: end between PDUs). Nothing here raises into the send, so a second Ctrl+C never
prints a traceback. The exit code is 128 + the first signal's number (130, 143, 129), the shell's
convention for "ended by a signal".

A hang-up means the terminal is gone: its file descriptors are pointed at ``/dev/null`` so that
the rest of the send (journal, report, summary) is not stopped by writes that fail with EIO.
Output redirected to a file or pipe is kept.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import FrameType

from .exit_codes import ExitCode

__all__ = ["Interrupts", "HANDLED_SIGNALS"]

#: The signals that end a send with a record (SIGHUP where the platform has it).
HANDLED_SIGNALS: tuple[signal.Signals, ...] = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
)

_NAMES = {signal.SIGINT: "Ctrl+C", signal.SIGTERM: "SIGTERM"} | (
    {signal.SIGHUP: "the terminal was closed (SIGHUP)"} if hasattr(signal, "SIGHUP") else {}
)


class Interrupts:
    """The signal handlers of one send, resume or retry.

    Attributes:
        cancel: set by the first signal; pass it to :func:`core.send.run_send` (stop before the next C-STORE).
        stop_now: set by the second signal (stop between PDUs).
        signum: the first signal received, or None.
    """

    def __init__(self, cancel: threading.Event | None = None) -> None:
        self.cancel = cancel or threading.Event()
        self.stop_now = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def exit_code(self) -> int | None:
        """128 + the first signal's number (SIGINT 130, SIGTERM 143, SIGHUP 129), or None when no signal came."""
        if self.signum is None:
            return None
        code = 128 + self.signum
        return ExitCode(code) if code in ExitCode._value2member_map_ else code

    def install(self) -> Interrupts:
        """Handle :data:`HANDLED_SIGNALS` from now on (main thread only; elsewhere nothing changes)."""
        if threading.current_thread() is threading.main_thread():
            for sig in HANDLED_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        """Put back the handlers that were there before :meth:`install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]  # what signal.signal returned
        self._previous.clear()

    def __enter__(self) -> Interrupts:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Runs on the main thread between bytecodes: set events and say so, never raise."""
        if hasattr(signal, "SIGHUP") and signum == signal.SIGHUP:
            _detach_hung_up_terminal()
        if self.signum is None:
            self.signum = signum
        name = _NAMES.get(signal.Signals(signum), signal.Signals(signum).name)
        if not self.cancel.is_set():
            self.cancel.set()
            again = " (Ctrl+C again to stop sooner)" if signum == signal.SIGINT else ""
            _say(
                f"\n{name}: stopping after the current instance; the journal, the report and the summary are still written{again}"
            )
        elif not self.stop_now.is_set():
            self.stop_now.set()
            _say(f"\n{name} again: stopping as soon as possible; writing the journal and the report")


def _say(text: str) -> None:
    """Write a line to stderr without Python's buffered stream: it may be mid-write on the interrupted thread."""
    with contextlib.suppress(OSError):  # no terminal any more: nothing to tell
        os.write(2, (text + "\n").encode("utf-8", "backslashreplace"))


def _detach_hung_up_terminal() -> None:
    """Point stdout and stderr at /dev/null when they are a terminal that has hung up (writes fail with EIO)."""
    try:
        import termios
    except ImportError:  # not POSIX: no hang-up to handle
        return
    for fd in (1, 2):
        try:
            if not os.isatty(fd):
                continue
            termios.tcgetattr(fd)
        except termios.error:  # the terminal is gone
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)
        except OSError:
            continue
