"""Waiting for a DIMSE response with timeouts that measure inactivity, not total time.

pynetdicom's ``send_msg`` only queues the P-DATA-TF PDUs of a message; its DUL
thread writes them to a socket that is blocking without any timeout once
connected, and ``get_msg(block=True)`` starts its DIMSE timeout when the message
is queued, not when it has gone out. So a big file to a slow peer can hit the
DIMSE timeout while it is still being written, and a peer that stops reading
blocks the DUL thread (and a later ``abort()``) forever (fo-dicom #1359,
dcm4che #1129, #532).

Here:

* :func:`bound_writes` gives the association's socket a timeout equal to the
  network timeout, so a write that makes no progress for that long fails and
  the DUL reports the connection closed (PS3.8 9.1.5, ARTIM-like behaviour).
* :func:`await_response` waits for the response to one request: while PDUs of
  the request are still queued, it keeps pynetdicom's idle timer alive (we are
  busy, not idle) and gives up only when nothing was written for the network
  timeout; once the request is fully handed to the socket, it waits the DIMSE
  timeout for the response. On any failure it raises :class:`ExchangeBroken`,
  saying whether the data set went out completely, so the caller can tell
  "outcome unknown" from "not received".
"""

from __future__ import annotations

import logging
import queue
import socket
import sys
import time
from typing import Any

try:
    import fcntl
    import termios

    _SIOCOUTQ: int | None = termios.TIOCOUTQ  # same value as SIOCOUTQ on Linux
except (ImportError, AttributeError):  # Windows
    _SIOCOUTQ = None

LOGGER = logging.getLogger(__name__)

__all__ = ["ExchangeBroken", "await_response", "bound_writes", "drop_connection", "unsent_bytes"]


class ExchangeBroken(Exception):
    """The request/response exchange broke; the association must not be reused.

    Attributes:
        message: what happened, in words.
        kind: ``"dimse-timeout"``, ``"write-timeout"`` or ``"closed"`` (abort or connection closed).
        sent_all: True when every PDU of the request had been handed to the socket.
    """

    def __init__(self, message: str, kind: str, sent_all: bool):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.sent_all = sent_all


def bound_writes(sock: Any, network_timeout: float | None) -> None:
    """Give a connected socket a send/receive timeout of `network_timeout` seconds.

    pynetdicom clears the socket timeout after connecting, so a peer that stops
    reading would block the writer forever. The DUL reads only what ``select``
    reports ready, so the timeout bounds stalled writes and half-received PDUs.
    """
    if network_timeout is None or sock is None:
        return
    try:
        sock.settimeout(float(network_timeout))
    except (OSError, AttributeError):
        pass


def drop_connection(assoc: Any) -> None:
    """Shut the association's socket down so a blocked write returns at once."""
    try:
        sock = assoc.dul.socket.socket
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):
        pass


_NOTHING = object()
_OWN_ABORT_SLACK = 64


def _kib(n: float) -> str:
    return f"{n / 1024:.0f} KiB"


def unsent_bytes(sock: Any) -> int | None:
    """Bytes written to `sock` that the peer has not acknowledged yet, or None if unknown.

    Linux ``SIOCOUTQ``; the kernel buffers megabytes, so without it a request
    would look "sent" long before the peer has read it.
    """
    if _SIOCOUTQ is None or sock is None:
        return None
    try:
        buf = fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0\0\0\0")
        return int.from_bytes(buf, sys.byteorder, signed=True)
    except (OSError, ValueError, AttributeError):
        return None


def await_response(assoc: Any, message_id: int, dimse_timeout: float, network_timeout: float,
                   size_bytes: int | None = None, poll_s: float = 0.05) -> Any:
    """Wait for the response to the request with `message_id` (PS3.7 9.3.1.2).

    Call it right after ``assoc.dimse.send_msg(req, cx_id)``. The request counts
    as "being sent" while PDUs are queued or the kernel still holds bytes the peer
    has not acknowledged; during that time only a lack of progress for
    `network_timeout` fails. The DIMSE timeout starts once everything is delivered.

    Args:
        assoc: an established pynetdicom ``Association`` whose reactor does not
            read DIMSE messages (see ``core.negotiation._guard_reactor``).
        message_id: the request's Message ID.
        dimse_timeout: seconds to wait for the response once the request is delivered.
        network_timeout: seconds without any write progress before giving up.
        size_bytes: the data set's size, for messages.
        poll_s: how often to look at the progress, seconds.

    Returns:
        the response message (pynetdicom DIMSE message with ``Status``).

    Raises:
        ExchangeBroken: timeout, abort or closed connection (the caller aborts
            the association if it is still up, and never reuses it).
    """
    outq = assoc.dul.to_provider_queue
    msgs = assoc.dimse.msg_queue
    sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
    queued = max(outq.qsize(), 1)
    last: tuple[int, int] = (-1, -1)
    last_change = time.monotonic()
    sent_at: float | None = None

    def progress() -> str:
        left = outq.qsize()
        unsent = unsent_bytes(sock) or 0
        if size_bytes:
            done = max(0.0, size_bytes * (queued - left) / queued - unsent)
            return f"~{_kib(done)} of ~{_kib(size_bytes)}"
        return f"{queued - left} of {queued} PDUs"

    while True:
        try:
            _cx, rsp = msgs.get(timeout=poll_s)
        except queue.Empty:
            rsp = _NOTHING
        if rsp is _NOTHING and (assoc.is_aborted or not assoc.is_established):
            rsp = None  # e.g. an invalid PDU from the peer: pynetdicom aborts without waking DIMSE readers
        if rsp is _NOTHING:
            now = time.monotonic()
            n = outq.qsize()
            u = unsent_bytes(sock) or 0 if not n else 0
            if n or u > _OWN_ABORT_SLACK:
                sent_at = None
                if (n, u) != last:
                    last, last_change = (n, u), now
                try:  # still delivering the request: the link is busy, not idle
                    assoc.dul._idle_timer.restart()
                except AttributeError:
                    pass
                # with PDUs queued the socket timeout acts first; this is the backstop
                if now - last_change > network_timeout + (1.0 if n else 0.0):
                    what = progress()
                    drop_connection(assoc)
                    raise ExchangeBroken(f"timeout while sending: peer stopped reading after {what} "
                                         f"(network timeout {network_timeout:g} s)", "write-timeout", False)
            else:
                if sent_at is None:
                    sent_at = now
                if now - sent_at > dimse_timeout:
                    raise ExchangeBroken(f"no C-STORE response within the DIMSE timeout ({dimse_timeout:g} s) "
                                         "after the data set was sent", "dimse-timeout", True)
            continue
        if rsp is None:
            n = outq.qsize()
            # bytes still unacknowledged now (not at the last poll) never reached the peer; the
            # DUL may have queued its own A-ABORT (10 bytes) meanwhile, so ignore a few bytes
            n = n or int((unsent_bytes(sock) or 0) > _OWN_ABORT_SLACK)
            if n:
                stalled = time.monotonic() - last_change >= 0.9 * network_timeout
                what = progress()
                if stalled:
                    raise ExchangeBroken(f"timeout while sending: peer stopped reading after {what} "
                                         f"(network timeout {network_timeout:g} s)", "write-timeout", False)
                raise ExchangeBroken(f"connection lost while sending the data set (after {what})", "closed", False)
            raise ExchangeBroken("connection lost after the data set was sent, before a response", "closed", True)
        if getattr(rsp, "MessageIDBeingRespondedTo", None) == message_id and getattr(rsp, "Status", None) is not None:
            return rsp
        LOGGER.warning("Ignoring an unexpected DIMSE message from the peer: %s", type(rsp).__name__)
