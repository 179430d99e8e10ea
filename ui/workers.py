"""Background work on QThreads: scanning, sending, C-ECHO, the local test PACS and file writing.

:class:`EngineEventAdapter` is the one place where the engine's event records
(:mod:`core.events`, delivered on the engine's thread) become Qt signals; Qt
queues them to the GUI thread. :class:`SendWorker` runs one
:func:`core.send.run_send` on its own QThread. :class:`ScanWorker` scans
paths and hands the records over in batches. :class:`TaskWorker` runs any other
blocking call (C-ECHO, starting/stopping the SCP, writing a report) and returns
its result or its error as data, never as an exception.

Widgets are never touched here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from core import events as ev
from core.engine import JobResult
from core.scan import ScannedInstance, scan_paths
from core.send import SendRequest, run_send

from .qtcompat import emit

LOGGER = logging.getLogger(__name__)


class GuiGate:
    """Lets the engine's thread step aside while the GUI thread does a burst of Python work.

    The GUI thread wraps a paint of the file tree (hundreds of calls into Python) in
    ``with gate:``; the engine's event callback calls :meth:`wait` and, while the gate is
    held, waits (without the GIL) for at most `max_wait_s` seconds. Without it each of those
    calls waits for the GIL that the engine holds, and a 20 ms paint becomes a 100+ ms stall.
    Only the GUI thread enters the gate; any thread may wait on it.
    """

    def __init__(self, max_wait_s: float = 0.1):
        self.max_wait_s = max_wait_s
        self._free = threading.Event()
        self._free.set()
        self._depth = 0

    def __enter__(self) -> GuiGate:
        self._depth += 1
        self._free.clear()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth <= 0:
            self._depth = 0
            self._free.set()

    def wait(self) -> None:
        """Called by the engine's thread: returns at once unless the GUI thread holds the gate."""
        if not self._free.is_set():
            self._free.wait(self.max_wait_s)


class EngineEventAdapter(QObject):
    """Turns engine events into Qt signals (emitted on the engine's thread, queued to receivers).

    With `batch_s` > 0, per-instance events (:class:`core.events.InstanceStarted` and
    :class:`core.events.InstanceFinished`, two per instance) are not emitted one by one but
    collected and emitted as one `instances_batched` list at most every `batch_s` seconds
    (by a small flusher thread between :meth:`start_batching` and :meth:`stop_batching`).
    Every queued signal costs the GUI thread one Python call, and while the engine works
    each such call first waits for the GIL: a few batches a second instead of hundreds of
    signals keeps the event loop free. Any other event flushes the batch first, so the order
    of events is kept.

    Signals:
        event_received(object): every :class:`core.events.Event`.
        job_started(object): :class:`core.events.JobStarted`.
        association_requested(object): :class:`core.events.AssociationRequested`.
        association_negotiated(object): :class:`core.events.AssociationNegotiated`.
        association_failed(object): :class:`core.events.AssociationFailed`.
        association_released(object): :class:`core.events.AssociationReleased`.
        instance_started(object): :class:`core.events.InstanceStarted`.
        instance_finished(object): :class:`core.events.InstanceFinished`.
        instances_batched(object): a list of InstanceStarted / InstanceFinished events (when batching).
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
    instances_batched = Signal(object)
    job_finished = Signal(object)

    def __init__(self, batch_s: float = 0.0, gate: GuiGate | None = None):
        super().__init__()
        self.batch_s = batch_s
        self.gate = gate
        self._pending: list[ev.Event] = []
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._stop_flusher = threading.Event()

    def __call__(self, event: ev.Event) -> None:
        """The engine's callback: emit the matching signal (never blocks, never raises)."""
        if self.gate is not None:
            self.gate.wait()
        try:
            if self.batch_s > 0 and type(event) in _BATCHED:
                with self._lock:
                    self._pending.append(event)
                return
            self.flush_batch()
            name = _SIGNAL_FOR.get(type(event))
            if name is not None:
                emit(getattr(self, name), event)
            emit(self.event_received, event)
        except RuntimeError:  # the receiver is gone while the app shuts down
            pass

    def flush_batch(self) -> None:
        """Emit the collected per-instance events now (any thread)."""
        with self._lock:
            if self._pending:
                batch, self._pending = self._pending, []
                emit(self.instances_batched, batch)

    def start_batching(self) -> None:
        """Start the flusher thread (when `batch_s` > 0)."""
        if self.batch_s <= 0 or self._flusher is not None:
            return
        self._stop_flusher.clear()
        self._flusher = threading.Thread(target=self._flush_loop, name="event-batcher", daemon=True)
        self._flusher.start()

    def stop_batching(self) -> None:
        """Stop the flusher thread and emit what is left."""
        self._stop_flusher.set()
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None
        with contextlib.suppress(RuntimeError):
            self.flush_batch()

    def _flush_loop(self) -> None:
        while not self._stop_flusher.wait(self.batch_s):
            try:
                self.flush_batch()
            except RuntimeError:  # the receiver is gone while the app shuts down
                return


_BATCHED = (ev.InstanceStarted, ev.InstanceFinished)

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


def _lower_priority(niceness: int = 5) -> None:
    """Make the calling thread (and the threads it starts, e.g. pynetdicom's) yield the CPU to the GUI thread.

    Linux keeps a nice value per thread; raising it needs no privilege. When the machine is
    busy, the window's thread then gets the CPU first, so painting does not wait behind the
    send. Elsewhere (or if refused) nothing happens.
    """
    if os.environ.get("COURIER_SEND_NICE") == "0" or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except (OSError, AttributeError):
        pass


class SendWorker(EngineEventAdapter):
    """Runs one :func:`core.send.run_send` on the QThread it is moved to: a request in, signals out.

    The send flow (journal job, engine or rerun, arrival check, report) is core's; this
    adapter only re-emits its events as Qt signals.

    Signals:
        arrival_check_started(int): the arrival check of that many stored instances started.
        arrival_checked(object): ``{"verified": {index: state}, "messages": [str], "counts": {state: n},
            "methods": [str], ...}`` (:meth:`core.outcomes.ArrivalCheck.to_dict` plus ``verified``).
        result_ready(object): the :class:`core.engine.JobResult`, or a dict ``{"error": str}``
            when the job could not run at all (e.g. a bad config).
        finished(): the worker is done (after `result_ready`).
    """

    arrival_check_started = Signal(int)
    arrival_checked = Signal(object)
    result_ready = Signal(object)
    finished = Signal()

    def __init__(self, request: SendRequest, batch_s: float = 0.0, gate: GuiGate | None = None):
        super().__init__(batch_s, gate)
        self.request = request
        self.cancel_event = threading.Event()
        self.stop_event = threading.Event()

    def cancel(self) -> None:
        """Ask the engine to stop before the next C-STORE (thread-safe)."""
        self.cancel_event.set()

    def stop(self) -> None:
        """Stop the send now, between PDUs (thread-safe): the association is aborted, the instance in
        flight ends outcome unknown or not sent, the journal keeps the rest for a resume."""
        self.cancel_event.set()
        self.stop_event.set()

    def __call__(self, event: ev.Event) -> None:
        """The send's callback: every event as :class:`EngineEventAdapter`, the arrival check's as its signals."""
        super().__call__(event)
        if isinstance(event, ev.ArrivalCheckStarted):
            emit(self.arrival_check_started, event.count)
        elif isinstance(event, ev.ArrivalCheckFinished) and event.check.total:  # nothing stored: nothing to show
            emit(self.arrival_checked, {**event.check.to_dict(), "verified": dict(event.check.verified)})
        elif isinstance(event, ev.JournalUnavailable):
            LOGGER.warning("No journal for this send (%s): it cannot be resumed after a crash", event.message)

    @Slot()
    def run(self) -> None:
        """Run the send (on the worker thread)."""
        result: JobResult | dict[str, Any]
        _lower_priority()
        self.start_batching()
        try:
            sent = run_send(self.request, self, self.cancel_event, self.stop_event)
            result = sent.job if sent.job is not None else {"error": "nothing to send"}
        except Exception as exc:  # errors cross threads as data
            LOGGER.error("Send job %s could not run: %s", self.request.job_id or "", exc)
            LOGGER.debug("%s", traceback.format_exc())
            result = {"error": str(exc)}
            self(ev.JobFinished({}, str(exc), False))
        finally:
            self.stop_batching()
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

    def __init__(self, paths: Sequence[str], batch_s: float = 0.15, batch_max: int = 500, gate: GuiGate | None = None):
        super().__init__()
        self.paths = list(paths)
        self.gate = gate
        self.cancel_event = threading.Event()
        self._batch: list[ScannedInstance] = []
        self._last = 0.0
        self._seen = 0
        self._batch_s = batch_s
        self._batch_max = batch_max

    @Slot()
    def run(self) -> None:
        """Scan (on the worker thread)."""
        _lower_priority()
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
        if self.gate is not None:
            self.gate.wait()
        self._batch.append(inst)
        self._seen += 1
        now = time.monotonic()
        if len(self._batch) >= self._batch_max or now - self._last >= self._batch_s:
            emit(self.batch_scanned, self._batch)
            emit(self.progressed, self._seen)
            self._batch = []
            self._last = now


def tagged(tag: int, fn: Callable[..., Any], *args: Any) -> tuple[int, Any]:
    """``(tag, fn(*args))``; an exception leaves with ``.tag`` set, so a late answer can be told apart.

    For work the user may abandon (a plan before a send, a connection test): the controller
    bumps its tag when it gives up waiting and ignores answers with an older one.
    """
    try:
        return tag, fn(*args)
    except Exception as exc:
        exc.tag = tag  # type: ignore[attr-defined]
        raise


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


class DetachedTask(QObject):
    """Runs one blocking call on a daemon thread that the app never waits for; the answer comes as a signal.

    For work the user may abandon that cannot be interrupted (a connection test waiting for a
    silent PACS): quitting neither waits for it nor leaves a running QThread behind. The object
    lives on the GUI thread, so its signals reach their slots there (queued).

    Signals:
        succeeded(object): the call's return value.
        failed(object): the exception object (its ``str()`` is the message).
    """

    succeeded = Signal(object)
    failed = Signal(object)

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "task"):
        super().__init__()
        self.fn, self.args = fn, args
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the call on its daemon thread."""
        self._thread.start()

    def _run(self) -> None:
        try:
            value = self.fn(*self.args)
        except Exception as exc:  # errors cross threads as data
            LOGGER.debug("Background task %s failed: %s", getattr(self.fn, "__name__", self.fn), exc)
            with contextlib.suppress(RuntimeError):  # the window is gone
                emit(self.failed, exc)
        else:
            with contextlib.suppress(RuntimeError):
                emit(self.succeeded, value)


class ProbeWorker(QObject):
    """Runs :func:`core.probe.probe` on the thread it is moved to.

    Signals:
        progressed(int, int): ``(associations done, associations needed)``.
        succeeded(object): the :class:`core.probe.AcceptanceMap`.
        failed(object): the exception (a :class:`core.probe.ProbeError` when the peer gave no answer).
        finished(): after either.
    """

    progressed = Signal(int, int)
    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(self, config: dict[str, Any], sop_classes: Sequence[str], syntaxes: str | Sequence[str] = "all"):
        super().__init__()
        self.config = config
        self.sop_classes = list(sop_classes)
        self.syntaxes = syntaxes
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        """Stop after the current association (thread-safe)."""
        self.cancel_event.set()

    @Slot()
    def run(self) -> None:
        """Probe (on the worker thread)."""
        from core.probe import probe

        try:
            amap = probe(self.config, self.sop_classes, self.syntaxes, on_progress=self._on_progress, cancel=self.cancel_event)
        except Exception as exc:  # errors cross threads as data
            LOGGER.info("Probe failed: %s", exc)
            emit(self.failed, exc)
        else:
            emit(self.succeeded, amap)
        emit(self.finished)

    def _on_progress(self, p: Any) -> None:
        emit(self.progressed, p.done, p.total)


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
        """Ask cancellable workers to stop (a send: at once, between PDUs) and wait for every thread."""
        for _thread, worker in list(self._running.values()):
            for name in ("cancel_event", "stop_event"):
                event = getattr(worker, name, None)
                if event is not None:
                    event.set()
        for thread, _worker in list(self._running.values()):
            thread.quit()
            if not thread.wait(timeout_ms):
                LOGGER.warning("Thread %s did not stop within %d ms", thread.objectName(), timeout_ms)
        self._running.clear()
