"""Arrival check: after a send, ask the PACS whether it holds what it acknowledged.

Two methods, on associations of their own (never the storage association):

* **Storage Commitment Push Model** (PS3.4 Annex J): an N-ACTION-RQ (Action Type 1)
  on SOP Instance 1.2.840.10008.1.20.1.1 with a Transaction UID and the
  Referenced SOP Sequence; the PACS answers with an N-EVENT-REPORT-RQ (Event
  Type 1 all committed, 2 failures exist) carrying the same Transaction UID,
  either on the same association or - as Orthanc does - on a new association
  that it opens to us. For the latter we listen on ``listen_port`` with our
  calling AE title, and the PACS must know us (Orthanc: ``DicomModalities``
  entry with our AE title, host and that port; an unknown AE gets its N-ACTION
  refused).
* **C-FIND** (PS3.4 C.4.1, Study Root, IMAGE level) per series, counting the
  instances the PACS returns (Orthanc needs ``DicomAlwaysAllowFind`` or a
  ``DicomModalities`` entry that allows C-FIND). Used for whatever the
  commitment did not confirm.

Each instance ends ``committed``, ``found`` or ``not found`` (``not checked``
when no method could be used at all; the messages say why).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_context, evt
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.dsutils import decode, encode

from .config import StoreConfig
from .errors import AssociationError, CourierError
from .events import Event
from .negotiation import open_association, pynetdicom_tls_args, tls_args_for
from .outcomes import InstanceOutcome

LOGGER = logging.getLogger(__name__)

__all__ = [
    "ArrivalResult",
    "VerifyProgress",
    "verify_arrival",
    "apply_to_outcomes",
    "STORAGE_COMMITMENT_PUSH",
    "STORAGE_COMMITMENT_INSTANCE",
    "STUDY_ROOT_FIND",
    "COMMITTED",
    "FOUND",
    "NOT_FOUND",
    "NOT_CHECKED",
]

STORAGE_COMMITMENT_PUSH = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"  # the well-known SOP Instance, PS3.4 J.3.2
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
COMMITTED, FOUND, NOT_FOUND, NOT_CHECKED = "committed", "found", "not found", "not checked"
_PENDING = (0xFF00, 0xFF01)


@dataclass(frozen=True)
class VerifyProgress(Event):
    """Progress of an arrival check: `step` (``"commitment"`` or ``"c-find"``), `done` of `total`."""

    step: str
    done: int
    total: int


@dataclass
class ArrivalResult:
    """What the PACS confirmed.

    Attributes:
        verified: ``{SOP Instance UID: "committed" | "found" | "not found" | "not checked"}``.
        methods: the methods used, e.g. ``["storage-commitment", "c-find"]``.
        messages: what happened, in words (commitment refused, timeouts, series counts...).
        commitment: Transaction UID, N-ACTION status, event type, how the report came
            (``"same association"`` / ``"new association"``) and failures with reasons.
        series: ``{Series Instance UID: {"expected": n, "found": m}}`` from the C-FIND.
    """

    verified: dict[str, str] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    commitment: dict[str, Any] = field(default_factory=dict)
    series: dict[str, dict[str, int]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """How many instances ended in each state."""
        out: dict[str, int] = defaultdict(int)
        for v in self.verified.values():
            out[v] += 1
        return dict(out)


@dataclass(frozen=True)
class _Ref:
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str


def _refs(instances: Iterable[Any]) -> list[_Ref]:
    out: list[_Ref] = []
    seen: set[str] = set()
    for i in instances:
        get = i.get if isinstance(i, dict) else (lambda k, i=i: getattr(i, k, None))
        uid = str(get("sop_instance_uid") or "")
        if not uid or uid in seen:
            continue
        seen.add(uid)
        out.append(
            _Ref(
                str(get("sop_class_uid") or ""), uid, str(get("study_instance_uid") or ""), str(get("series_instance_uid") or "")
            )
        )
    return out


class _ReportWaiter:
    """Collects N-EVENT-REPORTs for one Transaction UID from any association."""

    def __init__(self, transaction_uid: str):
        self.transaction_uid = transaction_uid
        self.event = threading.Event()
        self.report: dict[str, Any] = {}

    def handler(self, event: Any) -> tuple[int, Dataset | None]:
        try:
            info = event.event_information
        except Exception as exc:  # a report we cannot decode: answer "processing failure"
            LOGGER.warning("Cannot decode an N-EVENT-REPORT: %s", exc)
            return 0x0110, None
        if str(info.get("TransactionUID", "")) != self.transaction_uid:
            LOGGER.info("N-EVENT-REPORT for another transaction (%s) ignored", info.get("TransactionUID"))
            return 0x0000, None
        committed = [
            str(r.ReferencedSOPInstanceUID) for r in info.get("ReferencedSOPSequence", []) if "ReferencedSOPInstanceUID" in r
        ]
        failed = {
            str(r.ReferencedSOPInstanceUID): int(r.get("FailureReason", 0x0110) or 0x0110)
            for r in info.get("FailedSOPSequence", [])
            if "ReferencedSOPInstanceUID" in r
        }
        self.report = {
            "event_type": int(event.request.EventTypeID or 0),
            "committed": committed,
            "failed": failed,
            "via": "same association" if event.assoc.is_requestor else "new association",
        }
        LOGGER.info("Storage commitment report: %d committed, %d failed (%s)", len(committed), len(failed), self.report["via"])
        self.event.set()
        return 0x0000, None


_FAILURE_REASONS = {
    0x0110: "processing failure",
    0x0112: "no such object instance",
    0x0119: "class / instance conflict",
    0x0122: "referenced SOP class not supported",
    0x0131: "duplicate transaction UID",
    0x0213: "resource limitation",
}


def _commit(
    cfg: StoreConfig, refs: Sequence[_Ref], result: ArrivalResult, listen_port: int | None, listen_bind: str, timeout_s: float
) -> set[str]:
    """Storage commitment; returns the SOP Instance UIDs the PACS committed to."""
    waiter = _ReportWaiter(generate_uid())
    result.commitment["transaction_uid"] = waiter.transaction_uid
    handlers: list[Any] = [(evt.EVT_N_EVENT_REPORT, waiter.handler)]
    server = None
    ae = AE(ae_title=cfg.local_ae_title)
    ae.acse_timeout, ae.dimse_timeout = cfg.acse_timeout, cfg.dimse_timeout
    ae.network_timeout, ae.connection_timeout = cfg.network_timeout, cfg.connect_timeout
    if listen_port is not None:
        ae.add_supported_context(
            STORAGE_COMMITMENT_PUSH, [ImplicitVRLittleEndian, ExplicitVRLittleEndian], scu_role=True, scp_role=True
        )
        try:
            server = ae.start_server((listen_bind, listen_port), block=False, evt_handlers=handlers)
        except OSError as exc:
            result.messages.append(f"storage commitment: cannot listen on port {listen_port} for the report: {exc}")
            server = None
    try:
        contexts = [
            build_context(STORAGE_COMMITMENT_PUSH, [ImplicitVRLittleEndian]),
            build_context(STORAGE_COMMITMENT_PUSH, [ExplicitVRLittleEndian]),
        ]
        assoc = ae.associate(
            cfg.remote_host,
            cfg.remote_port,
            contexts=contexts,
            ae_title=cfg.remote_ae_title,
            max_pdu=cfg.max_pdu,
            evt_handlers=handlers,
            tls_args=pynetdicom_tls_args(tls_args_for(cfg)),
        )
        if not assoc.is_established:
            result.messages.append(
                "storage commitment: the PACS did not accept an association for the Storage Commitment Push Model"
            )
            return set()
        if not any(str(cx.abstract_syntax) == STORAGE_COMMITMENT_PUSH for cx in assoc.accepted_contexts):
            assoc.release()
            result.messages.append("storage commitment: not supported by the PACS (context rejected)")
            return set()
        req = Dataset()
        req.TransactionUID = waiter.transaction_uid
        seq = []
        for r in refs:
            item = Dataset()
            item.ReferencedSOPClassUID = r.sop_class_uid
            item.ReferencedSOPInstanceUID = r.sop_instance_uid
            seq.append(item)
        req.ReferencedSOPSequence = seq
        try:
            status, _reply = assoc.send_n_action(req, 1, STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_INSTANCE)
        except Exception as exc:
            status = None
            LOGGER.info("N-ACTION failed: %s", exc)
        code = int(status.Status) if status is not None and "Status" in status else None
        result.commitment["n_action_status"] = code
        if code is None or code not in (0x0000,):
            why = (
                "no response (the PACS aborted or refused the request; Orthanc does this when our AE title "
                "is not in its DicomModalities)"
                if code is None
                else f"status 0x{code:04X}"
            )
            result.messages.append(f"storage commitment: N-ACTION refused: {why}")
            if assoc.is_established:
                assoc.release()
            return set()
        result.methods.append("storage-commitment")
        waiter.event.wait(timeout_s)
        if assoc.is_established:
            assoc.release()
    finally:
        if server is not None:
            server.shutdown()
    if not waiter.report:
        hint = (
            ""
            if listen_port is not None
            else "; the PACS may send it on a new association: listen for it with a commitment port that the PACS "
            "knows for our AE title"
        )
        result.messages.append(f"storage commitment: no N-EVENT-REPORT within {timeout_s:g} s{hint}")
        return set()
    rep = waiter.report
    result.commitment.update(
        event_type=rep["event_type"],
        via=rep["via"],
        failed={uid: _FAILURE_REASONS.get(reason, f"0x{reason:04X}") for uid, reason in rep["failed"].items()},
    )
    asked = {r.sop_instance_uid for r in refs}
    committed = set(rep["committed"]) & asked
    result.messages.append(
        f"storage commitment: {len(committed)} of {len(asked)} committed ({rep['via']})"
        + (f", {len(rep['failed'])} failed" if rep["failed"] else "")
    )
    return committed


def _find_identifier(study: str, series: str, sop: str = "") -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = sop
    ds.SOPClassUID = ""
    return ds


def _c_find(
    cfg: StoreConfig, refs: Sequence[_Ref], result: ArrivalResult, on_progress: Callable[[VerifyProgress], None] | None
) -> set[str] | None:
    """C-FIND per series (IMAGE level, Study Root); returns the SOP Instance UIDs found, None if impossible."""
    try:
        assoc, _record = open_association(
            cfg, [(STUDY_ROOT_FIND, ImplicitVRLittleEndian), (STUDY_ROOT_FIND, ExplicitVRLittleEndian)], "verify"
        )
    except CourierError as exc:
        result.messages.append(f"c-find: {exc.message}")
        return None
    found: set[str] = set()
    series: dict[tuple[str, str], list[_Ref]] = defaultdict(list)
    for r in refs:
        series[(r.study_instance_uid, r.series_instance_uid)].append(r)
    cx = next(iter(assoc.accepted_contexts))
    msg_id = 0
    try:
        for n, ((study, ser), members) in enumerate(series.items(), start=1):
            queries = (
                [_find_identifier(study, ser)]
                if study and ser
                else [_find_identifier(study, ser, r.sop_instance_uid) for r in members]
            )
            got: set[str] = set()
            for ident in queries:
                msg_id += 1
                got |= _find_one(assoc, cx, ident, msg_id, cfg.dimse_timeout)
            mine = {r.sop_instance_uid for r in members}
            found |= got & mine
            result.series[ser or "(no Series Instance UID)"] = {
                "expected": len(mine),
                "found": len(got & mine),
                "pacs_total": len(got),
            }
            if on_progress is not None:
                on_progress(VerifyProgress("c-find", n, len(series)))
    except _FindError as exc:
        result.messages.append(f"c-find: {exc}")
        if assoc.is_established:
            assoc.abort()
        return found or None
    assoc.release()
    result.methods.append("c-find")
    result.messages.append(f"c-find: {len(found)} of {len(refs)} found in {len(series)} series")
    return found


class _FindError(Exception):
    pass


def _find_one(assoc: Any, cx: Any, ident: Dataset, msg_id: int, timeout_s: float) -> set[str]:
    """One C-FIND-RQ; the responses are read by this thread only (the reactor is guarded)."""
    ts = cx.transfer_syntax[0]
    req = C_FIND()
    req.MessageID = msg_id
    req.AffectedSOPClassUID = STUDY_ROOT_FIND
    req.Priority = 2
    data = encode(ident, ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated)
    if data is None:
        raise _FindError("the C-FIND identifier could not be encoded")
    req.Identifier = BytesIO(data)
    assoc.dimse.send_msg(req, cx.context_id)
    uids: set[str] = set()
    while True:
        _cid, rsp = assoc.dimse.get_msg(block=True)
        if rsp is None:
            raise _FindError(f"no C-FIND response within the DIMSE timeout ({timeout_s:g} s), or the PACS aborted")
        if getattr(rsp, "MessageIDBeingRespondedTo", None) != msg_id:
            continue
        status = int(rsp.Status) if rsp.Status is not None else 0xC000
        if status in _PENDING:
            if rsp.Identifier is not None:
                try:
                    ds = decode(rsp.Identifier, ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated)
                    if ds.get("SOPInstanceUID"):
                        uids.add(str(ds.SOPInstanceUID))
                except Exception as exc:
                    LOGGER.warning("Cannot decode a C-FIND response identifier: %s", exc)
            continue
        if status != 0x0000:
            raise _FindError(
                f"C-FIND refused with status 0x{status:04X}"
                + (f" ({rsp.ErrorComment})" if getattr(rsp, "ErrorComment", None) else "")
            )
        return uids


def verify_arrival(
    cfg: StoreConfig | dict[str, Any],
    instances: Iterable[Any],
    method: str = "auto",
    listen_port: int | None = None,
    listen_bind: str = "",
    timeout_s: float = 10.0,
    on_progress: Callable[[VerifyProgress], None] | None = None,
) -> ArrivalResult:
    """Ask the PACS whether it holds `instances`.

    Args:
        cfg: the connection (the same PACS the instances were sent to).
        instances: outcome dicts or objects with ``sop_class_uid``, ``sop_instance_uid``,
            ``study_instance_uid``, ``series_instance_uid`` (e.g. the stored outcomes of a send).
        method: ``"auto"`` (commitment, then C-FIND for the rest), ``"commitment"`` or ``"c-find"``.
        listen_port: port to receive the N-EVENT-REPORT on a new association (the PACS
            must know our AE title at this port); None waits on the request's association only.
        listen_bind: address to listen on ("" = all interfaces).
        timeout_s: how long to wait for the N-EVENT-REPORT, seconds.
        on_progress: called with :class:`VerifyProgress` (any thread).

    Returns:
        an :class:`ArrivalResult`; never raises for a peer problem (the messages say what failed).
    """
    cfg = StoreConfig.from_dict(cfg) if not isinstance(cfg, StoreConfig) else cfg
    refs = _refs(instances)
    result = ArrivalResult()
    if not refs:
        return result
    t0 = time.monotonic()
    committed: set[str] = set()
    if method in ("auto", "commitment"):
        if on_progress is not None:
            on_progress(VerifyProgress("commitment", 0, 1))
        try:
            committed = _commit(cfg, refs, result, listen_port, listen_bind, timeout_s)
        except (AssociationError, OSError, RuntimeError) as exc:
            result.messages.append(f"storage commitment: {exc}")
        if on_progress is not None:
            on_progress(VerifyProgress("commitment", 1, 1))
    for uid in committed:
        result.verified[uid] = COMMITTED
    rest = [r for r in refs if r.sop_instance_uid not in committed]
    if rest and method in ("auto", "c-find"):
        found = _c_find(cfg, rest, result, on_progress)
        for r in rest:
            if found is None:
                result.verified[r.sop_instance_uid] = NOT_CHECKED
            else:
                result.verified[r.sop_instance_uid] = FOUND if r.sop_instance_uid in found else NOT_FOUND
    for r in refs:
        result.verified.setdefault(
            r.sop_instance_uid, NOT_FOUND if method == "commitment" and result.commitment.get("event_type") else NOT_CHECKED
        )
    LOGGER.info(
        "Arrival check of %d instance(s) on %s in %.1f s: %s", len(refs), cfg.peer, time.monotonic() - t0, result.counts()
    )
    return result


def apply_to_outcomes(outcomes: Sequence[InstanceOutcome], result: ArrivalResult) -> list[InstanceOutcome]:
    """Return `outcomes` with each stored one's ``verified`` taken from `result` (the others get None)."""
    return [
        replace(
            o,
            verified=result.verified.get(o.sop_instance_uid) if (o.stored and o.sop_instance_uid) else None,
            arrival_checked=True,
        )
        for o in outcomes
    ]
