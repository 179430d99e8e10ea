"""A strict receiving peer: every received data set is walked and parsed under the negotiated syntax.

:class:`StrictSCP` is a :class:`~helpers.scp.RecordingSCP` that does not decode leniently. Before it
answers a C-STORE it

1. inflates the data set when the syntax is Deflated (a raw deflate stream, PS3.5 A.5);
2. walks its structure under the negotiated syntax without decoding pixels (:func:`walk`): every
   header and value fits, values have even length, tags ascend, VRs are valid where the syntax is
   explicit, sequences and items are delimited, Pixel Data is encapsulated (items of even length,
   a Basic Offset Table first, a sequence delimiter last) exactly when the syntax is
   encapsulated (PS3.5 7.1, 7.5, A.4);
3. parses it with pydicom with that syntax's encoding (never ``force``) and converts every element;
4. checks that its SOP Class and SOP Instance UIDs are those of the C-STORE command (PS3.4 B.2.3).

A data set that fails is answered 0xC000 (Error Comment: the first problem) and recorded in
``failures``, with its bytes in ``refused_raw``; one that passes is stored as by the
RecordingSCP (``received``, ``raw``, ``received_syntax``). :meth:`StrictSCP.compare` then checks a
received instance against its source file: the same elements and values (VR-agnostic when either
side is implicit VR) and, when both have pixel data, equal decoded pixel arrays.

The walk is this test peer's own code, independent of the engine's, so the engine is checked
against a second reading of the standard.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO
from os import PathLike
from typing import Any

import numpy as np
from pydicom import dcmread
from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_data_element
from pydicom.tag import Tag
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

from .scp import RecordingSCP

VALID_VRS = frozenset(v.value for v in VR if len(v.value) == 2)  # the VRs of PS3.5 6.2, without "US or SS" and such
LONG_VRS = frozenset(str(v) for v in EXPLICIT_VR_LENGTH_32)  # 2 reserved bytes, a 32-bit length (PS3.5 7.1.2)
WORD_SIZE = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}  # byte order matters for these binary VRs
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010

#: Elements a correct transcoding may rewrite (the pixels are compared decoded instead): Pixel Data,
#: its photometric description after a colour-space change, the lossy-compression record and the
#: offset tables of encapsulated Pixel Data.
TRANSCODING_TAGS = frozenset(
    Tag(k)
    for k in (
        "PixelData",
        "PhotometricInterpretation",
        "PlanarConfiguration",
        "LossyImageCompression",
        "LossyImageCompressionRatio",
        "LossyImageCompressionMethod",
        "ExtendedOffsetTable",
        "ExtendedOffsetTableLengths",
    )
)


class EncodingError(ValueError):
    """A data set that does not match the transfer syntax it came in.

    Attributes:
        offset: byte offset of the problem in the (inflated) data set, or None.
        tag: the element concerned, or None.
        problem: what is wrong, in words.
    """

    def __init__(self, problem: str, offset: int | None = None, tag: int | None = None) -> None:
        self.offset, self.tag, self.problem = offset, tag, problem
        where = [
            f"({tag >> 16:04X},{tag & 0xFFFF:04X})" if tag is not None else "",
            f"at byte {offset}" if offset is not None else "",
        ]
        super().__init__(" ".join(w for w in [*where, problem] if w).strip())


@dataclass(frozen=True)
class Encoding:
    """How a transfer syntax encodes a data set (PS3.5 10)."""

    implicit: bool
    little: bool
    deflated: bool
    encapsulated: bool

    @classmethod
    def of(cls, transfer_syntax: str) -> Encoding:
        """The encoding of `transfer_syntax`; raises EncodingError for a syntax pydicom does not know."""
        uid = UID(transfer_syntax)
        if not uid.is_transfer_syntax:
            raise EncodingError(f"{transfer_syntax} is not a transfer syntax known here")
        return cls(uid.is_implicit_VR, uid.is_little_endian, uid.is_deflated, uid.is_encapsulated)


# --------------------------------------------------------------------------- the structural walk


class _Walker:
    """Walks a data set's bytes element by element; raises EncodingError at the first problem."""

    def __init__(self, buf: bytes, encapsulated: bool) -> None:
        self.buf = buf
        self.encapsulated = encapsulated

    def _u16(self, pos: int, little: bool) -> int:
        return struct.unpack_from("<H" if little else ">H", self.buf, pos)[0]

    def _u32(self, pos: int, little: bool) -> int:
        return struct.unpack_from("<I" if little else ">I", self.buf, pos)[0]

    def _tag(self, pos: int, little: bool) -> int:
        return (self._u16(pos, little) << 16) | self._u16(pos + 2, little)

    def dataset(self, pos: int, end: int, implicit: bool, little: bool, in_undefined_item: bool, top: bool) -> int:
        """Walk elements from `pos`; return the position after the data set (after its item delimiter)."""
        last = -1
        while in_undefined_item or pos < end:
            if pos + 8 > end:
                if in_undefined_item:
                    raise EncodingError("the data ends inside an item with no item delimiter (FFFE,E00D)", pos)
                raise EncodingError(f"{end - pos} bytes left, too few for an element header", pos)
            tag = self._tag(pos, little)
            if tag == ITEM_END:
                if not in_undefined_item:
                    raise EncodingError("item delimiter outside an undefined-length item", pos, tag)
                if self._u32(pos + 4, little) != 0:
                    raise EncodingError("item delimiter with a non-zero length", pos, tag)
                return pos + 8
            if tag == SEQ_END and in_undefined_item:
                raise EncodingError("sequence delimiter before the item delimiter (FFFE,E00D): an item is not closed", pos, tag)
            if tag >> 16 == 0xFFFE:
                raise EncodingError("an item or sequence delimiter where a data element belongs", pos, tag)
            if tag <= last:
                raise EncodingError(f"tags not in ascending order (after ({last >> 16:04X},{last & 0xFFFF:04X}))", pos, tag)
            last = tag
            pos = self.element(pos, end, tag, implicit, little, top)
        return pos

    def element(self, pos: int, end: int, tag: int, implicit: bool, little: bool, top: bool) -> int:
        """Walk one element whose tag is at `pos`; return the position after it."""
        vr: str | None = None
        if implicit:
            length, vpos = self._u32(pos + 4, little), pos + 8
        else:
            raw_vr = self.buf[pos + 4 : pos + 6]
            vr = raw_vr.decode("latin-1")
            if vr not in VALID_VRS:
                raise EncodingError(f"invalid VR (bytes {raw_vr.hex(' ')}): not Explicit VR", pos, tag)
            if vr in LONG_VRS:
                if pos + 12 > end:
                    raise EncodingError("the element header runs past the end", pos, tag)
                length, vpos = self._u32(pos + 8, little), pos + 12
            else:
                length, vpos = self._u16(pos + 6, little), pos + 8
        if length == UNDEFINED:
            return self._undefined(pos, vpos, end, tag, vr, implicit, little)
        if length % 2:
            raise EncodingError(f"odd value length {length} (PS3.5 7.1.1: values have even length)", pos, tag)
        if vpos + length > end:
            raise EncodingError(f"value length {length} exceeds the {end - vpos} bytes left", pos, tag)
        if tag == PIXEL_DATA and top and self.encapsulated:
            raise EncodingError("native (defined-length) Pixel Data under an encapsulated transfer syntax", pos, tag)
        if vr == "SQ" or (implicit and _dictionary_vr(tag) == "SQ"):
            self.sequence(vpos, vpos + length, implicit, little, undefined=False)
        return vpos + length

    def _undefined(self, pos: int, vpos: int, end: int, tag: int, vr: str | None, implicit: bool, little: bool) -> int:
        if tag == PIXEL_DATA:
            if not self.encapsulated:
                raise EncodingError("encapsulated Pixel Data under a native transfer syntax", pos, tag)
            if vr not in (None, "OB", "OW"):  # PS3.5 A.4 says OB; readers accept the OW that older writers used
                raise EncodingError(f"encapsulated Pixel Data with VR {vr}", pos, tag)
            return self.fragments(vpos, end, tag, little)
        if vr == "UN":  # a sequence of unknown VR: its items are Implicit VR Little Endian (PS3.5 6.2.2)
            return self.sequence(vpos, end, True, True, undefined=True)
        if vr == "SQ" or (implicit and _dictionary_vr(tag) in ("SQ", None)):
            return self.sequence(vpos, end, implicit, little, undefined=True)
        raise EncodingError(f"undefined length for an element of VR {vr or _dictionary_vr(tag)}", pos, tag)

    def sequence(self, pos: int, end: int, implicit: bool, little: bool, undefined: bool) -> int:
        """Walk the items of a sequence; return the position after it."""
        while undefined or pos < end:
            if pos + 8 > end:
                raise EncodingError("the data ends inside a sequence with no sequence delimiter (FFFE,E0DD)", pos)
            tag, length = self._tag(pos, little), self._u32(pos + 4, little)
            if tag == SEQ_END:
                if not undefined:
                    raise EncodingError("sequence delimiter inside a defined-length sequence", pos, tag)
                if length != 0:
                    raise EncodingError("sequence delimiter with a non-zero length", pos, tag)
                return pos + 8
            if tag != ITEM:
                raise EncodingError("expected an item (FFFE,E000) in a sequence", pos, tag)
            if length == UNDEFINED:
                pos = self.dataset(pos + 8, end, implicit, little, in_undefined_item=True, top=False)
            elif pos + 8 + length > end:
                raise EncodingError(f"item length {length} exceeds the {end - pos - 8} bytes left", pos, tag)
            else:
                self.dataset(pos + 8, pos + 8 + length, implicit, little, in_undefined_item=False, top=False)
                pos += 8 + length
        return pos

    def fragments(self, pos: int, end: int, tag: int, little: bool) -> int:
        """Walk encapsulated Pixel Data: the Basic Offset Table item, fragments, the sequence delimiter."""
        n = 0
        while True:
            if pos + 8 > end:
                raise EncodingError("encapsulated Pixel Data with no sequence delimiter (FFFE,E0DD)", pos, tag)
            item, length = self._tag(pos, little), self._u32(pos + 4, little)
            if item == SEQ_END:
                if length != 0:
                    raise EncodingError("sequence delimiter with a non-zero length", pos, item)
                if n < 2:
                    raise EncodingError("encapsulated Pixel Data with no fragment after the Basic Offset Table", pos, tag)
                return pos + 8
            if item != ITEM:
                raise EncodingError("encapsulated Pixel Data: expected an item (FFFE,E000)", pos, item)
            if length == UNDEFINED or length % 2:
                raise EncodingError(f"fragment {n} of length {length}: fragments have an even, defined length", pos, tag)
            if pos + 8 + length > end:
                raise EncodingError(f"fragment {n} of length {length} exceeds the {end - pos - 8} bytes left", pos, tag)
            pos += 8 + length
            n += 1


def _dictionary_vr(tag: int) -> str | None:
    return dictionary_VR(tag) if dictionary_has_tag(tag) else None


def inflate(raw: bytes) -> bytes:
    """The data set inside a Deflated Explicit VR Little Endian stream (PS3.5 A.5)."""
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        body = d.decompress(raw)
    except zlib.error as exc:
        raise EncodingError(f"not a deflate stream: {exc}", 0) from None
    if not d.eof:
        raise EncodingError("the deflate stream is truncated", len(raw))
    return body  # bytes after the end of the stream (a pad byte, a gzip trailer) are not part of the data set


def walk(raw: bytes, transfer_syntax: str) -> bytes:
    """Check the structure of a data set's bytes under `transfer_syntax`; return them (inflated).

    Raises:
        EncodingError: naming the element, its offset and the problem.
    """
    enc = Encoding.of(transfer_syntax)
    body = inflate(raw) if enc.deflated else raw
    _Walker(body, enc.encapsulated).dataset(0, len(body), enc.implicit, enc.little, in_undefined_item=False, top=True)
    return body


def parse_strict(
    raw: bytes, transfer_syntax: str, sop_class_uid: str | None = None, sop_instance_uid: str | None = None
) -> Dataset:
    """Walk, then parse a received data set with `transfer_syntax`'s encoding and check its UIDs.

    Raises:
        EncodingError: the structure is wrong, pydicom cannot read an element, or the data set's
            SOP Class/Instance UID is not the one of the C-STORE command.
    """
    body = walk(raw, transfer_syntax)
    enc = Encoding.of(transfer_syntax)
    try:
        ds = read_dataset(BytesIO(body), enc.implicit, enc.little)
        for _ in ds.iterall():  # converts every raw element: a value pydicom cannot read fails here
            pass
    except Exception as exc:
        raise EncodingError(f"pydicom cannot read it: {type(exc).__name__}: {exc}") from None
    for keyword, expected in (("SOPClassUID", sop_class_uid), ("SOPInstanceUID", sop_instance_uid)):
        if expected is None:
            continue
        got = ds.get(keyword)
        if got is None:
            raise EncodingError(f"{keyword} missing", tag=int(Tag(keyword)))
        if str(got) != str(expected):
            raise EncodingError(f"{keyword} {got} is not the command's {expected}", tag=int(Tag(keyword)))
    return ds


# --------------------------------------------------------------------------- comparison with the source


def _empty(value: Any) -> bool:
    return value is None or (hasattr(value, "__len__") and len(value) == 0)


def _as_bytes(elem: DataElement, little: bool) -> bytes:
    """An element's value as Implicit VR Little Endian bytes, without trailing padding."""
    value = elem.value
    if isinstance(value, bytes):
        size = WORD_SIZE.get(elem.VR)
        if size and not little:
            value = np.frombuffer(value[: len(value) // size * size], f">u{size}").astype(f"<u{size}").tobytes()
        return value.rstrip(b"\0 ")
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_data_element(fp, elem)
    return fp.getvalue()[8:].rstrip(b"\0 ")


def _values_equal(a: DataElement, b: DataElement, a_little: bool, b_little: bool) -> bool:
    if _empty(a.value) and _empty(b.value):
        return True
    if a.VR != b.VR or isinstance(a.value, bytes) or isinstance(b.value, bytes):  # read with different VRs: compare the bytes
        return _as_bytes(a, a_little) == _as_bytes(b, b_little)
    return bool(a.value == b.value)


def _name(tag: int) -> str:
    t = Tag(tag)
    return f"({t.group:04X},{t.element:04X}) {keyword_for_tag(t) or 'private'}"


def _compare_level(
    src: Dataset, rcv: Dataset, flags: tuple[bool, bool, bool], ignore: frozenset[int], path: str, top: bool, out: list[str]
) -> None:
    vr_agnostic, src_little, rcv_little = flags
    for tag in sorted(set(src.keys()) | set(rcv.keys())):
        if tag.group == 0x0002 or tag.element == 0x0000 or (top and tag in ignore):
            continue  # file meta and group lengths are not the data set's content
        where = f"{path}{_name(tag)}"
        if tag not in rcv:
            out.append(f"{where}: missing")
            continue
        if tag not in src:
            out.append(f"{where}: added")
            continue
        a, b = src[tag], rcv[tag]
        if a.VR == "SQ" and b.VR == "SQ":
            if len(a.value) != len(b.value):
                out.append(f"{where}: {len(a.value)} items sent, {len(b.value)} received")
                continue
            for i, (ia, ib) in enumerate(zip(a.value, b.value, strict=True)):
                _compare_level(ia, ib, flags, ignore, f"{where}[{i}] > ", False, out)
            continue
        if not vr_agnostic and a.VR != b.VR and "UN" not in (a.VR, b.VR):
            out.append(f"{where}: VR {a.VR} became {b.VR}")
        elif not _values_equal(a, b, src_little, rcv_little):
            out.append(f"{where}: {_short(a.value)} became {_short(b.value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _pixels(ds: Dataset) -> np.ndarray:
    return ds.pixel_array


def compare_datasets(
    source: Dataset,
    received: Dataset,
    vr_agnostic: bool,
    source_little: bool = True,
    received_little: bool = True,
    ignore: Iterable[int] = TRANSCODING_TAGS,
) -> list[str]:
    """The differences between a source data set and the one a peer received; empty when they match.

    Elements are compared by value (with VRs unless `vr_agnostic`), recursively, except file meta,
    group lengths and `ignore`; when both have Pixel Data their decoded arrays must be equal
    (same shape, same values).
    """
    out: list[str] = []
    flags = (vr_agnostic, source_little, received_little)
    _compare_level(source, received, flags, frozenset(Tag(t) for t in ignore), "", True, out)
    has = ("PixelData" in source, "PixelData" in received)
    if has == (True, True):
        try:
            a, b = _pixels(source), _pixels(received)
        except Exception as exc:
            out.append(f"Pixel Data could not be decoded: {type(exc).__name__}: {exc}")
        else:
            if a.shape != b.shape:
                out.append(f"Pixel Data: shape {a.shape} became {b.shape}")
            elif not np.array_equal(a, b):
                out.append(f"Pixel Data: {int(np.count_nonzero(a != b))} of {a.size} values differ")
    elif has[0] != has[1]:
        out.append("Pixel Data: " + ("missing" if has[0] else "added"))
    return out


# --------------------------------------------------------------------------- the peer


def _read(source: str | PathLike | Dataset) -> Dataset:
    return source if isinstance(source, Dataset) else dcmread(source, force=True)


class StrictSCP(RecordingSCP):
    """A RecordingSCP that refuses (0xC000) every data set that does not walk and parse strictly.

    Takes the RecordingSCP's arguments (AE title "STRICT" by default). Besides its records:

    Attributes:
        failures: SOP Instance UID -> why the data set was refused.
        refused_raw: SOP Instance UID -> the bytes of the refused data set.
    """

    def __init__(self, ae_title: str = "STRICT", **kwargs: Any) -> None:
        self.failures: dict[str, str] = {}
        self.refused_raw: dict[str, bytes] = {}
        super().__init__(ae_title=ae_title, **kwargs)

    def _decode(self, event: Any, raw: bytes) -> tuple[Dataset | None, str | None]:
        req = event.request
        uid = str(req.AffectedSOPInstanceUID)
        try:
            ds = parse_strict(raw, str(event.context.transfer_syntax), str(req.AffectedSOPClassUID), uid)
        except EncodingError as exc:
            with self.lock:
                self.failures[uid] = str(exc)
                self.refused_raw[uid] = raw
            return None, str(exc)
        ds.file_meta = event.file_meta
        return ds, None

    def compare(
        self, source: str | PathLike | Dataset, uid: str | None = None, ignore: Iterable[int] = TRANSCODING_TAGS
    ) -> list[str]:
        """The differences between `source` (a file or data set) and what this peer stored for it.

        Args:
            source: the file that was sent, or its data set.
            uid: the SOP Instance UID received (default: the source's).
            ignore: elements not compared (default: those a correct transcoding may rewrite).

        Returns:
            One line per difference; empty when the instance arrived unchanged.
        """
        src = None if uid else _read(source)
        uid = uid or str(src.SOPInstanceUID)
        received = self.received.get(uid)
        if received is None:
            why = self.failures.get(uid)
            return [f"{uid} not received" + (f" (refused: {why})" if why else "")]
        src = src or _read(source)
        syntax = Encoding.of(self.received_syntax[uid])
        src_implicit, src_little = src.original_encoding
        return compare_datasets(
            src,
            received,
            vr_agnostic=syntax.implicit or bool(src_implicit),
            source_little=src_little is not False,
            received_little=syntax.little,
            ignore=ignore,
        )

    def assert_same(self, source: str | PathLike | Dataset, uid: str | None = None) -> None:
        """Assert that `source` arrived unchanged (see :meth:`compare`)."""
        diffs = self.compare(source, uid)
        assert not diffs, f"{source}: " + "; ".join(diffs)
