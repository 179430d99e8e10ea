"""The failure report of a send: every failed or warned instance with the reason, written on a worker."""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from .. import states as st
from ..failure_report import build_failure_report, report_format, write_failure_report
from ..qtcompat import emit
from ..workers import TaskWorker, ThreadPool
from .send import SendRecord

LOGGER = logging.getLogger(__name__)


def write_report(path: str, outcomes: list[dict[str, Any]], insts: list[Any], job: SendRecord, omit_patient: bool) -> str:
    """Build `job`'s failure report and write it to `path`, in the format of its extension (worker thread).

    Returns:
        The path written.

    Raises:
        OSError: the file cannot be written.
    """
    report = build_failure_report(
        outcomes,
        insts,
        job.associations,
        job.profile.to_json(),
        job.summary,
        job.started,
        job.finished or time.time(),
        omit_patient,
        job.job_id,
    )
    return write_failure_report(path, report, report_format(path))


class ReportController(QObject):
    """Writes a send's failure report (HTML, CSV or JSON) on a worker.

    Args:
        pool: where the report is written.
        parent: the owning QObject.

    Signals:
        report_written(str, str): ``(path, error or "")``; the report was written, or why not.
    """

    report_written = Signal(str, str)

    def __init__(self, pool: ThreadPool, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = pool
        self._path = ""

    def export(self, job: SendRecord, path: str, omit_patient: bool = False) -> bool:
        """Write `job`'s failure report to `path` (the extension picks the format); patient data left out on request."""
        outcomes = [
            job.outcomes.get(i, {"status": "failure", "state": st.NOT_SENT.value, "message": "no outcome"}) for i in job.by_index
        ]
        insts = [n.inst for n in job.by_index.values()]
        worker = TaskWorker(write_report, path, outcomes, insts, job, omit_patient)
        worker.succeeded.connect(self._on_worker_succeeded)
        worker.failed.connect(self._on_worker_failed)
        self._path = path
        self.pool.start(worker, "report")
        return True

    @Slot(object)
    def _on_worker_succeeded(self, path: str) -> None:
        LOGGER.info("Failure report written to %s", path)
        emit(self.report_written, path, "")

    @Slot(object)
    def _on_worker_failed(self, exc: Exception) -> None:
        msg = getattr(exc, "strerror", None) or str(exc)
        LOGGER.error("Cannot write the failure report %s: %s", self._path, msg)
        emit(self.report_written, self._path, msg)
