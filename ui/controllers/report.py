"""The failure report of the sends to one PACS: every instance not stored cleanly, with the reason, written on a worker."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from .. import states as st
from ..failure_report import build_failure_report, report_format, write_failure_report
from ..qtcompat import emit
from ..workers import TaskWorker, ThreadPool
from .send import SendRecord

LOGGER = logging.getLogger(__name__)

_COUNTED = ("success", "warning", "failure", "skipped", "not_sent", "not_reached")


def merged_outcomes(jobs: Sequence[SendRecord]) -> tuple[list[dict[str, Any]], list[Any]]:
    """Each file's latest outcome over `jobs` (oldest first): a retry's outcome replaces the first send's.

    Returns:
        ``(outcomes, scanner records)`` in the order the files were first sent.
    """
    latest: dict[str, tuple[dict[str, Any], Any]] = {}
    for job in jobs:
        for i, node in job.by_index.items():
            o = job.outcomes.get(i, {"status": "failure", "state": st.NOT_SENT.value, "message": "no outcome"})
            latest.pop(node.key, None)  # re-inserted: a file keeps its last send's place
            latest[node.key] = (o, node.inst)
    return [o for o, _ in latest.values()], [inst for _, inst in latest.values()]


def merged_summary(outcomes: Sequence[dict[str, Any]], jobs: Sequence[SendRecord]) -> dict[str, Any]:
    """The counts of the merged outcomes, plus the associations of every send.

    ``failure`` counts every failed instance, as the engine's summary does; of those, ``not_sent``
    were never sent because the user stopped the send and ``not_reached`` never reached the PACS
    (it was down, refused the association or was judged broken; a resume sends them again).
    """
    out: dict[str, Any] = dict.fromkeys(_COUNTED, 0)
    out["total"] = len(outcomes)
    for o in outcomes:
        status = o.get("status") or "failure"
        out[status] = out.get(status, 0) + 1
        if o.get("state") == st.NOT_SENT.value and status == "failure":
            out["not_sent"] += 1
        elif st.never_reached(o.get("state", ""), o):
            out["not_reached"] += 1
        if o.get("converted_from"):
            out["converted"] = out.get("converted", 0) + 1
    out["associations"] = sum(int(j.summary.get("associations", 0) or 0) for j in jobs)
    return out


def write_report(
    path: str, jobs: Sequence[SendRecord], omit_patient: bool, unreadable: Sequence[Any] = (), last_only: bool = False
) -> str:
    """Build the failure report of `jobs` (sends to one PACS) and write it to `path` in the format of its extension.

    Runs on a worker thread (reads only the records, which the GUI no longer changes).

    Returns:
        The path written.

    Raises:
        OSError: the file cannot be written.
    """
    outcomes, insts = merged_outcomes(jobs)
    last = jobs[-1]
    report = build_failure_report(
        outcomes,
        insts,
        [a for j in jobs for a in j.associations],
        last.profile.to_json(),
        merged_summary(outcomes, jobs),
        jobs[0].started,
        last.finished or time.time(),
        omit_patient,
        last.job_id,
        jobs=[{"id": j.job_id, "started": j.started, "finished": j.finished, "summary": j.summary} for j in jobs],
        unreadable=unreadable,
    )
    return write_failure_report(path, report, report_format(path))


class ReportController(QObject):
    """Writes the failure report (HTML, CSV or JSON) of the sends to one PACS on a worker.

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

    def export(
        self, jobs: SendRecord | Sequence[SendRecord], path: str, omit_patient: bool = False, unreadable: Sequence[Any] = ()
    ) -> bool:
        """Write the report of `jobs` (one send or several to the same PACS, oldest first) to `path`.

        Args:
            jobs: the sends it covers.
            path: the file; its extension picks the format.
            omit_patient: leave patient names, IDs and folder names out.
            unreadable: scanner records of the files that could not be read or are not DICOM.
        """
        chosen = [jobs] if isinstance(jobs, SendRecord) else list(jobs)
        if not chosen:
            return False
        worker = TaskWorker(write_report, path, chosen, omit_patient, list(unreadable))
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
