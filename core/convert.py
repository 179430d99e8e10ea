"""Transfer syntax conversion: decide whether a data set can go in a syntax, and encode it.

Rules (SEED_API.md, PS3.5 8 and 10):

* uncompressed <-> uncompressed always (Implicit/Explicit VR Little Endian,
  Explicit VR Big Endian with real byte swapping of OW/OL/OF/OD/OV values and
  of Pixel Data by each data set's own Bits Allocated - 8-bit pixels in OW are
  swapped pairwise and become OB, as pydicom's decoder reads them - Deflated);
  a Big Endian source is brought to Little Endian exactly once, before any
  compression;
* compressed -> uncompressed when a pixel decoder is available;
* uncompressed -> compressed only losslessly, unless lossy conversion is allowed;
* a lossy source may go anywhere (it loses nothing more).

The SOP Instance UID never changes and the source file is never touched: the
encoded data set is returned as bytes. :func:`load_dataset` reads a data set
whose Transfer Syntax label contradicts its encoding with its real encoding and
makes the safe repairs the walk names (odd values and fragments padded inside
their item) on the copy in memory. :mod:`core.roundtrip` verifies every
conversion made here.
"""

from __future__ import annotations

import copy
import logging
import os
import struct
import warnings
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom.dsutils import encode

from .errors import ConversionError
from .strategies import UNCOMPRESSED_SYNTAXES, is_lossy_syntax
from .walk import Encoding, inflate

if TYPE_CHECKING:
    from .scan import ScannedInstance

LOGGER = logging.getLogger(__name__)

__all__ = [
    "can_decode",
    "can_encode",
    "conversion_plan",
    "load_dataset",
    "read_with_encoding",
    "dataset_syntax",
    "encapsulated_items",
    "encode_dataset",
    "syntax_label",
    "error_reason",
    "ConversionPlan",
]

#: Encoder settings for the lossy targets (used only when lossy conversion is allowed):
#: visually lossless quality rather than maximum compression.
_LOSSY_OPTIONS: dict[str, dict[str, Any]] = {
    "1.2.840.10008.1.2.4.91": {"j2k_psnr": [60]},  # JPEG 2000
    "1.2.840.10008.1.2.4.81": {"jls_error": 1},  # JPEG-LS near-lossless
}

JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
_SWAP_SIZES = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}
_PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA = 0x7FE00010, 0x7FE00008, 0x7FE00009
_ITEM, _SEQ_END = 0xFFFEE000, 0xFFFEE0DD


def syntax_label(uid: str | None) -> str:
    """A short name for a transfer syntax, e.g. ``"JPEG 2000 Lossless"``."""
    if not uid:
        return "?"
    name = UID(uid).name
    short = {
        "1.2.840.10008.1.2": "Implicit VR LE",
        "1.2.840.10008.1.2.1": "Explicit VR LE",
        "1.2.840.10008.1.2.2": "Explicit VR BE",
        "1.2.840.10008.1.2.1.99": "Deflated Explicit VR LE",
        "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
        "1.2.840.10008.1.2.4.91": "JPEG 2000",
        "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
        "1.2.840.10008.1.2.4.50": "JPEG Baseline",
        "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
        "1.2.840.10008.1.2.5": "RLE Lossless",
    }
    return short.get(str(uid), name)


def can_decode(ts: str) -> bool:
    """True when pixel data in `ts` can be decoded here (always for uncompressed)."""
    uid = UID(ts)
    if str(uid) in UNCOMPRESSED_SYNTAXES:
        return True
    try:
        from pydicom.pixels.decoders.base import get_decoder

        return get_decoder(uid).is_available
    except (NotImplementedError, ValueError, ImportError):
        return False


def can_encode(ts: str) -> bool:
    """True when pixel data can be encoded into `ts` here (always for uncompressed)."""
    uid = UID(ts)
    if str(uid) in UNCOMPRESSED_SYNTAXES:
        return True
    if str(uid) == JPEG_LOSSLESS_SV1:
        return _gdcm() is not None
    try:
        from pydicom.pixels.encoders.base import get_encoder

        return get_encoder(uid).is_available
    except (NotImplementedError, ValueError, ImportError):
        return False


@dataclass(frozen=True)
class ConversionPlan:
    """Whether a data set stored in `source` can be sent in `target`.

    Attributes:
        possible: True when the conversion may be attempted.
        kind: ``"as-stored"``, ``"lossless"``, ``"decompress-lossy"``, ``"lossy"`` or ``"blocked"``.
        reason: plain words (why blocked, or what will be done).
    """

    possible: bool
    kind: str
    reason: str


def conversion_plan(source: str, target: str, allow_lossy: bool, has_pixels: bool = True) -> ConversionPlan:
    """Decide whether data stored in `source` may be sent in `target`.

    Args:
        source: the stored transfer syntax UID.
        target: the candidate transfer syntax UID.
        allow_lossy: whether lossless-to-lossy compression is allowed.
        has_pixels: False when the data set has no pixel data (any syntax then works as uncompressed).
    """
    src, dst = UID(source), UID(target)
    arrow = f"{syntax_label(src)} -> {syntax_label(dst)}"
    if src == dst:
        return ConversionPlan(True, "as-stored", "sent as stored")
    if dst.is_encapsulated and not has_pixels:
        return ConversionPlan(False, "blocked", f"{arrow}: no pixel data to compress")
    if src.is_encapsulated and not can_decode(src):
        return ConversionPlan(False, "blocked", f"cannot decode {syntax_label(src)} here (install the pylibjpeg plugins or GDCM)")
    if dst.is_encapsulated:
        if not can_encode(dst):
            return ConversionPlan(False, "blocked", f"{arrow}: no encoder for {syntax_label(dst)} here")
        src_lossy = src.is_encapsulated and is_lossy_syntax(src)
        if is_lossy_syntax(dst) and not src_lossy and not allow_lossy:
            return ConversionPlan(False, "blocked", f"{arrow} would be lossy (enable lossy conversion to send)")
        if is_lossy_syntax(dst) and not src_lossy:
            return ConversionPlan(True, "lossy", f"convert {arrow} (lossy, allowed)")
    if src.is_encapsulated and is_lossy_syntax(src):
        return ConversionPlan(True, "decompress-lossy", f"convert {arrow} (decompress lossy source)")
    return ConversionPlan(True, "lossless", f"convert {arrow} (lossless)")


def load_dataset(source: str | os.PathLike[str] | Dataset, inst: ScannedInstance | None = None) -> Dataset:
    """Read a whole data set and apply the scanner's safe fixes (never touching the file).

    Fixes, on the copy in memory: File Meta with the transfer syntax the data set is really in;
    a data set whose (0002,0010) label contradicts its encoding read with its real encoding
    (``inst.encoding``); SOP Class UID from (0002,0002); odd-length values at every level made so
    that pydicom pads them, and odd-length fragments of encapsulated Pixel Data padded inside their
    item (PS3.5 7.1.1, A.4).

    Args:
        source: a file path or a data set (a data set is modified in place by the fixes).
        inst: the scanner's record of the file, or None.

    Raises:
        ConversionError: the file cannot be read completely.
    """
    if isinstance(source, Dataset):
        ds = source
    elif inst is not None and inst.encoding is not None:
        ds = read_with_encoding(source, inst.encoding, inst.data_offset or None)
    else:
        try:
            ds = pydicom.dcmread(os.fspath(source), force=True)
        except Exception as exc:
            raise ConversionError(f"cannot read {os.fspath(source)}: {type(exc).__name__}: {exc}") from exc
    if inst is not None:
        if not hasattr(ds, "file_meta") or ds.file_meta is None:
            ds.file_meta = FileMetaDataset()
        if ds.file_meta.get("TransferSyntaxUID") != inst.transfer_syntax:
            ds.file_meta.TransferSyntaxUID = UID(inst.transfer_syntax)
        if inst.fix_sop_class:
            ds.SOPClassUID = inst.sop_class_uid
    _pad_odd_values(ds)
    _pad_odd_fragments(ds)
    return ds


def read_with_encoding(path: str | os.PathLike[str], encoding: Encoding, offset: int | None = None) -> Dataset:
    """Read a Part 10 file's data set with a given encoding, whatever its (0002,0010) label says.

    Args:
        path: the file.
        encoding: the data set's real encoding (found by :func:`core.walk.detect_encoding`).
        offset: where the data set starts (bytes); None to find it after the File Meta.

    Returns:
        The data set with its File Meta; ``original_encoding`` is the real encoding.

    Raises:
        ConversionError: the file cannot be read with that encoding.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            fp = BytesIO(f.read())  # reads are bounded by what the file holds, whatever a length says
        pydicom.filereader.read_preamble(fp, False)
        meta = pydicom.filereader._read_file_meta_info(fp)
        if offset is not None:
            fp.seek(offset)
        body = fp.read()
        if encoding.deflated:
            body = inflate(body)
        ds = pydicom.filereader.read_dataset(BytesIO(body), encoding.implicit, encoding.little)
    except Exception as exc:
        raise ConversionError(f"cannot read {name} as {encoding.name}: {type(exc).__name__}: {exc}") from exc
    ds.file_meta = FileMetaDataset(meta)
    return ds


def _pad_odd_values(ds: Dataset) -> None:
    """Make pydicom pad odd-length values on write, at every level (PS3.5 7.1.1).

    pydicom writes a raw element back byte for byte, odd length included; once
    converted to a normal element its writer pads it with one 0x00 (or a space).
    """
    stack = [ds]
    while stack:
        d = stack.pop()
        for tag, elem in list(d._dict.items()):
            length = getattr(elem, "length", 0)
            if length % 2 and length != 0xFFFFFFFF:
                _ = d[tag]
            vr = elem.VR or (dictionary_VR(tag) if dictionary_has_tag(tag) else None)
            if vr == "SQ" or (length == 0xFFFFFFFF and int(tag) != _PIXEL_DATA):
                converted = d[tag]
                if converted.VR == "SQ":
                    stack.extend(converted.value)


def _pad_odd_fragments(ds: Dataset) -> None:
    """Pad odd-length fragments of encapsulated Pixel Data inside their own item (PS3.5 A.4).

    pydicom writes the encapsulated value as it is; a writer that pads after the item instead of
    inside it breaks the item structure. The Basic Offset Table is shifted to match.
    """
    elem = ds.get_item(_PIXEL_DATA) if _PIXEL_DATA in ds else None
    if elem is None or not (getattr(elem, "is_undefined_length", False) or getattr(elem, "length", 0) == 0xFFFFFFFF):
        return
    value = ds.PixelData
    items = encapsulated_items(value)
    if items is None or not any(len(frag) % 2 for frag in items[1:]):
        return
    shift, starts, out = 0, {}, []
    for i, frag in enumerate(items[1:]):
        starts[sum(8 + len(f) for f in items[1 : i + 1])] = shift
        pad = b"\0" if len(frag) % 2 else b""
        out.append(struct.pack("<II", 0xE000FFFE, len(frag) + len(pad)) + frag + pad)
        shift += len(pad)
    bot = items[0]
    if bot:
        offsets = struct.unpack(f"<{len(bot) // 4}I", bot)
        # an empty Basic Offset Table is always valid (PS3.5 A.4)
        mapped = all(o in starts for o in offsets)
        bot = struct.pack(f"<{len(offsets)}I", *(o + starts[o] for o in offsets)) if mapped else b""
    # pydicom's writer adds the Sequence Delimitation Item after an undefined-length value
    ds.PixelData = struct.pack("<II", 0xE000FFFE, len(bot)) + bot + b"".join(out)
    ds["PixelData"].is_undefined_length = True
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in ds:  # optional (Type 3): dropped rather than left wrong
            del ds[keyword]


def encapsulated_items(value: bytes) -> list[bytes] | None:
    """The contents of an encapsulated Pixel Data value's items, Basic Offset Table first (PS3.5 A.4).

    Returns:
        One bytes object per item, or None when the value is not a well-formed item sequence.
    """
    out: list[bytes] = []
    pos = 0
    while pos + 8 <= len(value):
        tag, length = struct.unpack_from("<2H", value, pos), struct.unpack_from("<I", value, pos + 4)[0]
        item = (tag[0] << 16) | tag[1]
        if item == _SEQ_END:
            return out
        if item != _ITEM or length == 0xFFFFFFFF or pos + 8 + length > len(value):
            return None
        out.append(bytes(value[pos + 8 : pos + 8 + length]))
        pos += 8 + length
    return out or None


def dataset_syntax(ds: Dataset) -> UID:
    """The transfer syntax a data set is in: its File Meta's, else its original encoding's."""
    return _ds_syntax(ds)


def _ds_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        return UID(ts)
    implicit, little = ds.original_encoding
    if implicit is None:
        return ExplicitVRLittleEndian
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def encode_dataset(ds: Dataset, target: str, allow_lossy: bool = False) -> tuple[bytes, str | None, list[str]]:
    """Encode `ds` for a presentation context whose transfer syntax is `target`.

    Args:
        ds: the data set (not modified; a copy is made when conversion is needed).
        target: transfer syntax UID of the accepted presentation context.
        allow_lossy: allow lossless-to-lossy compression.

    Returns:
        ``(data, converted_from, notes)``: the encoded data set (no File Meta),
        the source syntax UID when converted (else None) and notes for the report.

    Raises:
        ConversionError: the conversion is not allowed or would lose data (e.g.
            a DS value over 64 KiB in Explicit VR, PS3.5 7.1.2).
    """
    src, dst = dataset_syntax(ds), UID(target)
    notes: list[str] = []
    plan = conversion_plan(src, dst, allow_lossy, has_pixels="PixelData" in ds)
    if not plan.possible:
        raise ConversionError(plan.reason)
    work = ds
    if src != dst:
        work = _transcode(copy.deepcopy(ds), src, dst)
        notes.append(plan.reason)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = encode(work, dst.is_implicit_VR, dst.is_little_endian, dst.is_deflated)
    for w in caught:
        text = str(w.message)
        if "cannot be written in an explicit transfer syntax" in text or "exceeds the size of 64 kByte" in text:
            raise ConversionError(
                f"{text.split(' and ')[0]}: a value longer than 65534 bytes of this VR cannot be "
                f"encoded in {syntax_label(dst)} (PS3.5 7.1.2)"
            )
    if data is None:
        raise ConversionError(f"pydicom could not encode the data set as {syntax_label(dst)}")
    return data, (str(src) if src != dst else None), notes


def _transcode(ds: Dataset, src: UID, dst: UID) -> Dataset:
    """Turn `ds` (a private copy) from `src` into `dst` in memory.

    Order: decompress an encapsulated source (pydicom gives Explicit VR Little Endian); bring a
    Big Endian source to Little Endian once; then compress, or swap to Big Endian, or relabel.
    """
    if src.is_encapsulated:
        try:
            ds.decompress(generate_instance_uid=False)
        except Exception as exc:
            raise ConversionError(f"cannot decode {syntax_label(src)} pixel data: {error_reason(exc)}") from exc
        if is_lossy_syntax(src):
            _mark_lossy(ds, src)
        src = UID(ds.file_meta.TransferSyntaxUID)
    if not src.is_little_endian and (dst.is_little_endian or dst.is_encapsulated):
        _swap_binary_values(ds, to_big_endian=False)
        src = ExplicitVRLittleEndian
    if dst.is_encapsulated:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        _check_encodable(ds, dst)
        _interleave_planes(ds)
        native = len(ds.PixelData)
        if str(dst) == JPEG_LOSSLESS_SV1:
            _encode_jpeg_lossless_sv1(ds)
            return ds
        try:
            ds.compress(dst, generate_instance_uid=False, **_LOSSY_OPTIONS.get(str(dst), {}))
        except Exception as exc:
            raise ConversionError(f"cannot encode {syntax_label(dst)}: {error_reason(exc)}") from exc
        if is_lossy_syntax(dst):
            _mark_lossy(ds, dst, native / max(1, len(ds.PixelData)))
        return ds
    if not dst.is_little_endian and src.is_little_endian:
        _swap_binary_values(ds, to_big_endian=True)
    ds.file_meta.TransferSyntaxUID = dst
    return ds


def error_reason(exc: BaseException) -> str:
    """A library's exception as one line of plain words (its lines joined, the type if it says nothing)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = " ".join(line for line in lines if not line.startswith("See Part 5"))
    return (text[:400] + "...") if len(text) > 400 else (text or type(exc).__name__)


def _check_encodable(ds: Dataset, dst: UID) -> None:
    """Refuse, with the reason, what the available encoders cannot take (before trying)."""
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if str(dst) in ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91") and (rows < 32 or cols < 32):
        raise ConversionError(
            f"cannot encode {syntax_label(dst)}: OpenJPEG needs at least 32 x 32 pixels (this image is {rows} x {cols})"
        )


def _gdcm() -> Any:
    """The ``gdcm`` module (python-gdcm), or None when it is not installed."""
    try:
        import gdcm

        gdcm.Version.GetVersion()
    except Exception:
        return None
    return gdcm


#: The Image Pixel module's elements handed to GDCM (PS3.3 C.7.6.3): nothing else leaves this process.
_PIXEL_MODULE = (
    "SOPClassUID",
    "SOPInstanceUID",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
)


def _encode_jpeg_lossless_sv1(ds: Dataset) -> None:
    """Compress native Little Endian pixels to JPEG Lossless SV1 (process 14, PS3.5 A.4.1) with GDCM.

    GDCM's ImageChangeTransferSyntax encodes; only the Image Pixel module goes to it, through a
    temporary file. Its C++ code aborts the whole process on input it does not support (a PALETTE
    COLOR image without its tables, 1-bit data), so only plain images are handed over:
    MONOCHROME1/2 or RGB, 8 or 16 bits allocated, 2 to 16 bits stored.

    Raises:
        ConversionError: GDCM is missing, the image is outside those limits, or encoding fails.
    """
    import tempfile

    gdcm = _gdcm()
    label = syntax_label(JPEG_LOSSLESS_SV1)
    if gdcm is None:
        raise ConversionError(f"cannot encode {label}: GDCM (python-gdcm) is not installed")
    bits, stored = int(ds.get("BitsAllocated", 0) or 0), int(ds.get("BitsStored", 0) or 0)
    spp, planar = int(ds.get("SamplesPerPixel", 1) or 1), int(ds.get("PlanarConfiguration", 0) or 0)
    frames, rows, cols = int(ds.get("NumberOfFrames", 1) or 1), int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    pi = str(ds.get("PhotometricInterpretation", "") or "").strip()
    shape_ok = bits in (8, 16) and 2 <= stored <= bits and rows and cols and not planar
    if not shape_ok or (spp, pi) not in ((1, "MONOCHROME1"), (1, "MONOCHROME2"), (3, "RGB")):
        raise ConversionError(
            f"cannot encode {label} here: GDCM is given only MONOCHROME1/2 or RGB images of 8 or 16 bits allocated "
            f"and 2-16 bits stored (this image: {pi}, {bits} allocated, {stored} stored, {spp} samples)"
        )
    if len(ds.PixelData) < frames * rows * cols * spp * bits // 8:
        raise ConversionError(f"cannot encode {label}: Pixel Data is shorter than the image it describes")
    small = Dataset()
    for keyword in _PIXEL_MODULE:
        if keyword in ds:
            setattr(small, keyword, ds[keyword].value)
    small.PixelData = ds.PixelData
    small["PixelData"].VR = "OB" if bits == 8 else "OW"
    small.file_meta = FileMetaDataset()
    small.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    with tempfile.TemporaryDirectory(prefix="courier-sv1-") as tmp:
        src, dst = os.path.join(tmp, "in.dcm"), os.path.join(tmp, "out.dcm")
        small.save_as(src, enforce_file_format=True)
        reader = gdcm.ImageReader()
        reader.SetFileName(src)
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
        if not reader.Read():
            raise ConversionError(f"cannot encode {label}: GDCM cannot read the pixel module")
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise ConversionError(f"cannot encode {label}: GDCM refused the image")
        writer = gdcm.ImageWriter()
        writer.SetFileName(dst)
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        if not writer.Write():
            raise ConversionError(f"cannot encode {label}: GDCM could not write the result")
        out = pydicom.dcmread(dst)
    ds.PixelData = out.PixelData
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = UID(JPEG_LOSSLESS_SV1)


def _interleave_planes(ds: Dataset) -> None:
    """Store colour-by-plane pixels (Planar Configuration 1) colour-by-pixel before compressing.

    pydicom's encoders read native pixels as colour-by-pixel; the same values re-laid are the same
    image (PS3.3 C.7.6.3.1.3), and the decoded arrays are compared afterwards.
    """
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    if spp < 2 or int(ds.get("PlanarConfiguration", 0) or 0) != 1:
        return
    bits = int(ds.get("BitsAllocated", 8) or 8)
    if bits % 8:
        return
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    dtype = np.dtype(f"<u{bits // 8}")
    need = frames * spp * rows * cols
    arr = np.frombuffer(ds.PixelData, dtype=dtype, count=need)
    ds.PixelData = arr.reshape(frames, spp, rows, cols).transpose(0, 2, 3, 1).tobytes()
    ds.PlanarConfiguration = 0


_LOSSY_METHOD = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",
    "1.2.840.10008.1.2.4.91": "ISO_15444_1",
    "1.2.840.10008.1.2.4.93": "ISO_15444_1",
    "1.2.840.10008.1.2.4.203": "ISO_15444_15",
}


def _values(ds: Dataset, keyword: str) -> list[Any]:
    v = ds.get(keyword)
    if v is None or v == "":
        return []
    return list(v) if isinstance(v, MultiValue | list) else [v]


def _mark_lossy(ds: Dataset, ts: UID, ratio: float | None = None) -> None:
    """Record lossy compression (PS3.3 C.7.6.1.1.5): Lossy Image Compression "01", ratio, method."""
    ds.LossyImageCompression = "01"
    method = _LOSSY_METHOD.get(str(ts))
    if ratio is not None and method:
        ds.LossyImageCompressionRatio = [*_values(ds, "LossyImageCompressionRatio"), f"{ratio:.2f}"[:16]]
        ds.LossyImageCompressionMethod = [*_values(ds, "LossyImageCompressionMethod"), method]
    elif method and "LossyImageCompressionMethod" not in ds:
        ds.LossyImageCompressionMethod = method


def _swap_binary_values(ds: Dataset, to_big_endian: bool) -> None:
    """Byte-swap the values whose byte order pydicom does not change on write, at every level.

    pydicom re-encodes numeric VRs (US, FD...) from their values but writes OB/OW-like bytes
    unchanged, so a change of endianness swaps them here (PS3.5 7.3): OW/OL/OF/OD/OV by word
    size; Pixel Data by the Bits Allocated of its own data set (an icon's differs from the
    image's); Float/Double Float Pixel Data by 4/8. Pixel data of 8 bits or less is bytes, not
    words: written OB for Big Endian, and 8-bit pixels a Big Endian file holds in OW are swapped
    pairwise into pixel order, as pydicom's decoder reads them (PS3.5 8.1.1, Annex D).
    """
    stack = [ds]
    while stack:
        d = stack.pop()
        bits = int(d.get("BitsAllocated", 0) or 0) if "BitsAllocated" in d else 0
        for elem in d:
            if elem.VR == "SQ":
                stack.extend(elem.value or [])
                continue
            value = elem.value
            if not isinstance(value, bytes | bytearray) or not value:
                continue
            size = _swap_size(elem, bits, to_big_endian)
            if size > 1 and len(value) % size == 0:
                elem.value = np.frombuffer(value, dtype=f"u{size}").byteswap().tobytes()
            if int(elem.tag) == _PIXEL_DATA and 0 < bits <= 8 and (to_big_endian or bits == 8):
                elem.VR = "OB"


def _swap_size(elem: Any, bits: int, to_big_endian: bool) -> int:
    """The word size to swap `elem`'s bytes by (0: leave them)."""
    tag = int(elem.tag)
    if tag == _PIXEL_DATA:
        if elem.is_undefined_length:
            return 0  # encapsulated: a codestream, not words
        if bits > 8:
            return bits // 8
        return 2 if bits == 8 and not to_big_endian and elem.VR == "OW" else 0
    if tag in (_FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA):
        return 4 if tag == _FLOAT_PIXEL_DATA else 8
    return _SWAP_SIZES.get(elem.VR, 0)
