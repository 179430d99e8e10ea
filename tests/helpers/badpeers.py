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
