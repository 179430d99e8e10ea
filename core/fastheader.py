"""A fast, read-only walk over a DICOM file's element headers (PS3.10 7.1, PS3.5 7.1 and 7.5).

Scanning thousands of files with ``pydicom.dcmread`` costs about 0.6 ms each;
this walker reads only tags, VRs and lengths through ``mmap`` and collects the
few values the scanner needs, in about a tenth of that. It handles the common
case (a Part 10 file in Implicit or Explicit VR Little Endian); anything else,
or anything odd, returns None so the caller falls back to pydicom.
"""

from __future__ import annotations

import mmap
import struct
from typing import BinaryIO

__all__ = ["FastHeader", "read_fast_header", "WANTED"]

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEF = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_IMPLICIT, _EXPLICIT = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
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


class _NotFastError(Exception):
    """Something the fast path does not handle: fall back to pydicom."""


class FastHeader:
    """What the walk found.

    Attributes:
        meta: File Meta values by keyword (``MediaStorageSOPClassUID``, ``TransferSyntaxUID``...).
        values: raw bytes of the :data:`WANTED` top-level elements, by keyword.
        odd_tags: top-level tags with odd defined length (to be padded, PS3.5 7.1.1).
        problem: a reason the file cannot be sent (truncation, pixel data encoding), or "".
        offset: byte offset of the data set after the File Meta.
    """

    __slots__ = ("meta", "values", "odd_tags", "problem", "offset", "has_pixels", "pixel_length", "pixel_head")

    def __init__(self) -> None:
        self.meta: dict[str, str] = {}
        self.values: dict[str, bytes] = {}
        self.odd_tags: list[int] = []
        self.problem = ""
        self.offset = 0
        self.has_pixels = False
        self.pixel_length: int | None = None
        self.pixel_head = b""


def read_fast_header(f: str | BinaryIO, size: int) -> FastHeader | None:
    """Walk the file `f` (a path or an open binary file of `size` bytes).

    Returns:
        a :class:`FastHeader`, or None when the fast path does not apply.
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
            return _walk(mm, size)
    except (_NotFastError, struct.error, ValueError, OSError, IndexError):
        return None


def _walk(mm: mmap.mmap, size: int) -> FastHeader:
    out = FastHeader()
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
                raise _NotFastError
            (length,) = _U16.unpack_from(mm, pos + 6)
            pos += 8
        if length == _UNDEF or pos + length > size:
            raise _NotFastError
        if elem in meta_names:
            out.meta[meta_names[elem]] = mm[pos : pos + length].rstrip(b"\0 ").decode("ascii")
        pos += length
    ts = out.meta.get("TransferSyntaxUID", "")
    if ts == _EXPLICIT:
        implicit = False
    elif ts == _IMPLICIT:
        implicit = True
    elif ts.startswith("1.2.840.10008.1.2.4.") or ts in ("1.2.840.10008.1.2.5",):
        implicit = False  # encapsulated syntaxes are Explicit VR Little Endian
    else:
        raise _NotFastError  # Big Endian, Deflated, unknown: pydicom handles them
    out.offset = pos
    encapsulated = ts not in (_EXPLICIT, _IMPLICIT)
    _walk_dataset(mm, pos, size, implicit, out, top=True, encapsulated=encapsulated)
    return out


def _walk_dataset(
    mm: mmap.mmap, pos: int, end: int, implicit: bool, out: FastHeader, top: bool, encapsulated: bool = False
) -> int:
    """Walk elements from `pos` to `end` (or an Item Delimitation); return the new position."""
    size = len(mm)
    while pos + 8 <= end:
        group, elem = _TAG.unpack_from(mm, pos)
        tag = (group << 16) | elem
        if tag == _ITEM_END:
            return pos + 8
        if implicit or group == 0xFFFE:
            (length,) = _U32.unpack_from(mm, pos + 4)
            vr = b""
            pos += 8
        else:
            vr = mm[pos + 4 : pos + 6]
            if vr in _LONG_VRS:
                (length,) = _U32.unpack_from(mm, pos + 8)
                pos += 12
            elif vr.isalpha() and vr.isupper():
                (length,) = _U16.unpack_from(mm, pos + 6)
                pos += 8
            else:
                raise _NotFastError  # VR mismatch: let pydicom guess and report it
        if length == _UNDEF:
            if top and tag == _PIXEL_DATA:
                out.has_pixels = True
                if not encapsulated:
                    out.problem = (
                        "Pixel Data (7FE0,0010) is encapsulated (undefined length) but the transfer "
                        "syntax is not a compressed one"
                    )
                    return pos
            pos = _skip_sequence(mm, pos, implicit if vr != b"UN" else True)
            continue
        if pos + length > size:
            if top:
                out.problem = (
                    f"truncated file: element ({group:04X},{elem:04X}) declares {length} bytes but the "
                    f"file ends {max(0, size - pos)} bytes after its start"
                )
                return size
            raise _NotFastError
        if top:
            if tag == _PIXEL_DATA:
                out.has_pixels = True
                out.pixel_length = length
                out.pixel_head = mm[pos : pos + 4]
                if encapsulated:
                    out.problem = (
                        "Pixel Data (7FE0,0010) has a defined length but the transfer syntax requires "
                        "encapsulated (undefined length) pixel data"
                    )
            if length % 2:
                out.odd_tags.append(tag)
            name = WANTED.get(tag)
            if name is not None:
                out.values[name] = mm[pos : pos + length]
        pos += length
    if top and pos < end and not out.problem:
        out.problem = f"truncated file: it ends inside an element header ({end - pos} byte(s) after the last complete element)"
    return pos


def _skip_sequence(mm: mmap.mmap, pos: int, implicit: bool) -> int:
    """Skip items up to the Sequence Delimitation Item; return the position after it."""
    size = len(mm)
    while pos + 8 <= size:
        group, elem = _TAG.unpack_from(mm, pos)
        tag = (group << 16) | elem
        (length,) = _U32.unpack_from(mm, pos + 4)
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _NotFastError
        if length == _UNDEF:
            pos = _walk_dataset(mm, pos, size, implicit, FastHeader(), top=False)
        else:
            if pos + length > size:
                raise _NotFastError
            pos += length
    raise _NotFastError
