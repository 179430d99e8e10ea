"""Input scanning: files, folders (recursive) and DICOMDIR, read header-only.

Every input file becomes one :class:`ScannedInstance`, in scan order, with
``status``:

* ``"ok"``       readable; may carry ``notes`` about safe inferences (no File Meta,
                 SOP Class UID taken from (0002,0002), odd-length value to pad...).
* ``"skipped"``  not a DICOM file (text, image, empty) or a DICOMDIR index.
* ``"failure"``  a DICOM file that cannot be sent: truncated, missing UIDs, a
                 transfer syntax that contradicts the encoding beyond repair.

Reading stops short of large values (``defer_size``): values above 256 bytes are
skipped by seeking, so a 0.5 MB CT costs about the same as a 2 KB file. No file
is ever modified. Sources: PS3.10 7.1 (File Meta), PS3.5 7.1 (element encoding),
PS3.3 F (DICOMDIR).
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .fastheader import FastHeader, read_fast_header

LOGGER = logging.getLogger(__name__)

__all__ = ["ScannedInstance", "scan_paths", "iter_files", "read_instance", "MEDIA_STORAGE_DIRECTORY"]

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_UNDEFINED = 0xFFFFFFFF
_DEFER = 256
_PIXEL_DATA = 0x7FE00010


@dataclass(frozen=True)
class ScannedInstance:
    """One input file as seen by the scanner (header only).

    Attributes:
        path: the file's path as given or found.
        status: ``"ok"``, ``"skipped"`` or ``"failure"``.
        reason: why it is skipped or failed (empty when ok).
        notes: safe inferences and findings to state in the report.
        sop_class_uid / sop_instance_uid / transfer_syntax: UIDs (transfer
            syntax as stored, or as inferred when ``needs_rewrite``).
        needs_rewrite: the file cannot be streamed byte-for-byte (no File Meta,
            odd-length value, missing (0008,0016), encoding mismatch).
        size: file size in bytes.
        duplicate_of: index of an earlier input with the same SOP Instance UID.
    """

    path: str
    status: str = "ok"
    reason: str = ""
    notes: tuple[str, ...] = ()
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    transfer_syntax: str = ""
    needs_rewrite: bool = False
    size: int = 0
    patient_name: str = ""
    patient_id: str = ""
    study_instance_uid: str = ""
    study_date: str = ""
    study_description: str = ""
    series_instance_uid: str = ""
    series_description: str = ""
    series_number: str = ""
    modality: str = ""
    instance_number: str = ""
    index: int = 0
    duplicate_of: int | None = None
    fix_sop_class: bool = False
    pad_tags: tuple[int, ...] = field(default=())
    data_offset: int = 0
    mtime_ns: int = 0  # st_mtime_ns when scanned (0: unknown); the send checks the file did not change since

    @property
    def sendable(self) -> bool:
        """True when the file is a readable DICOM instance."""
        return self.status == "ok"

    @property
    def sop_class_name(self) -> str:
        """The SOP class's name from pydicom's dictionary, or the UID."""
        return UID(self.sop_class_uid).name if self.sop_class_uid else ""

    @property
    def transfer_syntax_name(self) -> str:
        """The transfer syntax's name, or the UID."""
        return UID(self.transfer_syntax).name if self.transfer_syntax else ""


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """Yield regular files under `paths` (files as given, folders recursively, sorted).

    DICOMDIR files are yielded too; :func:`scan_paths` expands them.
    """
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    yield os.path.join(root, name)
        else:
            yield p


def scan_paths(
    paths: Iterable[str | os.PathLike[str]],
    on_instance: Callable[[ScannedInstance], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[ScannedInstance]:
    """Scan files, folders and DICOMDIRs into one record per file, in scan order.

    Args:
        paths: files and/or folders.
        on_instance: called with each record as soon as it is made (any thread).
        cancel: when set, scanning stops after the current file.

    Returns:
        list of :class:`ScannedInstance`; ``index`` is the position in the list.
        Files referenced by a DICOMDIR follow it; a file met twice is listed once.
    """
    out: list[ScannedInstance] = []
    seen_paths: set[tuple[int, int] | str] = set()
    seen_uids: dict[str, int] = {}
    pending = list(iter_files(paths))
    pending.reverse()
    while pending:
        if cancel is not None and cancel.is_set():
            break
        path = pending.pop()
        try:
            st = os.stat(path)
            key: tuple[int, int] | str = (st.st_dev, st.st_ino)
        except OSError:
            key = os.path.abspath(path)
        if key in seen_paths:
            continue
        seen_paths.add(key)
        inst = read_instance(path)
        if inst.status == "skipped" and inst.sop_class_uid == MEDIA_STORAGE_DIRECTORY:
            refs = _dicomdir_files(path)
            inst = replace(inst, reason=f"DICOMDIR index: its {len(refs)} referenced file(s) were added to the list")
            pending.extend(reversed(refs))
        object.__setattr__(inst, "index", len(out))  # a fresh record: cheaper than dataclasses.replace
        if inst.status == "ok" and inst.sop_instance_uid:
            first = seen_uids.setdefault(inst.sop_instance_uid, inst.index)
            if first != inst.index:
                inst = replace(
                    inst,
                    duplicate_of=first,
                    notes=(
                        *inst.notes,
                        f"duplicate SOP Instance UID: the same UID as {out[first].path} (the PACS keeps one of them)",
                    ),
                )
        out.append(inst)
        if on_instance is not None:
            on_instance(inst)
    return out


def _dicomdir_files(path: str) -> list[str]:
    """Return the files a DICOMDIR references (PS3.3 F.5, Referenced File ID)."""
    try:
        ds = pydicom.dcmread(path, force=True)
        base = os.path.dirname(path)
        files = []
        for rec in ds.get("DirectoryRecordSequence", []):
            ref = rec.get("ReferencedFileID")
            if ref:
                parts = [ref] if isinstance(ref, str) else list(ref)
                files.append(os.path.join(base, *parts))
        return files
    except Exception as exc:  # a broken DICOMDIR must not stop the scan
        LOGGER.warning("Cannot read DICOMDIR %s: %s", path, exc)
        return []


def _looks_like_bare_dataset(head: bytes) -> bool:
    """True when `head` starts like a data set without preamble (PS3.5 7.1).

    Accepts group 0x0008 (or 0x0002) little endian with either an explicit VR
    (two upper-case letters) or a plausible implicit length.
    """
    if len(head) < 8:
        return False
    vr = head[4:6]
    explicit = vr.isalpha() and vr.isupper()
    orders: tuple[Literal["little", "big"], ...] = ("little", "big")
    for order in orders:
        group = int.from_bytes(head[0:2], order)
        elem = int.from_bytes(head[2:4], order)
        if group in (0x0002, 0x0008) and elem <= 0x0020:
            return explicit or (order == "little" and int.from_bytes(head[4:8], "little") < 1024)
    return False


class _ClampedReader(io.BufferedReader):
    """A file reader whose ``read(n)`` never asks for more than the file still holds.

    pydicom reads a value with ``read(declared length)`` where it does not defer
    (inside sequence items, for one); a hostile length such as 0x7FFFFFFF would
    allocate that much before reading the few bytes left.
    """

    def __init__(self, raw: io.RawIOBase, size: int):
        super().__init__(raw)
        self._size = size

    @classmethod
    def open(cls, path: str, size: int) -> _ClampedReader:
        return cls(io.FileIO(path, "rb"), size)

    def read(self, n: int | None = -1) -> bytes:
        if n is not None and n > 0:
            n = min(n, max(0, self._size - self.tell()))
            if n == 0:
                return b""
        return super().read(n)


def read_instance(path: str) -> ScannedInstance:
    """Read one file's header and classify it (never raises for a bad file).

    Returns:
        a :class:`ScannedInstance`; ``status`` says whether it can be sent; ``mtime_ns`` is the
        file's modification time before it was read (a change while it is read shows later).
    """
    try:
        mtime_ns = os.stat(path).st_mtime_ns
    except OSError:
        mtime_ns = 0
    rec = _read_instance(path)
    object.__setattr__(rec, "mtime_ns", mtime_ns)  # a fresh record: cheaper than dataclasses.replace
    return rec


def _read_instance(path: str) -> ScannedInstance:
    fast: FastHeader | None = None
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
            return ScannedInstance(path, "skipped", "not a regular file (a pipe, device or socket)")
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(140)
            has_dicm = len(head) >= 132 and head[128:132] == b"DICM"
            if has_dicm:
                fast = read_fast_header(f, size)
    except OSError as exc:
        return ScannedInstance(path, "failure", f"cannot read the file: {exc.strerror or exc}")
    if size == 0:
        return ScannedInstance(path, "skipped", "not a DICOM file (empty)", size=size)
    if has_dicm and fast is not None:
        try:
            return _classify_fast(path, fast, size)
        except (UnicodeDecodeError, ValueError):
            pass  # let pydicom judge the values
    if not has_dicm and not _looks_like_bare_dataset(head):
        return ScannedInstance(path, "skipped", "not a DICOM file (no 'DICM' marker and no data set found)", size=size)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with _ClampedReader.open(path, size) as fp:
                ds = pydicom.dcmread(fp, force=not has_dicm, defer_size=_DEFER)
            ds.fileobj_type = lambda name, mode="rb": _ClampedReader.open(name, size)  # deferred reads too
            if len(ds) == 0 and not has_dicm:
                return ScannedInstance(path, "skipped", "not a DICOM file (no data set found)", size=size)
    except InvalidDicomError as exc:
        return ScannedInstance(path, "skipped", f"not a DICOM file ({exc})", size=size)
    except Exception as exc:  # pydicom raises many types for broken files
        return ScannedInstance(path, "failure", f"unreadable DICOM file: {type(exc).__name__}: {exc}", size=size)
    try:
        return _classify(path, ds, size, has_dicm, [str(w.message) for w in caught])
    except Exception as exc:  # a value that cannot be decoded
        return ScannedInstance(path, "failure", f"unreadable DICOM file: {type(exc).__name__}: {exc}", size=size)


def _text(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword, "")
    except Exception:
        return ""
    return "" if value is None else str(value)


def _encoding_syntax(ds: Dataset) -> UID:
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _classify(path: str, ds: Dataset, size: int, has_dicm: bool, warns: list[str]) -> ScannedInstance:
    notes: list[str] = []
    rewrite = False
    meta = getattr(ds, "file_meta", None) or Dataset()
    base = ScannedInstance(path, size=size)

    media_class = _text(meta, "MediaStorageSOPClassUID")
    if media_class == MEDIA_STORAGE_DIRECTORY:
        return replace(base, status="skipped", reason="DICOMDIR index", sop_class_uid=media_class)

    ts = _text(meta, "TransferSyntaxUID")
    encoding = _encoding_syntax(ds)
    if not ts:
        ts = str(encoding)
        rewrite = True
        notes.append(f"no File Meta Information; transfer syntax inferred as {UID(ts).name}")
    elif not UID(ts).is_transfer_syntax:
        return replace(base, status="failure", reason=f"unknown transfer syntax UID '{ts}' in (0002,0010)")
    elif not UID(ts).is_encapsulated and UID(ts) != encoding and not UID(ts).is_deflated:
        notes.append(f"(0002,0010) says {UID(ts).name} but the data set is encoded as {encoding.name}; sent as {encoding.name}")
        ts = str(encoding)
        rewrite = True

    problem, pads = _check_elements(ds, size, UID(ts))
    warn_notes = [f"pydicom: {w.split(' - ')[0]}" for w in warns if "Expected explicit VR" in w or "Expected implicit VR" in w]
    texts = {kw: _text(ds, kw) for kw in _TEXT_FIELDS}
    return _record(
        path,
        size,
        ts,
        media_class,
        _text(ds, "SOPClassUID"),
        _text(ds, "SOPInstanceUID"),
        notes + warn_notes,
        rewrite or not has_dicm,
        problem,
        pads,
        texts,
    )


_TEXT_FIELDS = (
    "PatientName",
    "PatientID",
    "StudyInstanceUID",
    "StudyDate",
    "StudyDescription",
    "SeriesInstanceUID",
    "SeriesDescription",
    "SeriesNumber",
    "Modality",
    "InstanceNumber",
)


def _classify_fast(path: str, fast: FastHeader, size: int) -> ScannedInstance:
    media_class = fast.meta.get("MediaStorageSOPClassUID", "")
    if media_class == MEDIA_STORAGE_DIRECTORY:
        return ScannedInstance(path, "skipped", "DICOMDIR index", size=size, sop_class_uid=media_class)
    charset = fast.values.get("SpecificCharacterSet", b"").decode("ascii", "replace").strip(" \0")
    texts = {kw: _decode(fast.values.get(kw, b""), charset, kw) for kw in _TEXT_FIELDS}
    uid = {kw: fast.values.get(kw, b"").rstrip(b"\0 ").decode("ascii") for kw in ("SOPClassUID", "SOPInstanceUID")}
    problem = fast.problem or _pixel_problem(fast)
    rec = _record(
        path,
        size,
        fast.meta["TransferSyntaxUID"],
        media_class,
        uid["SOPClassUID"],
        uid["SOPInstanceUID"],
        [],
        False,
        problem,
        fast.odd_tags,
        texts,
    )
    if rec.status == "ok":
        object.__setattr__(rec, "data_offset", fast.offset)  # a fresh record: cheaper than dataclasses.replace
    return rec


def _us(raw: bytes | None) -> int:
    return int.from_bytes(raw[:2], "little") if raw and len(raw) >= 2 else 0


def _pixel_problem(fast: FastHeader) -> str:
    """Native Pixel Data that cannot be what (0002,0010) says (PS3.5 8.1.1, 8.2)."""
    ts = fast.meta.get("TransferSyntaxUID", "")
    if fast.pixel_length is None or ts not in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"):
        return ""
    if fast.pixel_head == b"\xfe\xff\x00\xe0":
        return (
            f"Pixel Data (7FE0,0010) holds encapsulated (compressed) fragments but (0002,0010) says "
            f"{UID(ts).name}: the transfer syntax contradicts the encoding"
        )
    v = fast.values
    rows, cols, bits = _us(v.get("Rows")), _us(v.get("Columns")), _us(v.get("BitsAllocated"))
    spp = _us(v.get("SamplesPerPixel")) or 1
    try:
        frames = int((v.get("NumberOfFrames") or b"1").strip(b" \0") or 1)
    except ValueError:
        frames = 1
    if not (rows and cols and bits):
        return ""
    spp = 2 if spp == 3 else spp  # YBR_FULL_422 stores 2 samples a pixel: the least a 3-sample image needs
    need = (rows * cols * frames * spp + 7) // 8 if bits == 1 else rows * cols * frames * spp * (bits // 8)
    if fast.pixel_length < need:
        return (
            f"Pixel Data (7FE0,0010) is {fast.pixel_length} bytes but Rows x Columns x Samples x Frames x "
            f"Bits Allocated need {need}: truncated, or compressed while (0002,0010) says {UID(ts).name}"
        )
    return ""


def _decode(raw: bytes, charset: str, keyword: str) -> str:
    if not raw:
        return ""
    if keyword == "PatientName" and charset and charset not in ("ISO_IR 100", "ISO_IR 6"):
        from pydicom.charset import convert_encodings, decode_bytes

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return decode_bytes(raw, convert_encodings(charset.split("\\")), set()).rstrip(" \0")
    return raw.decode("latin-1").rstrip(" \0")


def _record(
    path: str,
    size: int,
    ts: str,
    media_class: str,
    sop_class: str,
    sop_inst: str,
    notes: list[str],
    rewrite: bool,
    problem: str,
    pads: list[int],
    texts: dict[str, str],
) -> ScannedInstance:
    """Build the scanner's record from what either reader found (the checks live here)."""
    base = ScannedInstance(path, size=size, transfer_syntax=ts)
    fix_class = False
    if not sop_class:
        if media_class:
            sop_class = media_class
            fix_class = rewrite = True
            notes.append("data set lacks SOP Class UID (0008,0016); used Media Storage SOP Class UID (0002,0002) from File Meta")
        else:
            return replace(base, status="failure", reason="no SOP Class UID: neither (0008,0016) nor (0002,0002) present")
    if not sop_inst:
        return replace(
            base,
            status="failure",
            sop_class_uid=sop_class,
            reason="missing SOP Instance UID (0008,0018): the PACS cannot store an instance without it",
        )
    for kw, tag, value in (("SOP Class UID", "(0008,0016)", sop_class), ("SOP Instance UID", "(0008,0018)", sop_inst)):
        if not _valid_uid(value):
            return replace(
                base,
                status="failure",
                sop_class_uid=sop_class,
                sop_instance_uid=sop_inst,
                reason=f"malformed {kw} {tag} {value!r} (PS3.5 9.1)",
            )
    if problem:
        return replace(base, status="failure", sop_class_uid=sop_class, sop_instance_uid=sop_inst, reason=problem)
    if pads:
        rewrite = True
        names = ", ".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in pads)
        notes.append(f"odd-length value padded to even length: {names}")
    return ScannedInstance(
        path=path,
        status="ok",
        notes=tuple(notes),
        sop_class_uid=sop_class,
        sop_instance_uid=sop_inst,
        transfer_syntax=ts,
        needs_rewrite=rewrite,
        size=size,
        patient_name=texts["PatientName"],
        patient_id=texts["PatientID"],
        study_instance_uid=texts["StudyInstanceUID"],
        study_date=texts["StudyDate"],
        study_description=texts["StudyDescription"],
        series_instance_uid=texts["SeriesInstanceUID"],
        series_description=texts["SeriesDescription"],
        series_number=texts["SeriesNumber"],
        modality=texts["Modality"],
        instance_number=texts["InstanceNumber"],
        fix_sop_class=fix_class,
        pad_tags=tuple(pads),
    )


_UID_RE = re.compile(r"[0-9]+(\.[0-9]+)*")


def _valid_uid(value: str) -> bool:
    """PS3.5 9.1: digits and dots, at most 64 characters (leading zeros tolerated)."""
    value = value.rstrip("\0 ")
    return 0 < len(value) <= 64 and _UID_RE.fullmatch(value) is not None


def _check_elements(ds: Dataset, size: int, ts: UID) -> tuple[str, list[int]]:
    """Check top-level element lengths against the file size and the syntax.

    Returns:
        ``(problem, odd_tags)``: a failure reason (empty if none) and the tags of
        odd-length values that must be padded (PS3.5 7.1.1).
    """
    odd: list[int] = []
    for tag, elem in ds._dict.items():
        length = getattr(elem, "length", None)
        tell = getattr(elem, "value_tell", None)
        if length is None or tell is None:
            continue
        name = f"({int(tag) >> 16:04X},{int(tag) & 0xFFFF:04X})"
        if length == _UNDEFINED:
            if int(tag) == _PIXEL_DATA and not ts.is_encapsulated:
                return (
                    f"Pixel Data {name} is encapsulated (undefined length) but the transfer syntax "
                    f"{ts.name} is not a compressed one"
                ), odd
            continue
        if not ts.is_deflated and tell + length > size:
            return (
                f"truncated file: element {name} declares {length} bytes but the file ends "
                f"{max(0, size - tell)} bytes after its start"
            ), odd
        value = elem.value
        if value is not None and isinstance(value, bytes | bytearray) and len(value) < length:
            return f"truncated file: element {name} is cut short", odd
        if int(tag) == _PIXEL_DATA and ts.is_encapsulated:
            return (
                f"Pixel Data {name} has a defined length but the transfer syntax {ts.name} requires "
                "encapsulated (undefined length) pixel data"
            ), odd
        if length % 2:
            odd.append(int(tag))
    return "", odd
