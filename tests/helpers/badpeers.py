"""A scripted Storage SCP that misbehaves on cue, for reliability tests (and a raw TCP peer below DICOM).

Built on pynetdicom's own SCP, with hooks where a real broken PACS breaks: the
C-STORE handler (status, silence, abort after the data set) and the receive path
of the DUL thread (stop reading, slow reading, abort or close mid-transfer,
malformed PDU). Behaviour is decided per request by `script(req)` where `req`
is a :class:`Request` (association number, request number overall and on the
association, SOP Instance UID); it returns an :class:`Act`.

Acts:
    ``Act()``                        store, answer 0x0000
    ``Act(status=0xA900)``           refuse with that status
    ``Act(silent=S)``                say nothing for S seconds (then answer), DIMSE timeout on the sender
    ``Act(abort_after_data=True)``   receive the whole data set, then A-ABORT (source 2, reason 0) (c23);
                                     with ``store_first=True`` it keeps the instance before aborting
    ``Act(abort_after_kib=K)``       A-ABORT (source 2) after K KiB of the data set
    ``Act(close_after_kib=K)``       close the socket, no A-ABORT, after K KiB
    ``Act(stall_after_kib=K, stall_s=S)``  stop reading after K KiB for S s, then close (c22)
    ``Act(malformed=True)``          answer with a PDU of unknown type instead of a C-STORE-RSP
    ``Act(slow_s=D)``                sleep D seconds per P-DATA-TF PDU received (a slow peer)

The peer counts what it stored per SOP Instance UID (`seen`), records every
request, and flags fragments of a new message arriving while the previous one is
incomplete (`interleaved`, PS3.8 Annex E) and any PDV received on an
association after it stalled (`after_stall`).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.pdu import P_DATA_TF

A_ABORT_PROVIDER = bytes([0x07, 0x00, 0, 0, 0, 4, 0x00, 0x00, 0x02, 0x00])  # source 2, reason 0 (PS3.8 9.3.8)
MALFORMED_PDU = bytes([0x0B, 0x00, 0, 0, 0, 4]) + b"\xde\xad\xbe\xef"  # PDU type 0x0B does not exist


@dataclasses.dataclass(frozen=True)
class Act:
    """What the peer does with one C-STORE request (see the module doc)."""

    status: int = 0x0000
    silent: float = 0.0
    abort_after_data: bool = False
    abort_after_kib: float | None = None
    close_after_kib: float | None = None
    stall_after_kib: float | None = None
    stall_s: float = 0.0
    malformed: bool = False
    slow_s: float = 0.0
    store_first: bool = False  # with abort_after_data: the peer keeps the instance, the sender cannot know


@dataclasses.dataclass(frozen=True)
class Request:
    """One C-STORE request as the peer sees it (numbers are 1-based)."""

    assoc_no: int
    n: int
    n_on_assoc: int
    uid: str | None = None


def _affected_uid(command: bytes) -> str | None:
    """(0000,1000) Affected SOP Instance UID of an Implicit VR Little Endian command set (PS3.7 9.3.1.1)."""
    pos = 0
    while pos + 8 <= len(command):
        group, elem, length = struct.unpack_from("<HHI", command, pos)
        if (group, elem) == (0x0000, 0x1000):
            return command[pos + 8 : pos + 8 + length].rstrip(b"\0 ").decode("ascii", "replace")
        pos += 8 + length
    return None


class _AssocState:
    def __init__(self, number: int):
        self.number = number
        self.requests = 0  # messages started on this association
        self.in_dataset = False  # command complete, data set not yet
        self.in_command = False
        self.bytes = 0  # data set bytes of the current message
        self.act: Act | None = None
        self.stalled = False
        self.dead = False
        self.assoc: Any = None
        self.command = b""  # the command set received so far


class BadPeer:
    """The scripted SCP on 127.0.0.1, a free port.

    Args:
        script: ``script(Request) -> Act``; by default store everything.
        ae_title: the peer's AE title.
        rcvbuf: SO_RCVBUF of accepted sockets, bytes (small makes stalls bite sooner).
        max_pdu: the peer's maximum PDU (the sender fragments to it).
        port: the TCP port (0 = a free one).
    """

    def __init__(
        self,
        script: Callable[[Request], Act] | None = None,
        ae_title: str = "BADPEER",
        rcvbuf: int | None = None,
        max_pdu: int = 16384,
        port: int = 0,
    ):
        self.script = script or (lambda req: Act())
        self.seen: collections.Counter[str] = collections.Counter()
        self.log: list[tuple[Request, Act]] = []
        self.interleaved = 0
        self.after_stall = 0
        self.associations = 0
        self.release = threading.Event()  # ends every stall/silence early (teardown)
        self._lock = threading.Lock()
        self._state: dict[int, _AssocState] = {}
        self._requests = 0
        self._closed = False
        ae = AE(ae_title=ae_title)
        ae.add_supported_context(CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        ae.add_supported_context("1.2.840.10008.1.1")
        ae.maximum_pdu_size = max_pdu
        ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 60
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_PDU_RECV, self._on_pdu), (evt.EVT_CONN_OPEN, self._on_open)]
        self.server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
        if rcvbuf:
            self.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.port = self.server.server_address[1]

    # -- bookkeeping --------------------------------------------------------------------------------

    def _st(self, assoc: Any) -> _AssocState:
        with self._lock:
            st = self._state.get(id(assoc))
            if st is None:
                self.associations += 1
                st = self._state[id(assoc)] = _AssocState(self.associations)
                st.assoc = assoc  # held, so that its id() is not reused by a later association
            return st

    def _on_open(self, event: Any) -> None:
        self._st(event.assoc)

    @staticmethod
    def _raw(assoc: Any) -> socket.socket | None:
        return getattr(getattr(assoc.dul, "socket", None), "socket", None)

    def _kill(self, assoc: Any, st: _AssocState, data: bytes = b"") -> None:
        st.dead = True
        sock = self._raw(assoc)
        if sock is None:
            return
        try:
            if data:
                sock.sendall(data)
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- the receive path (SCP's DUL thread) ----------------------------------------------------------

    def _on_pdu(self, event: Any) -> None:
        pdu = event.pdu
        if not isinstance(pdu, P_DATA_TF):
            return
        st = self._st(event.assoc)
        if st.stalled:
            self.after_stall += 1
        for item in pdu.presentation_data_value_items:
            header = item.presentation_data_value[0]
            is_command, is_last = bool(header & 1), bool(header & 2)
            if is_command:
                if st.in_dataset:
                    self.interleaved += 1  # a new message began before the data set ended
                if not st.in_command:
                    st.requests += 1
                    st.command = b""
                    st.bytes = 0
                st.command += item.presentation_data_value[1:]
                if is_last:  # the whole command set: decide, knowing the SOP Instance UID
                    with self._lock:
                        self._requests += 1
                        n = self._requests
                    st.act = self.script(Request(st.number, n, st.requests, _affected_uid(st.command)))
                st.in_command = not is_last
                st.in_dataset = is_last
            else:
                st.bytes += len(item.presentation_data_value) - 1
                if is_last:
                    st.in_dataset = False
        act = st.act
        if act is None or st.dead:
            return
        kib = st.bytes / 1024
        if act.slow_s:
            time.sleep(act.slow_s)
        if act.abort_after_kib is not None and st.in_dataset and kib >= act.abort_after_kib:
            self._kill(event.assoc, st, A_ABORT_PROVIDER)
        elif act.close_after_kib is not None and st.in_dataset and kib >= act.close_after_kib:
            self._kill(event.assoc, st)
        elif act.stall_after_kib is not None and st.in_dataset and kib >= act.stall_after_kib and not st.stalled:
            st.stalled = True
            self.release.wait(act.stall_s)  # the DUL thread stops reading: the TCP window fills
            self._kill(event.assoc, st)

    # -- the C-STORE handler (SCP's association thread) -----------------------------------------------

    def _on_store(self, event: Any) -> int:
        st = self._st(event.assoc)
        uid = str(event.request.AffectedSOPInstanceUID)
        act = st.act or Act()
        req = Request(st.number, self._requests, st.requests, uid)
        with self._lock:
            self.log.append((req, act))
        if act.abort_after_data:
            if act.store_first:
                with self._lock:
                    self.seen[uid] += 1
            self._kill(event.assoc, st, A_ABORT_PROVIDER)
            return 0xC000  # never delivered
        if act.malformed:
            self._kill(event.assoc, st, MALFORMED_PDU)
            return 0xC000
        if act.silent:
            self.release.wait(act.silent)
            if st.dead or not event.assoc.is_established:
                return 0xC000
        if act.status in (0x0000, 0xB000, 0xB006, 0xB007):
            with self._lock:
                self.seen[uid] += 1
        return act.status

    def close(self) -> None:
        """Release every stall and stop the server."""
        self.release.set()
        if not self._closed:
            self._closed = True
            self.server.shutdown()

    def __enter__(self) -> BadPeer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class RawTCPPeer:
    """A TCP peer below DICOM on 127.0.0.1, a free port: it accepts connections and then says nothing
    (``"silent"``) or answers the first bytes it reads with garbage that is no PDU (``"garbage"``)."""

    def __init__(self, behaviour: str = "silent") -> None:
        self.behaviour = behaviour
        self.conns: list[socket.socket] = []
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port: int = self.srv.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)
            if self.behaviour == "garbage":
                try:
                    c.recv(65536)
                    c.sendall(b"\x42\x00garbage that is no PDU at all")
                except OSError:
                    pass

    def close(self) -> None:
        """Stop listening and close every accepted connection."""
        self.srv.close()
        for c in self.conns:
            c.close()

    def __enter__(self) -> RawTCPPeer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def make_ct(folder: Any, n: int, size: int = 32, tag: str = "badpeers", first: int = 1) -> list[str]:
    """Write `n` CT images (size x size, 16 bit, Explicit VR LE) to `folder`; return their paths in order.

    Instance numbers start at `first`; UIDs derive from `tag` and the number, so they are stable.
    """
    import pathlib

    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(first, first + n):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[tag, "sop", str(number)])
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.PatientName = "TEST^PATIENT"
        ds.PatientID = "TEST-REL"
        ds.StudyInstanceUID = generate_uid(entropy_srcs=[tag, "study"])
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=[tag, "series"])
        ds.InstanceNumber = number
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = ((np.arange(size * size, dtype=np.uint32) * 7 + number * 13) % 4096).astype("<u2").tobytes()
        path = folder / f"ct_{number:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(str(path))
    return paths


# -- a storage SCP on raw sockets, scripted at the PDU level (PS3.8 9.3) ----------------------------------

IMPLICIT_LE = "1.2.840.10008.1.2"
VERIFICATION = "1.2.840.10008.1.1"
_APP_CONTEXT = b"1.2.840.10008.3.1.1.1"  # DICOM Application Context Name (PS3.7 A.2.1)


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def _pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


@dataclasses.dataclass
class AssociateRQ:
    """The parts of an A-ASSOCIATE-RQ a scripted SCP answers (PS3.8 9.3.2)."""

    called_ae: bytes
    calling_ae: bytes
    contexts: list[tuple[int, str, list[str]]]  # (context ID, abstract syntax, transfer syntaxes)
    max_pdu: int


def parse_associate_rq(body: bytes) -> AssociateRQ:
    """Decode the variable part of an A-ASSOCIATE-RQ (after the 6-byte PDU header)."""
    called, calling = body[4:20], body[20:36]
    contexts: list[tuple[int, str, list[str]]] = []
    max_pdu = 0
    pos = 68
    while pos + 4 <= len(body):
        item_type, _, length = struct.unpack_from(">BBH", body, pos)
        value = body[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if item_type == 0x20:
            cid, abstract, syntaxes = value[0], "", []
            sub = 4
            while sub + 4 <= len(value):
                st, _, sl = struct.unpack_from(">BBH", value, sub)
                text = value[sub + 4 : sub + 4 + sl].rstrip(b"\0 ").decode("ascii")
                if st == 0x30:
                    abstract = text
                elif st == 0x40:
                    syntaxes.append(text)
                sub += 4 + sl
            contexts.append((cid, abstract, syntaxes))
        elif item_type == 0x50:
            sub = 0
            while sub + 4 <= len(value):
                st, _, sl = struct.unpack_from(">BBH", value, sub)
                if st == 0x51:
                    (max_pdu,) = struct.unpack_from(">I", value, sub + 4)
                sub += 4 + sl
    return AssociateRQ(called, calling, contexts, max_pdu)


#: ``decide(context_id, abstract_syntax, transfer_syntaxes) -> (result, transfer syntax or None)``
Decide = Callable[[int, str, list[str]], tuple[int, str | None]]


def accept_syntaxes(accepted: dict[str, tuple[str, ...]]) -> Decide:
    """A context decision: accept the first proposed syntax listed for the abstract syntax (result 0),
    else reject with 4 (transfer syntaxes not supported) or 3 (abstract syntax not supported)."""

    def decide(cid: int, abstract: str, syntaxes: list[str]) -> tuple[int, str | None]:
        if abstract not in accepted:
            return 3, None
        for ts in syntaxes:
            if ts in accepted[abstract]:
                return 0, ts
        return 4, None

    return decide


def build_associate_ac(
    rq: AssociateRQ,
    decide: Decide,
    max_pdu: int = 16384,
    impl_uid: bytes = b"1.2.826.0.1.3680043.9.3811.99",
    version_name: bytes = b"RAWSCP",
    ae_fields: tuple[bytes, bytes] | None = None,
    rejected_ts_subitem: bool = True,
) -> bytes:
    """Encode an A-ASSOCIATE-AC answering `rq` (PS3.8 9.3.3), with the oddities a test needs.

    Args:
        rq: the request.
        decide: the result (and accepted syntax) per context.
        max_pdu: our Maximum Length Received (PS3.8 D.1), any value 0..2**32-1.
        impl_uid: the Implementation Class UID bytes as sent (a trailing NUL is allowed here).
        version_name: the Implementation Version Name bytes as sent (b"" leaves the sub-item out).
        ae_fields: the called and calling AE title fields (16 bytes each); default: echo the request's.
        rejected_ts_subitem: False: a rejected context item is 4 bytes, with no Transfer Syntax sub-item.
    """
    called, calling = ae_fields or (rq.called_ae, rq.calling_ae)
    items = [_item(0x10, _APP_CONTEXT)]
    for cid, abstract, syntaxes in rq.contexts:
        result, ts = decide(cid, abstract, syntaxes)
        head = bytes([cid, 0, result, 0])
        if result == 0 and ts is None:  # a malformed AC on purpose
            items.append(_item(0x21, head))
        elif result == 0 or rejected_ts_subitem:
            items.append(_item(0x21, head + _item(0x40, (ts or syntaxes[0]).encode("ascii"))))
        else:
            items.append(_item(0x21, head))
    user = _item(0x51, struct.pack(">I", max_pdu)) + _item(0x52, impl_uid)
    if version_name:
        user += _item(0x55, version_name)
    items.append(_item(0x50, user))
    body = struct.pack(">HH", 1, 0) + called + calling + bytes(32) + b"".join(items)
    return _pdu(0x02, body)


def command_fields(data: bytes) -> dict[int, bytes]:
    """Split an Implicit VR Little Endian command set into ``{tag: value}`` (PS3.7 6.3.1)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        out[(group << 16) | elem] = data[pos + 8 : pos + 8 + length]
        pos += 8 + length
    return out


def _us(value: int) -> bytes:
    return struct.pack("<H", value)


def _text(value: bytes) -> bytes:
    return value + b"\0" if len(value) % 2 else value


def encode_response(request: dict[int, bytes], status: int = 0x0000) -> bytes:
    """The C-STORE-RSP or C-ECHO-RSP command set answering `request` (PS3.7 9.3.1.2, 9.3.5.2)."""
    command = int.from_bytes(request.get(0x00000100, b"\x01\x00")[:2], "little")
    elems = [(0x0002, _text(request.get(0x00000002, b"").rstrip(b"\0")))]
    elems += [(0x0100, _us(command | 0x8000)), (0x0120, request.get(0x00000110, b"\0\0")[:2]), (0x0800, _us(0x0101))]
    elems.append((0x0900, _us(status)))
    if 0x00001000 in request:
        elems.append((0x1000, _text(request[0x00001000].rstrip(b"\0"))))
    body = b"".join(struct.pack("<HHI", 0, e, len(v)) + v for e, v in elems)
    return struct.pack("<HHI", 0, 0, 4) + struct.pack("<I", len(body)) + body


@dataclasses.dataclass
class Message:
    """One DIMSE request as a :class:`RawSCP` received it."""

    context_id: int
    command: dict[int, bytes]
    dataset: bytes
    assoc_no: int
    n: int  # 1-based over the peer's life

    @property
    def uid(self) -> str:
        return self.command.get(0x00001000, b"").rstrip(b"\0").decode("ascii")


def pdata_pdu(context_id: int, header: int, data: bytes) -> bytes:
    """One P-DATA-TF PDU holding one PDV (PS3.8 9.3.5, E.2)."""
    return _pdu(0x04, struct.pack(">IBB", len(data) + 2, context_id, header) + data)


class RawSCP:
    """A storage SCP on raw sockets on 127.0.0.1, a free port, scripted at the PDU level.

    Unlike :class:`BadPeer` (pynetdicom underneath), every byte it sends is chosen by the test:
    an odd A-ASSOCIATE-AC, a dripping one, a PDU announced as 4 GB and filled with zeros, a late
    or missing C-STORE-RSP, a connection closed when a PDU mixes command and data set PDVs (c29).

    Args:
        decide: the presentation context decision (default: CT Image Storage and Verification in
            Explicit or Implicit VR Little Endian).
        max_pdu: the Maximum Length Received in our A-ASSOCIATE-AC, bytes.
        on_associate: ``"accept"``, ``"silent"`` (accept TCP, never answer), ``"drip"`` (send the
            A-ASSOCIATE-AC one byte every `drip_s` seconds), ``"huge"`` (announce an A-ASSOCIATE-AC of
            `huge_length` bytes and stream zeros), ``"close"`` (close at once).
        ac: ``ac(AssociateRQ) -> bytes``: the A-ASSOCIATE-AC to send (default :func:`build_associate_ac`).
        respond: ``respond(Message) -> act`` where act is a status int, ``("late", seconds, status)``,
            ``("drip", seconds, status)`` (the response PDU one byte every `seconds`), ``"silent"``,
            ``"close"`` or ``"huge"`` (a response PDU announced as `huge_length` bytes, then zeros);
            default 0x0000. C-ECHO requests go through it too.
        close_on_mixed: close the connection (no A-ABORT, no response) when one P-DATA-TF carries PDVs of
            both the command and the data set, or of two messages (c29).
        close_after_bytes: close the connection (no A-ABORT, no response) once a message's data set has
            reached this many bytes (a peer that drops the connection in the middle of a message).
        rcvbuf: SO_RCVBUF of the listening socket, bytes (small: the sender is still writing when it closes).
        on_release: ``"reply"`` (A-RELEASE-RP), ``"silent"`` (never answer) or ``"drip"`` (the A-RELEASE-RP
            one byte every `drip_s` seconds).
        drip_s: seconds between bytes with ``on_associate="drip"``.
        huge_length: the announced PDU length of ``"huge"``.
        huge_cap: bytes of zeros streamed at most.

    Attributes:
        pdus: for every P-DATA-TF received, ``(association no, PDU length, [(context ID, control header, PDV length)])``.
        messages: every complete request.
        streamed: bytes of zeros sent by ``"huge"``.
        closed_mixed: how many connections were closed for a mixed PDU.
        closed_mid_message: how many connections were closed by `close_after_bytes`.
        aborts: A-ABORT PDUs received after the A-ASSOCIATE-AC.
        connections: TCP connections accepted.
    """

    def __init__(
        self,
        decide: Decide | None = None,
        max_pdu: int = 16384,
        on_associate: str = "accept",
        ac: Callable[[AssociateRQ], bytes] | None = None,
        respond: Callable[[Message], Any] | None = None,
        close_on_mixed: bool = False,
        close_after_bytes: int | None = None,
        rcvbuf: int | None = None,
        on_release: str = "reply",
        drip_s: float = 2.0,
        huge_length: int = 0xFFFFFFF0,
        huge_cap: int = 3 * 1024**3,
    ) -> None:
        both = (ExplicitVRLittleEndian, IMPLICIT_LE)
        self.decide = decide or accept_syntaxes({CTImageStorage: both, VERIFICATION: both})
        self.max_pdu = max_pdu
        self.on_associate = on_associate
        self.ac = ac
        self.respond = respond or (lambda msg: 0x0000)
        self.close_on_mixed = close_on_mixed
        self.close_after_bytes = close_after_bytes
        self.on_release = on_release
        self.drip_s = drip_s
        self.huge_length = huge_length
        self.huge_cap = huge_cap
        self.pdus: list[tuple[int, int, list[tuple[int, int, int]]]] = []
        self.messages: list[Message] = []
        self.streamed = 0
        self.closed_mixed = 0
        self.closed_mid_message = 0
        self.aborts = 0
        self.connections = 0
        self.stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.srv = socket.socket()
        if rcvbuf:
            self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port: int = self.srv.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            if self.stop.is_set():
                conn.close()
                return
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
                number = self.connections
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._run, args=(conn, number), daemon=True).start()

    # -- one connection ------------------------------------------------------------------------------

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = conn.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return bytes(buf)

    def _read_pdu(self, conn: socket.socket) -> tuple[int, bytes]:
        pdu_type, _, length = struct.unpack(">BBI", self._read(conn, 6))
        return pdu_type, self._read(conn, length)

    def _stream_zeros(self, conn: socket.socket, pdu_type: int) -> None:
        conn.sendall(struct.pack(">BBI", pdu_type, 0, self.huge_length))
        block = bytes(1 << 20)
        while self.streamed < min(self.huge_cap, self.huge_length) and not self.stop.is_set():
            conn.sendall(block)
            self.streamed += len(block)

    def _run(self, conn: socket.socket, number: int) -> None:
        try:
            with conn:
                self._session(conn, number)
        except (OSError, ConnectionError, struct.error):
            pass

    def _session(self, conn: socket.socket, number: int) -> None:
        if self.on_associate == "close":
            return
        pdu_type, body = self._read_pdu(conn)
        if pdu_type != 0x01:
            return
        if self.on_associate == "silent":
            self.stop.wait()
            return
        if self.on_associate == "huge":
            self._stream_zeros(conn, 0x02)
            return
        rq = parse_associate_rq(body)
        ac = self.ac(rq) if self.ac else build_associate_ac(rq, self.decide, self.max_pdu)
        if self.on_associate == "drip":
            for i in range(len(ac)):
                if self.stop.wait(self.drip_s if i else 0):
                    return
                conn.sendall(ac[i : i + 1])
        else:
            conn.sendall(ac)
        self._dimse(conn, number)

    def _dimse(self, conn: socket.socket, number: int) -> None:
        command, dataset = bytearray(), bytearray()
        while not self.stop.is_set():
            pdu_type, body = self._read_pdu(conn)
            if pdu_type == 0x05:  # A-RELEASE-RQ
                self._release(conn)
                return
            if pdu_type == 0x07:
                self.aborts += 1
            if pdu_type != 0x04:
                return
            pdvs: list[tuple[int, int, bytes]] = []
            pos = 0
            while pos + 6 <= len(body):
                (length,) = struct.unpack_from(">I", body, pos)
                pdvs.append((body[pos + 4], body[pos + 5], body[pos + 6 : pos + 4 + length]))
                pos += 4 + length
            self.pdus.append((number, len(body), [(cid, header, len(data) + 2) for cid, header, data in pdvs]))
            kinds = {header & 1 for _, header, _ in pdvs}
            if self.close_on_mixed and (len(kinds) > 1 or sum(1 for _, h, _ in pdvs if h & 2) > 1):
                self.closed_mixed += 1
                conn.shutdown(socket.SHUT_RDWR)
                return
            for cid, header, data in pdvs:
                (command if header & 1 else dataset).extend(data)
                if self.close_after_bytes is not None and len(dataset) >= self.close_after_bytes:
                    self.closed_mid_message += 1
                    conn.close()
                    return
                last_command = header & 3 == 3 and not self._has_dataset(command)
                if last_command or header & 3 == 2:
                    self._finish(conn, cid, number, command, dataset)
                    command, dataset = bytearray(), bytearray()

    def _release(self, conn: socket.socket) -> None:
        rp = _pdu(0x06, bytes(4))
        if self.on_release == "silent":
            self.stop.wait()
        elif self.on_release == "drip":
            for i in range(len(rp)):
                if self.stop.wait(self.drip_s):
                    return
                conn.sendall(rp[i : i + 1])
        else:
            conn.sendall(rp)

    @staticmethod
    def _has_dataset(command: bytes | bytearray) -> bool:
        return command_fields(bytes(command)).get(0x00000800, b"\x01\x01")[:2] != b"\x01\x01"

    def _finish(self, conn: socket.socket, cid: int, number: int, command: bytearray, dataset: bytearray) -> None:
        with self._lock:
            msg = Message(cid, command_fields(bytes(command)), bytes(dataset), number, len(self.messages) + 1)
            self.messages.append(msg)
        act = self.respond(msg)
        if act == "silent":
            self.stop.wait()
            return
        if act == "close":
            conn.shutdown(socket.SHUT_RDWR)
            return
        if act == "huge":
            self._stream_zeros(conn, 0x04)
            return
        if isinstance(act, tuple) and act[0] == "late":
            if self.stop.wait(act[1]):
                return
            act = act[2]
        if isinstance(act, tuple) and act[0] == "drip":
            pdu = pdata_pdu(cid, 0x03, encode_response(msg.command, int(act[2])))
            for i in range(len(pdu)):
                if self.stop.wait(act[1]):
                    return
                conn.sendall(pdu[i : i + 1])
            return
        conn.sendall(pdata_pdu(cid, 0x03, encode_response(msg.command, int(act))))

    def close(self) -> None:
        """Stop serving and close every connection."""
        self.stop.set()
        with contextlib.suppress(OSError):
            self.srv.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (a plain close would not)
        self.srv.close()
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.close()

    def __enter__(self) -> RawSCP:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class NeverAcceptingPeer:
    """A listening socket whose accept queue is full: a SYN to it is dropped, so a connect hangs.

    Holds a few connections that are never accepted (Linux drops SYNs when the backlog is full).
    """

    def __init__(self) -> None:
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(0)
        self.port: int = self.srv.getsockname()[1]
        self.fillers: list[socket.socket] = []
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", self.port))
            self.fillers.append(s)
        time.sleep(0.2)

    def close(self) -> None:
        """Close the fillers and the listening socket."""
        for s in self.fillers:
            s.close()
        self.srv.close()

    def __enter__(self) -> NeverAcceptingPeer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
