"""Socket-level bounds: on how long a peer can make us wait and how much it can make us buffer.

pynetdicom leaves a connected socket blocking without a timeout, so a peer that
stops reading would block a writer (and a later A-ABORT) forever (fo-dicom
#1359, dcm4che #1129, #532); its reader takes a PDU's length on trust (a peer
announcing a 4 GB PDU and streaming zeros makes it buffer gigabytes) and its
ACSE timeout bounds only the wait for the first byte of an answer (a peer that
drips one byte at a time holds the requestor indefinitely); and the kernel
buffers megabytes, so a request can look "sent" long before the peer has read it.

* :class:`GuardedSocket` is pynetdicom's ``AssociationSocket`` with those bounds:
  no PDU longer than :func:`pdu_limit` is read, the whole A-ASSOCIATE-AC must
  arrive within the ACSE timeout, any other PDU within the network timeout once
  it has begun, and a pending A-ABORT is never held up by a half-read PDU.
* :func:`bound_writes` gives a socket a timeout (the network timeout).
* :func:`unsent_bytes` tells how many written bytes the peer has not acknowledged
  (Linux ``SIOCOUTQ``): while that number moves the transfer is alive; while it
  is stuck the peer has stopped reading; and bytes never acknowledged cannot
  have reached the peer (so the instance was "not received", not "unknown").
* :func:`drop_connection` shuts a socket down so a blocked write returns at once.
* :func:`call_within` runs a diagnosis within what is left of a timeout.

Sources: PS3.8 9.3.1 (PDU structure), 9.3.8 (A-ABORT), D.1 (Maximum Length Received).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pynetdicom.pdu_primitives import A_ABORT, A_P_ABORT
from pynetdicom.transport import AddressInformation, AssociationSocket

if TYPE_CHECKING:  # pragma: no cover
    from pynetdicom.association import Association

try:
    import fcntl
    import termios

    _SIOCOUTQ: int | None = termios.TIOCOUTQ  # same value as SIOCOUTQ on Linux
except (ImportError, AttributeError):  # Windows
    _SIOCOUTQ = None

LOGGER = logging.getLogger(__name__)

__all__ = [
    "SLACK_S",
    "ASSOCIATE_PDU_CAP",
    "UNLIMITED_PDU_CAP",
    "GuardedSocket",
    "WireProblem",
    "pdu_limit",
    "a_abort_pdu",
    "bound_writes",
    "drop_connection",
    "unsent_bytes",
    "call_within",
]

#: Seconds a timed wait may overrun its configured timeout, diagnosis and teardown included.
SLACK_S = 1.0
#: The longest A-ASSOCIATE-RQ/AC we read (bytes): 128 contexts, role selection, extended
#: negotiation and a user identity answer fit in a few dozen KiB.
ASSOCIATE_PDU_CAP = 1024 * 1024
#: The longest P-DATA-TF we read when we advertised no maximum (0): a response is a few hundred bytes.
UNLIMITED_PDU_CAP = 16 * 1024 * 1024
_OTHER_PDU_CAP = 1024  # A-ASSOCIATE-RJ, A-RELEASE-RQ/RP, A-ABORT: 4 bytes each (PS3.8 9.3.4, 9.3.6-9.3.8)
_POLL_S = 0.2  # how often a blocked read looks for a pending A-ABORT

_T = TypeVar("_T")


def pdu_limit(pdu_type: int, our_max_pdu: int) -> int:
    """The longest PDU of `pdu_type` we accept, in bytes of its variable field (the PDU length).

    Args:
        pdu_type: 0x01..0x07 (PS3.8 9.3.1).
        our_max_pdu: the Maximum Length Received we advertised (0: no maximum), PS3.8 D.1.

    Returns:
        `our_max_pdu` for a P-DATA-TF (or :data:`UNLIMITED_PDU_CAP` when it is 0),
        :data:`ASSOCIATE_PDU_CAP` for an A-ASSOCIATE-RQ/AC, 1 KiB for the fixed-size others.
    """
    if pdu_type == 0x04:
        return our_max_pdu or UNLIMITED_PDU_CAP
    if pdu_type in (0x01, 0x02):
        return ASSOCIATE_PDU_CAP
    return _OTHER_PDU_CAP


_PDU_NAMES = {
    0x01: "A-ASSOCIATE-RQ",
    0x02: "A-ASSOCIATE-AC",
    0x03: "A-ASSOCIATE-RJ",
    0x04: "P-DATA-TF",
    0x05: "A-RELEASE-RQ",
    0x06: "A-RELEASE-RP",
    0x07: "A-ABORT",
}


def pdu_name(pdu_type: int) -> str:
    """The PDU type's name (PS3.8 Table 9-11), or its number in hex."""
    return _PDU_NAMES.get(pdu_type, f"PDU of unknown type 0x{pdu_type:02X}")


def too_long_message(pdu_type: int, length: int, our_max_pdu: int) -> str:
    """Words for a PDU longer than :func:`pdu_limit` allows."""
    limit = pdu_limit(pdu_type, our_max_pdu)
    name = pdu_name(pdu_type)
    article = "an" if name[0] in "AEIOU" else "a"
    if pdu_type == 0x04 and our_max_pdu:
        why = f"above the maximum PDU length we advertised ({our_max_pdu} bytes)"
    elif pdu_type == 0x04:
        why = f"above the {limit // 1024 // 1024} MiB we read although we advertised no maximum"
    else:
        why = f"above the {limit} bytes such a PDU may take here"
    return f"protocol error: the peer announced {article} {name} of {length} bytes, {why}"


def a_abort_pdu(source: int = 0, reason: int = 0) -> bytes:
    """An encoded A-ABORT PDU (PS3.8 9.3.8): source 0 service user, 2 service provider."""
    return struct.pack(">BBIBBBB", 0x07, 0, 4, 0, 0, source, reason)


@dataclass(frozen=True)
class WireProblem:
    """Why :class:`GuardedSocket` stopped reading.

    Attributes:
        kind: ``"timeout"`` (a deadline passed), ``"too-long"`` (a PDU above :func:`pdu_limit`),
            ``"malformed"`` (the check refused a PDU), ``"closed"`` (the peer closed the
            connection) or ``"aborted"`` (we aborted while a PDU was half read).
        message: plain words, with the real elapsed time where it matters.
        during_negotiation: it happened before the A-ASSOCIATE-AC/RJ was complete.
    """

    kind: Literal["timeout", "too-long", "malformed", "closed", "aborted"]
    message: str
    during_negotiation: bool


class GuardedSocket(AssociationSocket):
    """pynetdicom's association socket, bounded in time and size (see the module doc).

    The DUL thread reads every PDU through :meth:`recv` (6 header bytes, then the PDU's
    length): the header is checked before a byte of the body is buffered, and a read
    ends at its deadline whatever the peer trickles. On a problem the socket writes an
    A-ABORT (best effort, never blocking), shuts the connection down and returns short,
    so pynetdicom sees a closed connection (Evt17) and goes idle; the problem is kept in
    :attr:`problem` for the caller's message.

    Args:
        assoc: the association (pynetdicom creates one socket per association).
        address: the local address to bind.
        our_max_pdu: the Maximum Length Received we advertise, bytes (0: none), PS3.8 D.1.
        acse_timeout: seconds for the whole A-ASSOCIATE-AC/RJ, counted from the TCP connection.
        network_timeout: seconds for any other PDU, counted from its first byte.
        check: ``check(pdu_type, body) -> reason or None``, called on every complete PDU before
            pynetdicom decodes it; it may repair `body` (a ``bytearray``) in place without changing
            its length; a reason aborts the association (A-ABORT, reason 6).

    Attributes:
        connected_at: ``time.monotonic()`` when the TCP (and TLS) connection was made, or None.
        connect_s: seconds the connection attempt took.
        connect_error: the ``OSError`` of a failed plain TCP connect (None with TLS or on success).
        answered: a complete A-ASSOCIATE-AC or -RJ was read.
        negotiation_bytes: bytes of the peer's answer read during negotiation.
        problem: the :class:`WireProblem` that stopped reading, or None.
    """

    def __init__(
        self,
        assoc: Association,
        address: AddressInformation,
        our_max_pdu: int,
        acse_timeout: float,
        network_timeout: float,
        check: Callable[[int, bytearray], str | None] | None = None,
    ) -> None:
        super().__init__(assoc, address=address)
        self.check = check
        self.our_max_pdu = our_max_pdu
        self.acse_timeout = acse_timeout
        self.network_timeout = network_timeout
        self.connected_at: float | None = None
        self.connect_s = 0.0
        self.connect_error: OSError | None = None
        self.answered = False
        self.negotiation_bytes = 0
        self.problem: WireProblem | None = None
        self._pdu: tuple[int, int, float] | None = None  # type, length, deadline of the PDU whose body is next

    # -- connection --------------------------------------------------------------------------------

    def _create_socket(self, address: AddressInformation) -> socket.socket:
        plain = super()._create_socket(address)
        timeout = plain.gettimeout()
        traced = _TracedSocket(plain.family, plain.type, plain.proto, fileno=plain.detach())
        traced.settimeout(timeout)
        return traced

    def connect(self, primitive: Any) -> None:
        """Connect as pynetdicom does, remembering when and, for plain TCP, why it failed."""
        raw = self.socket
        started = time.monotonic()
        super().connect(primitive)
        self.connect_s = time.monotonic() - started
        if self._is_connected:
            self.connected_at = time.monotonic()
        else:
            self.connect_error = getattr(raw, "connect_error", None)

    @property
    def negotiation_deadline(self) -> float | None:
        """When the A-ASSOCIATE-AC/RJ must be complete (``time.monotonic()``), or None once answered."""
        if self.answered or self.connected_at is None:
            return None
        return self.connected_at + self.acse_timeout

    @property
    def ready(self) -> bool:
        """Whether the DUL should read (pynetdicom's check), and True once the ACSE deadline has passed.

        The DUL then reads, :meth:`recv` finds the deadline gone and ends the negotiation,
        so a silent peer costs the ACSE timeout and no more.
        """
        deadline = self.negotiation_deadline
        if deadline is not None and self.problem is None and time.monotonic() >= deadline and self.socket is not None:
            return True
        return bool(AssociationSocket.ready.fget(self))  # type: ignore[attr-defined]  # the base property

    # -- reading -----------------------------------------------------------------------------------

    def recv(self, nr_bytes: int) -> bytearray:
        """Read what the DUL asks for (a PDU header, then its body) within the bounds.

        Returns:
            the bytes; fewer than asked when the read was stopped (pynetdicom then sees a
            closed connection).
        """
        if self.socket is None or self.problem is not None:
            return bytearray()
        if self.assoc.dul.state_machine.current_state == "Sta13":
            return bytearray()  # awaiting close after an A-ABORT: nothing the peer sends matters now
        if self._pdu is None:
            return self._read_header(nr_bytes)
        return self._read_body(nr_bytes)

    def _read_header(self, nr_bytes: int) -> bytearray:
        negotiating = self.negotiation_deadline is not None
        started = time.monotonic()
        deadline = self.negotiation_deadline or started + self.network_timeout
        data, why = self._read_until(nr_bytes, deadline)
        if negotiating:
            self.negotiation_bytes += len(data)
        if why:
            self._stop(why, len(data), None, started)
            return data
        pdu_type, _, length = struct.unpack(">BBI", data)
        if pdu_type in _PDU_NAMES:
            if length > pdu_limit(pdu_type, self.our_max_pdu):
                self._fail("too-long", too_long_message(pdu_type, length, self.our_max_pdu), reason=6)
                return bytearray()
            self._pdu = (pdu_type, length, self.negotiation_deadline or time.monotonic() + self.network_timeout)
        return data

    def _read_body(self, nr_bytes: int) -> bytearray:
        assert self._pdu is not None
        pdu_type, length, deadline = self._pdu
        self._pdu = None
        negotiating = self.negotiation_deadline is not None
        started = time.monotonic()
        data, why = self._read_until(min(nr_bytes, length), deadline)
        if negotiating:
            self.negotiation_bytes += len(data)
        if why:
            self._stop(why, len(data), (pdu_type, length), started)
            return data
        reason = self.check(pdu_type, data) if self.check else None
        if reason:
            self._fail("malformed", reason, reason=6)
            return bytearray()
        if pdu_type in (0x02, 0x03):
            self.answered = True
        return data

    def _read_until(self, n: int, deadline: float) -> tuple[bytearray, str]:
        """Read `n` bytes by `deadline`; returns ``(bytes read, "" or "timeout"/"closed"/"aborted")``."""
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        sock = self.socket
        assert sock is not None
        try:
            while got < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return buf[:got], "timeout"
                if self._take_pending_abort():
                    return buf[:got], "aborted"
                sock.settimeout(min(left, _POLL_S))
                try:
                    k = sock.recv_into(view[got:], n - got)
                except TimeoutError:
                    continue
                except OSError:
                    return buf[:got], "closed"
                if not k:
                    return buf[:got], "closed"
                got += k
        finally:
            view.release()
            with contextlib.suppress(OSError):
                sock.settimeout(self.network_timeout)
        return buf, ""

    def _take_pending_abort(self) -> bool:
        """Take an A-ABORT the user queued while we wait for a PDU, and abort here.

        pynetdicom would send it only after this read ends, and by then the closed
        connection has moved its state machine to idle, where an A-ABORT request is an
        invalid event that kills the DUL thread.
        """
        queued = self.assoc.dul.to_provider_queue
        with contextlib.suppress(IndexError):
            if isinstance(queued.queue[0], (A_ABORT, A_P_ABORT)):
                queued.get_nowait()
                self._send_abort_and_close(source=0, reason=0)
                return True
        return False

    def _stop(self, why: str, got: int, pdu: tuple[int, int] | None, started: float) -> None:
        negotiating = self.negotiation_deadline is not None
        if why == "timeout" and negotiating:
            waited = time.monotonic() - (self.connected_at or started)
            if pdu:
                what = f"{got + 6} of the {pdu[1] + 6} bytes of its {pdu_name(pdu[0])} had arrived"
            else:
                what = f"{self.negotiation_bytes} bytes had arrived" if self.negotiation_bytes else "nothing had arrived"
            self._fail("timeout", f"waited {waited:.1f} s; {what}")
        elif why == "timeout":
            waited = time.monotonic() - started
            what = f"{pdu_name(pdu[0])} of {pdu[1]} bytes" if pdu else "PDU header"
            self._fail(
                "timeout",
                f"a {what} was still incomplete after {waited:.1f} s (network timeout {self.network_timeout:g} s)",
            )
        elif why == "aborted":
            self.problem = WireProblem("aborted", "aborted while a PDU was half read", negotiating)
        else:
            self.problem = WireProblem("closed", "the peer closed the connection", negotiating)

    def _fail(self, kind: Literal["timeout", "too-long", "malformed"], message: str, reason: int = 0) -> None:
        self.problem = WireProblem(kind, message, self.negotiation_deadline is not None)
        LOGGER.warning("Aborting the association: %s", message)
        self._send_abort_and_close(source=2, reason=reason)

    def _send_abort_and_close(self, source: int, reason: int) -> None:
        """Write an A-ABORT if the socket takes it at once, then shut the connection down."""
        sock = self.socket
        if sock is None:
            return
        with contextlib.suppress(OSError, ValueError):
            sock.settimeout(0.0)
            sock.send(a_abort_pdu(source, reason))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _TracedSocket(socket.socket):
    """A TCP socket that remembers why ``connect`` failed (pynetdicom only logs it)."""

    connect_error: OSError | None = None

    def connect(self, address: Any) -> None:
        try:
            super().connect(address)
        except OSError as exc:
            self.connect_error = exc
            raise


def call_within(seconds: float, fn: Callable[[], _T]) -> _T | None:
    """Run `fn` (a diagnosis) on a daemon thread and wait at most `seconds` for its result.

    Returns:
        its result, or None when it did not finish in time, raised, or `seconds` <= 0.
    """
    if seconds <= 0:
        return None
    box: list[_T] = []

    def run() -> None:
        with contextlib.suppress(Exception):
            box.append(fn())

    worker = threading.Thread(target=run, name="diagnosis", daemon=True)
    worker.start()
    worker.join(seconds)
    return box[0] if box else None


def bound_writes(sock: Any, network_timeout: float | None) -> None:
    """Give a connected socket a send/receive timeout of `network_timeout` seconds.

    pynetdicom clears the socket timeout after connecting, so a peer that stops
    reading would block the writer forever. The DUL reads only what ``select``
    reports ready, so the timeout bounds stalled writes and half-received PDUs.
    """
    if network_timeout is None or sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.settimeout(float(network_timeout))


def drop_connection(assoc: Any) -> None:
    """Shut the association's socket down so a blocked write returns at once."""
    try:
        sock = assoc.dul.socket.socket
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):
        pass


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
