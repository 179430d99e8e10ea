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

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import Association
from pynetdicom.dsutils import split_dataset

from . import events as ev
from .config import StoreConfig
from .convert import encode_dataset, load_dataset, syntax_label
from .diagnostics import explain_abort, explain_status
from .errors import AssociationError, ConversionError, CourierError, TlsConfigError
from .fastpath import ChannelBrokenError, DirectChannel
from .negotiation import candidate_contexts, open_association, plan_contexts, tls_args_for
from .outcomes import Attempt, AttemptResult, InstanceOutcome, InstanceState, Negotiation, Status
from .rules import (
    association_retryable,
    falls_back,
    is_transient_status,
    partition_by_study,
    secondary_gives_up,
    waits_for_next_strategy,
)
from .scan import ScannedInstance, read_instance
from .strategies import fallback_chain, parse_strategy
from .waiting import drop_connection

LOGGER = logging.getLogger(__name__)

__all__ = ["Item", "SendJob", "JobResult", "items_from_inputs", "items_from_scan", "REPORT_FIELDS"]

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
    unknown: str = ""
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
        cancelled: True when the job was cancelled.
    """

    outcomes: list[InstanceOutcome]
    associations: list[Negotiation] = field(default_factory=list)
    established: int = 0
    error: str | None = None
    no_association: bool = False
    cancelled: bool = False
    first_exception: CourierError | None = None

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
    """The association broke during a C-STORE; the outcome of the instance is unknown."""

    def __init__(self, message: str, transient: bool = True, sent: bool = True):
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.sent = sent


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


class SendJob:
    """One send: inputs in, one outcome per input out.

    Args:
        config: a seed config dict or :class:`StoreConfig`.
        strategy: the first transfer-syntax strategy (see :mod:`core.strategies`).
        max_retries: how many more conservative strategies may be tried after the first.
        continue_on_error: when False, the first failure stops the job and the rest
            are reported ``skipped``.
        on_event: callback receiving :mod:`core.events` records (any thread).
        cancel: set it to stop between C-STOREs; the association is released and
            the rest are reported "not sent (cancelled)".
        job_id: an identifier for events and the journal.
        parallel: how many associations to use at once; each study stays on one
            association; associations the peer rejects or aborts are given up and their
            instances go over the others.

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
    ):
        self.cfg = StoreConfig.from_dict(config)
        self.strategy = parse_strategy(strategy)
        self.max_retries = max(0, int(max_retries))
        self.continue_on_error = continue_on_error
        self.on_event = on_event or (lambda e: None)
        self.cancel = cancel or threading.Event()
        self.job_id = job_id
        self.parallel = max(1, int(parallel))
        self._sleep = sleep
        self._outcomes: dict[int, InstanceOutcome] = {}
        self._records: list[Negotiation] = []
        self._established = 0
        self._stop = False
        self._first_exc: CourierError | None = None
        self._lock = threading.Lock()
        self._answered = 0
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
        error = None
        try:
            self._tls_args = tls_args_for(self.cfg) if pending else None
            if self.parallel > 1 and len(pending) > 1:
                self._send_parallel(pending)
            else:
                self._send_with_fallback(pending)
        except CourierError as exc:  # a job-level failure (e.g. TLS cannot be set up)
            error = exc.message
            self._first_exc = self._first_exc or exc
        if cut is not None and not self._halted():
            self._finish(cut, _outcome(cut, Status.FAILURE, InstanceState.FAILED, cut.inst.reason))
            self._stop = True
        for it in items:  # everything gets an outcome
            if it.index not in self._outcomes:
                if self.cancel.is_set():
                    self._finish(it, _outcome(it, Status.FAILURE, InstanceState.NOT_SENT, "not sent: the send was cancelled"))
                elif self._stop:
                    self._finish(
                        it,
                        _outcome(
                            it,
                            Status.SKIPPED,
                            InstanceState.NOT_SENT,
                            "skipped: an earlier instance failed and continue_on_error is off",
                        ),
                    )
                else:
                    self._finish(
                        it, _outcome(it, Status.FAILURE, InstanceState.NOT_SENT, f"not sent: {error or 'no association'}")
                    )
        outcomes = [self._outcomes[it.index] for it in items]
        result = JobResult(
            outcomes,
            self._records,
            self._established,
            error,
            no_association=bool(pending) and self._established == 0,
            cancelled=self.cancel.is_set(),
            first_exception=self._first_exc,
        )
        self.on_event(ev.JobFinished(result.summary(), error, result.cancelled))
        return result

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
        chain = fallback_chain(self.strategy, self.max_retries)
        last_reason: dict[int, str] = {}
        for attempt, strategy in enumerate(chain, start=1):
            if not pending or self._halted():
                return
            deferred: list[Item] = []
            groups = plan_contexts(
                ((it.inst.sop_class_uid, it.inst.transfer_syntax) for it in pending), strategy, self.cfg.allow_lossy
            )
            for group in groups:
                members = [it for it in pending if it.inst.sop_class_uid in group.sop_classes]
                more = attempt < len(chain)
                deferred += self._send_group(members, group.contexts, strategy, attempt, more, last_reason, primary)
                if self._halted():
                    return
            pending = deferred
        for it in pending:
            self._finish(it, _outcome(it, Status.FAILURE, InstanceState.NOT_SENT, last_reason.get(it.index, "no usable context")))

    def _halted(self) -> bool:
        return self._stop or self.cancel.is_set()

    def _send_group(
        self,
        members: list[Item],
        contexts: list[tuple[str, str]],
        strategy: str,
        attempt: int,
        can_fall_back: bool,
        last_reason: dict[int, str],
        primary: bool = True,
    ) -> list[Item]:
        """Send `members` over associations proposing `contexts`; return the items for the next strategy.

        Recovery (PS3.8 7.3-7.4): after an association breaks mid-batch (abort, timeout,
        closed connection) a new one is opened and the batch continues, the instance in
        flight first; at most ``retry_attempts`` breaks in a row without any C-STORE
        answered. When associating fails transiently (rejected-transient, or the peer
        went down after an association had worked: refused, reset, aborted) it is retried
        with back-off for at most ``retry_total_s`` seconds of outage.
        """
        queue = list(members)
        deferred: list[Item] = []
        breaks = 0
        outage_tries = 0
        outage_since: float | None = None
        connected = False
        while queue and not self._halted():
            try:
                assoc, record = self._associate(contexts, strategy, attempt)
            except AssociationError as exc:
                if not primary and not connected and secondary_gives_up(exc.details):
                    raise _HandBackError(self._unfinished(members)) from exc  # fewer associations, same work
                if can_fall_back and not connected and falls_back(exc.details):
                    for it in queue:
                        last_reason[it.index] = f"not sent: {exc.message}"
                    return deferred + queue
                # wait out an outage only of a peer that has worked in this job, or one that says "busy"
                if association_retryable(exc.details, self._established > 0):
                    now = time.monotonic()
                    outage_since = now if outage_since is None else outage_since
                    outage_tries += 1
                    delay = self._delay(outage_tries)
                    if outage_tries <= self.cfg.retry_attempts and now - outage_since + delay <= self.cfg.retry_total_s:
                        LOGGER.info("Association failed (%s); retrying in %.1f s", exc.message, delay)
                        self._wait(delay)
                        continue
                self._give_up(queue, f"not sent: {exc.message}", strategy)
                return deferred
            connected = True
            outage_since, outage_tries = None, 0
            answered = self._answered
            try:
                queue, more_deferred = self._send_on(assoc, record, queue, strategy, can_fall_back, last_reason)
                deferred += more_deferred
            except _BrokenAssociationError as exc:
                # `queue` was updated in place by _send_on up to the broken instance
                breaks = 1 if self._answered > answered else breaks + 1
                if not exc.transient or breaks > self.cfg.retry_attempts:
                    self._give_up(queue, f"not sent: {exc.message}", strategy)
                    return deferred
                self._backoff(breaks)
            queue = self._unfinished(queue)
        return deferred

    def _give_up(self, queue: list[Item], message: str, strategy: str) -> None:
        """Finish every unfinished item: outcome unknown if it was in flight when a link broke, else not sent."""
        for it in self._unfinished(queue):
            if it.unknown:
                self._finish(it, _outcome(it, Status.FAILURE, InstanceState.UNKNOWN, it.unknown, strategy_used=strategy))
            else:
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
        while not self.cancel.is_set() and time.monotonic() < end:
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
        queue: list[Item],
        strategy: str,
        can_fall_back: bool,
        last_reason: dict[int, str],
    ) -> tuple[list[Item], list[Item]]:
        deferred: list[Item] = []
        stored = 0
        broken: _BrokenAssociationError | None = None
        channel = DirectChannel(assoc, self.cfg.dimse_timeout, self.cfg.network_timeout)
        cache: dict[tuple[str, str], list[Any]] = {}
        try:
            for it in queue:
                if self._halted():
                    break
                key = (it.inst.sop_class_uid, it.inst.transfer_syntax)
                if key not in cache:
                    cache[key] = candidate_contexts(assoc.accepted_contexts, *key, self.cfg.allow_lossy)
                cands = cache[key]
                if not cands:
                    reason = self._no_context_reason(it, record)
                    if waits_for_next_strategy(it.inst.sop_class_uid, record, can_fall_back):
                        last_reason[it.index] = reason
                        deferred.append(it)
                    else:
                        self._finish(it, _outcome(it, Status.FAILURE, InstanceState.NOT_SENT, reason, strategy_used=strategy))
                        if not self.continue_on_error:
                            self._stop = True
                    continue
                stored += self._store_one(channel, it, cands, strategy, record)
        except _BrokenAssociationError as exc:
            broken = exc
        finally:
            channel.close()
            how = self._close(assoc, broken is not None)
            if record.index is not None:
                with self._lock:
                    self._records[record.index] = replace(self._records[record.index], stored=stored)
            self.on_event(ev.AssociationReleased(how, stored, record.index))
        if broken is not None:
            raise broken
        return self._unfinished(queue), deferred

    def _close(self, assoc: Association, abort: bool) -> str:
        if assoc.is_established:
            if abort:
                assoc.abort()
                return "aborted"
            assoc.release()
            return "released"
        return "aborted"

    @staticmethod
    def _no_context_reason(it: Item, record: Negotiation) -> str:
        sop = it.inst.sop_class_uid
        name = UID(sop).name
        proposed = [syntax_label(str(p.transfer_syntax)) for p in record.proposed if p.abstract_syntax == sop]
        accepted = [syntax_label(str(a.transfer_syntax)) for a in record.accepted if a.abstract_syntax == sop]
        rejected = {r.reason or "" for r in record.rejected if r.abstract_syntax == sop}
        if not accepted:
            why = "; ".join(sorted(r for r in rejected if r)) or "no reason given"
            return f"not sent: peer rejected {name} ({why}; proposed {', '.join(proposed)})"
        return (
            f"not sent: the peer accepts {name} only as {', '.join(accepted)} and the file "
            f"({syntax_label(it.inst.transfer_syntax)}) cannot be converted to it"
            + (
                ""
                if it.inst.transfer_syntax and UID(it.inst.transfer_syntax).is_encapsulated
                else " without lossy compression (enable lossy conversion to send)"
            )
        )

    def _store_one(self, channel: DirectChannel, it: Item, cands: list[Any], strategy: str, record: Negotiation) -> int:
        try:
            cx, data, offset, conv_from, notes = self._payload(it, cands)
        except ConversionError as exc:
            self._finish(
                it, _outcome(it, Status.FAILURE, InstanceState.FAILED, f"not sent: {exc.message}", strategy_used=strategy)
            )
            if not self.continue_on_error:
                self._stop = True
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
            except _BrokenAssociationError as exc:
                # a data set the peer did not fully receive cannot have been stored: plain "not sent"
                it.unknown = f"outcome unknown - {exc.message}" if exc.sent else ""
                it.history[-1] = replace(
                    attempt,
                    result=AttemptResult.UNKNOWN if exc.sent else AttemptResult.NOT_RECEIVED,
                    message=exc.message,
                    elapsed_s=round(time.monotonic() - t0, 3),
                )
                raise
            self._answered += 1
            code = int(rsp.Status)
            expl = explain_status(code, getattr(rsp, "ErrorComment", None), getattr(rsp, "OffendingElement", None))
            it.history[-1] = replace(
                attempt,
                result=AttemptResult(expl.category),
                status_code=code,
                message=expl.message,
                elapsed_s=round(time.monotonic() - t0, 3),
            )
            if expl.category == Status.FAILURE and is_transient_status(code) and it.attempts <= self.cfg.retry_attempts:
                LOGGER.info("Instance %d refused with transient status 0x%04X; retrying", it.index, code)
                self._backoff(it.attempts)
                if not self.cancel.is_set():
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
            self._stop = True
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
            _BrokenAssociationError: no response within the DIMSE timeout, abort, or an invalid response.
        """
        path = it.source if data is None and isinstance(it.source, str) else None
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
            raise _BrokenAssociationError(msg, sent=exc.after_send) from None
        except OSError as exc:  # the file vanished or cannot be read: the message may be half sent
            self._finish(
                it, _outcome(it, Status.FAILURE, InstanceState.FAILED, f"cannot read {it.source}: {exc.strerror or exc}")
            )
            drop_connection(channel.assoc)
            raise _BrokenAssociationError("a file could not be read in the middle of a message", sent=False) from exc

    def _finish(self, it: Item, outcome: InstanceOutcome) -> None:
        with self._lock:
            self._outcomes[it.index] = outcome
        LOGGER.debug("Instance %d: %s %s", it.index, outcome.status, outcome.message)
        self.on_event(ev.InstanceFinished(it.index, outcome, it.inst.size if outcome.status != Status.SKIPPED else 0))
