"""A fast, read-only reading of a Part 10 file's header and structure (PS3.10 7.1, PS3.5 7.1 and 7.5).

Scanning thousands of files with ``pydicom.dcmread`` costs about 0.6 ms each; this reader parses
the File Meta itself and walks the data set with :func:`core.walk.walk_dataset` through ``mmap``
(tags, VRs and lengths only, pixel bytes skipped), collecting the few values the scanner needs, in
a fraction of that. The walk is iterative and depth-bounded, so a hostile file gives a problem in
words, never a ``RecursionError``. When the data set does not walk under the Transfer Syntax its
File Meta declares but walks cleanly under another encoding (implicit vs explicit VR, little vs
big endian, deflated or not), the real encoding is recorded (``encoding``) with a note. A File Meta
it cannot parse, or one with no known Transfer Syntax, returns None so the caller falls back to
pydicom.
"""

from __future__ import annotations

import mmap
import struct
from typing import BinaryIO

from pydicom.uid import UID

from .walk import Encoding, FaultKind, WalkResult, detect_encoding, walk_dataset

__all__ = ["FastHeader", "read_fast_header", "WANTED"]

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEF = 0xFFFFFFFF
_PIXEL_DATA = 0x7FE00010
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_TAG = struct.Struct("<HH")

#: Top-level elements whose values are collected (tag -> keyword).
WANTED = {
    0x00080005: "SpecificCharacterSet",
    0x00080016: "SOPClassUID",
    0x00080018: "SOPInstanceUID",
    0x00080020: "StudyDate",
    0x00080060: "Modality",
    0x00081030: "StudyDescription",
    0x0008103E: "SeriesDescription",
    0x00100010: "PatientName",
    0x00100020: "PatientID",
    0x0020000D: "StudyInstanceUID",
    0x0020000E: "SeriesInstanceUID",
    0x00200011: "SeriesNumber",
    0x00200013: "InstanceNumber",
    0x00280002: "SamplesPerPixel",
    0x00280008: "NumberOfFrames",
    0x00280010: "Rows",
    0x00280011: "Columns",
    0x00280100: "BitsAllocated",
}
_COLLECT = frozenset(WANTED)


class _Odd(Exception):  # noqa: N818 - a signal, not an error: fall back to pydicom
    """Something the fast path does not handle: fall back to pydicom."""


class FastHeader:
    """What the reading found.

    Attributes:
        meta: File Meta values by keyword (``MediaStorageSOPClassUID``, ``TransferSyntaxUID``...).
        values: raw bytes of the :data:`WANTED` top-level elements, by keyword.
        odd_tags: top-level tags with odd defined length (to be padded, PS3.5 7.1.1).
        problem: a reason the file cannot be sent (truncation, a structural fault, pixel data
            encoding), or "".
        offset: byte offset of the data set after the File Meta.
        walk: the walk of the data set (under the real encoding when it differs from the label).
        encoding: the data set's real encoding when (0002,0010) contradicts it, else None.
        little: True when the values are Little Endian (False for Explicit VR Big Endian).
    """

    __slots__ = (
        "meta",
        "values",
        "odd_tags",
        "problem",
        "offset",
        "has_pixels",
        "pixel_length",
        "pixel_head",
        "walk",
        "encoding",
        "little",
    )

    def __init__(self) -> None:
        self.meta: dict[str, str] = {}
        self.values: dict[str, bytes] = {}
        self.odd_tags: list[int] = []
        self.problem = ""
        self.offset = 0
        self.has_pixels = False
        self.pixel_length: int | None = None
        self.pixel_head = b""
        self.walk: WalkResult | None = None
        self.encoding: Encoding | None = None
        self.little = True


def read_fast_header(f: str | BinaryIO, size: int) -> FastHeader | None:
    """Read the file `f` (a path or an open binary file of `size` bytes).

    Returns:
        a :class:`FastHeader`, or None when the fast path does not apply (no 'DICM' marker, a File
        Meta it cannot parse, no or an unknown Transfer Syntax UID).
    """
    if size < 140:
        return None
    try:
        if isinstance(f, str):
            with open(f, "rb") as fh:
                return read_fast_header(fh, size)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if mm[128:132] != b"DICM":
                return None
            return _read(mm, size)
    except (_Odd, struct.error, ValueError, OSError, IndexError):
        return None


def _read_meta(mm: mmap.mmap, size: int, out: FastHeader) -> int:
    """Parse the File Meta (Explicit VR Little Endian, group 0002); return the data set's offset."""
    pos = 132
    meta_names = {0x0002: "MediaStorageSOPClassUID", 0x0003: "MediaStorageSOPInstanceUID", 0x0010: "TransferSyntaxUID"}
    while pos + 8 <= size:
        group, elem = _TAG.unpack_from(mm, pos)
        if group != 0x0002:
            break
        vr = mm[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            (length,) = _U32.unpack_from(mm, pos + 8)
            pos += 12
        else:
            if not vr.isalpha():
                raise _Odd
            (length,) = _U16.unpack_from(mm, pos + 6)
            pos += 8
        if length == _UNDEF or pos + length > size:
            raise _Odd
        if elem in meta_names:
            out.meta[meta_names[elem]] = mm[pos : pos + length].rstrip(b"\0 ").decode("ascii")
        pos += length
    return pos


def _read(mm: mmap.mmap, size: int) -> FastHeader:
    out = FastHeader()
    out.offset = pos = _read_meta(mm, size, out)
    ts = out.meta.get("TransferSyntaxUID", "")
    if not ts or not UID(ts).is_transfer_syntax:
        raise _Odd  # pydicom infers a missing syntax; an unknown one is the scanner's failure
    declared = Encoding.of(ts)
    encapsulated = UID(ts).is_encapsulated
    result = walk_dataset(mm, ts, pos, collect=_COLLECT)
    if result.fault is not None and result.fault.kind in (FaultKind.STRUCTURE, FaultKind.TRUNCATED, FaultKind.DEFLATE):
        real = detect_encoding(mm, pos, declared, encapsulated)
        if real is not None:
            out.encoding = real.encoding
            result = walk_dataset(mm, real.encoding, pos, encapsulated=encapsulated, collect=_COLLECT)
    out.walk = result
    out.little = result.encoding.little
    if result.fault is not None:
        out.problem = str(result.fault)
    for tag, raw in result.values.items():
        out.values[WANTED[tag]] = raw
    out.odd_tags = [r.tag for r in result.repairs if not r.where and not r.what.startswith("fragment")]
    out.has_pixels = result.pixel_length is not None or result.encapsulated
    out.pixel_length = result.pixel_length
    if result.pixel_offset is not None and not result.encoding.deflated:
        out.pixel_head = mm[result.pixel_offset : result.pixel_offset + 4]
    return out
