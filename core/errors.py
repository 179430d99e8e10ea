"""Exceptions of the seed API.

Each carries ``remote_ae`` (the called AE title, or None) and ``details`` (a dict
with the diagnostics: attempts, negotiation, the raw result/source/reason) and a
message a person can act on.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CourierError",
    "AssociationError",
    "DimseCommandError",
    "TlsConfigError",
    "ConversionError",
    "SendRequestError",
    "JobBusyError",
    "JournalWriteError",
]


class CourierError(Exception):
    """Base class: a message, the peer's AE title and a details dict."""

    def __init__(self, message: str, remote_ae: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.remote_ae = remote_ae
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message


class AssociationError(CourierError):
    """No association could be established with any strategy.

    Raised for connection refused, DNS failure, unreachable host, ACSE timeout,
    A-ASSOCIATE-RJ (PS3.8 9.3.4, result/source/reason in words), A-ABORT during
    negotiation, or no acceptable presentation context. ``details["kind"]`` names
    the case (``"connect"``, ``"rejected"``, ``"aborted"``, ``"timeout"``,
    ``"no-context"``) and ``details["transient"]`` says whether a later retry may
    succeed.
    """


class DimseCommandError(CourierError):
    """The DIMSE exchange itself broke.

    No response within the DIMSE timeout, A-ABORT / A-P-ABORT during the operation, or an
    invalid response (PS3.7 9.3). A peer's failure status is not an exception: it is reported in the result.
    """


class TlsConfigError(CourierError):
    """TLS was asked for and cannot be set up or the TLS handshake failed (PS3.15 B.1)."""


class ConversionError(CourierError):
    """A data set cannot be encoded in the requested transfer syntax without loss."""


class SendRequestError(CourierError):
    """A send cannot start; nothing was sent.

    No such file, a report path that cannot be written, an unusable journal, no such job to
    resume. The message says what to fix.
    """


class JobBusyError(SendRequestError):
    """The job is being sent by another process (or another send of this one); nothing was sent.

    Attributes:
        job_id: the job.
        pid / host: the process that holds the job.
        since: when it took the job, seconds since the epoch (None when unknown).
    """

    def __init__(self, message: str, job_id: str, pid: int | None, host: str | None, since: float | None):
        super().__init__(message, details={"job_id": job_id, "pid": pid, "host": host, "since": since})
        self.job_id = job_id
        self.pid = pid
        self.host = host
        self.since = since


class JournalWriteError(CourierError):
    """The send journal could not be written (disk full, read-only, I/O error, the job taken over).

    The send stops between instances: what the journal did not record cannot be reported as
    stored, and a resume sends it again.
    """
