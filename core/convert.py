"""Transfer syntax conversion: decide whether a data set can go in a syntax, and encode it.

Rules (SEED_API.md, PS3.5 8 and 10):

* uncompressed <-> uncompressed always (Implicit/Explicit VR Little Endian,
  Explicit VR Big Endian with real byte swapping of OW/OL/OF/OD/OV values and
  of Pixel Data by Bits Allocated, Deflated);
* compressed -> uncompressed when a pixel decoder is available;
* uncompressed -> compressed only losslessly, unless lossy conversion is allowed;
* a lossy source may go anywhere (it loses nothing more).

The SOP Instance UID never changes and the source file is never touched: the
encoded data set is returned as bytes.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
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
from .scan import ScannedInstance
from .strategies import UNCOMPRESSED_SYNTAXES, is_lossy_syntax

LOGGER = logging.getLogger(__name__)

__all__ = [
    "can_decode",
    "can_encode",
    "conversion_plan",
    "load_dataset",
    "encode_dataset",
    "syntax_label",
    "ConversionPlan",
]

#: Encoder settings for the lossy targets (used only when lossy conversion is allowed):
#: visually lossless quality rather than maximum compression.
_LOSSY_OPTIONS: dict[str, dict[str, Any]] = {
    "1.2.840.10008.1.2.4.91": {"j2k_psnr": [60]},  # JPEG 2000
    "1.2.840.10008.1.2.4.81": {"jls_error": 1},  # JPEG-LS near-lossless
}

_SWAP_SIZES = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}


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

    Fixes: File Meta with the inferred transfer syntax; SOP Class UID from
    (0002,0002); odd-length values converted so that pydicom pads them.

    Raises:
        ConversionError: the file cannot be read completely.
    """
    if isinstance(source, Dataset):
        ds = source
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
    return ds


def _pad_odd_values(ds: Dataset) -> None:
    """Make pydicom pad odd-length values on write (PS3.5 7.1.1).

    pydicom writes a raw element back byte for byte, odd length included; once
    converted to a normal element its writer pads it with one 0x00 (or a space).
    """
    for tag, elem in list(ds._dict.items()):
        length = getattr(elem, "length", 0)
        if length % 2 and length != 0xFFFFFFFF:
            _ = ds[tag]


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
    src, dst = _ds_syntax(ds), UID(target)
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
    """Turn `ds` (a private copy) from `src` into `dst` in memory."""
    if src.is_encapsulated:
        try:
            ds.decompress(generate_instance_uid=False)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise ConversionError(f"cannot decode {syntax_label(src)} pixel data: {reason}") from exc
        if is_lossy_syntax(src):
            _mark_lossy(ds, src)
        src = UID(ds.file_meta.TransferSyntaxUID)
    elif src == ExplicitVRBigEndian and dst != ExplicitVRBigEndian:
        _swap_binary_values(ds, to_big_endian=False)
    if dst.is_encapsulated:
        if src == ExplicitVRBigEndian:
            _swap_binary_values(ds, to_big_endian=False)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        native = len(ds.PixelData)
        try:
            ds.compress(dst, generate_instance_uid=False, **_LOSSY_OPTIONS.get(str(dst), {}))
        except Exception as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise ConversionError(f"cannot encode {syntax_label(dst)}: {reason}") from exc
        if is_lossy_syntax(dst):
            _mark_lossy(ds, dst, native / max(1, len(ds.PixelData)))
        return ds
    if dst == ExplicitVRBigEndian and src != ExplicitVRBigEndian:
        _swap_binary_values(ds, to_big_endian=True)
    ds.file_meta.TransferSyntaxUID = dst
    return ds


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
    """Byte-swap OW/OL/OF/OD/OV values and Pixel Data (by Bits Allocated), recursively.

    pydicom re-encodes numeric VRs (US, FD...) from their values but writes
    OB/OW-like bytes unchanged, so a change of endianness must swap them here
    (PS3.5 7.3).
    """
    bits = int(ds.get("BitsAllocated", 0) or 0)
    for elem in list(ds.iterall()):
        if elem.value is None or not isinstance(elem.value, bytes | bytearray):
            continue
        tag = int(elem.tag)
        if tag in (0x7FE00010, 0x7FE00008, 0x7FE00009):
            if elem.is_undefined_length:
                continue
            size = {0x7FE00008: 4, 0x7FE00009: 8}.get(tag, bits // 8 if bits in (16, 32, 64) else 0)
            if size == 0:
                if to_big_endian:
                    elem.VR = "OB"  # 1-bit/8-bit pixels: bytes, never words
                continue
        else:
            size = _SWAP_SIZES.get(elem.VR, 0)
        if size > 1 and len(elem.value) % size == 0:
            elem.value = np.frombuffer(elem.value, dtype=f"u{size}").byteswap().tobytes()
