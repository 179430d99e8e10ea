"""The send engine: many instances over few associations, with fallback and recovery.

A :class:`SendJob` takes inputs (paths or ``pydicom.Dataset`` objects), plans
presentation contexts per association (at most 128 each), negotiates with the
first strategy and falls back strategy by strategy for the instances that got no
usable context, chooses a context per instance (as stored first, else a lossless
conversion), sends C-STOREs and classifies every response. Every input ends with
an :class:`~core.outcomes.InstanceOutcome`; nothing is dropped. Progress goes to ``on_event`` as
:mod:`core.events` records. PS3.4 Annex B (Storage), PS3.7 9.1.1 (C-STORE),
PS3.8 (association).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID, ImplicitVRLittleEndian
from pynetdicom import Association
from pynetdicom.dsutils import split_dataset

from . import events as ev
from .config import StoreConfig
from .convert import conversion_plan, encode_dataset, load_dataset, syntax_label
from .diagnostics import explain_abort, explain_status
from .errors import AssociationError, ConversionError, CourierError, TlsConfigError
from .fastpath import ChannelBrokenError, DirectChannel
from .negotiation import open_association, tls_args_for
from .outcomes import Attempt, AttemptResult, InstanceOutcome, InstanceState, Negotiation, Status
from .rules import (
    abstract_refused,
    association_retryable,
    falls_back,
    is_transient_status,
    partition_by_study,
    peer_judged_broken,
    planned_contexts,
    resends_after_break,
    secondary_gives_up,
    send_chain,
    usable_contexts,
    waits_for_next_strategy,
)
from .scan import ScannedInstance, read_instance
from .strategies import parse_strategy
from .waiting import drop_connection

LOGGER = logging.getLogger(__name__)

__all__ = [
    "Item",
    "SendJob",
    "JobResult",
    "items_from_inputs",
    "items_from_scan",
    "REPORT_FIELDS",
    "source_problem",
    "sop_class_words",
]

#: Per-instance report fields, in order (CLI JSON/CSV and seed API ``details``).
REPORT_FIELDS = (
    "path",
    "status",
    "message",
    "status_code",
    "sop_class_uid",
    "sop_instance_uid",
    "transfer_syntax",
    "converted_from",
    "strategy_used",
)


@dataclass
class Item:
    """One input of a send: its position, its source and its header record."""

    index: int
    source: str | Dataset
    inst: ScannedInstance
    attempts: int = 0
    unknown: str = ""  # "outcome unknown - ..." once a data set of it reached the peer without an answer
    broke: str = ""  # how the association broke the first time it was in flight ("" never)
    history: list[Attempt] = field(default_factory=list)


def _dataset_record(ds: Dataset, index: int) -> ScannedInstance:
    """Describe an in-memory data set the way the scanner describes a file."""
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    notes: list[str] = []
    if not ts:
        implicit, little = ds.original_encoding
        if implicit is False:
            ts = "1.2.840.10008.1.2.1" if little is not False else "1.2.840.10008.1.2.2"
        else:
            ts = "1.2.840.10008.1.2"
        notes.append(f"no (0002,0010) Transfer Syntax UID; assumed {UID(ts).name}")
    sop_class = str(ds.get("SOPClassUID", "") or "")
    fix_class = False
    if not sop_class and meta is not None and meta.get("MediaStorageSOPClassUID"):
        sop_class, fix_class = str(meta.MediaStorageSOPClassUID), True
        notes.append("data set lacks SOP Class UID (0008,0016); used Media Storage SOP Class UID (0002,0002)")
    sop_inst = str(ds.get("SOPInstanceUID", "") or "")
    if ts and not UID(ts).is_transfer_syntax:
        return ScannedInstance(
            "",
            index=index,
            status="failure",
            reason=f"unknown transfer syntax UID {ts!r} in (0002,0010)",
            sop_instance_uid=sop_inst,
        )
    odd = [int(t) for t, e in ds._dict.items() if (n := getattr(e, "length", 0)) % 2 and n != 0xFFFFFFFF]
    if odd:
        names = ", ".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in odd)
        notes.append(f"odd-length value padded to even length: {names}")
    base = ScannedInstance(
        path="",
        index=index,
        sop_class_uid=sop_class,
        sop_instance_uid=sop_inst,
        transfer_syntax=ts,
        notes=tuple(notes),
        needs_rewrite=True,
        fix_sop_class=fix_class,
        pad_tags=tuple(odd),
        patient_id=str(ds.get("PatientID", "") or ""),
        study_instance_uid=str(ds.get("StudyInstanceUID", "") or ""),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "") or ""),
        modality=str(ds.get("Modality", "") or ""),
    )
    if not sop_class:
        return ScannedInstance(
            **{**base.__dict__, "status": "failure", "reason": "no SOP Class UID: neither (0008,0016) nor (0002,0002) present"}
        )
    if not sop_inst:
        return ScannedInstance(
            **{
                **base.__dict__,
                "status": "failure",
                "reason": "missing SOP Instance UID (0008,0018): the PACS cannot store an instance without it",
            }
        )
    return base


def items_from_inputs(inputs: Sequence[str | os.PathLike[str] | Dataset]) -> list[Item]:
    """Turn seed-API inputs (paths and/or Datasets) into items, one per input, in order."""
    items = []
    for i, src in enumerate(inputs):
        if isinstance(src, Dataset):
            items.append(Item(i, src, _dataset_record(src, i)))
        else:
            path = os.fspath(src)
            inst = read_instance(path)
            items.append(Item(i, path, ScannedInstance(**{**inst.__dict__, "index": i})))
    return items


def items_from_scan(instances: Sequence[ScannedInstance]) -> list[Item]:
    """Turn scanner records into items (the CLI and the GUI send paths)."""
    return [Item(i, inst.path, inst) for i, inst in enumerate(instances)]


@dataclass
class JobResult:
    """What a job did.

    Attributes:
        outcomes: one outcome per input, in input order.
        associations: one negotiation record per association attempt.
        established: how many associations were established.
        error: a job-level message (e.g. the peer was unreachable) or None.
        no_association: True when sendable items existed but no association was ever established.
        cancelled: True when the job was cancelled or stopped.
        stopped: True when the hard-stop event ended it (the association was aborted).
    """

    outcomes: list[InstanceOutcome]
    associations: list[Negotiation] = field(default_factory=list)
    established: int = 0
    error: str | None = None
    no_association: bool = False
    cancelled: bool = False
    first_exception: CourierError | None = None
    stopped: bool = False

    def summary(self) -> dict[str, Any]:
        """Counts per status and per state."""
        counts = {"total": len(self.outcomes), "success": 0, "warning": 0, "failure": 0, "skipped": 0}
        for o in self.outcomes:
            counts[o.status.value] = counts.get(o.status.value, 0) + 1
        counts["not_sent"] = sum(1 for o in self.outcomes if o.state == InstanceState.NOT_SENT and o.status == Status.FAILURE)
        counts["converted"] = sum(1 for o in self.outcomes if o.converted_from)
        counts["associations"] = self.established
        counts["cancelled"] = self.cancelled
        return counts


class _HandBackError(Exception):
    """A secondary association could not be opened: hand its instances back."""

    def __init__(self, items: list[Item]):
        super().__init__("association refused")
        self.items = items


def _study_key(it: Item) -> tuple[int, str, int]:
    """What :func:`core.rules.partition_by_study` needs of an item."""
    return it.index, it.inst.study_instance_uid, it.inst.size


class _BrokenAssociationError(Exception):
    """The association broke during the C-STORE of `item` (or the user stopped the send).

    Attributes:
        message: what happened, in words.
        item: the instance in flight (None when no C-STORE had started).
        sent: the whole data set had been written (the outcome is unknown, not "not received").
        abort: the peer sent an A-ABORT.
        stopped: the hard-stop event ended it.
        local: our own file could not be read mid-message (the instance is already failed;
            the peer did nothing wrong).
        deferred: instances of the association set aside for the next strategy before the break.
    """

    def __init__(
        self,
        message: str,
        item: Item | None = None,
        sent: bool = True,
        abort: bool = False,
        stopped: bool = False,
        local: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.item = item
        self.sent = sent
        self.abort = abort
        self.stopped = stopped
        self.local = local
        self.deferred: list[Item] = []


class _UnreadableSourceError(Exception):
    """The file could not be opened or read before any byte of its message was written."""


def _outcome(
    item: Item, status: Status, state: InstanceState, message: str, notes: Sequence[str] = (), **kw: Any
) -> InstanceOutcome:
    """The outcome of `item` now (its attempts so far included)."""
    inst = item.inst
    return InstanceOutcome(
        index=item.index,
        path=inst.path or None,
        status=status,
        state=state,
        message=message,
        sop_class_uid=inst.sop_class_uid or None,
        sop_instance_uid=inst.sop_instance_uid or None,
        notes=(*inst.notes, *notes),
        tries=item.attempts,
        attempts_detail=tuple(item.history),
        stored_syntax=inst.transfer_syntax or None,
        size=inst.size,
        patient_id=inst.patient_id or None,
        study_instance_uid=inst.study_instance_uid or None,
        series_instance_uid=inst.series_instance_uid or None,
        **kw,
    )


def source_problem(inst: ScannedInstance) -> str | None:
    """Why the file of `inst` must not be sent now, or None when it is as the scan saw it.

    Compares the file's size and modification time (``st_size``, ``st_mtime_ns``) with the
    scan's, right before the file is streamed or loaded, so that a file replaced after the scan
    (another patient's data set under the same name) is never sent under the scanned UIDs.

    Args:
        inst: the scan's record (``path``, ``size``, ``mtime_ns``; 0 skips the time check).

    Returns:
        ``"... no longer exists ..."``, ``"... changed since it was scanned ..."``, a read error,
        or None.
    """
    path = inst.path
    if not path:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"not sent: {path} no longer exists (deleted or moved after it was scanned)"
    except OSError as exc:
        return f"not sent: cannot read {path}: {exc.strerror or exc}"
    if st.st_size != inst.size:
        return (
            f"not sent: {path} changed since it was scanned ({inst.size} bytes then, {st.st_size} now); "
            "scan it again to send what it holds now"
        )
    if inst.mtime_ns and st.st_mtime_ns != inst.mtime_ns:
        return (
            f"not sent: {path} changed since it was scanned (modified again after the scan); "
            "scan it again to send what it holds now"
        )
    return None


def sop_class_words(uid: str) -> str:
    """A SOP class as a person can look it up: its name and UID, retired or private said so.

    Examples: ``"CT Image Storage 1.2.840.10008.5.1.4.1.1.2"``, ``"Ultrasound Image Storage (Retired)
    1.2.840.10008.5.1.4.1.1.6"``, ``"SOP Class 1.3.46.670589.2.5.1.1 (private, not a standard storage class)"``.
    """
    u = UID(uid)
    if u.name == str(u):  # not in the standard's registry (PS3.6 Annex A)
        kind = "not a standard storage class" if str(u).startswith("1.2.840.10008.") else "private, not a standard storage class"
        return f"SOP Class {u} ({kind})"
    return f"{u.name}{' (Retired)' if u.is_retired else ''} {u}"


#: VRs added to DICOM in 2013 or later (PS3.5 6.2): receivers older than that may fail to parse them in explicit VR.
_NEW_VRS = frozenset({"UC", "UR", "OL", "OV", "SV", "UV"})


def _new_vr_hint(source: str | Dataset, sent_syntax: str | None) -> str:
    """A hint for an explicit-VR data set a peer broke on: its newer VRs and the setting to try ("" if none)."""
    if not sent_syntax or sent_syntax == ImplicitVRLittleEndian or not UID(sent_syntax).is_transfer_syntax:
        return ""
    found: list[str] = []
    try:
        ds = source if isinstance(source, Dataset) else dcmread(source, stop_before_pixels=True)
        for elem in ds.iterall():
            if elem.VR in _NEW_VRS:
                label = f"{elem.VR} in ({elem.tag.group:04X},{elem.tag.element:04X})"
                if label not in found:
                    found.append(label)
            if len(found) >= 4:
                break
    except Exception:  # a hint must never hide the failure
        return ""
    if not found:
        return ""
    return (
        f"; the data set uses VRs introduced in 2013 or later ({', '.join(found)}); older receivers may not parse "
        f"them in {syntax_label(sent_syntax)}: try 'Implicit VR Little Endian only' for this destination "
        "(implicit_vr_only, send --implicit-vr-only)"
    )


def _twice_message(first: str, second: _BrokenAssociationError) -> str:
    """Why an instance that broke the association twice failed, ending with what to do (issue 12, item 1)."""
    if second.abort:
        what = "the PACS aborted the association twice while receiving this instance"
    else:
        what = "the association broke twice while the PACS was receiving this instance"
    again = "" if second.message == first else f"; the first time: {first}"
    return (
        f"{what}: it probably cannot read it — {second.message}{again}; hint: it went alone the second time, after the "
        "others, so the file itself is the likely cause: check it (e.g. dciodvfy or dcmdump) and the PACS log"
    )


def _kind(it: Item) -> tuple[str, str, str]:
    """What makes files alike for a peer's parser: series, SOP class, stored transfer syntax."""
    return it.inst.series_instance_uid, it.inst.sop_class_uid, it.inst.transfer_syntax


def _other_kind_first(queue: list[Item], kinds: set[tuple[str, str, str]]) -> list[Item]:
    """`queue` with its first instance of a kind not in `kinds` moved to the front (unchanged if none).

    After several instances in a row broke the association, the next one tells more when it is of
    another kind: stored, it shows the peer works and those files are the problem.
    """
    for n, it in enumerate(queue):
        if _kind(it) not in kinds:
            return [it, *queue[:n], *queue[n + 1 :]] if n else queue
    return queue


class SendJob:
    """One send: inputs in, one outcome per input out.

    An instance in flight when its association breaks (A-ABORT, closed connection, DIMSE or
    network timeout) is set aside: the others go on at once on a new association (no back-off:
    a peer that aborts one instance is up), then it is sent once more, alone, on a fresh
    association; breaking it again fails it with words a person can act on. After
    :data:`core.rules.BROKEN_PEER_BREAKS` instances in a row each break the association with
    none answered in between, the peer is judged broken and the rest fail with that reason; after
    two in a row, an instance of another series, class or syntax goes next (it tells whether the
    peer or those files are the problem).
    Back-off happens only while associating fails (the peer is down or busy).

    Args:
        config: a seed config dict or :class:`StoreConfig`.
        strategy: the first transfer-syntax strategy (see :mod:`core.strategies`).
        max_retries: how many more conservative strategies may be tried after the first
            (the fallback chain; it never re-sends an instance: see ``max_resends`` in
            :class:`~core.config.StoreConfig`).
        continue_on_error: when False, the first failure stops the job and the rest
            are reported ``skipped``.
        on_event: callback receiving :mod:`core.events` records (any thread).
        cancel: set it to stop between C-STOREs; the association is released and
            the rest are reported "not sent (cancelled)".
        job_id: an identifier for events and the journal.
        parallel: how many associations to use at once; each study stays on one
            association; associations the peer rejects or aborts are given up and their
            instances go over the others.
        stop: set it to stop now: the association is aborted between PDUs, the instance in
            flight is recorded as outcome unknown (or not sent when its data set was not fully
            written), and the rest as not sent ("the send was stopped").

    Raises:
        ValueError: bad config or strategy (from the constructor).
    """

    def __init__(
        self,
        config: dict[str, Any] | StoreConfig,
        strategy: str = "standard",
        max_retries: int = 3,
        continue_on_error: bool = True,
        on_event: ev.EventCallback | None = None,
        cancel: threading.Event | None = None,
        job_id: str = "",
        sleep: Callable[[float], None] = time.sleep,
        parallel: int = 1,
        stop: threading.Event | None = None,
    ):
        self.cfg = StoreConfig.from_dict(config)
        self.strategy = parse_strategy(strategy)
        self.max_retries = max(0, int(max_retries))
        self.continue_on_error = continue_on_error
        self.on_event = on_event or (lambda e: None)
        self.cancel = cancel or threading.Event()
        self.stop = stop or threading.Event()
        self.job_id = job_id
        self.parallel = max(1, int(parallel))
        self._sleep = sleep
        self._outcomes: dict[int, InstanceOutcome] = {}
        self._records: list[Negotiation] = []
        self._established = 0
        self._stop_on_error = False
        self._first_exc: CourierError | None = None
        self._error: str | None = None
        self._lock = threading.Lock()
        self._answered = 0
        self._last_answer = time.monotonic()
        self._tls_args: Any = None

    # -- public -----------------------------------------------------------------------------------

    def run(self, items: Sequence[Item]) -> JobResult:
        """Send `items`; return a :class:`JobResult` (never raises for peer or file problems)."""
        total_bytes = sum(it.inst.size for it in items)
        self.on_event(ev.JobStarted(self.job_id, len(items), total_bytes))
        pending: list[Item] = []
        cut: Item | None = None
        for it in items:
            if it.inst.status == "ok":
                pending.append(it)
            elif it.inst.status == "failure" and not self.continue_on_error:
                cut = it  # send what comes before it, then stop
                break
            else:
                skipped = it.inst.status == "skipped"
                self._finish(
                    it,
                    _outcome(
                        it,
                        Status.SKIPPED if skipped else Status.FAILURE,
                        InstanceState.SKIPPED if skipped else InstanceState.FAILED,
                        it.inst.reason,
                    ),
                )
        try:
            self._tls_args = tls_args_for(self.cfg) if pending else None
            if self.parallel > 1 and len(pending) > 1:
                self._send_parallel(pending)
            else:
                self._send_with_fallback(pending)
        except CourierError as exc:  # a job-level failure (e.g. TLS cannot be set up)
            self._error = exc.message
            self._first_exc = self._first_exc or exc
        if cut is not None and not self._halted():
            self._finish(cut, _outcome(cut, Status.FAILURE, InstanceState.FAILED, cut.inst.reason))
            self._stop_on_error = True
        for it in items:  # everything gets an outcome
            if it.index not in self._outcomes:
                self._finish(it, self._leftover(it))
        outcomes = [self._outcomes[it.index] for it in items]
        stopped = self.cancel.is_set() or self.stop.is_set()
        result = JobResult(
            outcomes,
            self._records,
            self._established,
            self._error,
            no_association=bool(pending) and self._established == 0,
            cancelled=stopped,
            first_exception=self._first_exc,
            stopped=self.stop.is_set(),
        )
        self.on_event(ev.JobFinished(result.summary(), self._error, result.cancelled))
        return result

    def _leftover(self, it: Item) -> InstanceOutcome:
        """The outcome of an instance the send did not finish (stopped, cut short, peer unavailable)."""
        if it.unknown:  # its data set reached the peer once; nobody knows whether it was stored
            return _outcome(it, Status.FAILURE, InstanceState.UNKNOWN, it.unknown)
        if self.stop.is_set() or self.cancel.is_set():
            word = "stopped" if self.stop.is_set() else "cancelled"
            earlier = f" (an earlier attempt did not reach the PACS: {it.broke})" if it.broke else ""
            return _outcome(it, Status.FAILURE, InstanceState.NOT_SENT, f"not sent: the send was {word}{earlier}")
        if self._stop_on_error:
            return _outcome(
                it, Status.SKIPPED, InstanceState.NOT_SENT, "skipped: an earlier instance failed and continue_on_error is off"
            )
        return _outcome(it, Status.FAILURE, InstanceState.FAILED, f"not sent: {self._error or 'no association'}", resumable=True)

    # -- fallback across strategies ----------------------------------------------------------------

    def _send_parallel(self, pending: list[Item]) -> None:
        """Send over up to `parallel` associations at once, one thread each (PS3.8 allows many)."""
        buckets = partition_by_study(pending, self.parallel, _study_key)
        leftovers: list[Item] = []
        errors: list[CourierError] = []

        def worker(bucket: list[Item], primary: bool) -> None:
            try:
                self._send_with_fallback(bucket, primary)
            except _HandBackError as exc:
                with self._lock:
                    leftovers.extend(exc.items)
            except CourierError as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=worker, args=(b, False), name=f"courier-send-{i}", daemon=True) for i, b in enumerate(buckets)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if leftovers:
            LOGGER.info(
                "The peer refused %d extra association(s); sending %d instance(s) over fewer", len(buckets) - 1, len(leftovers)
            )
            self._send_with_fallback(sorted(leftovers, key=lambda it: it.index))
        if errors:
            raise errors[0]

    def _send_with_fallback(self, pending: list[Item], primary: bool = True) -> None:
        chain = send_chain(self.strategy, self.max_retries, self.cfg)
        last_reason: dict[int, tuple[str, bool]] = {}
        for attempt, strategy in enumerate(chain, start=1):
            if not pending or self._halted():
                return
            deferred: list[Item] = []
            groups = planned_contexts(((it.inst.sop_class_uid, it.inst.transfer_syntax) for it in pending), strategy, self.cfg)
            for group in groups:
                members = [it for it in pending if it.inst.sop_class_uid in group.sop_classes]
                more = attempt < len(chain)
                deferred += self._send_group(members, group.contexts, strategy, attempt, more, last_reason, primary)
                if self._halted():
                    return
            pending = deferred
        for it in pending:  # the whole chain was tried
            reason, resumable = last_reason.get(it.index, ("not sent: no usable presentation context", False))
            self._finish(
                it, _outcome(it, Status.FAILURE, InstanceState.FAILED, reason, strategy_used=chain[-1], resumable=resumable)
            )

    def _halted(self) -> bool:
        return self._stop_on_error or self.cancel.is_set() or self.stop.is_set()

    def _send_group(
        self,
        members: list[Item],
        contexts: list[tuple[str, str]],
        strategy: str,
        attempt: int,
        can_fall_back: bool,
        last_reason: dict[int, tuple[str, bool]],
        primary: bool = True,
    ) -> list[Item]:
        """Send `members` over associations proposing `contexts`; return the items for the next strategy.

        Every pass of the loop either finishes or sets aside at least one instance, or waits out
        an outage within ``reconnect_attempts`` and ``retry_total_s``: the loop is bounded.
        Recovery (PS3.8 7.3-7.4): the instance in flight when an association breaks is set aside
        and the others continue at once on a new association; then each set-aside instance goes
        once more, alone, on a fresh association (:func:`core.rules.resends_after_break`). A
        peer judged broken (:func:`core.rules.peer_judged_broken`) gets nothing more.
        """
        queue = self._still_as_scanned(members, strategy)  # a file gone or changed opens no association
        aside: list[Item] = []  # broke an association: sent again alone after the others
        deferred: list[Item] = []
        later: set[int] = set()  # indices in `deferred`
        breaks_in_a_row, answered_mark, started = 0, self._answered, time.monotonic()
        run_kinds: set[tuple[str, str, str]] = set()  # what the instances of the current run of breaks have in common
        outage_tries = 0
        outage_since: float | None = None
        connected = False
        while (queue or aside) and not self._halted():
            batch = queue or aside[:1]
            try:
                assoc, record = self._associate(contexts, strategy, attempt)
            except AssociationError as exc:
                if not primary and not connected and secondary_gives_up(exc.details):
                    raise _HandBackError(self._unfinished(members)) from exc  # fewer associations, same work
                if can_fall_back and not connected and falls_back(exc.details):
                    for it in queue:
                        last_reason[it.index] = (f"not sent: {exc.message}", True)
                    return deferred + queue
                # wait out an outage only of a peer that has worked in this job, or one that says "busy"
                if association_retryable(exc.details, self._established > 0):
                    now = time.monotonic()
                    outage_since = now if outage_since is None else outage_since
                    outage_tries += 1
                    delay = self._delay(outage_tries)
                    if outage_tries <= self.cfg.reconnect_attempts and now - outage_since + delay <= self.cfg.retry_total_s:
                        LOGGER.info("Association failed (%s); retrying in %.1f s", exc.message, delay)
                        self._wait(delay)
                        continue
                self._error = self._error or exc.message
                self._give_up(queue + aside, f"not sent: {exc.message}", strategy)
                return deferred
            connected = True
            outage_since, outage_tries = None, 0
            try:
                more = self._send_on(assoc, record, batch, strategy, can_fall_back, last_reason)
            except _BrokenAssociationError as exc:
                more = exc.deferred
                if self._answered != answered_mark:
                    breaks_in_a_row, answered_mark = 0, self._answered
                x = exc.item
                if exc.stopped:
                    if x is not None:
                        self._finish_stopped(x, exc, strategy)
                elif x is not None and not exc.local:
                    breaks_in_a_row += not x.broke  # a first break of this instance
                    if resends_after_break(x.attempts, bool(x.broke), self.cfg.max_resends):
                        x.broke = exc.message
                        aside.append(x)
                        LOGGER.info("Instance %d broke the association (%s); it goes again alone, last", x.index, exc.message)
                    else:
                        self._finish_broken(x, exc, strategy)
                    run_kinds = run_kinds if breaks_in_a_row > 1 else set()
                    run_kinds.add(_kind(x))
                    if breaks_in_a_row >= 2:  # files of one kind in a row may all be bad: try another kind next
                        queue = _other_kind_first(queue, run_kinds)
                    quiet = time.monotonic() - max(self._last_answer, started)
                    if peer_judged_broken(breaks_in_a_row, quiet, self.cfg.retry_total_s):
                        why = (
                            f"the PACS broke the association on {breaks_in_a_row} instances in a row without answering "
                            f"any (the last time: {exc.message}), so nothing more was offered to it; hint: it is not "
                            "taking instances now: check the PACS (its log says why), then resume the job"
                        )
                        self._error = why
                        self._give_up(queue + aside, f"not sent: {why}", strategy)
                        return deferred + more
            deferred += more
            later.update(it.index for it in more)
            done = self._outcomes.keys() | later
            aside = [it for it in aside if it.index not in done]
            done |= {it.index for it in aside}
            queue = [it for it in queue if it.index not in done]
        return deferred

    def _still_as_scanned(self, items: list[Item], strategy: str) -> list[Item]:
        """`items` whose file is still as the scan saw it; the others fail now (see :func:`source_problem`)."""
        keep = []
        for it in items:
            problem = source_problem(it.inst) if isinstance(it.source, str) and it.index not in self._outcomes else None
            if problem:
                self._fail(it, problem, strategy)
            else:
                keep.append(it)
        return keep

    def _give_up(self, items: list[Item], message: str, strategy: str) -> None:
        """Finish every unfinished item: outcome unknown if its data set reached the peer once, else failed (resumable)."""
        for it in items:
            if it.index in self._outcomes:  # finished, or listed twice (in flight and set aside)
                continue
            if it.unknown:
                self._finish(it, _outcome(it, Status.FAILURE, InstanceState.UNKNOWN, it.unknown, strategy_used=strategy))
            else:
                earlier = f" (an earlier attempt did not reach the PACS: {it.broke})" if it.broke else ""
                self._finish(
                    it,
                    _outcome(it, Status.FAILURE, InstanceState.FAILED, message + earlier, strategy_used=strategy, resumable=True),
                )

    def _finish_broken(self, it: Item, exc: _BrokenAssociationError, strategy: str) -> None:
        """Finish an instance whose association broke and that is not sent again."""
        hint = _new_vr_hint(it.source, it.history[-1].transfer_syntax if it.history else None)
        if it.broke:  # the second time: the instance, not the peer, is the likely cause
            message = _twice_message(it.broke, exc) + hint
            self._finish(it, _outcome(it, Status.FAILURE, InstanceState.FAILED, message, strategy_used=strategy))
        elif it.unknown:
            message = f"{it.unknown}; not sent again (max_resends is {self.cfg.max_resends}){hint}"
            self._finish(it, _outcome(it, Status.FAILURE, InstanceState.UNKNOWN, message, strategy_used=strategy))
        else:
            message = f"not received: {exc.message}; not sent again (max_resends is {self.cfg.max_resends}){hint}"
            self._finish(it, _outcome(it, Status.FAILURE, InstanceState.FAILED, message, strategy_used=strategy))
        if not self.continue_on_error:
            self._stop_on_error = True

    def _finish_stopped(self, it: Item, exc: _BrokenAssociationError, strategy: str) -> None:
        """Finish the instance in flight when the user stopped the send."""
        if exc.sent or it.unknown:
            message = (
                it.unknown
                if it.unknown and not exc.sent
                else "outcome unknown - the send was stopped after its data set was sent, before the PACS answered"
            )
            self._finish(it, _outcome(it, Status.FAILURE, InstanceState.UNKNOWN, message, strategy_used=strategy))
        else:
            message = "not sent: the send was stopped while it was being sent (the PACS did not receive all of it)"
            self._finish(it, _outcome(it, Status.FAILURE, InstanceState.NOT_SENT, message, strategy_used=strategy))

    def _unfinished(self, items: list[Item]) -> list[Item]:
        return [it for it in items if it.index not in self._outcomes]

    def _delay(self, n: int) -> float:
        """Back-off before retry `n` (1-based): exponential, capped at 30 s, with jitter (50-100 %)."""
        return min(self.cfg.retry_backoff_s * (2 ** (n - 1)), 30.0) * (0.5 + random.random() / 2)

    def _backoff(self, n: int) -> None:
        delay = self._delay(n)
        LOGGER.info("Retrying in %.1f s (attempt %d)", delay, n)
        self._wait(delay)

    def _wait(self, delay: float) -> None:
        end = time.monotonic() + delay
        while not self.cancel.is_set() and not self.stop.is_set() and time.monotonic() < end:
            self._sleep(min(0.1, max(0.0, end - time.monotonic())))

    def _associate(self, contexts: list[tuple[str, str]], strategy: str, attempt: int) -> tuple[Association, Negotiation]:
        self.on_event(ev.AssociationRequested(strategy, len(contexts), attempt))
        try:
            assoc, record = open_association(self.cfg, contexts, strategy, attempt, self._tls_args)
        except (AssociationError, TlsConfigError) as exc:
            failed = Negotiation.from_dict(exc.details.get("negotiation") or {"strategy": strategy, "attempt": attempt})
            failed = replace(failed, outcome=exc.message)
            with self._lock:
                self._records.append(failed)
            self._first_exc = self._first_exc or exc
            self.on_event(ev.AssociationFailed(exc.message, failed))
            raise
        with self._lock:
            self._established += 1
            record = replace(record, index=len(self._records))
            self._records.append(record)
        self.on_event(ev.AssociationNegotiated(record))
        return assoc, record

    # -- one association --------------------------------------------------------------------------

    def _send_on(
        self,
        assoc: Association,
        record: Negotiation,
        batch: list[Item],
        strategy: str,
        can_fall_back: bool,
        last_reason: dict[int, tuple[str, bool]],
    ) -> list[Item]:
        """Send `batch` in order over `assoc`; return the items left for the next strategy.

        Raises:
            _BrokenAssociationError: the association broke (its ``deferred`` holds the items
                already set aside for the next strategy).
        """
        deferred: list[Item] = []
        stored = 0
        broken: _BrokenAssociationError | None = None
        channel = DirectChannel(assoc, self.cfg.dimse_timeout, self.cfg.network_timeout, self.stop)
        cache: dict[tuple[str, str], list[Any]] = {}
        try:
            for it in batch:
                if self._halted():
                    break
                key = (it.inst.sop_class_uid, it.inst.transfer_syntax)
                if key not in cache:
                    cache[key] = usable_contexts(assoc.accepted_contexts, *key, self.cfg)
                cands = cache[key]
                if not cands:
                    reason = self._no_context_reason(it, record)
                    if waits_for_next_strategy(it.inst.sop_class_uid, record, can_fall_back):
                        last_reason[it.index] = (reason, False)
                        deferred.append(it)
                    else:
                        self._fail(it, reason, strategy)
                    continue
                stored += self._store_one(channel, it, cands, strategy, record)
        except _BrokenAssociationError as exc:
            broken = exc
            broken.deferred = deferred
        finally:
            channel.close()
            how = self._close(assoc, broken is not None)
            if record.index is not None:
                with self._lock:
                    self._records[record.index] = replace(self._records[record.index], stored=stored)
            self.on_event(ev.AssociationReleased(how, stored, record.index))
        if broken is not None:
            raise broken
        return deferred

    def _close(self, assoc: Association, abort: bool) -> str:
        if assoc.is_established:
            if abort:
                assoc.abort()
                return "aborted"
            assoc.release()
            return "released"
        return "aborted"

    def _no_context_reason(self, it: Item, record: Negotiation) -> str:
        sop = it.inst.sop_class_uid
        words = sop_class_words(sop)
        proposed = [syntax_label(str(p.transfer_syntax)) for p in record.proposed if p.abstract_syntax == sop]
        accepted = [syntax_label(str(a.transfer_syntax)) for a in record.accepted if a.abstract_syntax == sop]
        rejected = {r.reason or "" for r in record.rejected if r.abstract_syntax == sop}
        why = "; ".join(sorted(r.replace(" (provider rejection)", "") for r in rejected if r)) or "rejected"
        if not accepted and abstract_refused(sop, record):
            return f"not sent: peer does not support {words}; rejected during association negotiation ({why})"
        stored = it.inst.transfer_syntax
        if not accepted:
            return (
                f"not sent: peer accepts none of the transfer syntaxes proposed for {words} "
                f"(proposed {', '.join(proposed)}; peer answered: {why})" + self._conversion_words(stored, record, sop)
            )
        if self.cfg.implicit_vr_only:
            return (
                f"not sent: this destination takes Implicit VR Little Endian only and the file "
                f"({syntax_label(it.inst.transfer_syntax)}) cannot be converted to it"
                + ("" if self.cfg.allow_lossy else " without lossy compression")
            )
        return (
            f"not sent: the peer accepts {words} only as {', '.join(accepted)} and the file "
            f"({syntax_label(stored)}) cannot be converted to it"
            + (
                self._conversion_words(stored, record, sop, accepted_only=True)
                if stored and UID(stored).is_encapsulated
                else " without lossy compression (enable lossy conversion to send)"
            )
        )

    def _conversion_words(self, stored: str, record: Negotiation, sop: str, accepted_only: bool = False) -> str:
        """Why the file cannot be converted to what the peer accepts (or we could propose), e.g. no decoder."""
        pool = record.accepted if accepted_only else record.proposed
        targets = [str(c.transfer_syntax) for c in pool if c.abstract_syntax == sop and c.transfer_syntax != stored]
        targets = [t for t in targets if t] or [ImplicitVRLittleEndian]
        try:
            reasons = sorted({conversion_plan(stored, t, self.cfg.allow_lossy).reason for t in targets[:1]})
        except ValueError:  # a syntax pydicom does not know
            return ""
        return f": {reasons[0]}" if reasons and reasons[0] and "cannot" in reasons[0] else ""

    def _fail(self, it: Item, message: str, strategy: str) -> None:
        """Finish `it` as failed before any C-STORE of it went out."""
        self._finish(it, _outcome(it, Status.FAILURE, InstanceState.FAILED, message, strategy_used=strategy))
        if not self.continue_on_error:
            self._stop_on_error = True

    def _store_one(self, channel: DirectChannel, it: Item, cands: list[Any], strategy: str, record: Negotiation) -> int:
        problem = source_problem(it.inst) if isinstance(it.source, str) else None
        if problem:  # checked before the first byte: the association stays usable for the others
            self._fail(it, problem, strategy)
            return 0
        try:
            cx, data, offset, conv_from, notes = self._payload(it, cands)
        except ConversionError as exc:
            self._fail(it, f"not sent: {exc.message}", strategy)
            return 0
        except Exception as exc:  # a reader or codec failure costs this instance only
            LOGGER.debug("Cannot prepare instance %d", it.index, exc_info=True)
            self._fail(it, f"not sent: the data set could not be prepared ({type(exc).__name__}: {exc})", strategy)
            return 0
        ts = str(cx.transfer_syntax[0])
        while True:
            it.attempts += 1
            attempt = Attempt(it.attempts, round(time.time(), 3), ts, record.index)
            it.history.append(attempt)
            t0 = time.monotonic()
            self.on_event(ev.InstanceStarted(it.index, ts, conv_from))
            try:
                rsp = self._c_store(channel, cx.context_id, it, data, offset)
            except _UnreadableSourceError as exc:
                it.history[-1] = replace(attempt, result=AttemptResult.NOT_RECEIVED, message=str(exc), elapsed_s=0.0)
                self._fail(it, f"not sent: {exc}", strategy)
                return 0
            except _BrokenAssociationError as exc:
                # a data set the peer did not fully receive cannot have been stored
                if exc.sent:
                    it.unknown = f"outcome unknown - {exc.message}"
                it.history[-1] = replace(
                    attempt,
                    result=AttemptResult.UNKNOWN if exc.sent else AttemptResult.NOT_RECEIVED,
                    message=exc.message,
                    elapsed_s=round(time.monotonic() - t0, 3),
                )
                raise
            with self._lock:
                self._answered += 1
                self._last_answer = time.monotonic()
            code = int(rsp.Status)
            expl = explain_status(code, getattr(rsp, "ErrorComment", None), getattr(rsp, "OffendingElement", None))
            it.history[-1] = replace(
                attempt,
                result=AttemptResult(expl.category),
                status_code=code,
                message=expl.message,
                elapsed_s=round(time.monotonic() - t0, 3),
            )
            if expl.category == Status.FAILURE and is_transient_status(code) and it.attempts <= self.cfg.max_resends:
                LOGGER.info("Instance %d refused with transient status 0x%04X; retrying", it.index, code)
                self._backoff(it.attempts)
                if not self._halted():
                    continue
            break
        comment = getattr(rsp, "ErrorComment", None)
        state = {Status.SUCCESS: InstanceState.STORED, Status.WARNING: InstanceState.STORED_WARNING}.get(
            expl.category, InstanceState.FAILED
        )
        if expl.category == Status.SUCCESS:
            how = f"converted: {notes[0]}" if notes else "sent as stored"
            msg = "; ".join([f"stored ({how})", *it.inst.notes])
        else:
            msg = expl.message
        self._finish(
            it,
            _outcome(
                it,
                expl.category,
                state,
                msg,
                status_code=code,
                transfer_syntax=ts,
                converted_from=conv_from,
                strategy_used=strategy,
                notes=notes,
                error_comment=str(comment) if comment else None,
                status_meaning=expl.meaning,
                association=record.index,
            ),
        )
        if expl.category == Status.FAILURE and not self.continue_on_error:
            self._stop_on_error = True
        return int(expl.category != Status.FAILURE)

    def _payload(self, it: Item, cands: list[Any]) -> tuple[Any, bytes | None, int, str | None, list[str]]:
        """Choose the context and produce the bytes (or a file offset to stream from)."""
        stored = it.inst.transfer_syntax
        last: ConversionError | None = None
        ds: Dataset | None = None
        for cx, _reason in cands:
            ts = str(cx.transfer_syntax[0])
            if ts == stored and isinstance(it.source, str) and not it.inst.needs_rewrite:
                try:
                    offset = it.inst.data_offset or split_dataset(Path(it.source))[1]
                    if (it.inst.size - offset) % 2 == 0:
                        return cx, None, offset, None, []
                except Exception as exc:  # fall back to a full read
                    LOGGER.debug("Cannot stream %s: %s", it.source, exc)
            try:
                if ds is None:
                    ds = load_dataset(it.source, it.inst)
                data, conv_from, notes = encode_dataset(ds, ts, self.cfg.allow_lossy)
                return cx, data, 0, conv_from, notes
            except ConversionError as exc:
                last = exc
        raise last or ConversionError("no usable presentation context")

    def _c_store(self, channel: DirectChannel, cx_id: int, it: Item, data: bytes | None, offset: int) -> Any:
        """Send one C-STORE-RQ and wait for its response (PS3.7 9.3.1).

        Raises:
            _UnreadableSourceError: the file could not be read before any byte of the message
                went out (the association is intact).
            _BrokenAssociationError: no response within the DIMSE timeout, abort, an invalid
                response, the file became unreadable mid-message, or the send was stopped.
        """
        path = it.source if data is None and isinstance(it.source, str) else None
        before = channel.bytes_sent
        try:
            return channel.store(
                cx_id,
                channel.next_message_id(),
                it.inst.sop_class_uid,
                it.inst.sop_instance_uid,
                data=data,
                path=path,
                offset=offset,
            )
        except ChannelBrokenError as exc:
            if exc.stopped:  # between PDUs: the association is aborted cleanly by _send_on
                raise _BrokenAssociationError(exc.message, it, sent=exc.after_send, stopped=True) from None
            if exc.abort_source is not None:
                msg = explain_abort(
                    exc.abort_source, exc.abort_reason, "the C-STORE, after the data set was sent, before a response"
                )
            elif exc.after_send:
                msg = f"{exc.message}; the association was aborted and is not reused"
            else:
                msg = exc.message
            if not exc.after_send:  # cut inside a PDU: not even an A-ABORT can follow on this connection
                drop_connection(channel.assoc)
            raise _BrokenAssociationError(msg, it, sent=exc.after_send, abort=exc.abort_source is not None) from None
        except OSError as exc:  # the file vanished or cannot be read
            reason = f"cannot read {it.source}: {exc.strerror or exc}"
            if channel.bytes_sent == before:  # nothing of this message went out: the association is intact
                raise _UnreadableSourceError(reason) from exc
            self._finish(it, _outcome(it, Status.FAILURE, InstanceState.FAILED, f"not sent: {reason}"))
            drop_connection(channel.assoc)
            raise _BrokenAssociationError(
                "a file could not be read in the middle of a message", it, sent=False, local=True
            ) from exc

    def _finish(self, it: Item, outcome: InstanceOutcome) -> None:
        with self._lock:
            self._outcomes[it.index] = outcome
        LOGGER.debug("Instance %d: %s %s", it.index, outcome.status, outcome.message)
        self.on_event(ev.InstanceFinished(it.index, outcome, it.inst.size if outcome.status != Status.SKIPPED else 0))
