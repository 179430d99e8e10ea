"""Input scanning: files, folders (recursive) and DICOMDIR, read header-only.

Every input file becomes one :class:`ScannedInstance`, in scan order, with
``status``:

* ``"ok"``       readable; may carry ``notes`` about safe inferences (no File Meta,
                 SOP Class UID taken from (0002,0002), odd-length value to pad...).
* ``"skipped"``  not a DICOM file (text, image, empty) or a DICOMDIR (a media
                 index: the files it references are scanned instead, see
                 :mod:`core.dicomdir`).
* ``"failure"``  a DICOM file that cannot be sent: truncated, missing UIDs, a
                 structural fault the walk names (:mod:`core.walk`), sequences
                 nested too deeply, a file a DICOMDIR references that is missing.

A file whose Transfer Syntax label contradicts its encoding (implicit vs explicit
VR, little vs big endian, deflated or not) is read with its real encoding, noted,
and marked ``needs_rewrite`` with ``encoding`` set: it is never streamed as its
raw bytes under the false label.

Reading skips values by their length (pixel bytes are never read), so a 0.5 MB
CT costs about the same as a 2 KB file; every reader is iterative or bounded in
nesting depth, and any exception while reading a file becomes that file's
failure. No file is ever modified. Sources: PS3.10 7.1 (File Meta), PS3.5 7.1 (element encoding),
PS3.3 F (DICOMDIR).
"""

from __future__ import annotations

import io
import logging
import mmap
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
from pydicom.uid import UID

from . import dicomdir
from .fastheader import FastHeader, read_fast_header
from .walk import EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, Encoding, FaultKind, walk_dataset

LOGGER = logging.getLogger(__name__)

__all__ = ["ScannedInstance", "scan_paths", "iter_files", "read_instance", "MEDIA_STORAGE_DIRECTORY", "DICOMDIR_REASON"]

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
DICOMDIR_REASON = "DICOMDIR (media index, not a storable object)"
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
        encoding: the data set's real encoding when its (0002,0010) label contradicts it (read
            the data set with it; ``needs_rewrite`` is then True), else None.
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
    encoding: Encoding | None = None
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
    pending: list[tuple[str, dicomdir.Reference | None]] = [(p, None) for p in iter_files(paths)]
    pending.reverse()
    while pending:
        if cancel is not None and cancel.is_set():
            break
        path, ref = pending.pop()
        try:
            st = os.stat(path)
            key: tuple[int, int] | str = (st.st_dev, st.st_ino)
        except OSError:
            key = os.path.abspath(path)
        if key in seen_paths:
            continue
        seen_paths.add(key)
        inst = read_instance(path)
        missing: list[ScannedInstance] = []
        if inst.status == "skipped" and inst.sop_class_uid == MEDIA_STORAGE_DIRECTORY:
            inst, refs, missing = _expand_dicomdir(inst)
            pending.extend((r.path, r) for r in reversed(refs) if r.path is not None)
        elif ref is not None:
            inst = _referenced(inst, ref)
        for record in (inst, *missing):  # the DICOMDIR, then the files it names that are not there
            _append(out, record, seen_uids, on_instance)
    return out


def _append(
    out: list[ScannedInstance],
    inst: ScannedInstance,
    seen_uids: dict[str, int],
    on_instance: Callable[[ScannedInstance], None] | None,
) -> None:
    object.__setattr__(inst, "index", len(out))  # a fresh record: cheaper than dataclasses.replace
    if inst.status == "ok" and inst.sop_instance_uid:
        first = seen_uids.setdefault(inst.sop_instance_uid, inst.index)
        if first != inst.index:
            inst = replace(
                inst,
                duplicate_of=first,
                notes=(*inst.notes, f"duplicate SOP Instance UID: the same UID as {out[first].path} (the PACS keeps one)"),
            )
    out.append(inst)
    if on_instance is not None:
        on_instance(inst)


def _expand_dicomdir(inst: ScannedInstance) -> tuple[ScannedInstance, list[dicomdir.Reference], list[ScannedInstance]]:
    """Resolve a DICOMDIR's references: its record, the references found, a failure per missing file."""
    if inst.reason != DICOMDIR_REASON:  # the walk found it unreadable: nothing to follow
        return inst, [], []
    try:
        refs = dicomdir.read_references(inst.path)
    except Exception as exc:  # a broken DICOMDIR must not stop the scan
        LOGGER.warning("Cannot read DICOMDIR %s: %s", inst.path, exc)
        return replace(inst, reason=f"{DICOMDIR_REASON}; cannot read its records: {type(exc).__name__}: {exc}"), [], []
    missing = [
        ScannedInstance(
            os.path.join(os.path.dirname(inst.path), *r.file_id.split("\\")),
            "failure",
            f"missing: {r.file_id} (referenced by the DICOMDIR {inst.path}; not found exactly, case-insensitively "
            "or with a .dcm extension)",
        )
        for r in refs
        if r.path is None
    ]
    return replace(inst, reason=f"{DICOMDIR_REASON}: {dicomdir.summary(refs)}"), refs, missing


def _referenced(inst: ScannedInstance, ref: dicomdir.Reference) -> ScannedInstance:
    """Add how a DICOMDIR's reference was found, and check the record's SOP Instance UID."""
    notes = list(inst.notes)
    if ref.note:
        notes.append(ref.note)
    if ref.sop_instance_uid and inst.sop_instance_uid and ref.sop_instance_uid != inst.sop_instance_uid:
        notes.append(
            f"the DICOMDIR record for {ref.file_id} gives SOP Instance UID {ref.sop_instance_uid}, "
            f"the file holds {inst.sop_instance_uid}"
        )
    return replace(inst, notes=tuple(notes)) if len(notes) != len(inst.notes) else inst


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

    Any exception while reading the file becomes its failure with the reason.

    Returns:
        a :class:`ScannedInstance`; ``status`` says whether it can be sent; ``mtime_ns`` is the
        file's modification time before it was read (a change while it is read shows later).
    """
    try:
        mtime_ns = os.stat(path).st_mtime_ns
    except OSError:
        mtime_ns = 0
    try:
        rec = _read_instance(path)
    except Exception as exc:  # the last guard: one file never stops a batch
        LOGGER.debug("Reading %s failed", path, exc_info=True)
        rec = ScannedInstance(path, "failure", f"unreadable DICOM file: {type(exc).__name__}: {exc}")
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
    if fast is not None:
        try:
            return _classify_fast(path, fast, size)
        except (UnicodeDecodeError, ValueError):
            if fast.problem:
                raise
            # let pydicom judge the values (the walk bounded the nesting it will meet)
    if not has_dicm and not _looks_like_bare_dataset(head):
        return ScannedInstance(path, "skipped", "not a DICOM file (no 'DICM' marker and no data set found)", size=size)
    too_deep = _too_deep(path, has_dicm)
    if too_deep:
        return ScannedInstance(path, "failure", too_deep, size=size)
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
    except RecursionError:
        return ScannedInstance(path, "failure", "sequences nested too deeply to read (a damaged or hostile file)", size=size)
    except Exception as exc:  # pydicom raises many types for broken files
        return ScannedInstance(path, "failure", f"unreadable DICOM file: {type(exc).__name__}: {exc}", size=size)
    try:
        return _classify(path, ds, size, has_dicm, [str(w.message) for w in caught])
    except RecursionError:
        return ScannedInstance(path, "failure", "sequences nested too deeply to read (a damaged or hostile file)", size=size)
    except Exception as exc:  # a value that cannot be decoded
        return ScannedInstance(path, "failure", f"unreadable DICOM file: {type(exc).__name__}: {exc}", size=size)


def _too_deep(path: str, has_dicm: bool) -> str:
    """Why pydicom (a recursive reader) must not read this file: sequences nested too deeply, or "".

    Walks the data set under each native encoding (the walk is iterative); a walk that reaches
    :data:`~core.walk.MAX_DEPTH` levels names the sequence.
    """
    offset = 0
    with _ClampedReader.open(path, os.path.getsize(path)) as fp:  # a hostile meta length allocates nothing
        if has_dicm:
            try:
                pydicom.filereader.read_preamble(fp, False)
                pydicom.filereader._read_file_meta_info(fp)  # flat: group 0002 has no sequences
                offset = fp.tell()
            except Exception:
                offset = 132
        with mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            for enc in (IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE):
                result = walk_dataset(mm, enc, offset)
                if result.fault is not None and result.fault.kind is FaultKind.DEPTH:
                    return f"unreadable DICOM file: {result.fault}"
    return ""


def _text(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword, "")
    except Exception:
        return ""
    return "" if value is None else str(value)


def _real_encoding(ds: Dataset, warns: list[str]) -> Encoding:
    """The encoding pydicom actually read the data set with (it keeps the declared one otherwise)."""
    implicit, little = ds.original_encoding
    for text in warns:
        if "Expected explicit VR, but found implicit VR" in text:
            implicit = True
        elif "Expected implicit VR, but found explicit VR" in text:
            implicit = False
    return Encoding(bool(implicit), little is not False)


def _mislabel_note(label: str, real: Encoding) -> str:
    """The report's words for a Transfer Syntax label that contradicts the encoding (PS3.10 7.1)."""
    declared = Encoding.of(label)
    return (
        f"(0002,0010) says {UID(label).name} ({declared.name}) but the data set is encoded as {real.name}: "
        "it is read as such and re-encoded in a correct transfer syntax before it is sent, never sent under the false label"
    )


def _syntax_for(label: str, real: Encoding) -> str:
    """The syntax a mislabelled data set is in: its real native encoding, or the label's codec."""
    return label if UID(label).is_encapsulated else real.native_syntax


def _classify(path: str, ds: Dataset, size: int, has_dicm: bool, warns: list[str]) -> ScannedInstance:
    notes: list[str] = []
    rewrite = False
    meta = getattr(ds, "file_meta", None) or Dataset()
    base = ScannedInstance(path, size=size)

    media_class = _text(meta, "MediaStorageSOPClassUID")
    if media_class == MEDIA_STORAGE_DIRECTORY:
        return replace(base, status="skipped", reason=DICOMDIR_REASON, sop_class_uid=media_class)

    ts = _text(meta, "TransferSyntaxUID")
    real = _real_encoding(ds, warns)
    encoding: Encoding | None = None
    if not ts:
        ts = real.native_syntax
        rewrite = True
        notes.append(f"no File Meta Information; transfer syntax inferred as {UID(ts).name}")
    elif not UID(ts).is_transfer_syntax:
        return replace(base, status="failure", reason=f"unknown transfer syntax UID '{ts}' in (0002,0010)")
    elif not UID(ts).is_deflated and Encoding.of(ts) != real:
        notes.append(_mislabel_note(ts, real))
        ts, encoding, rewrite = _syntax_for(ts, real), real, True

    problem, pads = _check_elements(ds, size, UID(ts))
    texts = {kw: _text(ds, kw) for kw in _TEXT_FIELDS}
    rec = _record(
        path,
        size,
        ts,
        media_class,
        _text(ds, "SOPClassUID"),
        _text(ds, "SOPInstanceUID"),
        notes,
        rewrite or not has_dicm,
        problem,
        pads,
        texts,
    )
    return replace(rec, encoding=encoding) if encoding is not None and rec.status == "ok" else rec


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
        reason = (
            f"{DICOMDIR_REASON}; unreadable, its references are not followed: {fast.problem}" if fast.problem else DICOMDIR_REASON
        )
        return ScannedInstance(path, "skipped", reason, size=size, sop_class_uid=media_class)
    charset = fast.values.get("SpecificCharacterSet", b"").decode("ascii", "replace").strip(" \0")
    texts = {kw: _decode(fast.values.get(kw, b""), charset, kw) for kw in _TEXT_FIELDS}
    uid = {kw: fast.values.get(kw, b"").rstrip(b"\0 ").decode("ascii") for kw in ("SOPClassUID", "SOPInstanceUID")}
    ts = fast.meta["TransferSyntaxUID"]
    notes: list[str] = []
    rewrite = False
    if fast.encoding is not None:
        notes.append(_mislabel_note(ts, fast.encoding))
        ts, rewrite = _syntax_for(ts, fast.encoding), True
    nested = [r for r in (fast.walk.repairs if fast.walk is not None else ()) if r.where or r.what.startswith("fragment")]
    if nested:
        rewrite = True
        shown = "; ".join(str(r) for r in nested[:5]) + (f"; and {len(nested) - 5} more" if len(nested) > 5 else "")
        notes.append(f"padded to even length inside its item when re-encoded: {shown}")
    problem = fast.problem or _pixel_problem(fast, ts)
    rec = _record(
        path,
        size,
        ts,
        media_class,
        uid["SOPClassUID"],
        uid["SOPInstanceUID"],
        notes,
        rewrite,
        problem,
        fast.odd_tags,
        texts,
    )
    if rec.status == "ok":
        object.__setattr__(rec, "data_offset", fast.offset)  # a fresh record: cheaper than dataclasses.replace
        if fast.encoding is not None:
            object.__setattr__(rec, "encoding", fast.encoding)
    return rec


def _us(raw: bytes | None, little: bool = True) -> int:
    return int.from_bytes(raw[:2], "little" if little else "big") if raw and len(raw) >= 2 else 0


def _pixel_problem(fast: FastHeader, ts: str) -> str:
    """Native Pixel Data that cannot be what the transfer syntax says (PS3.5 8.1.1, 8.2)."""
    if fast.pixel_length is None or UID(ts).is_encapsulated:
        return ""
    if fast.pixel_head == b"\xfe\xff\x00\xe0":
        return (
            f"Pixel Data (7FE0,0010) holds encapsulated (compressed) fragments but (0002,0010) says "
            f"{UID(ts).name}: the transfer syntax contradicts the encoding"
        )
    v, little = fast.values, fast.little
    rows, cols, bits = _us(v.get("Rows"), little), _us(v.get("Columns"), little), _us(v.get("BitsAllocated"), little)
    spp = _us(v.get("SamplesPerPixel"), little) or 1
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
    """Build the scanner's record from what either reader found (the checks live here).

    A failed record keeps the study and series it belongs to, so that no check reports them missing.
    """
    base = ScannedInstance(
        path,
        size=size,
        transfer_syntax=ts,
        notes=tuple(notes),
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
    )
    fix_class = False
    if problem and not (sop_class and sop_inst):  # the fault stopped the reading before the UIDs
        return replace(base, status="failure", sop_class_uid=sop_class, sop_instance_uid=sop_inst, reason=problem)
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
