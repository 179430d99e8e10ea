"""The C-STORE fast path: P-DATA-TF PDUs written straight from the file's bytes.

pynetdicom keeps the association (A-ASSOCIATE, A-RELEASE, A-ABORT and its state
machine); while a storage association is in use, this module takes over the
socket for the DIMSE exchange itself: it encodes the C-STORE-RQ command set,
fragments the data set into PDVs no larger than the peer's maximum PDU length,
writes them from the sending thread (no queue, no polling thread in between),
and reads the C-STORE-RSP directly. That removes pynetdicom's per-message
thread hand-offs and 1 ms polling sleeps, and the race in which its reactor
could take the response (DESIGN.md, "A lost C-STORE response").

Sources: PS3.8 9.3.5 (P-DATA-TF), Annex E (PDV and message control header),
PS3.7 9.3.1 (C-STORE-RQ/RSP command fields), PS3.7 6.3.1 (command encoding:
Implicit VR Little Endian).
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import select
import socket
import ssl
import struct
import threading
import time
from typing import Any

from pynetdicom import Association

from .diagnostics import explain_abort
from .waiting import a_abort_pdu, pdu_limit, pdu_name, too_long_message, unsent_bytes

LOGGER = logging.getLogger(__name__)

__all__ = [
    "MIN_PEER_MAX_PDU",
    "DirectChannel",
    "ChannelBrokenError",
    "StoreResponse",
    "encode_c_store_rq",
    "encode_c_echo_rq",
    "parse_command",
]

#: The smallest peer maximum PDU length that carries data: 6 bytes of PDV header and an
#: even fragment of at least 2 bytes (PS3.8 9.3.5, E.2). Below it the peer is refused.
MIN_PEER_MAX_PDU = 8

_PDU_HDR = struct.Struct(">BBI")
_PDATA_HDR = struct.Struct(">BBIIBB")  # PDU type, reserved, PDU length, PDV length, context ID, control header
_ELEM_HDR = struct.Struct("<HHI")
_WRITE_BATCH = 256 * 1024
_READ_BLOCK = 1024 * 1024  # bounded memory per association, few read calls
_MAX_FRAGMENT = 4 * 1024 * 1024 - 6
_MAX_COMMAND = 64 * 1024  # a response command set is a few hundred bytes; more is a peer gone wrong
_CLOSED_ERRNOS = (errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.ESHUTDOWN)
_STOP_POLL_S = 0.2  # how often a wait for the response looks at the stop event, seconds


class ChannelBrokenError(Exception):
    """The association cannot be used any more (timeout, abort, closed connection).

    Attributes:
        message: plain words for the report.
        abort_source / abort_reason: from the peer's A-ABORT PDU, when one arrived.
        after_send: True when the whole data set had been written (outcome unknown).
        stopped: True when the channel's stop event ended the exchange (the user stopped the send).
    """

    def __init__(
        self,
        message: str,
        abort_source: int | None = None,
        abort_reason: int | None = None,
        after_send: bool = True,
        stopped: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.abort_source = abort_source
        self.abort_reason = abort_reason
        self.after_send = after_send
        self.stopped = stopped


class StoreResponse:
    """The fields of a C-STORE-RSP the engine reads (PS3.7 Table 9.3-2)."""

    __slots__ = ("Status", "MessageIDBeingRespondedTo", "ErrorComment", "OffendingElement", "CommandField")

    def __init__(self, fields: dict[int, bytes]):
        def us(tag: int) -> int | None:
            v = fields.get(tag)
            return struct.unpack("<H", v[:2])[0] if v and len(v) >= 2 else None

        self.Status = us(0x00000900)
        self.MessageIDBeingRespondedTo = us(0x00000120)
        self.CommandField = us(0x00000100)
        comment = fields.get(0x00000902)
        self.ErrorComment = comment.rstrip(b"\0 ").decode("latin-1") if comment else None
        off = fields.get(0x00000901)
        self.OffendingElement = (
            [
                (struct.unpack_from("<H", off, i)[0] << 16) | struct.unpack_from("<H", off, i + 2)[0]
                for i in range(0, len(off) - 3, 4)
            ]
            if off
            else None
        )


def _ui(value: str) -> bytes:
    b = value.encode("ascii")
    return b + b"\0" if len(b) % 2 else b


def encode_c_store_rq(msg_id: int, sop_class: str, sop_instance: str, priority: int = 2) -> bytes:
    """Encode a C-STORE-RQ command set in Implicit VR Little Endian (PS3.7 9.3.1.1, 6.3.1).

    Returns:
        the command set bytes, (0000,0000) Command Group Length first.
    """
    body = b"".join(
        (
            _ELEM_HDR.pack(0x0000, 0x0002, len(_ui(sop_class))) + _ui(sop_class),
            _ELEM_HDR.pack(0x0000, 0x0100, 2) + struct.pack("<H", 0x0001),
            _ELEM_HDR.pack(0x0000, 0x0110, 2) + struct.pack("<H", msg_id),
            _ELEM_HDR.pack(0x0000, 0x0700, 2) + struct.pack("<H", priority),
            _ELEM_HDR.pack(0x0000, 0x0800, 2) + struct.pack("<H", 0x0000),  # a data set follows
            _ELEM_HDR.pack(0x0000, 0x1000, len(_ui(sop_instance))) + _ui(sop_instance),
        )
    )
    return _ELEM_HDR.pack(0x0000, 0x0000, 4) + struct.pack("<I", len(body)) + body


def encode_c_echo_rq(msg_id: int) -> bytes:
    """Encode a C-ECHO-RQ command set in Implicit VR Little Endian (PS3.7 9.3.5.1, 6.3.1)."""
    body = b"".join(
        (
            _ELEM_HDR.pack(0x0000, 0x0002, len(_ui(_VERIFICATION))) + _ui(_VERIFICATION),
            _ELEM_HDR.pack(0x0000, 0x0100, 2) + struct.pack("<H", 0x0030),
            _ELEM_HDR.pack(0x0000, 0x0110, 2) + struct.pack("<H", msg_id),
            _ELEM_HDR.pack(0x0000, 0x0800, 2) + struct.pack("<H", 0x0101),  # no data set
        )
    )
    return _ELEM_HDR.pack(0x0000, 0x0000, 4) + struct.pack("<I", len(body)) + body


_VERIFICATION = "1.2.840.10008.1.1"


def parse_command(data: bytes) -> dict[int, bytes]:
    """Split an Implicit VR Little Endian command set into ``{tag: value bytes}``."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 8 <= len(data):
        group, elem, length = _ELEM_HDR.unpack_from(data, pos)
        pos += 8
        out[(group << 16) | elem] = data[pos : pos + length]
        pos += length
    return out


class DirectChannel:
    """DIMSE C-STORE (and C-ECHO) over an established association's socket, bypassing pynetdicom's queues.

    Both the command set and the data set are fragmented to the peer's maximum PDU length;
    each P-DATA-TF carries one PDV, so a PDU never mixes the command and the data set
    (PS3.8 9.3.5, E.2; fo-dicom #1960). A response PDU longer than our maximum, of an unknown
    type, malformed, or still incomplete at the DIMSE timeout ends the association at once
    (A-ABORT, connection closed) without being buffered.

    Args:
        assoc: an established requestor association (its DUL stops reading while the channel is open).
        dimse_timeout: seconds to wait for a response, counted from the end of the request.
        network_timeout: seconds a blocked write may last before the peer is declared stalled.
        stop: when set, the exchange ends before the next PDU is written or within
            ``_STOP_POLL_S`` of waiting (:class:`ChannelBrokenError` with ``stopped``).

    Raises:
        ValueError: the peer's maximum PDU length is below :data:`MIN_PEER_MAX_PDU`
            (:func:`~core.negotiation.open_association` refuses such a peer).

    Use :meth:`close` before releasing or aborting the association.
    """

    def __init__(self, assoc: Association, dimse_timeout: float, network_timeout: float, stop: threading.Event | None = None):
        self.assoc = assoc
        self.stop = stop
        self.dul = assoc.dul
        transport = assoc.dul.socket
        assert transport is not None and transport.socket is not None, "an established association has its socket"
        self.sock: socket.socket = transport.socket
        peer_max = int(assoc.acceptor.maximum_length or 0)
        if 0 < peer_max < MIN_PEER_MAX_PDU:
            raise ValueError(f"the peer's maximum PDU length ({peer_max} bytes) cannot carry a PDV")
        # PS3.8 D.1: 0 means no limit; then use our own cap. PDV data = PDU length - 6, even.
        self.fragment = (min(peer_max - 6, _MAX_FRAGMENT) if peer_max else _MAX_FRAGMENT) & ~1
        self.our_max_pdu = int(assoc.requestor.maximum_length or 0)
        self.dimse_timeout = dimse_timeout
        self.network_timeout = network_timeout
        self._rx = bytearray()
        self._orig_transport_event = self.dul._is_transport_event
        taken = threading.Event()

        def no_transport_event() -> bool:
            taken.set()
            return False

        self.dul._is_transport_event = no_transport_event  # type: ignore[method-assign]  # restored by close()
        # The DUL thread may be inside the original check (descheduled by the GIL): wait until it
        # has run one loop with ours, or it could read the first C-STORE-RSP before we do.
        if not taken.wait(2.0) and self.dul.is_alive():
            LOGGER.warning("the DUL thread did not yield the socket within 2 s")
        self.bytes_sent = 0
        self._msg_start = 0
        self.closed = False
        self._msg_id = 0
        self._what = "the data set"  # what a write is sending, for the words of a failure
        self._unacked = 0  # request bytes unacknowledged when the peer spoke up (see _closed_by_peer)
        self._scatter = hasattr(self.sock, "sendmsg") and not isinstance(self.sock, ssl.SSLSocket)

    def next_message_id(self) -> int:
        """A new Message ID for this association (PS3.7 9.1.1.1.1), 1..65535."""
        self._msg_id = self._msg_id % 65535 + 1
        return self._msg_id

    def close(self) -> None:
        """Give the socket back to pynetdicom (for A-RELEASE / A-ABORT)."""
        if not self.closed:
            self.closed = True
            self.dul._is_transport_event = self._orig_transport_event  # type: ignore[method-assign]  # pynetdicom's own
            with contextlib.suppress(OSError):
                self.sock.settimeout(None)

    # -- sending -----------------------------------------------------------------------------------

    def store(
        self,
        cx_id: int,
        msg_id: int,
        sop_class: str,
        sop_instance: str,
        data: bytes | None = None,
        path: str | None = None,
        offset: int = 0,
    ) -> StoreResponse:
        """Send one C-STORE-RQ with its data set and return the C-STORE-RSP.

        The data set comes from `data` (encoded bytes) or from the file at `path`
        starting at `offset` (streamed in chunks; the file is only read).

        Raises:
            ChannelBrokenError: write timeout, abort, closed connection, no response in time
                or an invalid response; the association must not be reused.
        """
        command = encode_c_store_rq(msg_id, sop_class, sop_instance)
        self._msg_start = self.bytes_sent
        self._what = "the data set"
        parts: list[Any] = []
        pending = self._queue_command(cx_id, command, parts)
        if data is not None:
            self._write_fragments(cx_id, memoryview(data), parts, pending)
        else:
            assert path is not None
            with open(path, "rb") as f:
                f.seek(offset)
                self._write_file(cx_id, f, parts, pending)
        return self._read_response(msg_id)

    def echo(self, cx_id: int, msg_id: int) -> StoreResponse:
        """Send one C-ECHO-RQ and return the C-ECHO-RSP (PS3.7 9.3.5), within the DIMSE timeout.

        Raises:
            ChannelBrokenError: as :meth:`store`.
        """
        self._msg_start = self.bytes_sent
        self._what = "the C-ECHO request"
        parts: list[Any] = []
        self._queue_command(cx_id, encode_c_echo_rq(msg_id), parts)
        self._write(parts)
        return self._read_response(msg_id, 0x8030)

    def _queue_command(self, cx_id: int, command: bytes, parts: list[Any]) -> int:
        """Queue the command set as PDVs of at most one fragment each; returns the bytes queued.

        The last command fragment has message control header 0x03, the others 0x01 (PS3.8 E.2).
        """
        if len(command) <= self.fragment:  # the usual case: one PDV
            parts += (_PDATA_HDR.pack(0x04, 0, len(command) + 6, len(command) + 2, cx_id, 0x03), command)
            return len(command) + 12
        pending = 0
        for pos in range(0, len(command), self.fragment):
            chunk = command[pos : pos + self.fragment]
            last = pos + self.fragment >= len(command)
            parts += (_PDATA_HDR.pack(0x04, 0, len(chunk) + 6, len(chunk) + 2, cx_id, 0x03 if last else 0x01), chunk)
            pending += len(chunk) + 12
        return pending

    def _check_stop(self, after_send: bool) -> None:
        if self.stop is not None and self.stop.is_set():
            raise ChannelBrokenError("the send was stopped", after_send=after_send, stopped=True)

    def _write(self, parts: list[bytes | memoryview]) -> None:
        self._check_stop(after_send=False)  # between PDUs: the stream stays well formed for an A-ABORT
        try:
            self.sock.settimeout(self.network_timeout)
            if self._scatter:
                sent = self._sendmsg_all(parts)
            else:  # an SSLSocket has no sendmsg
                blob = b"".join(parts)
                self.sock.sendall(blob)
                sent = len(blob)
        except TimeoutError:
            self._drop()
            raise ChannelBrokenError(
                f"timeout while sending: the peer stopped reading for {self.network_timeout:g} s "
                f"(network timeout) after {self.bytes_sent} bytes of this association",
                after_send=False,
            ) from None
        except OSError as exc:
            raise ChannelBrokenError(self._write_failure(exc), after_send=False) from None
        self.bytes_sent += sent
        self.dul._idle_timer.restart()

    def _write_failure(self, exc: OSError) -> str:
        """Words for a write that failed: the peer's A-ABORT if one is waiting, else how it broke."""
        abort = self._pending_abort()
        self._drop()
        if abort is not None:
            return explain_abort(abort[0], abort[1], f"the transfer of {self._what}")
        if exc.errno in _CLOSED_ERRNOS:
            return f"connection closed by peer while sending {self._what} (no A-ABORT, no response)"
        return f"the connection broke while sending {self._what} ({exc.strerror or exc})"

    def _pending_abort(self) -> tuple[int, int] | None:
        """An A-ABORT the peer sent before closing, if it is in the receive buffer (plain TCP only)."""
        if isinstance(self.sock, ssl.SSLSocket):
            return None
        try:
            data = self._rx + self.sock.recv(4096, socket.MSG_DONTWAIT)
        except OSError:
            data = self._rx
        if len(data) >= 10 and data[0] == 0x07:
            return data[8], data[9]
        return None

    def _drop(self) -> None:
        """End the association at the transport level: an A-ABORT if the socket takes it at once, then close.

        For a connection whose byte stream can no longer be trusted (a PDU half written or half
        read): pynetdicom is told through the closed connection and goes idle; no A-ABORT request
        is queued behind it (its idle state machine would reject one).
        """
        with contextlib.suppress(OSError, ValueError):
            self.sock.settimeout(0.0)
            self.sock.send(a_abort_pdu(source=2, reason=0))
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.close()
        self.assoc.kill()

    def _sendmsg_all(self, parts: list[bytes | memoryview]) -> int:
        """Write every buffer with scatter-gather ``sendmsg`` (no copy into one blob)."""
        views = [memoryview(p) for p in parts]
        total = sum(len(v) for v in views)
        first = 0
        while first < len(views):
            n = self.sock.sendmsg(views[first : first + 512])
            while n and first < len(views):
                if n >= len(views[first]):
                    n -= len(views[first])
                    first += 1
                else:
                    views[first] = views[first][n:]
                    n = 0
        return total

    def _write_fragments(self, cx_id: int, view: memoryview, parts: list[Any], pending: int) -> None:
        total = len(view)
        pos = 0
        while True:
            n = min(self.fragment, total - pos)
            last = pos + n >= total
            parts.append(_PDATA_HDR.pack(0x04, 0, n + 6, n + 2, cx_id, 0x02 if last else 0x00))
            parts.append(view[pos : pos + n])
            pending += n + 12
            pos += n
            if last or pending >= _WRITE_BATCH:
                self._write(parts)
                parts.clear()
                pending = 0
            if last:
                return

    def _write_file(self, cx_id: int, f: io.BufferedIOBase, parts: list[Any], pending: int) -> None:
        """Send the rest of `f` as data fragments, reading it in large blocks (PDUs are views on them)."""
        remaining = os.fstat(f.fileno()).st_size - f.tell()
        while True:
            block = bytearray(min(remaining, max(1, _READ_BLOCK // self.fragment) * self.fragment))
            got = f.readinto(block)
            remaining = remaining - got if got else 0
            view = memoryview(block)[: got or 0]
            if remaining <= 0:
                self._write_fragments(cx_id, view, parts, pending)
                return
            pending = self._queue_fragments(cx_id, view, parts, pending)

    def _queue_fragments(self, cx_id: int, view: memoryview, parts: list[Any], pending: int) -> int:
        """Queue `view` as non-last fragments (its length is a multiple of the fragment size)."""
        for pos in range(0, len(view), self.fragment):
            n = min(self.fragment, len(view) - pos)
            parts.append(_PDATA_HDR.pack(0x04, 0, n + 6, n + 2, cx_id, 0x00))
            parts.append(view[pos : pos + n])
            pending += n + 12
            if pending >= _WRITE_BATCH:
                self._write(parts)
                parts.clear()
                pending = 0
        return pending

    # -- receiving ---------------------------------------------------------------------------------

    def _recv_exact(self, n: int, deadline: float) -> bytes:
        """Read `n` bytes by `deadline` (``time.monotonic()``); `n` is bounded by the caller.

        Raises:
            TimeoutError: the deadline passed (what arrived stays in ``self._rx``).
            ChannelBrokenError: the peer closed the connection.
        """
        while len(self._rx) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left if self.stop is None else min(left, _STOP_POLL_S))
            try:
                chunk = self.sock.recv(max(65536, n - len(self._rx)))
            except TimeoutError:
                self._check_stop(after_send=True)
                continue
            if not chunk:
                raise self._closed_by_peer(unsent_bytes(self.sock) or 0)  # an orderly close keeps the queue
            self._rx += chunk
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out

    def _await_delivery(self) -> None:
        """Wait until the peer's TCP has acknowledged the whole request, or it stalls.

        The kernel buffers megabytes: without this a big data set to a slow peer would
        use up the DIMSE timeout while still in transit, and a peer that stopped reading
        would only be caught as "no response" ("outcome unknown") although it never got
        the data set. Returns at once when the peer has something to say (a response or
        an A-ABORT) or when the platform cannot tell (no SIOCOUTQ).

        Raises:
            ChannelBrokenError: nothing acknowledged for the network timeout (``after_send=False``).
        """
        last, since = -1, time.monotonic()
        self._unacked = 0
        while True:
            left = unsent_bytes(self.sock)
            if not left or left <= 0 or self._rx:
                return
            now = time.monotonic()
            if left != last:
                last, since = left, now
                self.dul._idle_timer.restart()
            elif now - since > self.network_timeout:
                sent = self.bytes_sent - self._msg_start
                self._drop()
                raise ChannelBrokenError(
                    f"timeout while sending: peer stopped reading after ~{(sent - left) / 1024:.0f} KiB "
                    f"of ~{sent / 1024:.0f} KiB (network timeout {self.network_timeout:g} s)",
                    after_send=False,
                )
            try:
                readable, _, _ = select.select([self.sock], [], [], 0.02)
            except (OSError, ValueError):
                return
            if readable:
                self._unacked = left  # a reset purges the queue: keep the last count for _closed_by_peer
                return
            self._check_stop(after_send=True)  # all written: the peer may still read and store it

    def _read_response(self, msg_id: int, command_field: int = 0x8001) -> StoreResponse:
        """Read P-DATA-TF PDUs until the response to `msg_id`, within the DIMSE timeout.

        Raises:
            ChannelBrokenError: as :meth:`store` (``after_send=True``).
        """
        self._await_delivery()
        started = time.monotonic()
        deadline = started + self.dimse_timeout
        name = "C-ECHO" if command_field == 0x8030 else "C-STORE"
        command = bytearray()
        in_pdu = False
        try:
            while True:
                in_pdu = bool(self._rx)
                pdu_type, _, length = _PDU_HDR.unpack(self._recv_exact(6, deadline))
                in_pdu = True
                if pdu_type not in range(0x01, 0x08):
                    raise self._protocol_error(f"protocol error: a {pdu_name(pdu_type)} instead of a {name} response")
                if length > pdu_limit(pdu_type, self.our_max_pdu):
                    raise self._protocol_error(too_long_message(pdu_type, length, self.our_max_pdu))
                body = self._recv_exact(length, deadline)
                in_pdu = False
                self.dul._idle_timer.restart()
                if pdu_type == 0x07:  # A-ABORT (PS3.8 9.3.8)
                    raise ChannelBrokenError("A-ABORT", abort_source=body[2], abort_reason=body[3])
                if pdu_type != 0x04:
                    raise ChannelBrokenError(f"unexpected {pdu_name(pdu_type)} instead of a {name} response")
                pos = 0
                while pos < length:
                    item_len, mch = self._pdv_at(body, pos)
                    pos += 4 + item_len
                    if not mch & 0x01:
                        continue  # a data set fragment: no response of ours has one
                    command += body[pos - item_len + 2 : pos]
                    if len(command) > _MAX_COMMAND:
                        raise self._protocol_error(f"protocol error: a response command set longer than {_MAX_COMMAND} bytes")
                    if mch & 0x02:
                        rsp = StoreResponse(parse_command(bytes(command)))
                        if (
                            rsp.CommandField == command_field
                            and rsp.MessageIDBeingRespondedTo == msg_id
                            and rsp.Status is not None
                        ):
                            return rsp
                        LOGGER.warning("Ignoring an unexpected DIMSE message (command 0x%04X)", rsp.CommandField or 0)
                        command = bytearray()
        except TimeoutError:
            waited = time.monotonic() - started
            msg = f"no {name} response within the DIMSE timeout ({self.dimse_timeout:g} s): waited {waited:.1f} s"
            if in_pdu or self._rx:
                self._drop()
                msg += ", and only part of a PDU had arrived"
            raise ChannelBrokenError(msg) from None
        except (ConnectionError, OSError) as exc:
            if exc.errno in _CLOSED_ERRNOS:
                raise self._closed_by_peer(self._unacked) from None
            raise ChannelBrokenError(f"the connection broke while waiting for the response ({exc})") from None

    def _closed_by_peer(self, undelivered: int) -> ChannelBrokenError:
        """The error for a connection the peer closed while we waited for its response.

        Bytes of the request that its TCP never acknowledged cannot have reached it: then
        it cannot have stored the instance (``after_send=False``); else the outcome is unknown.
        """
        if undelivered > 0:
            return ChannelBrokenError(
                f"connection closed by peer while sending {self._what} (no A-ABORT, no response): "
                f"~{undelivered / 1024:.0f} KiB of it never reached the peer",
                after_send=False,
            )
        return ChannelBrokenError(f"connection closed by peer after {self._what} was sent (no A-ABORT, no response)")

    def _pdv_at(self, body: bytes, pos: int) -> tuple[int, int]:
        """The item length and message control header of the PDV at `pos` of a P-DATA-TF body (PS3.8 9.3.5.1).

        Raises:
            ChannelBrokenError: the PDV does not fit the PDU.
        """
        if pos + 6 > len(body):
            raise self._protocol_error("protocol error: a P-DATA-TF ends inside a PDV header")
        (item_len,) = struct.unpack_from(">I", body, pos)
        if item_len < 2 or pos + 4 + item_len > len(body):
            raise self._protocol_error(f"protocol error: a PDV of {item_len} bytes in a P-DATA-TF of {len(body)}")
        return item_len, body[pos + 5]

    def _protocol_error(self, message: str) -> ChannelBrokenError:
        """Abort at once (nothing more is read) and return the error to raise."""
        LOGGER.warning("Aborting the association: %s", message)
        self._drop()
        return ChannelBrokenError(message)
