"""Presentation context planning, association set-up with diagnostics, context choice.

* :func:`plan_contexts` derives contexts from the (SOP class, transfer syntax)
  pairs present in a batch: one transfer syntax per presentation context, the
  stored syntax always among them, plus one context per fallback syntax the
  strategy allows and the data can be converted to (PS3.8 9.3.2.2, PS3.7 D.3.3.4).
* :func:`open_association` requests an association and returns the established
  ``Association`` and a negotiation record (proposed / accepted / rejected
  contexts with reasons, the peer's max PDU and implementation), or raises
  :class:`~core.errors.AssociationError` with the reason in words.
* :func:`find_compatible_transfer_syntax` picks the accepted context for a data set.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, Association, build_context, evt
from pynetdicom.events import EventHandlerType
from pynetdicom.pdu import A_ABORT_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ
from pynetdicom.presentation import PresentationContext

from .config import StoreConfig
from .convert import conversion_plan
from .diagnostics import CONTEXT_RESULT_REASONS, explain_abort, explain_connect_error, explain_rejection
from .errors import AssociationError, TlsConfigError
from .fastpath import MIN_PEER_MAX_PDU
from .outcomes import ContextRecord, Negotiation
from .strategies import strategy_syntaxes
from .waiting import SLACK_S, GuardedSocket, bound_writes, call_within

LOGGER = logging.getLogger(__name__)

__all__ = [
    "MAX_CONTEXTS",
    "ContextGroup",
    "plan_contexts",
    "open_association",
    "find_compatible_transfer_syntax",
    "candidate_contexts",
    "VERIFICATION_SOP_CLASS",
]

#: An A-ASSOCIATE-RQ carries at most 128 presentation contexts (odd IDs 1..255), PS3.8 9.3.2.2.
MAX_CONTEXTS = 128
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"

#: Preferred targets when a conversion is needed: cheap and lossless first.
_CONVERSION_PREFERENCE = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    "1.2.840.10008.1.2.1.99",
    ExplicitVRBigEndian,
    "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.80",
)


@dataclass
class ContextGroup:
    """The contexts of one association and the SOP classes they serve.

    Attributes:
        contexts: ``(abstract syntax, transfer syntax)`` pairs, one syntax each, at most 128.
        sop_classes: the SOP Class UIDs served.
    """

    contexts: list[tuple[str, str]] = field(default_factory=list)
    sop_classes: list[str] = field(default_factory=list)


def _contexts_for_class(
    sop_class: str, stored: Sequence[str], strategy: str, allow_lossy: bool, has_pixels: bool = True
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for ts in stored:
        if (sop_class, ts) not in out:
            out.append((sop_class, ts))
    for ts in strategy_syntaxes(strategy):
        if (sop_class, str(ts)) in out:
            continue
        if any(conversion_plan(src, ts, allow_lossy, has_pixels).possible for src in stored):
            out.append((sop_class, str(ts)))
    return out


def plan_contexts(
    pairs: Iterable[tuple[str, str]],
    strategy: str,
    allow_lossy: bool = False,
    max_contexts: int = MAX_CONTEXTS,
    only: str | None = None,
) -> list[ContextGroup]:
    """Plan presentation contexts for a batch, split into groups of at most `max_contexts`.

    Args:
        pairs: ``(SOP Class UID, stored transfer syntax UID)`` of every instance.
        strategy: the transfer-syntax strategy for the fallback contexts.
        allow_lossy: whether lossy targets may be proposed.
        max_contexts: contexts per association (128 at most, PS3.8 9.3.2.2).
        only: propose this one transfer syntax for every SOP class instead (a destination's
            preference, e.g. Implicit VR Little Endian only), whatever the stored syntaxes.

    Returns:
        list of :class:`ContextGroup`; each SOP class lives in exactly one group,
        in order of first appearance.
    """
    stored: dict[str, list[str]] = {}
    for sop_class, ts in pairs:
        lst = stored.setdefault(str(sop_class), [])
        if str(ts) not in lst:
            lst.append(str(ts))
    groups: list[ContextGroup] = []
    current = ContextGroup()
    for sop_class, syntaxes in stored.items():
        cxs = [(sop_class, only)] if only else _contexts_for_class(sop_class, syntaxes, strategy, allow_lossy)[:max_contexts]
        if current.contexts and len(current.contexts) + len(cxs) > max_contexts:
            groups.append(current)
            current = ContextGroup()
        current.contexts.extend(cxs)
        current.sop_classes.append(sop_class)
    if current.contexts:
        groups.append(current)
    return groups


def _cx_record(cx: PresentationContext, proposed: Sequence[tuple[str, str]] = ()) -> ContextRecord:
    """The record of an answered context; give `proposed` for a rejected one to keep the syntax we proposed."""
    ts = cx.transfer_syntax
    syntax = str(ts[0]) if ts else None
    result = reason = None
    if cx.result not in (None, 0):
        result = cx.result
        reason = CONTEXT_RESULT_REASONS.get(cx.result, f"result {cx.result}")
    cid = cx.context_id
    # the A-ASSOCIATE-AC's syntax of a rejected context is not significant (PS3.8 9.3.3.2)
    if isinstance(cid, int) and cid % 2 and (cid - 1) // 2 < len(proposed):
        syntax = str(proposed[(cid - 1) // 2][1])
    abstract = str(cx.abstract_syntax)
    return ContextRecord(abstract, UID(abstract).name, syntax, cx.context_id, result, reason)


class _Watch:
    """Collects what pynetdicom does not return: rejections, aborts, the socket."""

    def __init__(self) -> None:
        self.reject: A_ASSOCIATE_RJ | None = None
        self.abort: A_ABORT_RQ | None = None
        self.connected = False

    def on_pdu(self, event: Any) -> None:
        pdu = event.pdu
        if isinstance(pdu, A_ASSOCIATE_RJ):
            self.reject = pdu
        elif isinstance(pdu, A_ABORT_RQ):
            self.abort = pdu

    def on_open(self, event: Any) -> None:
        self.connected = True
        with contextlib.suppress(OSError, AttributeError):  # Nagle's algorithm costs a delayed ACK (~40 ms) per message
            event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # pynetdicom leaves the connected socket without a timeout: a peer that stops reading
        # would block every write (and a later abort) forever
        bound_writes(getattr(event.assoc.dul.socket, "socket", None), event.assoc.network_timeout)


def _guard_reactor(assoc: Association) -> None:
    """Stop the association's reactor thread from taking DIMSE messages off the queue.

    pynetdicom's reactor pause in ``send_c_store`` is not atomic and can take the
    C-STORE-RSP meant for the sender (DESIGN.md, pynetdicom issue 875); as an SCU
    we serve no requests on a storage association, so only the sending thread reads.
    """
    dimse = assoc.dimse
    original = dimse.get_msg
    taken = threading.Event()

    def get_msg(block: bool = False) -> Any:
        if not block and threading.current_thread() is assoc:
            taken.set()
            return None, None
        return original(block)

    dimse.get_msg = get_msg  # type: ignore[method-assign]  # the guard replaces pynetdicom's method on purpose
    # the reactor may be inside the original call right now: wait for one loop with ours
    if not taken.wait(2.0) and assoc.is_alive():
        LOGGER.debug("association reactor did not poll within 2 s")


class _GuardedAE(AE):
    """An AE whose associations read through a :class:`~core.waiting.GuardedSocket`.

    The socket bounds the A-ASSOCIATE-AC by the ACSE timeout and every PDU by its size;
    pynetdicom's own ACSE wait is set :data:`_ACSE_BACKSTOP_S` later, as a backstop only
    (when both fire at once pynetdicom queues an A-ABORT its idle state machine rejects).
    """

    def __init__(self, cfg: StoreConfig) -> None:
        super().__init__(ae_title=cfg.local_ae_title)
        self.cfg = cfg
        self.acse_timeout = cfg.acse_timeout + _ACSE_BACKSTOP_S
        self.dimse_timeout = cfg.dimse_timeout
        self.network_timeout = cfg.network_timeout
        self.connection_timeout = cfg.connect_timeout
        self.maximum_pdu_size = cfg.max_pdu
        self.guard: GuardedSocket | None = None

    def _create_socket(self, assoc: Association, address: Any, tls_args: Any) -> GuardedSocket:
        sock = GuardedSocket(
            assoc, address, self.cfg.max_pdu, self.cfg.acse_timeout, self.cfg.network_timeout, check=check_associate_ac
        )
        sock.tls_args = tls_args
        self.guard = sock
        return sock


_ACSE_BACKSTOP_S = 0.5


def check_associate_ac(pdu_type: int, body: bytearray) -> str | None:
    """What makes an A-ASSOCIATE-AC unusable, or None (PS3.8 9.3.3); other PDUs pass.

    Lenient where the standard is, or where a peer's slip is harmless: a rejected context's
    transfer syntax is not significant and may be absent (its item is then 4 bytes, PS3.8
    9.3.3.2); the AE title fields are not checked; a UID's trailing NUL is pynetdicom's to
    strip; trailing NULs in the Implementation Version Name become spaces here (in place,
    pynetdicom refuses control characters). Refused, with the reason: items that overrun
    the PDU, an accepted context that names no transfer syntax, and anything else
    pynetdicom cannot decode.

    Args:
        pdu_type: the PDU type (0x02 is checked).
        body: the PDU's variable field (after the 6-byte header); repaired in place.

    Returns:
        e.g. ``"the peer's A-ASSOCIATE-AC is malformed: accepted context 3 names no transfer syntax"``.
    """
    if pdu_type != 0x02:
        return None
    bad = "the peer's A-ASSOCIATE-AC is malformed: "
    if len(body) < 68:
        return bad + f"{len(body)} bytes, shorter than its fixed fields (68)"
    pos = 68
    while pos < len(body):
        if pos + 4 > len(body):
            return bad + f"an item header is cut off at byte {pos + 6}"
        item_type, _, length = struct.unpack_from(">BBH", body, pos)
        if pos + 4 + length > len(body):
            return bad + f"item 0x{item_type:02X} of {length} bytes runs past the end of the PDU"
        reason = None
        if item_type == 0x21:
            reason = _malformed_context(bytes(body[pos + 4 : pos + 4 + length]))
        elif item_type == 0x50:
            reason = _pad_version_name(body, pos + 4, pos + 4 + length)
        if reason:
            return bad + reason
        pos += 4 + length
    try:
        A_ASSOCIATE_AC().decode(struct.pack(">BBI", 2, 0, len(body)) + bytes(body))
    except Exception as exc:  # pynetdicom's own decoder has the last word
        return bad + str(exc)
    return None


def _pad_version_name(body: bytearray, start: int, end: int) -> str | None:
    """Turn trailing NULs of the Implementation Version Name sub-item (0x55) into spaces, in place."""
    pos = start
    while pos + 4 <= end:
        sub_type, _, length = struct.unpack_from(">BBH", body, pos)
        if pos + 4 + length > end:
            return f"user information sub-item 0x{sub_type:02X} runs past the end of its item"
        if sub_type == 0x55:
            value = body[pos + 4 : pos + 4 + length]
            stripped = value.rstrip(b"\0")
            if len(stripped) < len(value):
                LOGGER.info("The peer's Implementation Version Name is padded with NULs; read as spaces")
                body[pos + 4 : pos + 4 + length] = stripped.ljust(length, b" ")
        pos += 4 + length
    return None


def _malformed_context(item: bytes) -> str | None:
    """What is wrong with a Presentation Context item of an A-ASSOCIATE-AC (PS3.8 9.3.3.2), or None."""
    if len(item) < 4:
        return f"a presentation context item of {len(item)} bytes (at least 4)"
    cid, result = item[0], item[2]
    if result != 0:
        return None
    pos = 4
    while pos + 4 <= len(item):
        sub_type, _, length = struct.unpack_from(">BBH", item, pos)
        if pos + 4 + length > len(item):
            return f"accepted context {cid}: a sub-item runs past the end of its item"
        if sub_type == 0x40 and item[pos + 4 : pos + 4 + length].strip(b"\0 "):
            return None
        pos += 4 + length
    return f"accepted context {cid} names no transfer syntax"


def tls_args_for(cfg: StoreConfig) -> tuple[ssl.SSLContext, str | None] | None:
    """Build ``(ssl_context, server_hostname)`` for pynetdicom when TLS is enabled, else None.

    Build it once per job: certificates may come from Google Cloud Secret Manager.

    Raises:
        TlsConfigError: a certificate, key, passphrase or secret cannot be loaded.
    """
    if not cfg.tls_enabled:
        return None
    from . import tls

    return tls.build_ssl_context(cfg)


def pynetdicom_tls_args(tls_args: tuple[ssl.SSLContext, str | None] | None) -> tuple[ssl.SSLContext, str] | None:
    """`tls_args` as ``AE.associate`` types them.

    pynetdicom annotates the server host name as ``str``, but passes it on to
    ``SSLContext.wrap_socket``, where None (no host name check, ``tls_verify_hostname`` off) is valid.
    """
    return cast("tuple[ssl.SSLContext, str] | None", tls_args)


def open_association(
    cfg: StoreConfig,
    contexts: Sequence[tuple[str, str]],
    strategy: str = "",
    attempt: int = 1,
    tls_args: tuple[ssl.SSLContext, str | None] | None = None,
) -> tuple[Association, Negotiation]:
    """Request an association proposing `contexts` (one transfer syntax each).

    Args:
        cfg: the connection configuration.
        contexts: ``(abstract syntax, transfer syntax)`` pairs, at most 128.
        strategy: the strategy name, recorded in the negotiation record.
        attempt: attempt number, recorded.
        tls_args: a prebuilt ``(ssl_context, server_hostname)`` (see :func:`tls_args_for`);
            built here when TLS is enabled and none is given.

    Returns:
        ``(assoc, record)``: the established association and its :class:`~core.outcomes.Negotiation`
        (proposed, accepted and rejected contexts with reasons, the peer's max PDU and implementation).

    Raises:
        AssociationError: connection failed, A-ASSOCIATE-RJ, abort, ACSE timeout
            or no context accepted; ``details`` holds ``kind``, ``transient`` and
            the record as a dict (``negotiation``).
        TlsConfigError: TLS is enabled and cannot be set up.
    """
    if len(contexts) > MAX_CONTEXTS:
        raise ValueError(f"{len(contexts)} presentation contexts requested; at most {MAX_CONTEXTS} fit")
    ae = _GuardedAE(cfg)
    requested = [build_context(a, [t]) for a, t in contexts]
    record = Negotiation(
        strategy,
        attempt,
        proposed=tuple(ContextRecord(a, UID(a).name, t) for a, t in contexts),
        peer=cfg.peer,
        started=time.time(),
    )
    if tls_args is None:
        tls_args = tls_args_for(cfg)
    watch = _Watch()
    handlers: list[EventHandlerType] = [(evt.EVT_PDU_RECV, watch.on_pdu), (evt.EVT_CONN_OPEN, watch.on_open)]
    LOGGER.info("Requesting association with %s (%d contexts, strategy %s)", cfg.peer, len(requested), strategy or "-")
    started = time.monotonic()
    try:
        assoc = ae.associate(
            cfg.remote_host,
            cfg.remote_port,
            contexts=requested,
            ae_title=cfg.remote_ae_title,
            max_pdu=cfg.max_pdu,
            evt_handlers=handlers,
            tls_args=pynetdicom_tls_args(tls_args),
        )
    except OSError as exc:  # pynetdicom resolves the address itself, before connecting
        msg, transient = explain_connect_error(cfg.remote_host, cfg.remote_port, cfg.connect_timeout, error=exc)
        raise AssociationError(
            msg,
            remote_ae=cfg.remote_ae_title,
            details={"negotiation": replace(record, outcome=msg).to_dict(), "kind": "connect", "transient": transient},
        ) from None
    record = replace(
        record,
        accepted=tuple(_cx_record(cx) for cx in assoc.accepted_contexts),
        rejected=tuple(_cx_record(cx, contexts) for cx in assoc.rejected_contexts),
    )
    if assoc.is_established:
        assoc.acse_timeout = cfg.acse_timeout  # the release waits the configured time
        acc = assoc.acceptor
        record = replace(
            record,
            peer_max_pdu=acc.maximum_length,
            peer_implementation_class_uid=str(acc.implementation_class_uid or ""),
            peer_implementation_version_name=str(acc.implementation_version_name or ""),
            our_max_pdu=cfg.max_pdu,
        )
        _refuse_unworkable_max_pdu(cfg, assoc, record)
        _guard_reactor(assoc)
        LOGGER.info(
            "Association accepted by %s: %d of %d contexts, peer max PDU %s",
            cfg.peer,
            len(record.accepted),
            len(requested),
            acc.maximum_length,
        )
        return assoc, record
    _close_leaked_socket(assoc)
    raise _association_failure(cfg, assoc, watch, record, tls_args, ae.guard, started)


def _refuse_unworkable_max_pdu(cfg: StoreConfig, assoc: Association, record: Negotiation) -> None:
    """Abort when the peer's maximum PDU length cannot carry a PDV (PS3.8 D.1, 9.3.5).

    A P-DATA-TF needs 6 bytes of PDV header and an even fragment of at least 2 bytes.

    Raises:
        AssociationError: ``kind`` ``"protocol"``, not transient.
    """
    peer_max = int(assoc.acceptor.maximum_length or 0)
    if peer_max == 0 or peer_max >= MIN_PEER_MAX_PDU:
        return
    assoc.abort()
    msg = (
        f"protocol error: the peer {cfg.peer} gave a maximum PDU length of {peer_max} bytes in its "
        f"A-ASSOCIATE-AC, too small to carry any data (a PDU needs at least {MIN_PEER_MAX_PDU}); "
        "the association was aborted - check the PACS's maximum PDU setting"
    )
    raise AssociationError(
        msg,
        remote_ae=cfg.remote_ae_title,
        details={"negotiation": replace(record, outcome=msg).to_dict(), "kind": "protocol", "transient": False},
    )


def _close_leaked_socket(assoc: Association) -> None:
    """Pynetdicom 3.0.4 may leave the socket of a failed association open."""
    sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _association_failure(
    cfg: StoreConfig,
    assoc: Association,
    watch: _Watch,
    record: Negotiation,
    tls_args: tuple[ssl.SSLContext, str | None] | None,
    guard: GuardedSocket | None,
    started: float,
) -> Exception:
    """The error for an association that was not established, diagnosed within the timeout that failed.

    A diagnosis (a TLS handshake, a TLS probe of a plain port) gets only what is left of
    the connection or ACSE timeout plus :data:`~core.waiting.SLACK_S`; a timeout is never
    diagnosed by waiting again.
    """
    details: dict[str, Any] = {}

    def fail(kind: str, msg: str, transient: bool, cls: type[AssociationError | TlsConfigError] = AssociationError) -> Exception:
        details.update(negotiation=replace(record, outcome=msg).to_dict(), kind=kind, transient=transient)
        return cls(msg, remote_ae=cfg.remote_ae_title, details=details)

    connected_at = guard.connected_at if guard is not None else None
    problem = guard.problem if guard is not None else None
    if watch.reject is not None:
        rj = watch.reject
        # a received A-ASSOCIATE-RJ carries all three (PS3.8 9.3.4); pynetdicom types them optional
        result, source, reason = int(rj.result or 0), int(rj.source or 0), int(rj.reason_diagnostic or 0)
        msg, transient = explain_rejection(result, source, reason, cfg.remote_ae_title, cfg.local_ae_title)
        details.update(result=result, source=source, reason=reason)
        return fail("rejected", msg, transient)
    if problem is not None and problem.kind == "too-long":
        return fail("protocol", f"{problem.message} (from {cfg.peer}); the association was aborted without reading it", False)
    if problem is not None and problem.kind == "malformed":
        return fail("protocol", f"{problem.message} (from {cfg.peer}); the association was aborted", False)
    if connected_at is None and not watch.connected:
        left = started + cfg.connect_timeout + SLACK_S / 2 - time.monotonic()
        if cfg.tls_enabled:
            problem_text = _tls_problem(cfg, tls_args, left)
            if problem_text:
                return fail("tls", problem_text, False, TlsConfigError)
        elapsed = guard.connect_s if guard is not None else time.monotonic() - started
        error = guard.connect_error if guard is not None else None
        diagnosis = call_within(
            left, lambda: explain_connect_error(cfg.remote_host, cfg.remote_port, cfg.connect_timeout, error, elapsed)
        )
        msg, transient = diagnosis or (f"could not connect to {cfg.remote_host}:{cfg.remote_port} within {elapsed:.1f} s", True)
        return fail("connect", msg, transient)
    waited = time.monotonic() - (connected_at or started)
    if problem is not None and problem.kind == "timeout":
        return fail(
            "timeout",
            f"no answer to the association request from {cfg.peer} within the ACSE timeout ({cfg.acse_timeout:g} s): "
            f"{problem.message}",
            True,
        )
    if assoc.is_aborted and record.rejected and not record.accepted:
        return fail("no-context", _no_context_message(record), False)
    if watch.abort is not None:
        return fail("aborted", explain_abort(watch.abort.source, watch.abort.reason_diagnostic, "association negotiation"), True)
    if problem is None and waited >= cfg.acse_timeout:
        return fail(
            "timeout",
            f"no answer to the association request from {cfg.peer} within the ACSE timeout ({cfg.acse_timeout:g} s): "
            f"waited {waited:.1f} s",
            True,
        )
    left = (connected_at or started) + cfg.acse_timeout + SLACK_S / 2 - time.monotonic()
    if cfg.tls_enabled:
        # pynetdicom swallows the SSL error; with TLS 1.3 a refused client certificate only
        # shows once the A-ASSOCIATE-RQ is read. Ask the TLS layer what went wrong.
        problem_text = _tls_problem(cfg, tls_args, left)
        if problem_text:
            return fail("tls", problem_text, False, TlsConfigError)
    else:
        hint = _plain_to_tls_hint(cfg, left)
        if hint:
            return fail("tls", f"the peer {cfg.peer} closed the connection during association negotiation: {hint}", False)
    if assoc.is_aborted:
        return fail(
            "aborted",
            f"the peer {cfg.peer} closed the connection or answered with data that is not DICOM "
            f"after {waited:.1f} s: check that this port is the PACS's DICOM port (not a web or "
            "other service) and that it accepts this calling AE title",
            True,
        )
    return fail("aborted", f"the peer {cfg.peer} closed the connection during association negotiation", True)


def _tls_problem(cfg: StoreConfig, tls_args: tuple[ssl.SSLContext, str | None] | None, budget: float) -> str | None:
    """What the TLS layer says went wrong, found within `budget` seconds (None: not TLS, or no time)."""
    from . import tls

    return call_within(budget, lambda: tls.handshake_problem(cfg, max(budget, 0.1), tls_args))


def _plain_to_tls_hint(cfg: StoreConfig, budget: float) -> str | None:
    """Whether the port speaks TLS, found within `budget` seconds (a diagnosis never hides the failure)."""
    from . import tls

    return call_within(budget, lambda: tls.diagnose_plain_to_tls(cfg.remote_host, cfg.remote_port, max(budget, 0.1)))


def _no_context_message(record: Negotiation) -> str:
    reasons = sorted(
        {f"{r.abstract_syntax_name} / {UID(str(r.transfer_syntax)).name}: {r.reason or '?'}" for r in record.rejected}
    )
    shown = "; ".join(reasons[:6]) + (" ..." if len(reasons) > 6 else "")
    return (
        f"the peer accepted none of the {len(record.proposed)} proposed presentation contexts ({shown}) - "
        "run 'probe' to see what this PACS accepts; if it takes only lossy compression, send with "
        "--strategy extended --allow-lossy"
    )


def candidate_contexts(
    accepted: Iterable[PresentationContext],
    sop_class_uid: str,
    stored_ts: str,
    allow_lossy: bool,
    has_pixels: bool = True,
) -> list[tuple[PresentationContext, str]]:
    """Accepted contexts usable for a data set, best first, with what each implies.

    Exact transfer syntax first (sent as stored), then conversions in the
    order: Explicit VR LE, Implicit VR LE, Deflated, Big Endian, lossless compressions, others.

    Returns:
        ``[(context, plan reason)]``.
    """
    usable: list[tuple[int, PresentationContext, str]] = []
    for cx in accepted:
        if str(cx.abstract_syntax) != str(sop_class_uid) or cx.as_scu is False:
            continue
        ts = str(cx.transfer_syntax[0])
        plan = conversion_plan(stored_ts, ts, allow_lossy, has_pixels)
        if not plan.possible:
            continue
        rank = (
            -1
            if ts == str(stored_ts)
            else (_CONVERSION_PREFERENCE.index(ts) if ts in _CONVERSION_PREFERENCE else len(_CONVERSION_PREFERENCE))
        )
        usable.append((rank, cx, plan.reason))
    usable.sort(key=lambda t: (t[0], t[1].context_id or 0))
    return [(cx, reason) for _, cx, reason in usable]


def find_compatible_transfer_syntax(
    dataset: Dataset | Any,
    accepted_contexts: Iterable[PresentationContext],
    sop_class_uid: str | None = None,
    allow_lossy: bool = False,
) -> tuple[PresentationContext | None, str]:
    """Pick the accepted presentation context to send `dataset` with (seed API).

    Args:
        dataset: a ``pydicom.Dataset`` (its File Meta transfer syntax is the stored syntax).
        accepted_contexts: e.g. ``assoc.accepted_contexts``.
        sop_class_uid: the SOP Class UID; defaults to the data set's (0008,0016).
        allow_lossy: whether a lossless-to-lossy conversion is acceptable.

    Returns:
        ``(context, reason)``: the best context (exact syntax match first, then a
        lossless conversion) and why; ``(None, reason)`` naming what was accepted
        when nothing fits.
    """
    accepted = list(accepted_contexts)
    sop_class = str(sop_class_uid or getattr(dataset, "SOPClassUID", ""))
    meta = getattr(dataset, "file_meta", None)
    stored = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not stored:
        implicit = getattr(dataset, "is_implicit_VR", True)
        stored = ImplicitVRLittleEndian if implicit in (True, None) else ExplicitVRLittleEndian
    has_pixels = "PixelData" in dataset if isinstance(dataset, Dataset) else True
    cands = candidate_contexts(accepted, sop_class, stored, allow_lossy, has_pixels)
    if cands:
        cx, reason = cands[0]
        return cx, reason
    offered = [UID(cx.transfer_syntax[0]).name for cx in accepted if str(cx.abstract_syntax) == sop_class]
    name = UID(sop_class).name if sop_class else "(unknown SOP class)"
    if not offered:
        return None, f"the peer accepted no presentation context for {name}"
    return None, (
        f"the peer accepts {name} only with {', '.join(sorted(set(offered)))}, and the data set "
        f"({UID(stored).name}) cannot be converted to any of them" + ("" if allow_lossy else " without lossy compression")
    )
