"""Background work on QThreads: scanning, sending, C-ECHO, the local test PACS and file writing.

:class:`EngineEventAdapter` is the one place where the engine's event records
(:mod:`core.events`, delivered on the engine's thread) become Qt signals; Qt
queues them to the GUI thread. :class:`SendWorker` drives one
:class:`core.engine.SendJob` on its own QThread. :class:`ScanWorker` scans
paths and hands the records over in batches. :class:`TaskWorker` runs any other
blocking call (C-ECHO, starting/stopping the SCP, writing a report) and returns
its result or its error as data, never as an exception.

Widgets are never touched here.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core import events as ev
from core.engine import Item, JobResult, SendJob
from core.scan import ScannedInstance, scan_paths

from .qtcompat import emit

LOGGER = logging.getLogger(__name__)


class EngineEventAdapter(QObject):
    """Turns engine events into Qt signals (emitted on the engine's thread, queued to receivers).

    Signals:
        event_received(object): every :class:`core.events.Event`.
        job_started(object): :class:`core.events.JobStarted`.
        association_requested(object): :class:`core.events.AssociationRequested`.
        association_negotiated(object): :class:`core.events.AssociationNegotiated`.
        association_failed(object): :class:`core.events.AssociationFailed`.
        association_released(object): :class:`core.events.AssociationReleased`.
        instance_started(object): :class:`core.events.InstanceStarted`.
        instance_finished(object): :class:`core.events.InstanceFinished`.
        job_finished(object): :class:`core.events.JobFinished`.
    """

    event_received = Signal(object)
    job_started = Signal(object)
    association_requested = Signal(object)
    association_negotiated = Signal(object)
    association_failed = Signal(object)
    association_released = Signal(object)
    instance_started = Signal(object)
    instance_finished = Signal(object)
    job_finished = Signal(object)

    def __call__(self, event: ev.Event) -> None:
        """The engine's callback: emit the matching signal (never blocks, never raises)."""
        try:
            name = _SIGNAL_FOR.get(type(event))
            if name is not None:
                emit(getattr(self, name), event)
            emit(self.event_received, event)
        except RuntimeError:  # the receiver is gone while the app shuts down
            pass


_SIGNAL_FOR: dict[type, str] = {
    ev.JobStarted: "job_started",
    ev.AssociationRequested: "association_requested",
    ev.AssociationNegotiated: "association_negotiated",
    ev.AssociationFailed: "association_failed",
    ev.AssociationReleased: "association_released",
    ev.InstanceStarted: "instance_started",
    ev.InstanceFinished: "instance_finished",
    ev.JobFinished: "job_finished",
}


@dataclass(frozen=True)
class JobSpec:
    """What one send needs: the engine config, the strategy, the items (paths) and an id."""

    config: dict[str, Any]
    strategy: str
    max_retries: int
    items: Sequence[Item]
    job_id: str
    continue_on_error: bool = True
    parallel: int = 1


class SendWorker(EngineEventAdapter):
    """Runs one :class:`core.engine.SendJob` on the QThread it is moved to.

    Signals:
        result_ready(object): the :class:`core.engine.JobResult`, or a dict ``{"error": str}``
            when the job could not run at all (e.g. a bad config).
        finished(): the worker is done (after `result_ready`).
    """

    result_ready = Signal(object)
    finished = Signal()

    def __init__(self, spec: JobSpec):
        super().__init__()
        self.spec = spec
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        """Ask the engine to stop before the next C-STORE (thread-safe)."""
        self.cancel_event.set()

    @Slot()
    def run(self) -> None:
        """Run the job (on the worker thread)."""
        result: JobResult | dict[str, Any]
        try:
            job = SendJob(self.spec.config, self.spec.strategy, self.spec.max_retries, self.spec.continue_on_error,
                          on_event=self, cancel=self.cancel_event, job_id=self.spec.job_id,
                          parallel=self.spec.parallel)
            result = job.run(self.spec.items)
        except Exception as exc:  # errors cross threads as data
            LOGGER.error("Send job %s could not run: %s", self.spec.job_id, exc)
            LOGGER.debug("%s", traceback.format_exc())
            result = {"error": str(exc)}
            self(ev.JobFinished({}, str(exc), False))
        emit(self.result_ready, result)
        emit(self.finished)


class ScanWorker(QObject):
    """Scans paths off the GUI thread and emits the records in batches.

    Signals:
        batch_scanned(object): a ``list[ScannedInstance]`` (at most every `batch_s` seconds).
        progressed(int): files seen so far.
        finished(int): scanning ended; the number of files seen.
    """

    batch_scanned = Signal(object)
    progressed = Signal(int)
    finished = Signal(int)

    def __init__(self, paths: Sequence[str], batch_s: float = 0.15, batch_max: int = 500):
        super().__init__()
        self.paths = list(paths)
        self.cancel_event = threading.Event()
        self._batch: list[ScannedInstance] = []
        self._last = 0.0
        self._seen = 0
        self._batch_s = batch_s
        self._batch_max = batch_max

    @Slot()
    def run(self) -> None:
        """Scan (on the worker thread)."""
        self._last = time.monotonic()
        try:
            scan_paths(self.paths, on_instance=self._on_instance, cancel=self.cancel_event)
        except Exception as exc:  # the scanner never raises for a bad file; this is a bug or an OS error
            LOGGER.error("Scanning stopped: %s", exc)
        if self._batch:
            emit(self.batch_scanned, self._batch)
            self._batch = []
        emit(self.finished, self._seen)

    def _on_instance(self, inst: ScannedInstance) -> None:
        self._batch.append(inst)
        self._seen += 1
        now = time.monotonic()
        if len(self._batch) >= self._batch_max or now - self._last >= self._batch_s:
            emit(self.batch_scanned, self._batch)
            emit(self.progressed, self._seen)
            self._batch = []
            self._last = now


class TaskWorker(QObject):
    """Runs one blocking call on the thread it is moved to.

    Signals:
        succeeded(object): the call's return value.
        failed(object): the exception object (its ``str()`` is the message).
        finished(): after either.
    """

    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any):
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs

    @Slot()
    def run(self) -> None:
        """Call the function (on the worker thread)."""
        try:
            value = self.fn(*self.args, **self.kwargs)
        except Exception as exc:  # errors cross threads as data
            LOGGER.debug("Background task %s failed: %s", getattr(self.fn, "__name__", self.fn), exc)
            emit(self.failed, exc)
        else:
            emit(self.succeeded, value)
        emit(self.finished)


class ThreadPool(QObject):
    """Starts workers on their own QThreads and keeps them alive until they finish.

    Each worker must have a ``run`` slot and a ``finished`` signal. :meth:`shutdown`
    waits for every thread (the app calls it on close).
    """

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._running: dict[int, tuple[QThread, QObject]] = {}

    def start(self, worker: QObject, name: str = "worker") -> QThread:
        """Move `worker` to a new QThread and start it."""
        thread = QThread()
        thread.setObjectName(name)
        worker.moveToThread(thread)
        self._running[id(worker)] = (thread, worker)
        thread.started.connect(worker.run)  # type: ignore[attr-defined]
        worker.finished.connect(thread.quit)  # type: ignore[attr-defined]
        thread.finished.connect(self._reap)
        thread.start()
        return thread

    @Slot()
    def _reap(self) -> None:
        done = self.sender()
        for key, (thread, _worker) in list(self._running.items()):
            if thread is done or thread.isFinished():
                thread.wait()
                del self._running[key]

    @property
    def busy(self) -> int:
        """Number of running workers."""
        return len(self._running)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Ask cancellable workers to stop and wait for every thread."""
        for _thread, worker in list(self._running.values()):
            cancel = getattr(worker, "cancel_event", None)
            if cancel is not None:
                cancel.set()
        for thread, _worker in list(self._running.values()):
            thread.quit()
            if not thread.wait(timeout_ms):
                LOGGER.warning("Thread %s did not stop within %d ms", thread.objectName(), timeout_ms)
        self._running.clear()
