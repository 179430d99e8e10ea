"""The whole-data-set walk: check a data set's structure under a transfer syntax without decoding it.

Before an instance goes out (as stored, or converted) its data set is walked element by element
under the transfer syntax it will be sent in, skipping every value by its length (pixel bytes are
never decoded): each header and value fits, tags ascend within each data set and item, VRs are
valid where the syntax is explicit, sequences and items are delimited (undefined lengths closed),
encapsulated Pixel Data is a Basic Offset Table item, one or more fragments of even length and a
sequence delimiter, deflated data inflates (bounded), and the SOP Class/Instance UIDs match the
ones the C-STORE command carries. Sources: PS3.5 7.1 (element encoding), 7.5 (nesting), 6.2.2
(UN), A.4 (encapsulation), A.5 (deflate); PS3.4 B.2.3 (UIDs of the command and the data set).

The walk is iterative (an explicit stack), bounded in nesting depth (:data:`MAX_DEPTH`) and in
inflated size (:data:`MAX_INFLATED_BYTES`): a hostile file gives a :class:`Fault` with a reason,
never a ``RecursionError`` or an unbounded allocation. The result is a frozen :class:`WalkResult`:
the first fatal fault (the element and the problem) and the safe repairs a rewrite would make -
only what the standard allows: an odd-length value, or an odd-length fragment, padded to even
length inside its own item (PS3.5 7.1.1, A.4). The walk never changes its input.

:func:`detect_encoding` finds the real encoding of a data set whose Transfer Syntax label
contradicts it (implicit vs explicit VR, little vs big endian, deflated or not): the encoding under
which the whole data set walks cleanly.
"""

from __future__ import annotations

import enum
import mmap
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Union

from pydicom.datadict import DicomDictionary
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

__all__ = [
    "Encoding",
    "Fault",
    "FaultKind",
    "Repair",
    "WalkResult",
    "walk_dataset",
    "walk_file",
    "detect_encoding",
    "inflate",
    "InflateError",
    "MAX_DEPTH",
    "MAX_INFLATED_BYTES",
    "IMPLICIT_LE",
    "EXPLICIT_LE",
    "EXPLICIT_BE",
    "DEFLATED_LE",
]

#: Deepest nesting of sequences accepted (levels). Real data sets nest a few levels (an SR content
#: tree a few dozen at most); pydicom reads sequences recursively, so a deeper file is refused here
#: before any recursive reader sees it.
MAX_DEPTH = 64

#: Largest inflated size of a Deflated data set (bytes): a deflate "bomb" stops here.
MAX_INFLATED_BYTES = 1 << 30

Buffer = Union[bytes, bytearray, memoryview, mmap.mmap]  # noqa: UP007 - a runtime alias, for Python 3.11

_VALID_VRS = frozenset(v.value.encode("ascii") for v in VR if len(v.value) == 2)
_LONG_VRS = frozenset(str(v).encode("ascii") for v in EXPLICIT_VR_LENGTH_32)
_UNDEF = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_SOP_CLASS, _SOP_INSTANCE = 0x00080016, 0x00080018
_TAG = {True: struct.Struct("<HH"), False: struct.Struct(">HH")}
_U16 = {True: struct.Struct("<H"), False: struct.Struct(">H")}
_U32 = {True: struct.Struct("<I"), False: struct.Struct(">I")}
_DATASET, _SEQUENCE = 0, 1


@dataclass(frozen=True)
class Encoding:
    """How a data set's bytes are encoded (PS3.5 10): VR explicit or not, byte order, deflate.

    Attributes:
        implicit: True for Implicit VR.
        little: True for Little Endian.
        deflated: True when the data set is a raw deflate stream (PS3.5 A.5).
    """

    implicit: bool
    little: bool
    deflated: bool = False

    @classmethod
    def of(cls, transfer_syntax: str) -> Encoding:
        """The encoding a transfer syntax prescribes.

        Raises:
            ValueError: `transfer_syntax` is not a transfer syntax pydicom knows.
        """
        uid = UID(transfer_syntax)
        if not uid.is_transfer_syntax:
            raise ValueError(f"{transfer_syntax!r} is not a known transfer syntax")
        return cls(uid.is_implicit_VR, uid.is_little_endian, uid.is_deflated)

    @property
    def name(self) -> str:
        """Plain words, e.g. ``"Explicit VR Big Endian"``."""
        if self.deflated:
            return "Deflated Explicit VR Little Endian"
        return f"{'Implicit' if self.implicit else 'Explicit'} VR {'Little' if self.little else 'Big'} Endian"

    @property
    def native_syntax(self) -> str:
        """The uncompressed transfer syntax UID with this encoding."""
        if self.deflated:
            return "1.2.840.10008.1.2.1.99"
        if self.implicit:
            return "1.2.840.10008.1.2"
        return "1.2.840.10008.1.2.1" if self.little else "1.2.840.10008.1.2.2"


IMPLICIT_LE = Encoding(True, True)
EXPLICIT_LE = Encoding(False, True)
EXPLICIT_BE = Encoding(False, False)
DEFLATED_LE = Encoding(False, True, True)


def _element_name(tag: int | None) -> str:
    if tag is None:
        return ""
    entry = DicomDictionary.get(tag)
    keyword = entry[4] if entry else ("private" if (tag >> 16) % 2 else "")
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}){' ' + keyword if keyword else ''}"


def _keyword(tag: int | None) -> str:
    entry = DicomDictionary.get(tag) if tag is not None else None
    return entry[4] if entry else ""


class FaultKind(enum.Enum):
    """What kind of fault a walk found."""

    STRUCTURE = "structure"  # a header, length, delimiter, VR or tag order that breaks PS3.5 7.1/7.5/A.4
    TRUNCATED = "truncated"  # the data ends before a value or header it declares
    DEPTH = "depth"  # sequences nested deeper than the bound
    DEFLATE = "deflate"  # a Deflated data set that does not inflate within the bound
    UID = "uid"  # SOP Class/Instance UID absent or not the C-STORE command's


@dataclass(frozen=True)
class Fault:
    """The first fatal fault of a walk: the data set must not be sent (nor rewritten) as it is.

    Attributes:
        kind: the :class:`FaultKind`.
        tag: the element concerned (an item or delimiter tag for those), or None.
        keyword: its keyword from the dictionary ("" when unknown or private).
        offset: byte offset of its header in the walked bytes (inflated bytes when Deflated).
        problem: what is wrong, in words.
        where: the enclosing sequences and items, e.g. ``"in item 2 of (0008,1115)"`` ("" at top level).
    """

    kind: FaultKind
    tag: int | None
    keyword: str
    offset: int
    problem: str
    where: str = ""

    @property
    def element(self) -> str:
        """The element as people read it, e.g. ``"(0008,1140) ReferencedImageSequence"``."""
        return _element_name(self.tag)

    def __str__(self) -> str:
        head = " ".join(p for p in (self.element, self.where) if p)
        if self.kind is FaultKind.TRUNCATED and head:
            return f"truncated file: element {head} {self.problem}"
        return f"{head}: {self.problem}" if head else self.problem


@dataclass(frozen=True)
class Repair:
    """A safe repair a rewrite makes (PS3.5 7.1.1, A.4): stated in the report, never made on the file.

    Attributes:
        tag: the element (Pixel Data for a fragment).
        keyword: its keyword ("" when unknown).
        offset: byte offset of the element's (or fragment's) header.
        what: the repair in words.
        where: the enclosing sequences and items ("" at top level).
    """

    tag: int
    keyword: str
    offset: int
    what: str
    where: str = ""

    def __str__(self) -> str:
        head = " ".join(p for p in (_element_name(self.tag), self.where) if p)
        return f"{head}: {self.what}"


@dataclass(frozen=True)
class WalkResult:
    """What a walk found.

    Attributes:
        transfer_syntax: the syntax the data set was walked under ("" when only an encoding was given).
        encoding: the encoding walked.
        fault: the first fatal fault, or None.
        repairs: the safe repairs a rewrite would make (odd lengths padded inside their item).
        elements: data elements walked (all levels).
        depth: deepest sequence nesting met.
        encapsulated: True when the top-level Pixel Data is encapsulated.
        fragments: fragments of the top-level encapsulated Pixel Data (Basic Offset Table excluded).
        sop_class_uid / sop_instance_uid: the top-level (0008,0016) / (0008,0018) values ("" if absent).
        size: bytes walked (after inflation when Deflated).
        values: raw bytes of the top-level elements asked for with ``collect``.
        pixel_offset / pixel_length: where the value of top-level native Pixel Data starts and its
            length (bytes), or None.
    """

    transfer_syntax: str
    encoding: Encoding
    fault: Fault | None
    repairs: tuple[Repair, ...]
    elements: int
    depth: int
    encapsulated: bool
    fragments: int
    sop_class_uid: str
    sop_instance_uid: str
    size: int
    values: dict[int, bytes]
    pixel_offset: int | None = None
    pixel_length: int | None = None

    @property
    def ok(self) -> bool:
        """True when the data set has no fatal fault (repairs may still be needed)."""
        return self.fault is None

    @property
    def needs_repair(self) -> bool:
        """True when the data set can be sent only as a rewritten (repaired) copy."""
        return bool(self.repairs)


class InflateError(ValueError):
    """A Deflated data set that does not inflate (not a deflate stream, truncated, or too large)."""


def inflate(raw: Buffer, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """Inflate a Deflated Explicit VR Little Endian data set (a raw RFC 1951 stream, PS3.5 A.5).

    Args:
        raw: the deflated bytes (the data set after the File Meta).
        limit: the largest inflated size accepted, in bytes.

    Returns:
        The inflated data set; bytes after the end of the stream (a pad byte) are ignored.

    Raises:
        InflateError: not a deflate stream, truncated, or inflating past `limit`.
    """
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        body = d.decompress(bytes(raw), limit + 1)
    except zlib.error as exc:
        raise InflateError(f"the Deflated data set is not a deflate stream ({exc})") from None
    if len(body) > limit:
        raise InflateError(f"the Deflated data set inflates to more than {limit} bytes")
    if not d.eof:
        raise InflateError("the deflate stream is truncated")
    return body


class _StopError(Exception):
    """The walk's first fatal fault (internal)."""

    def __init__(self, fault: Fault):
        super().__init__(str(fault))
        self.fault = fault


def walk_dataset(
    data: Buffer,
    transfer_syntax: str | Encoding,
    offset: int = 0,
    *,
    encapsulated: bool | None = None,
    expect_sop_class: str | None = None,
    expect_sop_instance: str | None = None,
    collect: frozenset[int] | set[int] = frozenset(),
    max_depth: int = MAX_DEPTH,
    max_inflated_bytes: int = MAX_INFLATED_BYTES,
) -> WalkResult:
    """Walk the data set in ``data[offset:]`` under `transfer_syntax` (PS3.5 7.1, 7.5, A.4, A.5).

    Args:
        data: bytes, a memoryview or an ``mmap`` holding the data set (a file's bytes with
            `offset` just after the File Meta, or a C-STORE data set with offset 0).
        transfer_syntax: the syntax UID it will be sent in, or an :class:`Encoding`.
        offset: where the data set starts in `data` (bytes).
        encapsulated: whether top-level Pixel Data must be encapsulated (default: as the syntax says).
        expect_sop_class: the SOP Class UID the C-STORE command will carry (PS3.4 B.2.3); a data set
            with another value (or none) is a fault. None: not checked.
        expect_sop_instance: the same for the SOP Instance UID.
        collect: top-level tags whose raw values to return in ``values``.
        max_depth: deepest sequence nesting accepted (levels).
        max_inflated_bytes: largest inflated size of a Deflated data set (bytes).

    Returns:
        A :class:`WalkResult`; never raises for bad data.

    Raises:
        ValueError: `transfer_syntax` is not a transfer syntax known here.
    """
    if isinstance(transfer_syntax, Encoding):
        enc, ts = transfer_syntax, ""
        encap = bool(encapsulated)
    else:
        enc, ts = Encoding.of(transfer_syntax), str(transfer_syntax)
        encap = UID(ts).is_encapsulated if encapsulated is None else encapsulated
    buf: Buffer = data
    start = offset
    if enc.deflated:
        try:
            buf, start = inflate(memoryview(data)[offset:], max_inflated_bytes), 0
        except InflateError as exc:
            bad = Fault(FaultKind.DEFLATE, None, "", offset, str(exc))
            return WalkResult(ts, enc, bad, (), 0, 0, False, 0, "", "", 0, {})
    w = _Walker(buf, enc, encap, max_depth, frozenset(collect))
    fault: Fault | None
    try:
        w.run(start)
        fault = _check_uids(w, expect_sop_class, expect_sop_instance)
    except _StopError as stop:
        fault = stop.fault
    return WalkResult(
        ts,
        enc,
        fault,
        tuple(w.repairs),
        w.elements,
        w.max_depth_seen,
        w.top_encapsulated,
        w.fragments,
        _uid_text(w.values.get(_SOP_CLASS)),
        _uid_text(w.values.get(_SOP_INSTANCE)),
        len(buf) - start,
        {t: v for t, v in w.values.items() if t in collect},
        w.pixel_offset,
        w.pixel_length,
    )


def walk_file(path: str | os.PathLike[str], transfer_syntax: str | Encoding, offset: int, **kwargs: object) -> WalkResult:
    """Walk the data set of the file at `path` from `offset` (just after its File Meta), through ``mmap``.

    Takes the keyword arguments of :func:`walk_dataset`.

    Raises:
        OSError: the file cannot be opened or mapped.
        ValueError: `transfer_syntax` is not a transfer syntax known here.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size <= offset:
            return walk_dataset(b"", transfer_syntax, 0, **kwargs)  # type: ignore[arg-type]
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return walk_dataset(mm, transfer_syntax, offset, **kwargs)  # type: ignore[arg-type]


def detect_encoding(
    data: Buffer, offset: int, declared: Encoding, encapsulated: bool = False, max_depth: int = MAX_DEPTH
) -> WalkResult | None:
    """Find the real encoding of a data set that does not walk under its declared one.

    Tries the other encodings (Implicit VR LE, Explicit VR LE, Explicit VR BE, Deflated) and keeps
    the first under which the whole data set walks without a fault.

    Args:
        data: the bytes holding the data set.
        offset: where the data set starts (bytes).
        declared: the encoding its Transfer Syntax label prescribes.
        encapsulated: whether its Pixel Data is encapsulated (the label's codec).
        max_depth: deepest sequence nesting accepted.

    Returns:
        The clean :class:`WalkResult` under the real encoding (``result.encoding``), or None when no
        other encoding fits either (the data set is damaged, not mislabelled).
    """
    candidates = [IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE]
    if _starts_a_deflate_stream(data, offset):
        candidates.append(DEFLATED_LE)
    for enc in candidates:
        if enc == declared:
            continue
        if not enc.deflated and not _plausible_first_element(data, offset, enc):
            continue
        result = walk_dataset(data, enc, offset, encapsulated=encapsulated, max_depth=max_depth)
        if result.ok and result.elements:
            return result
    return None


def _plausible_first_element(data: Buffer, offset: int, enc: Encoding) -> bool:
    """A cheap filter: the first tag is a data element's and, when explicit, its VR is valid."""
    if len(data) < offset + 8:
        return False
    group = _U16[enc.little].unpack_from(data, offset)[0]
    if group in (0x0000, 0x0001, 0x0003, 0x0005, 0x0007, 0xFFFE, 0xFFFF):
        return False
    return enc.implicit or bytes(data[offset + 4 : offset + 6]) in _VALID_VRS


def _starts_a_deflate_stream(data: Buffer, offset: int) -> bool:
    """True when the first bytes inflate as a raw deflate stream (PS3.5 A.5)."""
    try:
        out = zlib.decompressobj(-zlib.MAX_WBITS).decompress(bytes(data[offset : offset + 256]), 64)
    except zlib.error:
        return False
    return len(out) >= 8


def _uid_text(raw: bytes | None) -> str:
    if not raw:
        return ""
    return raw.rstrip(b"\0 ").decode("ascii", "replace")


def _check_uids(w: _Walker, sop_class: str | None, sop_instance: str | None) -> Fault | None:
    for tag, expected, what in ((_SOP_CLASS, sop_class, "SOP Class UID"), (_SOP_INSTANCE, sop_instance, "SOP Instance UID")):
        if expected is None:
            continue
        raw = w.values.get(tag)
        if raw is None:
            return Fault(FaultKind.UID, tag, _keyword(tag), 0, f"missing; the C-STORE command carries {what} {expected}")
        got = _uid_text(raw)
        if got != str(expected).rstrip("\0 "):
            return Fault(
                FaultKind.UID, tag, _keyword(tag), w.value_offsets.get(tag, 0), f"{got!r} is not the C-STORE command's {expected}"
            )
    return None


class _Walker:
    """The iterative walk over one data set (a stack of frames instead of recursion)."""

    def __init__(self, buf: Buffer, enc: Encoding, encapsulated: bool, max_depth: int, collect: frozenset[int]):
        self.buf = buf
        self.enc = enc
        self.encapsulated = encapsulated
        self.max_depth = max_depth
        self.collect = collect | {_SOP_CLASS, _SOP_INSTANCE}
        self.repairs: list[Repair] = []
        self.values: dict[int, bytes] = {}
        self.value_offsets: dict[int, int] = {}
        self.elements = 0
        self.max_depth_seen = 0
        self.seq_depth = 0
        self.top_encapsulated = False
        self.fragments = 0
        self.pixel_offset: int | None = None
        self.pixel_length: int | None = None
        # frame: [kind, end or None (undefined length), limit, last tag, implicit, little, tag, items, header offset]
        self.stack: list[list] = []

    def _where(self, tag: int | None = None) -> str:
        frames = self.stack
        if frames and frames[-1][0] == _SEQUENCE and frames[-1][6] == tag:
            frames = frames[:-1]  # the fault is the sequence's own: name it once
        parts = [f"item {f[7]} of {_element_name(f[6])}" for f in reversed(frames) if f[0] == _SEQUENCE]
        if len(parts) > 4:  # a hostile nesting: the innermost and outermost levels say enough
            parts = [*parts[:2], f"({len(parts) - 4} more levels)", *parts[-2:]]
        return ("in " + " > ".join(parts)) if parts else ""

    def fail(self, tag: int | None, offset: int, problem: str, kind: FaultKind = FaultKind.STRUCTURE) -> _StopError:
        return _StopError(Fault(kind, tag, _keyword(tag), offset, problem, self._where(tag)))

    def repair(self, tag: int, offset: int, what: str) -> None:
        self.repairs.append(Repair(tag, _keyword(tag), offset, what, self._where()))

    def run(self, pos: int) -> int:
        """Walk from `pos` to the end of the buffer; return the end position."""
        buf, size = self.buf, len(self.buf)
        self.stack.append([_DATASET, size, size, -1, self.enc.implicit, self.enc.little, None, 0, pos])
        stack = self.stack
        while stack:
            frame = stack[-1]
            step = self._dataset_step if frame[0] == _DATASET else self._sequence_step
            pos = step(buf, frame, pos)
        return pos

    # -- one element of a data set or item --------------------------------------------------------------

    def _dataset_step(self, buf: Buffer, frame: list, pos: int) -> int:
        """Walk elements of the data set or item of `frame` until it ends or a sequence opens."""
        _kind, end, limit, last, implicit, little, _tag, _n, _hdr = frame
        stack = self.stack
        depth = len(stack)
        top = depth == 1
        bound = limit if end is None else end
        tag_s, u16, u32 = _TAG[little].unpack_from, _U16[little].unpack_from, _U32[little].unpack_from
        collect, values = self.collect, self.values
        count = 0
        try:
            while True:
                if end is not None and pos >= end:
                    stack.pop()
                    return pos
                if pos + 8 > bound:
                    self._short_header(end, top, pos, bound)
                group, elem = tag_s(buf, pos)
                tag = (group << 16) | elem
                if group == 0xFFFE:
                    if tag == _ITEM_END and end is None:
                        if u32(buf, pos + 4)[0] != 0:
                            raise self.fail(tag, pos, "item delimiter with a non-zero length")
                        stack.pop()
                        return pos + 8
                    self._misplaced_delimiter(tag, pos)
                if tag <= last:
                    what = "repeated" if tag == last else f"not in ascending order (after ({last >> 16:04X},{last & 0xFFFF:04X}))"
                    raise self.fail(tag, pos, f"tag {what} (PS3.5 7.1)")
                last = tag
                count += 1
                vr: bytes | None = None
                if implicit:
                    length, vpos = u32(buf, pos + 4)[0], pos + 8
                else:
                    vr = bytes(buf[pos + 4 : pos + 6])
                    if vr in _LONG_VRS:
                        if pos + 12 > bound:
                            raise self.fail(tag, pos, "the element header runs past the end of the data")
                        length, vpos = u32(buf, pos + 8)[0], pos + 12
                    elif vr in _VALID_VRS:
                        length, vpos = u16(buf, pos + 6)[0], pos + 8
                    else:
                        raise self.fail(tag, pos, f"invalid VR bytes {vr.hex(' ')} where the transfer syntax has explicit VRs")
                if length == _UNDEF:
                    pos = self._undefined(buf, tag, vr, pos, vpos, implicit, little, bound, top)
                    if len(stack) != depth:
                        return pos
                    continue
                if vpos + length > bound:
                    self._too_long(tag, pos, vpos, length, bound, top)
                if vr == b"SQ" or (vr is None and _SQ_TAGS.get(tag, False)):
                    if length:
                        self._push_sequence(tag, vpos + length, vpos + length, implicit, little, pos)
                        return vpos
                    pos = vpos
                    continue
                if length & 1:
                    self.repair(tag, pos, f"odd length {length} padded to {length + 1} (PS3.5 7.1.1)")
                if top:
                    if tag == _PIXEL_DATA:
                        if self.encapsulated:
                            raise self.fail(
                                tag, pos, "native (defined-length) Pixel Data under an encapsulated (compressed) transfer syntax"
                            )
                        self.pixel_offset, self.pixel_length = vpos, length
                    if tag in collect:
                        values[tag] = bytes(buf[vpos : vpos + length])
                        self.value_offsets[tag] = pos
                pos = vpos + length
        finally:
            frame[3] = last
            self.elements += count

    def _short_header(self, end: int | None, top: bool, pos: int, bound: int) -> None:
        if end is None:
            raise self.fail(None, pos, "the data ends inside an item that has no item delimiter (FFFE,E00D)")
        if top:
            raise self.fail(
                None, pos, f"truncated file: it ends inside an element header ({bound - pos} byte(s) left)", FaultKind.TRUNCATED
            )
        raise self.fail(None, pos, f"{bound - pos} byte(s) left in the item, too few for an element header")

    def _misplaced_delimiter(self, tag: int, pos: int) -> None:
        if tag == _ITEM_END:
            raise self.fail(tag, pos, "item delimiter (FFFE,E00D) outside an undefined-length item")
        if tag == _SEQ_END:
            raise self.fail(tag, pos, "sequence delimiter (FFFE,E0DD) where an item delimiter or element belongs")
        raise self.fail(tag, pos, "an item tag where a data element belongs")

    def _too_long(self, tag: int, pos: int, vpos: int, length: int, bound: int, top: bool) -> None:
        left = max(0, bound - vpos)
        if top:
            raise self.fail(
                tag, pos, f"declares {length} bytes but the data ends {left} bytes after its start", FaultKind.TRUNCATED
            )
        raise self.fail(tag, pos, f"value length {length} exceeds the {left} bytes left in its item")

    def _undefined(
        self, buf: Buffer, tag: int, vr: bytes | None, pos: int, vpos: int, implicit: bool, little: bool, bound: int, top: bool
    ) -> int:
        if tag == _PIXEL_DATA:
            if not self.encapsulated:
                raise self.fail(
                    tag, pos, "encapsulated (undefined-length) Pixel Data under a native (uncompressed) transfer syntax"
                )
            if vr not in (None, b"OB", b"OW"):
                raise self.fail(tag, pos, f"encapsulated Pixel Data with VR {vr.decode('latin-1')} (PS3.5 A.4: OB)")
            return self._fragments(buf, pos, vpos, little, bound, top)
        if vr == b"UN":  # a sequence of unknown VR: its items are Implicit VR Little Endian (PS3.5 6.2.2)
            self._push_sequence(tag, None, bound, True, True, pos)
            return vpos
        if vr == b"SQ" or (vr is None and _dictionary_vr(tag) in ("SQ", None)):
            self._push_sequence(tag, None, bound, implicit, little, pos)
            return vpos
        name = vr.decode("latin-1") if vr is not None else _dictionary_vr(tag)
        raise self.fail(tag, pos, f"undefined length for an element of VR {name} (only SQ, UN and Pixel Data may have one)")

    def _push_sequence(self, tag: int, end: int | None, limit: int, implicit: bool, little: bool, pos: int) -> None:
        depth = self.seq_depth + 1
        if depth > self.max_depth:
            raise self.fail(tag, pos, f"sequences nested deeper than {self.max_depth} levels", FaultKind.DEPTH)
        self.max_depth_seen = max(self.max_depth_seen, depth)
        self.seq_depth = depth
        self.stack.append([_SEQUENCE, end, limit, -1, implicit, little, tag, 0, pos])

    # -- one item of a sequence -------------------------------------------------------------------------

    def _sequence_step(self, buf: Buffer, frame: list, pos: int) -> int:
        _kind, end, limit, _last, implicit, little, tag, n, hdr = frame
        if end is not None and pos >= end:
            self.stack.pop()
            self.seq_depth -= 1
            return pos
        bound = limit if end is None else end
        if pos + 8 > bound:
            if end is None:
                raise self.fail(tag, hdr, "the data ends inside the sequence: no sequence delimiter (FFFE,E0DD)")
            raise self.fail(tag, hdr, f"{bound - pos} byte(s) left in the sequence, too few for an item header")
        group, elem = _TAG[little].unpack_from(buf, pos)
        item = (group << 16) | elem
        length = _U32[little].unpack_from(buf, pos + 4)[0]
        if item == _SEQ_END:
            if end is not None:
                raise self.fail(tag, pos, "sequence delimiter (FFFE,E0DD) inside a defined-length sequence")
            if length != 0:
                raise self.fail(tag, pos, "sequence delimiter with a non-zero length")
            self.stack.pop()
            self.seq_depth -= 1
            return pos + 8
        if item != _ITEM:
            if item == _ITEM_END:
                raise self.fail(tag, pos, f"item delimiter (FFFE,E00D) after item {n}, where an item or the sequence end belongs")
            raise self.fail(tag, pos, f"expected an item (FFFE,E000), found ({group:04X},{elem:04X}) (a missing delimiter?)")
        frame[7] = n + 1
        if length == _UNDEF:
            self.stack.append([_DATASET, None, bound, -1, implicit, little, None, 0, pos])
        else:
            if pos + 8 + length > bound:
                raise self.fail(tag, pos, f"item {n + 1} declares {length} bytes but {max(0, bound - pos - 8)} are left")
            self.stack.append([_DATASET, pos + 8 + length, pos + 8 + length, -1, implicit, little, None, 0, pos])
        return pos + 8

    # -- encapsulated Pixel Data ------------------------------------------------------------------------

    def _fragments(self, buf: Buffer, hdr: int, pos: int, little: bool, bound: int, top: bool) -> int:
        """Basic Offset Table item, fragments of even length, sequence delimiter (PS3.5 A.4)."""
        n = 0
        tag_s, u32 = _TAG[little], _U32[little]
        while True:
            if pos + 8 > bound:
                raise self.fail(_PIXEL_DATA, hdr, "encapsulated Pixel Data with no sequence delimiter (FFFE,E0DD)")
            group, elem = tag_s.unpack_from(buf, pos)
            item = (group << 16) | elem
            length = u32.unpack_from(buf, pos + 4)[0]
            if item == _SEQ_END:
                if length != 0:
                    raise self.fail(_PIXEL_DATA, pos, "sequence delimiter with a non-zero length after the fragments")
                if n == 0:
                    raise self.fail(_PIXEL_DATA, hdr, "encapsulated Pixel Data without a Basic Offset Table item")
                if n == 1:
                    raise self.fail(_PIXEL_DATA, hdr, "encapsulated Pixel Data with no fragment after the Basic Offset Table")
                break
            if item != _ITEM:
                raise self.fail(_PIXEL_DATA, pos, f"expected a fragment item (FFFE,E000), found ({group:04X},{elem:04X})")
            if length == _UNDEF:
                raise self.fail(_PIXEL_DATA, pos, f"fragment {n} has an undefined length (fragments have a defined length)")
            if pos + 8 + length > bound:
                raise self.fail(_PIXEL_DATA, pos, f"fragment {n} declares {length} bytes but {max(0, bound - pos - 8)} are left")
            if n == 0 and length % 4:
                raise self.fail(_PIXEL_DATA, pos, f"Basic Offset Table of {length} bytes (a multiple of 4 is required)")
            if length % 2:
                self.repair(_PIXEL_DATA, pos, f"fragment {n} of odd length {length} padded to {length + 1} inside its item")
            n += 1
            pos += 8 + length
        if top:
            self.top_encapsulated = True
            self.fragments = n - 1
        return pos + 8


#: Tags whose dictionary VR is SQ (an Implicit VR sequence of defined length is walked into).
_SQ_TAGS = {tag: True for tag, entry in DicomDictionary.items() if entry[0] == "SQ"}


def _dictionary_vr(tag: int) -> str | None:
    entry = DicomDictionary.get(tag)
    return entry[0] if entry else None
