"""Plain-word explanations of DIMSE statuses, association rejections and aborts.

Sources: PS3.4 Annex B.2.3 (Storage statuses), PS3.7 Annex C (general statuses),
PS3.8 9.3.4 (A-ASSOCIATE-RJ result/source/reason), PS3.8 9.3.8 (A-ABORT),
PS3.8 9.3.3.2 / 9.3.3.3 (presentation context results).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Any

from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS

from .outcomes import Status

__all__ = [
    "StatusExplanation",
    "explain_status",
    "status_category",
    "explain_rejection",
    "explain_abort",
    "explain_connect_error",
    "CONTEXT_RESULT_REASONS",
]

SUCCESS, WARNING, FAILURE = Status.SUCCESS, Status.WARNING, Status.FAILURE

#: PS3.8 Table 9-18: presentation context result/reason.
CONTEXT_RESULT_REASONS = {
    0: "acceptance",
    1: "user rejection",
    2: "no reason (provider rejection)",
    3: "abstract syntax not supported (provider rejection)",
    4: "transfer syntaxes not supported (provider rejection)",
}

_STATUS_HINTS: list[tuple[range, str]] = [
    (
        range(0xA700, 0xA800),
        (
            "the receiver is out of resources (often its disk, a quota or a licence limit): "
            "check the PACS's storage and its log, then retry"
        ),
    ),
    (
        range(0xA900, 0xAA00),
        (
            "the receiver says the data set does not match the SOP class: check the file's "
            "SOP Class UID and required attributes; the peer's comment may name the element"
        ),
    ),
    (
        range(0xC000, 0xD000),
        (
            "the receiver could not understand the data set: check the peer's log and the "
            "offending element; converting to another transfer syntax may help"
        ),
    ),
]
_EXACT_HINTS = {
    0x0000: "",
    0xB000: "the PACS stored the instance but changed some data elements to fit its model",
    0xB006: "the PACS stored the instance but discarded some data elements",
    0xB007: "the PACS stored the instance although it does not match the SOP class",
    0x0122: "the PACS does not support this SOP class for storage: ask its administrator to enable it",
    0x0124: "the PACS refused the instance: this sender (calling AE title) is not authorised to store",
    0x0117: "the PACS considers the SOP instance invalid",
    0x0110: "the PACS failed while processing the instance: check its log",
    0x0111: "the PACS already holds an instance with this SOP Instance UID and refuses duplicates",
    0x0211: "the PACS does not recognise the operation",
    0x0212: "the PACS found a mistyped argument in the request",
    0x0213: "the PACS is at a resource limit: retry later",
    0x0210: "the PACS received a duplicate Message ID",
}


@dataclass(frozen=True)
class StatusExplanation:
    """What a DIMSE status means.

    Attributes:
        code: the status value (0x0000-0xFFFF).
        category: success, warning or failure.
        meaning: the standard's label, e.g. ``"Refused: Out of Resources"``.
        hint: what to do about it, in plain words (may be empty).
        message: one sentence combining code, meaning, the peer's comment and the hint.
    """

    code: int
    category: Status
    meaning: str
    hint: str
    message: str


def status_category(code: int) -> Status:
    """Return success, warning or failure for a C-STORE status (PS3.4 B.2.3)."""
    if code == 0x0000:
        return SUCCESS
    if code in (0xB000, 0xB006, 0xB007) or 0xB000 <= code <= 0xBFFF or code in (0x0107, 0x0116, 0x0001):
        return WARNING
    return FAILURE


def explain_status(code: int, error_comment: str | None = None, offending_element: Any = None) -> StatusExplanation:
    """Explain a C-STORE response status.

    Args:
        code: (0000,0900) Status.
        error_comment: (0000,0902) Error Comment from the peer, if any.
        offending_element: (0000,0901) Offending Element (tags), if any.

    Returns:
        A :class:`StatusExplanation`.
    """
    category = status_category(code)
    meaning = STORAGE_SERVICE_CLASS_STATUS.get(code, ("", ""))[1]
    if not meaning:
        meaning = {SUCCESS: "Success", WARNING: "Warning"}.get(category, "Unknown failure status")
    hint = _EXACT_HINTS.get(code, "")
    if not hint:
        hint = next((h for r, h in _STATUS_HINTS if code in r), "")
    if not hint and category == FAILURE:
        hint = "the status is not one the standard defines for C-STORE: check the PACS's log"
    parts = [f"0x{code:04X} {meaning}"]
    if error_comment:
        parts.append(f"peer comment: {str(error_comment).strip()}")
    if offending_element:
        parts.append(f"offending element: {_fmt_tags(offending_element)}")
    if hint:
        parts.append(hint)
    return StatusExplanation(code, category, meaning, hint, " - ".join(parts))


def _fmt_tags(value: Any) -> str:
    items: list[Any] | tuple[Any, ...] = value if isinstance(value, list | tuple) else [value]
    out = []
    for t in items:
        try:
            tag = int(t)
            out.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
        except (TypeError, ValueError):
            out.append(str(t))
    return ", ".join(out)


_RJ_RESULT = {1: "rejected (permanent)", 2: "rejected (transient)"}
_RJ_SOURCE = {1: "the peer's service user", 2: "the peer's ACSE service provider", 3: "the peer's presentation service provider"}


def explain_rejection(result: int, source: int, reason: int, called_ae: str, calling_ae: str) -> tuple[str, bool]:
    """Explain an A-ASSOCIATE-RJ (PS3.8 9.3.4, Table 9-21).

    Returns:
        ``(message, transient)``: the plain-word message with a hint, and whether
        the rejection is transient (result 2), i.e. worth retrying later.
    """
    transient = result == 2
    what = f"Association {_RJ_RESULT.get(result, f'rejected (result {result})')} by {_RJ_SOURCE.get(source, f'source {source}')}"
    if source == 1:
        why, hint = {
            1: ("no reason given", "check the PACS's log; it may not know this sender"),
            2: ("application context name not supported", "the peer does not speak standard DICOM here"),
            3: (
                f"calling AE title '{calling_ae}' not recognised",
                (
                    f"the PACS must have this sender registered: ask its administrator to add AE title "
                    f"'{calling_ae}' (with this machine's address), or set the calling AE title it expects"
                ),
            ),
            7: (
                f"called AE title '{called_ae}' not recognised",
                "check the called AE title in the profile: it must be the PACS's own AE title (ask its administrator)",
            ),
        }.get(reason, (f"reason {reason}", "check the PACS's log"))
    elif source == 2:
        why, hint = {
            1: ("no reason given", "check the PACS's log"),
            2: ("protocol version not supported", "the peer does not support DICOM upper layer version 1"),
        }.get(reason, (f"reason {reason}", "check the PACS's log"))
    else:
        why, hint = {
            1: ("temporary congestion", "the PACS is busy: retry later"),
            2: (
                "local limit exceeded",
                "the PACS has too many associations open: retry later or send with fewer parallel associations",
            ),
        }.get(reason, (f"reason {reason}", "retry later"))
    return f"{what}: {why} - {hint}", transient


_ABORT_SOURCE = {0: "the peer (service user)", 1: "the peer (reserved source)", 2: "the peer's DICOM service provider"}
_ABORT_REASON = {
    0: "reason not specified",
    1: "unrecognized PDU",
    2: "unexpected PDU",
    4: "unrecognized PDU parameter",
    5: "unexpected PDU parameter",
    6: "invalid PDU parameter value",
}


def explain_abort(source: int | None, reason: int | None, during: str) -> str:
    """Explain an A-ABORT / A-P-ABORT (PS3.8 9.3.8, Table 9-26).

    Args:
        source: abort source (0 service user, 2 service provider) or None if unknown.
        reason: reason/diagnostic, or None.
        during: what was happening, e.g. ``"negotiation"`` or ``"the C-STORE"``.
    """
    if source is None:
        return f"association aborted during {during} (the connection was closed)"
    who = _ABORT_SOURCE.get(source, f"source {source}")
    why = _ABORT_REASON.get(reason or 0, f"reason {reason}") if source == 2 else "reason not specified"
    return f"association aborted by {who} during {during} (A-ABORT, {why})"


def explain_connect_error(
    host: str, port: int, timeout: float, error: OSError | None = None, elapsed: float | None = None
) -> tuple[str, bool]:
    """Find out why a TCP connection to host:port fails, in plain words.

    Args:
        host: the peer's host name or address.
        port: the peer's TCP port.
        timeout: the connection timeout that applied, seconds (named in the message).
        error: the failed attempt's own error when known; then nothing is tried again.
        elapsed: seconds the failed attempt took; at the connection timeout it is a timeout,
            and nothing is tried again (a second attempt would double the wait).

    Without `error` or a timed-out `elapsed`, performs one DNS lookup and one connection
    attempt of at most `timeout` seconds (a refusal or an unreachable host answers at once).

    Returns:
        ``(message, transient)``.
    """
    where = f"{host}:{port}"
    if error is None and elapsed is not None and elapsed >= timeout * 0.95:
        error = TimeoutError(errno.ETIMEDOUT, "timed out")
    if error is None:
        error = _connect_once(host, port, timeout)
    if error is None:
        return f"connected to {where} but the DICOM association could not start (the peer closed the connection)", True
    if isinstance(error, socket.gaierror):
        return (
            f"could not connect to {where}: the host name '{host}' could not be resolved (DNS: {error.strerror}) "
            "- check the host name in the profile"
        ), False
    if isinstance(error, TimeoutError) or error.errno == errno.ETIMEDOUT:
        waited = f"; waited {elapsed:.1f} s" if elapsed is not None else ""
        return (
            f"could not connect to {where}: no answer within {timeout:g} s (connection timeout{waited}) - "
            "a firewall may drop the packets, or the host is down"
        ), True
    if error.errno == errno.ECONNREFUSED:
        return (
            f"could not connect to {where}: connection refused - nothing listens on port {port}; "
            "check the port and that the PACS is running"
        ), True
    if error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"could not connect to {where}: host unreachable - check the network and the address", True
    return f"could not connect to {where}: {error.strerror or error}", True


def _connect_once(host: str, port: int, timeout: float) -> OSError | None:
    """One DNS lookup and one connection attempt per address; the last error, or None if one connected."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return exc
    last: OSError | None = None
    for family, stype, proto, _canon, addr in infos:
        with socket.socket(family, stype, proto) as s:
            s.settimeout(timeout)
            try:
                s.connect(addr)
                return None
            except OSError as exc:
                last = exc
    return last
