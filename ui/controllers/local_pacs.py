"""The local test PACS: the built-in Storage SCP (:class:`core.scp.EmbeddedSCP`) on loopback."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from core.profiles import Profile
from core.scp import ACCEPT_CHOICES, EmbeddedSCP

from ..profiles_ui import ProfileListModel
from ..qtcompat import emit
from ..workers import TaskWorker, ThreadPool

LOGGER = logging.getLogger(__name__)

#: The AE title of the local test PACS.
AE_TITLE = "COURIER"


def start_scp(port: int, accept: str, store_dir: str | None) -> EmbeddedSCP:
    """Start the embedded SCP on `port`, or on a free port when it is taken (worker thread).

    Args:
        port: the TCP port to listen on (0: any free port).
        accept: what it accepts, a key of :data:`core.scp.ACCEPT_CHOICES`.
        store_dir: where received files are written; None counts them only.

    Raises:
        OSError: no port could be bound.
    """
    try:
        return EmbeddedSCP(port, AE_TITLE, store_dir, accept).start()
    except OSError:
        LOGGER.info("Port %d is in use; the local test PACS takes a free port instead", port)
        return EmbeddedSCP(0, AE_TITLE, store_dir, accept).start()


class LocalPacsController(QObject):
    """Starts and stops this window's local test PACS on a worker.

    When the saved port is taken (another window's local test PACS, say) it listens on a free
    one; :meth:`resolve` gives every send, plan, probe and test to the local test profile that
    port, and the saved profile is never changed.

    Work that needs the SCP running (a send, a plan, a probe to the local test profile) is
    queued with :meth:`start_then` and runs once it has started (or after a restart).

    Args:
        profiles: the profile list; the "Local test PACS" profile's saved port is tried first.
        pool: where starting and stopping run (binding a port and joining threads block).
        data_dir: received files go to ``<data_dir>/local-test-pacs`` while :attr:`keep_files` is on.
        parent: the owning QObject.

    Signals:
        running_changed(bool): the SCP started (True), or stopped or could not start (False).
        accept_changed(str): what the SCP accepts changed; a key of :data:`core.scp.ACCEPT_CHOICES`.
        status_changed(str, object): ``(status line, its tooltip or None to keep the last one)``;
            also every second while it runs (the count of received instances).
    """

    running_changed = Signal(bool)
    accept_changed = Signal(str)
    status_changed = Signal(str, object)

    def __init__(self, profiles: ProfileListModel, pool: ThreadPool, data_dir: str, parent: QObject | None = None):
        super().__init__(parent)
        self.profiles = profiles
        self.pool = pool
        self.store_dir = os.path.join(data_dir, "local-test-pacs")
        self.scp: EmbeddedSCP | None = None
        self.accept = "everything"
        self.keep_files = False
        self._busy = False  # starting or stopping
        self._asked_port = 0  # the port the last start asked for (0: any)
        self._after: list[Callable[[], object]] = []
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)

    @property
    def running(self) -> bool:
        """True while the SCP listens."""
        return self.scp is not None

    @property
    def port(self) -> int | None:
        """The port this window's local test PACS listens on (None while it is off)."""
        return self.scp.port if self.scp is not None else None

    def resolve(self, profile: Profile) -> Profile:
        """`profile` as this window reaches it: the local test profile gets the port its SCP actually has.

        The saved profile keeps its port; a copy with the running SCP's port is returned
        (every other profile, or the local one while it is off, comes back unchanged).
        """
        if profile.is_local_test and self.scp is not None and profile.remote_port != self.scp.port:
            return replace(profile, remote_port=self.scp.port)
        return profile

    @Slot(bool)
    def set_running(self, on: bool) -> None:
        """Start or stop the SCP (the menu's checkable action)."""
        if on and self.scp is None:
            self.start()
        elif not on and self.scp is not None:
            self.stop()

    def start(self, accept: str | None = None, port: int | None = None) -> None:
        """Start the SCP on a worker (on the local test profile's port unless `port` is given)."""
        if self._busy or self.scp is not None:
            return
        if accept:
            self.set_accept(accept, restart=False)
        prof = self.profiles.store.local_test()
        self._busy = True
        emit(self.status_changed, "Local test PACS: starting…", None)
        store_dir = self.store_dir if self.keep_files else None
        self._asked_port = prof.remote_port if port is None else port
        worker = TaskWorker(start_scp, self._asked_port, self.accept, store_dir)
        worker.succeeded.connect(self._on_start_succeeded)
        worker.failed.connect(self._on_start_failed)
        self.pool.start(worker, "scp-start")

    def start_then(self, fn: Callable[[], object]) -> None:
        """Start the SCP and call `fn` once it runs (forgotten when it cannot start)."""
        self._after.append(fn)
        self.start()

    @Slot(object)
    def _on_start_succeeded(self, scp: EmbeddedSCP) -> None:
        self._busy = False
        self.scp = scp
        if self._asked_port and self._asked_port != scp.port:
            # this window's own PACS: kept here, never written into the saved profile (another
            # window, or the next start, may well get the saved port)
            LOGGER.info("Port %d is taken: this window's local test PACS listens on %d instead", self._asked_port, scp.port)
        self.timer.start()
        self.refresh()
        LOGGER.info("Local test PACS running on 127.0.0.1:%d (accepts %s)", scp.port, self.accept)
        emit(self.running_changed, True)
        self._run_after()

    @Slot(object)
    def _on_start_failed(self, exc: Exception) -> None:
        self._busy = False
        self._after.clear()
        emit(self.status_changed, f"Local test PACS could not start: {exc}", None)
        LOGGER.error("Local test PACS could not start: %s", exc)
        emit(self.running_changed, False)

    def stop(self, then: Callable[[], object] | None = None) -> None:
        """Stop the SCP on a worker; `then` is called once it has stopped."""
        scp, self.scp = self.scp, None
        self.timer.stop()
        if scp is None:
            return
        self._busy = True
        if then is not None:
            self._after.append(then)
        worker = TaskWorker(scp.stop)
        worker.finished.connect(self._on_stop_finished)
        self.pool.start(worker, "scp-stop")

    @Slot()
    def _on_stop_finished(self) -> None:
        self._busy = False
        self.refresh()
        emit(self.running_changed, False)
        self._run_after()

    def _run_after(self) -> None:
        todo, self._after = self._after, []
        for fn in todo:
            fn()

    def set_accept(self, key: str, restart: bool = True) -> None:
        """Choose what the SCP accepts (a key of :data:`core.scp.ACCEPT_CHOICES`); restarts it when running."""
        self.accept = key
        emit(self.accept_changed, key)
        if restart and self.scp is not None:
            self.stop(then=self.start)
        self.refresh()

    @Slot(bool)
    def set_keep_files(self, on: bool) -> None:
        """Write received files to :attr:`store_dir` (from the next start) or only count them."""
        self.keep_files = on

    @Slot()
    def refresh(self) -> None:
        """Emit the current status line (the received count changes while it runs)."""
        if self.scp is None:
            if not self._busy:
                emit(self.status_changed, "Local test PACS: off (Local test PACS menu)", None)
            return
        asked = self._asked_port
        moved = f" ({asked} was taken)" if asked and asked != self.scp.port else ""
        emit(
            self.status_changed,
            f"Local test PACS on port {self.scp.port}{moved}: {len(self.scp.received)} received, accepts "
            f"{ACCEPT_CHOICES.get(self.accept, self.accept)}",
            f"Received files are written to {self.scp.store_dir}"
            if self.scp.store_dir
            else "Received instances are counted, not kept (Local test PACS › Keep received files)",
        )

    def detach(self) -> EmbeddedSCP | None:
        """Forget the running SCP and return it, for a shutdown that stops it after the workers."""
        scp, self.scp = self.scp, None
        self.timer.stop()
        return scp
