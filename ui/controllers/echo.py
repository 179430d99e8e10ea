"""The connection test: a C-ECHO to a profile's PACS on a worker (Verification SOP Class, PS3.7 9.1.5).

The main window's *Test connection* and the profile editor's both use :class:`EchoController`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot

from core.convert import syntax_label
from core.echo import echo
from core.profiles import Profile

from ..qtcompat import emit
from ..workers import TaskWorker, ThreadPool

if TYPE_CHECKING:
    from .local_pacs import LocalPacsController


def format_echo(result: dict[str, Any]) -> str:
    """``C-ECHO succeeded in 2.1 ms (association 5.0 ms) - Verification / Implicit VR LE`` .

    Args:
        result: what :func:`core.echo.echo` returned (``message``, ``rtt_ms``, ``associate_ms``,
            ``negotiation``).
    """
    neg = result.get("negotiation") or {}
    acc = (neg.get("accepted") or [{}])[0]
    ctx = f"{acc.get('abstract_syntax_name', 'Verification')} / {syntax_label(acc.get('transfer_syntax'))}"
    return (
        f"{result.get('message', '')}: round trip {result.get('rtt_ms', 0):.1f} ms, association "
        f"{result.get('associate_ms', 0):.1f} ms - accepted {ctx}, peer max PDU {neg.get('peer_max_pdu')} bytes"
    )


def echo_line(result: dict[str, Any]) -> str:
    """``✓ C-ECHO succeeded: 2.1 ms - accepted Implicit VR LE - TLSv1.3`` (one line for the window's header).

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
    return f"{'✓' if good else '✗'} C-ECHO {result.get('message', '')}: {result.get('rtt_ms', 0):.1f} ms{ctx}{tls}"


class EchoController(QObject):
    """Tests a profile's connection with a C-ECHO on a worker.

    Args:
        pool: where the C-ECHO runs.
        local_pacs: the local test PACS; when given, a failed test of the local test profile
            says that it is not running and how to start it.
        parent: the owning QObject.

    Signals:
        echo_started(object): the C-ECHO went to a worker; the :class:`core.profiles.Profile` tested.
        echo_finished(object, object): ``(result dict or None, error message or None)``; the result
            is :func:`core.echo.echo`'s. A profile that is not valid finishes at once with the reason.
    """

    echo_started = Signal(object)
    echo_finished = Signal(object, object)

    def __init__(self, pool: ThreadPool, local_pacs: LocalPacsController | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = pool
        self.local_pacs = local_pacs
        #: The profile of the last C-ECHO started (None before the first).
        self.profile: Profile | None = None

    def start(self, profile: Profile) -> bool:
        """C-ECHO `profile`'s PACS in the background; False when the profile is not valid (reported)."""
        errors = profile.errors()
        if errors:
            self._finish(None, "the profile is not valid: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
            return False
        try:
            cfg = profile.to_config_dict()
        except ValueError as exc:
            self._finish(None, str(exc))
            return False
        self.profile = profile
        emit(self.echo_started, profile)
        worker = TaskWorker(echo, cfg)
        worker.succeeded.connect(self._on_worker_succeeded)
        worker.failed.connect(self._on_worker_failed)
        self.pool.start(worker, "echo")
        return True

    @Slot(object)
    def _on_worker_succeeded(self, result: dict[str, Any]) -> None:
        self._finish(result, None)

    @Slot(object)
    def _on_worker_failed(self, exc: Exception) -> None:
        msg = str(exc)
        p = self.profile
        if self.local_pacs is not None and p is not None and p.is_local_test and not self.local_pacs.running:
            msg += " - the local test PACS is not running: start it from the Local test PACS menu (Ctrl+Shift+L)"
        self._finish(None, msg)

    def _finish(self, result: dict[str, Any] | None, error: str | None) -> None:
        emit(self.echo_finished, result, error)
