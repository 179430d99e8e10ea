"""The connection test: a C-ECHO to a profile's PACS on a worker (Verification SOP Class, PS3.7 9.1.5).

The main window's *Test connection* and the profile editor's both use :class:`EchoController`:
the same countdown, the same Cancel, the same hints (e.g. to start the local test PACS).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from core.convert import syntax_label
from core.echo import echo
from core.profiles import Profile

from ..qtcompat import emit
from ..workers import DetachedTask, ThreadPool, tagged

if TYPE_CHECKING:
    from .local_pacs import LocalPacsController

#: The hint when the local test PACS is tested while it is off (the main window's and the editor's).
LOCAL_PACS_OFF = (
    "the local test PACS is not running - start it from the Local test PACS menu (Ctrl+Shift+L); "
    "Send and Plan start it by themselves"
)


def format_echo(result: dict[str, Any]) -> str:
    """``C-ECHO succeeded: round trip 2.1 ms, association 5.0 ms - accepted Verification / Implicit VR LE, ...``.

    Args:
        result: what :func:`core.echo.echo` returned (``message``, ``rtt_ms``, ``associate_ms``,
            ``negotiation``).
    """
    neg = result.get("negotiation") or {}
    acc = (neg.get("accepted") or [{}])[0]
    ctx = f"{acc.get('abstract_syntax_name', 'Verification')} / {syntax_label(acc.get('transfer_syntax'))}"
    return (
        f"{echo_message(result)}: round trip {result.get('rtt_ms', 0):.1f} ms, association "
        f"{result.get('associate_ms', 0):.1f} ms - accepted {ctx}, peer max PDU {neg.get('peer_max_pdu')} bytes"
    )


def echo_message(result: dict[str, Any]) -> str:
    """The result's message, naming the C-ECHO once (core says ``C-ECHO succeeded`` or a status).

    Args:
        result: what :func:`core.echo.echo` returned.
    """
    msg = str(result.get("message") or "")
    return msg if msg.startswith("C-ECHO") else f"C-ECHO answered {msg}".strip()


def echo_line(result: dict[str, Any]) -> str:
    """``✓ C-ECHO succeeded: 2.1 ms - accepted Implicit VR LE - TLSv1.3`` (one line for the window's status panel).

    Args:
        result: what :func:`core.echo.echo` returned; a ``tls`` entry adds the protocol and a
            warning when the peer's certificate expires soon.
    """
    good = result.get("status") != "failure"
    neg = result.get("negotiation") or {}
    acc = (neg.get("accepted") or [{}])[0]
    ctx = f" - accepted {syntax_label(acc.get('transfer_syntax'))}" if acc.get("transfer_syntax") else ""
    info = result.get("tls") or {}
    tls = f" - {info.get('protocol') or 'TLS'}" if info.get("tls") else ""
    if info.get("expires_soon"):
        tls += f" (certificate expires in {info.get('days_left')} days)"
    return f"{'✓' if good else '✗'} {echo_message(result)}: {result.get('rtt_ms', 0):.1f} ms{ctx}{tls}"


def echo_limit_s(profile: Profile) -> float:
    """The longest a C-ECHO to `profile` can take, seconds: connect, then association, then the response."""
    total = 0.0
    for key in ("connect_timeout_s", "acse_timeout_s", "dimse_timeout_s"):
        with contextlib.suppress(TypeError, ValueError):
            total += float(getattr(profile, key))
    return total or 30.0


class EchoController(QObject):
    """Tests a profile's connection with a C-ECHO on a worker; the test counts down and can be cancelled.

    Args:
        pool: the window's thread pool (kept for the callers' sake; the C-ECHO runs on a daemon
            thread, see :class:`ui.workers.DetachedTask`).
        local_pacs: this window's local test PACS: the local test profile is tested on the port
            it actually listens on, and a failed test while it is off says how to start it.
        parent: the owning QObject.

    Signals:
        echo_started(object): the C-ECHO went to a worker; the :class:`core.profiles.Profile` tested.
        echo_ticked(int): every second while the test runs: at most that many seconds are left.
        echo_cancelled(): the user stopped waiting (the answer, if it comes, is ignored).
        echo_finished(object, object): ``(result dict or None, error message or None)``; the result
            is :func:`core.echo.echo`'s. A profile that is not valid finishes at once with the reason.
    """

    echo_started = Signal(object)
    echo_ticked = Signal(int)
    echo_cancelled = Signal()
    echo_finished = Signal(object, object)

    def __init__(self, pool: ThreadPool, local_pacs: LocalPacsController | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = pool
        self.local_pacs = local_pacs
        #: The profile of the last C-ECHO started (None before the first).
        self.profile: Profile | None = None
        self._gen = 0
        self._tasks: set[DetachedTask] = set()  # kept alive until they answer (also when abandoned)
        self._running = False
        self._deadline = 0.0
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self._on_timer_timeout)

    @property
    def busy(self) -> bool:
        """True while a test runs."""
        return self._running

    def seconds_left(self) -> int:
        """At most how many seconds the running test still takes (0 when none runs)."""
        return max(0, round(self._deadline - time.monotonic())) if self._running else 0

    def start(self, profile: Profile) -> bool:
        """C-ECHO `profile`'s PACS in the background; False when one runs or the profile is not valid (reported)."""
        if self._running:
            return False
        errors = profile.errors()
        if errors:
            self._finish(None, "the profile is not valid: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
            return False
        if self.local_pacs is not None:
            profile = self.local_pacs.resolve(profile)
        try:
            cfg = profile.to_config_dict()
        except ValueError as exc:
            self._finish(None, str(exc))
            return False
        self.profile = profile
        self._gen += 1
        self._running = True
        self._deadline = time.monotonic() + echo_limit_s(profile)
        emit(self.echo_started, profile)
        # a daemon thread: a test the user cancels may wait for a silent PACS for a while yet,
        # and quitting must not wait for it
        task = DetachedTask(tagged, self._gen, echo, cfg, name="echo")
        task.succeeded.connect(self._on_worker_succeeded)
        task.failed.connect(self._on_worker_failed)
        self._tasks.add(task)
        task.start()
        self.timer.start()
        emit(self.echo_ticked, self.seconds_left())
        return True

    def cancel(self) -> None:
        """Stop waiting for the running test; its answer, if it comes, is ignored."""
        if not self._running:
            return
        self._gen += 1
        self._running = False
        self.timer.stop()
        emit(self.echo_cancelled)

    @Slot()
    def _on_timer_timeout(self) -> None:
        if self._running:
            emit(self.echo_ticked, self.seconds_left())

    @Slot(object)
    def _on_worker_succeeded(self, answer: tuple[int, dict[str, Any]]) -> None:
        self._tasks.discard(self.sender())  # type: ignore[arg-type]
        gen, result = answer
        if gen == self._gen and self._running:
            self._finish(result, None)

    @Slot(object)
    def _on_worker_failed(self, exc: Exception) -> None:
        self._tasks.discard(self.sender())  # type: ignore[arg-type]
        if getattr(exc, "tag", None) != self._gen or not self._running:
            return
        msg = str(exc)
        p = self.profile
        if self.local_pacs is not None and p is not None and p.is_local_test and not self.local_pacs.running:
            msg = f"could not connect to {p.remote_host}:{p.remote_port}: {LOCAL_PACS_OFF}"
        self._finish(None, msg)

    def _finish(self, result: dict[str, Any] | None, error: str | None) -> None:
        self._running = False
        self.timer.stop()
        emit(self.echo_finished, result, error)
