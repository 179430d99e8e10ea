"""Files into the file tree: paths are scanned on workers and the records added in batches."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal, Slot

from core.scan import ScannedInstance

from ..models import InstanceTreeModel
from ..qtcompat import emit
from ..workers import GuiGate, ScanWorker, ThreadPool

LOGGER = logging.getLogger(__name__)


class ScanController(QObject):
    """Scans dropped or chosen paths on workers and adds what they find to the tree model.

    Args:
        model: the file tree's model; each batch is added inside `gate`.
        pool: where the scans run.
        gate: lets a running send step aside while a batch goes in (see :class:`ui.workers.GuiGate`).
        parent: the owning QObject.

    Signals:
        scan_started(int): a scan began; the number of paths given.
        batch_added(int): a batch of records went into the model; their number.
        scan_progressed(int): files read so far by a scan.
        scan_finished(int): a scan ended; the files it read.
    """

    scan_started = Signal(int)
    batch_added = Signal(int)
    scan_progressed = Signal(int)
    scan_finished = Signal(int)

    def __init__(self, model: InstanceTreeModel, pool: ThreadPool, gate: GuiGate, parent: QObject | None = None):
        super().__init__(parent)
        self.model = model
        self.pool = pool
        self.gate = gate
        self._scans: list[ScanWorker] = []

    @property
    def busy(self) -> bool:
        """True while any scan runs."""
        return bool(self._scans)

    def add_paths(self, paths: Sequence[str]) -> ScanWorker:
        """Scan `paths` (files, folders, DICOMDIRs) on a worker; the model fills as records arrive."""
        worker = ScanWorker(list(paths), gate=self.gate)
        worker.batch_scanned.connect(self._on_worker_batch_scanned)
        worker.progressed.connect(self.scan_progressed)
        worker.finished.connect(self._on_worker_finished)
        self._scans.append(worker)
        emit(self.scan_started, len(paths))
        LOGGER.info("Scanning %d path(s)", len(paths))
        self.pool.start(worker, "scan")
        return worker

    @Slot(object)
    def _on_worker_batch_scanned(self, batch: list[ScannedInstance]) -> None:
        with self.gate:
            self.model.add_instances(batch)
        emit(self.batch_added, len(batch))

    @Slot(int)
    def _on_worker_finished(self, seen: int) -> None:
        worker = self.sender()
        self._scans = [w for w in self._scans if w is not worker]
        LOGGER.info("Scan finished: %d file(s)", seen)
        emit(self.scan_finished, seen)

    def shutdown(self) -> None:
        """Ask every running scan to stop (the pool waits for them)."""
        for w in self._scans:
            w.cancel_event.set()
