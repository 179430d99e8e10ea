"""Engine events: small immutable records passed to a callback while a job runs.

The engine (:mod:`core.engine`) and the send flow around it (:func:`core.send.run_send`)
call ``on_event(event)`` from their own thread; consumers (the CLI's progress bar, the
Qt adapter in ``ui/``) must not block in it. Every event is a frozen dataclass so it can
cross threads as data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .outcomes import ArrivalCheck, InstanceOutcome, Negotiation

__all__ = [
    "Event",
    "EventCallback",
    "ScanProgress",
    "JobStarted",
    "AssociationRequested",
    "AssociationNegotiated",
    "AssociationFailed",
    "AssociationReleased",
    "InstanceStarted",
    "InstanceFinished",
    "JobFinished",
    "JobCreated",
    "JournalUnavailable",
    "JournalSetAside",
    "JournalFailed",
    "RerunPrepared",
    "ArrivalCheckStarted",
    "ArrivalCheckFinished",
    "ReportWritten",
    "ReportFailed",
    "multicast",
]


@dataclass(frozen=True)
class Event:
    """Base class of every engine event."""


EventCallback = Callable[[Event], None]


@dataclass(frozen=True)
class ScanProgress(Event):
    """Scanning found `files_seen` files so far; `instance` is the latest record (or None)."""

    files_seen: int
    instance: Any = None  # core.scan.ScannedInstance


@dataclass(frozen=True)
class JobStarted(Event):
    """A send job began: `total` instances, `total_bytes` bytes of files."""

    job_id: str
    total: int
    total_bytes: int


@dataclass(frozen=True)
class AssociationRequested(Event):
    """An A-ASSOCIATE-RQ is about to be sent with `strategy` and `n_contexts` contexts."""

    strategy: str
    n_contexts: int
    attempt: int


@dataclass(frozen=True)
class AssociationNegotiated(Event):
    """An association was established; `negotiation` is the attempt record."""

    negotiation: Negotiation


@dataclass(frozen=True)
class AssociationFailed(Event):
    """An association attempt failed; `message` says why, `negotiation` holds the details."""

    message: str
    negotiation: Negotiation


@dataclass(frozen=True)
class AssociationReleased(Event):
    """An association ended: `how` is ``"released"`` or ``"aborted"``, after `stored` instances.

    `index` is its negotiation record's position in the job's ``associations`` list.
    """

    how: str
    stored: int
    index: int | None = None


@dataclass(frozen=True)
class InstanceStarted(Event):
    """Sending of input `index` began over `transfer_syntax` (conversion from `converted_from`)."""

    index: int
    transfer_syntax: str | None = None
    converted_from: str | None = None


@dataclass(frozen=True)
class InstanceFinished(Event):
    """Input `index` ended with `outcome`; `bytes_sent` counts the file's bytes (0 when skipped)."""

    index: int
    outcome: InstanceOutcome
    bytes_sent: int = 0


@dataclass(frozen=True)
class JobFinished(Event):
    """The job ended; `summary` holds the counts; `error` a job-level message or None."""

    summary: dict[str, Any]
    error: str | None = None
    cancelled: bool = False


# -- the send flow around the engine (core.send) ----------------------------------------------------


@dataclass(frozen=True)
class JobCreated(Event):
    """Job `job_id` is recorded in the journal at `journal_path`: it can be resumed by this ID."""

    job_id: str
    journal_path: str


@dataclass(frozen=True)
class JournalUnavailable(Event):
    """The journal could not be used (`message` says why); the send goes on without one."""

    message: str


@dataclass(frozen=True)
class JournalSetAside(Event):
    """The journal at `path` was damaged (`reason`): it was moved to `set_aside_as` and a fresh one started."""

    path: str
    set_aside_as: str
    reason: str


@dataclass(frozen=True)
class JournalFailed(Event):
    """The journal could not be written (`message` says why): the send stops before the next C-STORE."""

    path: str
    message: str


@dataclass(frozen=True)
class RerunPrepared(Event):
    """A resume (or a retry, when `retry`) of job `job_id` will send `count` instances to `peer`."""

    job_id: str
    count: int
    peer: str
    retry: bool = False


@dataclass(frozen=True)
class ArrivalCheckStarted(Event):
    """The arrival check of `count` stored instances began."""

    count: int


@dataclass(frozen=True)
class ArrivalCheckFinished(Event):
    """The arrival check ended (``check.total`` 0: nothing was stored, nothing was asked)."""

    check: ArrivalCheck


@dataclass(frozen=True)
class ReportWritten(Event):
    """The report was written to `path`."""

    path: str


@dataclass(frozen=True)
class ReportFailed(Event):
    """The report could not be written to `path`; `message` says why."""

    path: str
    message: str


def multicast(*callbacks: EventCallback | None) -> EventCallback:
    """One event callback calling each of `callbacks` in order (None entries are skipped)."""
    live = [c for c in callbacks if c is not None]

    def call(event: Event) -> None:
        for c in live:
            c(event)

    return call
