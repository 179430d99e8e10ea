"""Typed outcomes: what happened to each instance and on each association.

These records cross module boundaries (engine -> journal, report, CLI, GUI) instead of
dicts of strings. Each has ``to_dict()`` giving the dict shape of the JSON/CSV report and
the seed API (``store_dataset`` and ``store_datasets_batch`` results), so those formats
and the journal stay as they were.

* :class:`InstanceState`: where an instance stands in a job (the journal's ``state``).
* :class:`Status`: the C-STORE outcome class of an instance (PS3.4 B.2.3).
* :class:`AttemptResult` and :class:`Attempt`: one C-STORE attempt.
* :class:`InstanceOutcome`: the final outcome of one input of a send.
* :class:`ContextRecord` and :class:`Negotiation`: one association attempt (PS3.8 9.3.2-9.3.4).
* :class:`ArrivalCheck`: what the PACS confirmed after a send (:mod:`core.verify`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "InstanceState",
    "Status",
    "AttemptResult",
    "Attempt",
    "InstanceOutcome",
    "ContextRecord",
    "Negotiation",
    "ArrivalCheck",
    "STORED_STATES",
]


class InstanceState(StrEnum):
    """Where an instance stands in a job (stored in the journal's ``state`` column)."""

    PENDING = "pending"  # not tried yet
    IN_FLIGHT = "in-flight"  # a C-STORE started, no outcome recorded (a crash in between)
    STORED = "stored"  # the peer answered Success (0x0000)
    STORED_WARNING = "stored-warning"  # the peer answered a Warning status (0xB000, 0xB006, 0xB007...)
    FAILED = "failed"  # refused, aborted twice, no association or context, file unreadable or not convertible
    UNKNOWN = "unknown"  # the link broke after the data set was sent: stored or not, nobody knows
    NOT_SENT = "not-sent"  # never sent because the user stopped the send (cancel, signal, window closed)
    SKIPPED = "skipped"  # not a DICOM instance, or skipped after an earlier failure


#: States in which the peer has confirmed the instance.
STORED_STATES = (InstanceState.STORED, InstanceState.STORED_WARNING)


class Status(StrEnum):
    """The outcome class of an instance: a C-STORE status category (PS3.4 B.2.3), or skipped."""

    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"
    SKIPPED = "skipped"


class AttemptResult(StrEnum):
    """How one C-STORE attempt ended."""

    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"
    UNKNOWN = "unknown"  # the data set went out, no response came
    NOT_RECEIVED = "not-received"  # the link broke before the whole data set went out


def _value(v: Any) -> Any:
    """A StrEnum member as its plain string (reports and the journal hold plain values)."""
    return v.value if isinstance(v, StrEnum) else v


@dataclass(frozen=True, slots=True)
class Attempt:
    """One C-STORE attempt of an instance.

    Attributes:
        attempt: 1-based number of the attempt within the job run.
        started: when it started, seconds since the epoch.
        transfer_syntax: the transfer syntax UID it was sent with.
        association: the index of the association's :class:`Negotiation` in the job.
        result: how it ended; None while it runs (or when it was cut short).
        status_code: the DIMSE status (0000,0900), None without a response.
        message: the status or the failure in words.
        elapsed_s: seconds from the start to the response or the failure.
    """

    attempt: int
    started: float
    transfer_syntax: str
    association: int | None = None
    result: AttemptResult | None = None
    status_code: int | None = None
    message: str | None = None
    elapsed_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report's ``attempts_detail`` entry (result keys only once the attempt ended)."""
        d: dict[str, Any] = {
            "attempt": self.attempt,
            "started": self.started,
            "transfer_syntax": self.transfer_syntax,
            "association": self.association,
        }
        if self.result is not None:
            d.update(result=_value(self.result), status_code=self.status_code, message=self.message, elapsed_s=self.elapsed_s)
        return d


@dataclass(frozen=True, slots=True)
class InstanceOutcome:
    """The outcome of one input of a send.

    Attributes:
        index: the input's position in the job.
        path: the file, or None for an in-memory data set.
        status: the outcome class.
        state: the final state (the journal's ``state``).
        message: what happened, in words, with a hint.
        status_code: the peer's DIMSE status, None without a response.
        sop_class_uid / sop_instance_uid: the instance (None when unknown).
        transfer_syntax: the transfer syntax UID sent, None when nothing was sent.
        converted_from: the stored transfer syntax UID when the instance was converted, else None.
        strategy_used: the strategy of the association that carried (or refused) it.
        notes: what was noticed or fixed on the way (scanner notes, conversion notes).
        error_comment: the peer's Error Comment (0000,0902).
        tries: C-STORE attempts in this run.
        attempts_detail: those attempts.
        stored_syntax: the file's transfer syntax UID.
        size: the file's size in bytes.
        patient_id / study_instance_uid / series_instance_uid: where it belongs (None when absent).
        status_meaning: the standard's label of `status_code` (only when the peer answered).
        association: the index of the association that carried it (only when the peer answered).
        verified: the arrival check's answer (``committed``, ``found``, ``not found``,
            ``not checked``), None when the instance was not stored.
        arrival_checked: an arrival check ran for the job (then ``to_dict`` holds ``verified``).
        resumable: a failure that never reached the peer because of the peer (no association,
            the peer judged broken): a ``resume`` sends it again although its state is ``failed``.
    """

    index: int
    path: str | None
    status: Status
    state: InstanceState
    message: str
    status_code: int | None = None
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    transfer_syntax: str | None = None
    converted_from: str | None = None
    strategy_used: str | None = None
    notes: tuple[str, ...] = ()
    error_comment: str | None = None
    tries: int = 0
    attempts_detail: tuple[Attempt, ...] = ()
    stored_syntax: str | None = None
    size: int = 0
    patient_id: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    status_meaning: str | None = None
    association: int | None = None
    verified: str | None = None
    arrival_checked: bool = False
    resumable: bool = False

    @property
    def stored(self) -> bool:
        """True when the peer confirmed the instance (Success or Warning)."""
        return self.status in (Status.SUCCESS, Status.WARNING)

    def to_dict(self) -> dict[str, Any]:
        """The report's instance entry and the seed API's result dict (plain values)."""
        d: dict[str, Any] = {
            "index": self.index,
            "path": self.path,
            "status": _value(self.status),
            "state": _value(self.state),
            "message": self.message,
            "status_code": self.status_code,
            "sop_class_uid": self.sop_class_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "transfer_syntax": self.transfer_syntax,
            "converted_from": self.converted_from,
            "strategy_used": self.strategy_used,
            "notes": list(self.notes),
            "error_comment": self.error_comment,
            "tries": self.tries,
            "attempts_detail": [a.to_dict() for a in self.attempts_detail],
            "stored_syntax": self.stored_syntax,
            "size": self.size,
            "patient_id": self.patient_id,
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
        }
        if self.status_meaning is not None:
            d["status_meaning"] = self.status_meaning
        if self.association is not None:
            d["association"] = self.association
        if self.arrival_checked:
            d["verified"] = self.verified
        if self.resumable:
            d["resumable"] = True
        return d


@dataclass(frozen=True, slots=True)
class ContextRecord:
    """One presentation context of an association request or answer (PS3.8 9.3.2.2, 9.3.3.2).

    Attributes:
        abstract_syntax: the SOP Class UID.
        abstract_syntax_name: its name.
        transfer_syntax: the one transfer syntax UID proposed (or accepted).
        id: the presentation context ID (odd, 1-255); None in a proposal record.
        result: the answer's result (1 user rejection, 2 no reason, 3 abstract syntax not
            supported, 4 transfer syntaxes not supported); None when accepted or proposed.
        reason: `result` in words.
    """

    abstract_syntax: str
    abstract_syntax_name: str
    transfer_syntax: str | None
    id: int | None = None
    result: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The negotiation record's context entry."""
        d: dict[str, Any] = {} if self.id is None else {"id": self.id}
        d.update(
            abstract_syntax=self.abstract_syntax,
            abstract_syntax_name=self.abstract_syntax_name,
            transfer_syntax=self.transfer_syntax,
        )
        if self.result is not None:
            d["result"] = self.result
        if self.reason is not None:
            d["reason"] = self.reason
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContextRecord:
        """Read an entry written by :meth:`to_dict`."""
        return cls(
            str(d.get("abstract_syntax", "")),
            str(d.get("abstract_syntax_name", "")),
            d.get("transfer_syntax"),
            d.get("id"),
            d.get("result"),
            d.get("reason"),
        )


#: Optional keys of a negotiation record, in their dict order; absent from ``to_dict`` when None.
_OPTIONAL_NEGOTIATION_KEYS = (
    "peer",
    "started",
    "source",
    "peer_max_pdu",
    "peer_implementation_class_uid",
    "peer_implementation_version_name",
    "our_max_pdu",
    "outcome",
    "index",
    "stored",
)


@dataclass(frozen=True, slots=True)
class Negotiation:
    """One association attempt: what was proposed, what the peer answered (PS3.8 9.3.2-9.3.4).

    Attributes:
        strategy: the transfer-syntax strategy of the proposal.
        attempt: the attempt number (1-based) within the fallback chain.
        proposed / accepted / rejected: the presentation contexts (rejected ones with reasons).
        peer: ``AE@host:port``.
        started: when the request started, seconds since the epoch.
        source: where a plan's answer came from (``"negotiation"``, ``"acceptance map"``).
        peer_max_pdu: the peer's Maximum Length Received in bytes (PS3.8 D.1), once established.
        peer_implementation_class_uid / peer_implementation_version_name: the peer's implementation.
        our_max_pdu: ours, in bytes.
        outcome: why the association failed; None when it was established.
        index: the record's position in the job's associations (established ones only).
        stored: how many instances the association stored (set when it ended).
    """

    strategy: str
    attempt: int
    proposed: tuple[ContextRecord, ...] = ()
    accepted: tuple[ContextRecord, ...] = ()
    rejected: tuple[ContextRecord, ...] = ()
    peer: str | None = None
    started: float | None = None
    source: str | None = None
    peer_max_pdu: int | None = None
    peer_implementation_class_uid: str | None = None
    peer_implementation_version_name: str | None = None
    our_max_pdu: int | None = None
    outcome: str | None = None
    index: int | None = None
    stored: int | None = None

    def accepted_for(self, sop_class_uid: str) -> list[str]:
        """Transfer syntax UIDs accepted for `sop_class_uid`, in context order."""
        return [str(c.transfer_syntax) for c in self.accepted if c.abstract_syntax == sop_class_uid]

    def to_dict(self) -> dict[str, Any]:
        """The report's and the seed API's negotiation record (``attempts``, ``association_details``)."""
        d: dict[str, Any] = {"strategy": self.strategy, "attempt": self.attempt}
        if self.peer is not None:
            d["peer"] = self.peer
        d["proposed"] = [c.to_dict() for c in self.proposed]
        d["accepted"] = [c.to_dict() for c in self.accepted]
        d["rejected"] = [c.to_dict() for c in self.rejected]
        for key in _OPTIONAL_NEGOTIATION_KEYS[1:]:
            value = getattr(self, key)
            if value is not None:
                d[key] = value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Negotiation:
        """Read a record written by :meth:`to_dict` (e.g. an exception's ``details["negotiation"]``)."""
        return cls(
            str(d.get("strategy", "")),
            int(d.get("attempt") or 0),
            tuple(ContextRecord.from_dict(c) for c in d.get("proposed", ())),
            tuple(ContextRecord.from_dict(c) for c in d.get("accepted", ())),
            tuple(ContextRecord.from_dict(c) for c in d.get("rejected", ())),
            **{k: d.get(k) for k in _OPTIONAL_NEGOTIATION_KEYS},
        )


@dataclass(frozen=True)
class ArrivalCheck:
    """The arrival check of a job: what the PACS confirmed holding after the send (:mod:`core.verify`).

    Attributes:
        total: how many stored instances were asked about (0: nothing was stored).
        verified: input index -> ``committed``, ``found``, ``not found`` or ``not checked``.
        counts: instances per answer.
        methods: the methods used (``storage-commitment``, ``c-find``).
        messages: what happened, in words.
        commitment: the storage commitment's transaction (PS3.4 Annex J), or empty.
        series: Series Instance UID -> ``{"expected": n, "found": m}`` from the C-FIND.
        error: why the check could not run at all, or None.
    """

    total: int = 0
    verified: Mapping[int, str] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    methods: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    commitment: Mapping[str, Any] = field(default_factory=dict)
    series: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report's ``job["arrival_check"]`` section."""
        return {
            "methods": list(self.methods),
            "counts": dict(self.counts),
            "messages": list(self.messages),
            "commitment": dict(self.commitment),
            "series": dict(self.series),
        }
