"""An in-process pynetdicom Storage SCP on ("127.0.0.1", 0) that records what it saw and answers as told.

:class:`RecordingSCP` is the one in-process peer of the tests. It records every association request
(calling AE, the requestor's max PDU, the presentation contexts, P-DATA-TF lengths), every C-STORE
request and the data sets it stored (decoded and raw), and answers each C-STORE as a policy says:
a status, a status with an Error Comment, an A-ABORT, or a delay. It can reject associations,
accept only some SOP classes and transfer syntaxes, limit its max PDU and its associations, and
do storage commitment (PS3.4 J) on the N-ACTION's association.
:mod:`helpers.strict` builds the strict receiver on it.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import _STORAGE_CLASSES, StorageCommitmentPushModel, Verification

from .config import make_config
from .data import CT, IMPLICIT, MR
from .process import HOST

ALL_STORAGE_CLASSES: tuple[str, ...] = tuple(dict.fromkeys(str(u) for u in _STORAGE_CLASSES.values()))
UNCOMPRESSED_LE = (ImplicitVRLittleEndian, ExplicitVRLittleEndian)
SUCCESS_STATUSES = (0x0000, 0xB000, 0xB006, 0xB007)
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"  # the well-known SOP Instance (PS3.4 J.3.5)

Reject = tuple[int, int, int] | str | None


@dataclass
class StoreRequest:
    """What a policy callback is given for one C-STORE request."""

    index: int  # 0-based over the SCP's lifetime
    assoc_index: int  # which association (0-based)
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    dataset: Dataset | None
    event: Any


@dataclass
class AssocRecord:
    """What the SCP saw of one association request."""

    calling_ae: str
    called_ae: str
    max_pdu: int  # the requestor's Maximum Length Received
    requested: list[tuple[int, str, list[str]]]  # (context id, abstract syntax, transfer syntaxes)
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (abstract syntax, transfer syntax)
    rejected: tuple[int, ...] | None = None
    pdata_lengths: list[int] = field(default_factory=list)  # P-DATA-TF PDU lengths (bytes after header)
    stores: list[str] = field(default_factory=list)  # SOP Instance UIDs in arrival order
    implementation_class_uid: str = ""
    violations: list[str] = field(default_factory=list)  # PDU rules the requestor broke

    @property
    def n_contexts(self) -> int:
        return len(self.requested)


Policy = Callable[[StoreRequest], Any]


class RecordingSCP:
    """A pynetdicom Storage SCP running in this process on 127.0.0.1 (see ``scp_factory`` in conftest).

    Args:
        ae_title: the SCP's AE title.
        accept: SOP class -> transfer syntaxes it accepts; None: every storage class with
            `transfer_syntaxes`. pynetdicom picks, per requested context, the first syntax of
            this list that the requestor offered.
        transfer_syntaxes: the syntaxes of ``accept=None``.
        policy: ``policy(StoreRequest)`` returns a status int, a Dataset, ``("status", code,
            error_comment)``, ``"abort"`` or ``("sleep", seconds, status)``; None: 0x0000.
        reject: ``(result, source, reason)`` (an A-ASSOCIATE-RJ), ``"abort"`` (A-ABORT instead of an
            answer), or ``f(assoc_index, record) -> tuple | "abort" | None``.
        require_called_aet: reject a called AE title other than `ae_title`.
        require_calling_aet: the only calling AE titles accepted (None: any).
        max_pdu: the SCP's Maximum Length Received, bytes (0: unlimited).
        abort_on_odd_length: A-ABORT on an odd-length data set or PDV fragment, as a strict DCMTK peer.
        max_pdata_length: A-ABORT when a P-DATA-TF is longer than this many bytes.
        verification_syntaxes: the transfer syntaxes of the Verification context (C-ECHO).
        timeout: the SCP's ACSE, DIMSE and network timeouts, seconds.
        delay_s: sleep this long at the start of every C-STORE.
        max_associations: concurrent associations accepted.
        commit: with a function ``commit(sop_instance_uid) -> bool``, the SCP does storage commitment
            and reports (on the N-ACTION's association, after `commit_delay_s`) the instances for
            which it returns True as committed and the others as failed (0x0112, no such object).
        commit_delay_s: the delay before the N-EVENT-REPORT, seconds.
        port: the TCP port (0: a free one).
        ssl_context: a server-side ``ssl.SSLContext``: the SCP speaks DICOM over TLS.
    """

    def __init__(
        self,
        ae_title: str = "TESTPACS",
        accept: dict[str, Iterable[str]] | None = None,
        transfer_syntaxes: Iterable[str] = UNCOMPRESSED_LE,
        policy: Policy | None = None,
        reject: Reject | Callable[[int, AssocRecord], Reject] = None,
        require_called_aet: bool = True,
        require_calling_aet: Iterable[str] | None = None,
        max_pdu: int = 16384,
        abort_on_odd_length: bool = False,
        max_pdata_length: int | None = None,
        verification_syntaxes: Iterable[str] = UNCOMPRESSED_LE,
        timeout: float = 5,
        delay_s: float = 0.0,
        max_associations: int = 10,
        commit: Callable[[str], bool] | None = None,
        commit_delay_s: float = 0.1,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.ae_title = ae_title
        self.policy = policy
        self.reject = reject
        self.abort_on_odd_length = abort_on_odd_length
        self.max_pdata_length = max_pdata_length
        self.delay_s = delay_s
        self.commit = commit
        self.commit_delay_s = commit_delay_s
        self.lock = threading.Lock()
        self.associations: list[AssocRecord] = []
        self.requests: list[StoreRequest] = []
        self.received: dict[str, Dataset | None] = {}
        self.raw: dict[str, bytes] = {}
        self.received_syntax: dict[str, str] = {}
        self.decode_errors: dict[str, str] = {}
        self.stored: list[str] = []  # SOP Instance UIDs of every successful C-STORE, repeats included
        self.commitment_requests: list[Dataset] = []  # the Action Information of each N-ACTION
        self._assoc_index: dict[int, int] = {}
        self._stopped = False

        ae = AE(ae_title=ae_title)
        ae.maximum_pdu_size = max_pdu
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
        ae.maximum_associations = max_associations
        ae.require_called_aet = require_called_aet
        if require_calling_aet:
            ae.require_calling_aet = list(require_calling_aet)
        if accept is None:
            accept = {uid: tuple(transfer_syntaxes) for uid in ALL_STORAGE_CLASSES}
        for sop_class, syntaxes in accept.items():
            ae.add_supported_context(sop_class, list(syntaxes))
        ae.add_supported_context(Verification, list(verification_syntaxes))
        handlers = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_PDU_RECV, self._on_pdu_recv),
            (evt.EVT_C_STORE, self._on_c_store),
            (evt.EVT_C_ECHO, lambda event: 0x0000),
        ]
        if commit is not None:
            ae.add_supported_context(StorageCommitmentPushModel)
            handlers.append((evt.EVT_N_ACTION, self._on_n_action))
        self.ae = ae
        self.server = ae.start_server((HOST, port), block=False, evt_handlers=handlers, ssl_context=ssl_context)
        self.port: int = self.server.server_address[1]

    # -- recording ---------------------------------------------------------

    def _record_for(self, assoc: Any) -> AssocRecord | None:
        idx = self._assoc_index.get(id(assoc))
        return None if idx is None else self.associations[idx]

    def _on_requested(self, event: Any) -> None:
        rq = event.assoc.requestor.primitive
        requested = [
            (int(cx.context_id), str(cx.abstract_syntax), [str(ts) for ts in cx.transfer_syntax])
            for cx in rq.presentation_context_definition_list
        ]
        rec = AssocRecord(
            calling_ae=str(rq.calling_ae_title).strip(),
            called_ae=str(rq.called_ae_title).strip(),
            max_pdu=int(rq.maximum_length_received or 0),
            requested=requested,
            implementation_class_uid=str(getattr(rq, "implementation_class_uid", "") or ""),
        )
        with self.lock:
            self._assoc_index[id(event.assoc)] = len(self.associations)
            self.associations.append(rec)
            n = len(self.associations) - 1
        rsd = self.reject(n, rec) if callable(self.reject) else self.reject
        if rsd == "abort":
            rec.rejected = (0, 0, 0)
            event.assoc.abort()  # A-ABORT during negotiation
        elif rsd:
            rec.rejected = tuple(rsd)
            event.assoc.acse.send_reject(*rsd)
            event.assoc.kill()  # as pynetdicom does after its own rejections: lets the DUL send the RJ

    def _on_accepted(self, event: Any) -> None:
        rec = self._record_for(event.assoc)
        if rec is not None:
            rec.accepted = [(str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in event.assoc.accepted_contexts]

    def _on_pdu_recv(self, event: Any) -> None:
        # Runs on the DUL thread: only record here; the C-STORE handler aborts when needed.
        pdu = event.pdu
        if type(pdu).__name__ != "P_DATA_TF":
            return
        length = int(pdu.pdu_length)
        rec = self._record_for(event.assoc)
        if rec is not None:
            rec.pdata_lengths.append(length)
            if self.max_pdata_length is not None and length > self.max_pdata_length:
                rec.violations.append(f"P-DATA-TF of {length} bytes > {self.max_pdata_length}")
            for item in pdu.presentation_data_value_items:
                data = item.presentation_data_value or b""
                if (len(data) - 1) % 2:  # the fragment after the message control header
                    rec.violations.append(f"odd PDV fragment of {len(data) - 1} bytes")

    def _decode(self, event: Any, raw: bytes) -> tuple[Dataset | None, str | None]:
        """The received data set, and a reason to refuse it (None: accept). Lenient, as pynetdicom decodes."""
        uid = str(event.request.AffectedSOPInstanceUID)
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
        except Exception as exc:  # keep going: the test asserts on decode_errors
            self.decode_errors[uid] = f"{type(exc).__name__}: {exc}"
            return None, None
        return ds, None

    def _on_c_store(self, event: Any) -> Any:
        if self.delay_s:
            time.sleep(self.delay_s)
        req = event.request
        raw = req.DataSet.getvalue() if req.DataSet is not None else b""
        uid = str(req.AffectedSOPInstanceUID)
        ts = str(event.context.transfer_syntax)
        ds, refusal = self._decode(event, raw)
        with self.lock:
            rec = self._record_for(event.assoc)
            info = StoreRequest(
                index=len(self.requests),
                assoc_index=self._assoc_index.get(id(event.assoc), -1),
                sop_class_uid=str(req.AffectedSOPClassUID),
                sop_instance_uid=uid,
                transfer_syntax=ts,
                dataset=ds,
                event=event,
            )
            self.requests.append(info)
        strict = self.abort_on_odd_length or self.max_pdata_length is not None
        if strict and ((rec is not None and rec.violations) or (self.abort_on_odd_length and len(raw) % 2)):
            event.assoc.abort()  # as a strict DCMTK-based peer does
            return 0xC000
        if refusal is not None:
            return _status(0xC000, refusal.replace("\\", "/")[:64])  # Error Comment is one LO: 64 characters, no backslash
        answer = self.policy(info) if self.policy else 0x0000
        if isinstance(answer, tuple) and answer and answer[0] == "sleep":
            time.sleep(float(answer[1]))
            answer = answer[2] if len(answer) > 2 else 0x0000
        if answer == "abort":
            event.assoc.abort()
            return 0x0000
        if isinstance(answer, tuple) and answer and answer[0] == "status":
            answer = _status(int(answer[1]), answer[2] if len(answer) > 2 else None)
        status = int(answer.Status) if isinstance(answer, Dataset) else int(answer)
        if status in SUCCESS_STATUSES:
            with self.lock:
                self.received[uid] = ds
                self.raw[uid] = raw
                self.received_syntax[uid] = ts
                self.stored.append(uid)
                if rec is not None:
                    rec.stores.append(uid)
        return answer

    # -- storage commitment (PS3.4 J.3) --------------------------------------

    def _on_n_action(self, event: Any) -> tuple[int, None]:
        info = event.action_information
        with self.lock:
            self.commitment_requests.append(info)
        threading.Thread(target=self._commitment_report, args=(event.assoc, info), daemon=True).start()
        return 0x0000, None

    def _commitment_report(self, assoc: Any, info: Dataset) -> None:
        time.sleep(self.commit_delay_s)
        assert self.commit is not None
        ds = Dataset()
        ds.TransactionUID = info.TransactionUID
        ok = [r for r in info.ReferencedSOPSequence if self.commit(str(r.ReferencedSOPInstanceUID))]
        bad = [r for r in info.ReferencedSOPSequence if not self.commit(str(r.ReferencedSOPInstanceUID))]
        ds.ReferencedSOPSequence = ok
        if bad:
            for r in bad:
                r.FailureReason = 0x0112  # no such object instance
            ds.FailedSOPSequence = bad
        assoc.send_n_event_report(ds, 2 if bad else 1, StorageCommitmentPushModel, STORAGE_COMMITMENT_INSTANCE)

    # -- helpers -----------------------------------------------------------

    def config(self, calling_ae: str = "TEST_SCU", **extra: Any) -> dict[str, Any]:
        """The seed config dict that reaches this SCP."""
        return make_config(self.port, self.ae_title, calling_ae, **extra)

    @property
    def max_contexts_requested(self) -> int:
        return max((a.n_contexts for a in self.associations), default=0)

    @property
    def calling(self) -> list[str]:
        """The calling AE title of each C-STORE request, in arrival order."""
        return [self.associations[r.assoc_index].calling_ae for r in self.requests]

    @property
    def syntaxes(self) -> list[str]:
        """The transfer syntax of each C-STORE request, in arrival order."""
        return [r.transfer_syntax for r in self.requests]

    def stop(self) -> None:
        """Stop the server (again: no-op)."""
        if not self._stopped:
            self._stopped = True
            self.server.shutdown()


def _status(code: int, comment: str | None = None) -> Dataset:
    rsp = Dataset()
    rsp.Status = code
    if comment is not None:
        rsp.ErrorComment = str(comment)
    return rsp


def picky_options(
    sop_classes: Iterable[str] = (CT, MR),
    syntaxes: Iterable[str] = (IMPLICIT,),
    ae_title: str = "PICKY",
    status_for: Callable[[Dataset | None], Any] | None = None,
    delay_s: float = 0.0,
) -> dict[str, Any]:
    """:class:`RecordingSCP` options for the "picky PACS" of the window tests.

    It accepts only `sop_classes`, each in `syntaxes`, C-ECHO in Implicit VR LE only, and answers
    each C-STORE with ``status_for(dataset)``: an int, or ``(int, error comment)``.
    """

    def policy(req: StoreRequest) -> Any:
        answer = status_for(req.dataset) if status_for else 0x0000
        code, comment = answer if isinstance(answer, tuple) else (answer, None)
        return ("status", code, comment)

    return {
        "ae_title": ae_title,
        "accept": {uid: tuple(syntaxes) for uid in sop_classes},
        "policy": policy,
        "delay_s": delay_s,
        "verification_syntaxes": (IMPLICIT,),
        "timeout": 10,
    }
