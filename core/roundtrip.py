"""Verified conversions: encode for the target syntax, read the bytes back, and prove nothing changed.

:func:`convert_verified` encodes a data set for a presentation context's transfer syntax
(:func:`core.convert.encode_dataset`), then

1. walks the encoded bytes under that syntax (:func:`core.walk.walk_dataset`, with the UIDs the
   C-STORE command will carry);
2. parses them back with pydicom under that syntax's encoding (inflating Deflated data);
3. compares the result with the source element by element, at every level: tags, values, and VRs
   where both the source and the target keep them;
4. for a conversion of pixel data, decodes the output's pixels and the source's and requires the
   same array (same shape, same values) with the same photometric meaning: Photometric
   Interpretation unchanged, or changed only with the pixels (RGB <-> YBR_RCT/ICT in JPEG 2000,
   a YCbCr source decoded to RGB), and a JPEG 2000 codestream whose colour transform and sign
   match the labels (PS3.5 8.2.4).

Any mismatch raises :class:`~core.errors.ConversionError` naming what would change, so the caller
tries another accepted syntax or fails the instance: a conversion is never reported lossless
without this proof. What a conversion necessarily loses is returned as warnings (private elements
that reach an Implicit VR peer without their VRs, a lossy source decompressed, lossy compression
when allowed); an element whose stored VR contradicts the dictionary in a way that changes its
meaning cannot go in Implicit VR at all (PS3.5 7.1.3, A.1).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import numpy as np
from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_data_element
from pydicom.uid import UID

from .convert import conversion_plan, dataset_syntax, encapsulated_items, encode_dataset, error_reason, syntax_label
from .errors import ConversionError
from .walk import WalkResult, inflate, walk_dataset

LOGGER = logging.getLogger(__name__)

__all__ = ["Conversion", "SourcePixels", "convert_verified", "compare_datasets", "implicit_vr_losses"]

#: Top-level elements a correct transcoding may rewrite; the pixels are compared decoded instead and
#: the Photometric Interpretation by its own rule.
_TRANSCODING_TAGS = frozenset(
    {
        0x7FE00010,  # Pixel Data
        0x7FE00001,  # Extended Offset Table
        0x7FE00002,  # Extended Offset Table Lengths
        0x00280004,  # Photometric Interpretation
        0x00280006,  # Planar Configuration
        0x00282110,  # Lossy Image Compression
        0x00282112,  # Lossy Image Compression Ratio
        0x00282114,  # Lossy Image Compression Method
    }
)
#: (source, output) Photometric Interpretations with the same meaning once decoded (PS3.3 C.7.6.3.1.2).
_SAME_MEANING = frozenset(
    {
        ("RGB", "YBR_RCT"),  # JPEG 2000 reversible colour transform
        ("RGB", "YBR_ICT"),  # JPEG 2000 irreversible colour transform (lossy targets only)
        ("YBR_RCT", "RGB"),
        ("YBR_ICT", "RGB"),
        ("YBR_FULL", "RGB"),  # decompressed and converted to RGB
        ("YBR_FULL_422", "RGB"),
        ("YBR_PARTIAL_420", "RGB"),
        ("YBR_FULL_422", "YBR_FULL"),
    }
)
_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})
_WORD_SIZE = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True)
class Conversion:
    """An encoded data set whose conversion was verified.

    Attributes:
        data: the data set encoded for `transfer_syntax` (no File Meta), ready for a C-STORE.
        transfer_syntax: the target transfer syntax UID.
        converted_from: the source syntax UID when converted, else None (re-encoded as stored).
        kind: ``"as-stored"``, ``"lossless"``, ``"decompress-lossy"`` or ``"lossy"``.
        notes: what was done, for the report.
        warnings: what the conversion necessarily loses, for the report.
        walk: the walk of the encoded bytes.
        pixels_compared: True when decoded pixels were compared.
    """

    data: bytes
    transfer_syntax: str
    converted_from: str | None
    kind: str
    notes: tuple[str, ...]
    warnings: tuple[str, ...]
    walk: WalkResult
    pixels_compared: bool = False


@dataclass
class SourcePixels:
    """The source's decoded pixels, decoded once and shared by the candidates of one instance."""

    array: np.ndarray | None = None
    error: str = ""
    done: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, ds: Dataset) -> np.ndarray:
        """The decoded pixels of `ds`.

        Raises:
            ConversionError: the source's pixels cannot be decoded here.
        """
        if not self.done:
            self.done = True
            try:
                self.array = _decode(ds)
            except Exception as exc:
                self.error = _reason(exc)
        if self.array is None:
            raise ConversionError(f"the source's pixels cannot be decoded here ({self.error}), so no conversion can be verified")
        return self.array


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {error_reason(exc)}"


def _decode(ds: Dataset) -> np.ndarray:
    from pydicom.pixels import pixel_array

    meta = getattr(ds, "file_meta", None)
    if meta is not None and str(meta.get("TransferSyntaxUID", "")) == "1.2.840.10008.1.2.4.70":
        try:  # libjpeg, not the GDCM that may have encoded it: a second codec proves the codestream
            return pixel_array(ds, decoding_plugin="pylibjpeg")
        except (ValueError, RuntimeError):
            pass
    return pixel_array(ds)


def convert_verified(
    ds: Dataset,
    target: str,
    allow_lossy: bool = False,
    *,
    source_pixels: SourcePixels | None = None,
    sop_class_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> Conversion:
    """Encode `ds` for `target` and verify the result (see the module docstring).

    Args:
        ds: the source data set, with its File Meta (Transfer Syntax UID) describing its encoding;
            it is not modified.
        target: the transfer syntax UID of the accepted presentation context.
        allow_lossy: allow lossless-to-lossy compression.
        source_pixels: the source's decoded pixels, shared between candidates (decoded on demand).
        sop_class_uid: the SOP Class UID the C-STORE command carries (default: the data set's).
        sop_instance_uid: the SOP Instance UID the C-STORE command carries (default: the data set's).

    Returns:
        The verified :class:`Conversion`.

    Raises:
        ConversionError: the conversion is not possible, not allowed, or would change the data set
            (the message names the elements or the pixels that would change).
    """
    src, dst = dataset_syntax(ds), UID(target)
    label = syntax_label(dst)
    has_pixels = any(k in ds for k in _PIXEL_KEYWORDS)
    plan = conversion_plan(src, dst, allow_lossy, has_pixels="PixelData" in ds)
    if not plan.possible:
        raise ConversionError(plan.reason)
    warns: list[str] = []
    if dst.is_implicit_VR and not _implicit(ds):
        w, failures = implicit_vr_losses(ds)
        if failures:
            raise ConversionError(f"cannot be sent in {label}: " + "; ".join(failures[:3]) + _more(failures, 3))
        warns += w
    try:
        data, conv_from, notes = encode_dataset(ds, dst, allow_lossy)
    except ConversionError:
        raise
    except Exception as exc:  # a value a codec or pydicom cannot take: this target is not usable
        raise ConversionError(f"cannot encode the data set as {label}: {_reason(exc)}") from exc
    walk = walk_dataset(
        data,
        dst,
        expect_sop_class=sop_class_uid or str(ds.get("SOPClassUID", "")),
        expect_sop_instance=sop_instance_uid or str(ds.get("SOPInstanceUID", "")),
    )
    if walk.fault is not None:
        raise ConversionError(f"the data set encoded as {label} is malformed: {walk.fault}")
    if walk.repairs:
        raise ConversionError(f"the data set encoded as {label} still has an odd length: {walk.repairs[0]}")
    out = _parse(data, dst)
    diffs = compare_datasets(ds, out, keep_vr=not dst.is_implicit_VR and not _implicit(ds))
    if diffs:
        raise ConversionError(f"converting to {label} would change {'; '.join(diffs[:3])}{_more(diffs, 3)}")
    compared = False
    if conv_from is not None and has_pixels:
        if _native_little(src) and _native_little(dst):
            _check_pixel_bytes(ds, out, label)  # the same bytes: no decoding needed to prove it
        else:
            _check_pixels(ds, out, dst, plan.kind, source_pixels or SourcePixels())
        compared = True
    if plan.kind == "decompress-lossy":
        warns.append(f"the source is lossy {syntax_label(src)}: decompressed for {label} (Lossy Image Compression 01 kept)")
    elif plan.kind == "lossy":
        warns.append(f"compressed lossily to {label} (allowed by the settings); Lossy Image Compression set to 01")
    kind = plan.kind if conv_from is not None else "as-stored"
    return Conversion(data, str(dst), conv_from, kind, tuple(notes), tuple(warns), walk, compared)


def _more(items: list[str], shown: int) -> str:
    return f" (and {len(items) - shown} more)" if len(items) > shown else ""


def _implicit(ds: Dataset) -> bool:
    """True when the data set was read from Implicit VR bytes (its VRs come from the dictionary)."""
    return dataset_syntax(ds).is_implicit_VR


def _parse(data: bytes, dst: UID) -> Dataset:
    """Read encoded bytes back under `dst`'s encoding, converting every element."""
    try:
        body = inflate(data) if dst.is_deflated else data
        out = read_dataset(BytesIO(body), dst.is_implicit_VR, dst.is_little_endian)
        for _ in out.iterall():  # converts every raw element: a value pydicom cannot read fails here
            pass
    except Exception as exc:
        raise ConversionError(f"the data set encoded as {syntax_label(dst)} cannot be read back: {_reason(exc)}") from exc
    out.file_meta = FileMetaDataset()
    out.file_meta.TransferSyntaxUID = dst
    return out


# -- element comparison ----------------------------------------------------------------------------------


def _name(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword_for_tag(tag) or 'private'}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _empty(value: Any) -> bool:
    return value is None or (hasattr(value, "__len__") and len(value) == 0)


def _little(ds: Dataset) -> bool:
    return dataset_syntax(ds).is_little_endian


def _canonical(elem: DataElement, little: bool, charset: Any) -> bytes:
    """An element's value as Little Endian bytes (text without trailing padding)."""
    value = elem.value
    if isinstance(value, bytes | bytearray):
        size = _WORD_SIZE.get(elem.VR)
        if size and not little and len(value) % size == 0:
            value = np.frombuffer(value, f">u{size}").astype(f"<u{size}").tobytes()
        return bytes(value)
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_data_element(fp, elem, charset)
    raw = fp.getvalue()[8:]
    return raw.rstrip(b" \0") if elem.VR in _TEXT_VRS else raw


def _same_bytes(a: bytes, b: bytes) -> bool:
    """Equal, or equal but for the one pad byte an odd value gets (PS3.5 7.1.1)."""
    if a == b:
        return True
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return len(long) == len(short) + 1 and long.startswith(short) and long[-1:] in (b"\0", b" ")


def _element_diff(a: DataElement, b: DataElement, ctx: tuple[bool, bool, bool, Any, Any]) -> str:
    keep_vr, a_little, b_little, a_cs, b_cs = ctx
    pixel_bytes = int(a.tag) == 0x7FE00010 and {a.VR, b.VR} <= {"OB", "OW"}  # 8-bit pixels: OB and OW hold the same bytes
    if keep_vr and a.VR != b.VR and "UN" not in (a.VR, b.VR) and not pixel_bytes:
        return f"VR {a.VR} would become {b.VR}"
    if _empty(a.value) and _empty(b.value):
        return ""
    if a.VR == b.VR and not isinstance(a.value, bytes | bytearray) and not isinstance(b.value, bytes | bytearray):
        try:
            if a.value == b.value:
                return ""
        except Exception:  # values of exotic types: compare their bytes
            LOGGER.debug("Comparing %s by value failed", a.tag, exc_info=True)
    if a.VR in _TEXT_VRS and b.VR in _TEXT_VRS and str(a.value) == str(b.value):
        return ""
    try:
        if _same_bytes(_canonical(a, a_little, a_cs), _canonical(b, b_little, b_cs)):
            return ""
    except Exception as exc:
        return f"cannot be compared ({_reason(exc)})"
    return f"{_short(a.value)} would become {_short(b.value)}"


def compare_datasets(source: Dataset, output: Dataset, keep_vr: bool) -> list[str]:
    """The differences between a source data set and its encoded-and-read-back copy.

    Compares every element at every level (iteratively) except File Meta, group lengths and, at top
    level, the elements a transcoding rewrites (pixels are compared decoded, elsewhere).

    Args:
        source: the data set as loaded from the user's file.
        output: the encoded bytes read back.
        keep_vr: compare VRs too (both the source and the target syntax are explicit).

    Returns:
        One line per difference, naming the element (and its item path); empty when equal.
    """
    out: list[str] = []
    a_little, b_little = _little(source), _little(output)
    stack: list[tuple[Dataset, Dataset, str, bool, Any, Any]] = [
        (source, output, "", True, source.get("SpecificCharacterSet"), output.get("SpecificCharacterSet"))
    ]
    while stack and len(out) < 20:
        a_ds, b_ds, path, top, a_cs, b_cs = stack.pop()
        a_cs = a_ds.get("SpecificCharacterSet", a_cs)
        b_cs = b_ds.get("SpecificCharacterSet", b_cs)
        ctx = (keep_vr, a_little, b_little, a_cs or "iso8859", b_cs or "iso8859")
        for tag in sorted(set(a_ds.keys()) | set(b_ds.keys())):
            t = int(tag)
            if t >> 16 == 0x0002 or t & 0xFFFF == 0 or (top and t in _TRANSCODING_TAGS):
                continue
            where = f"{path}{_name(t)}"
            if tag not in b_ds:
                out.append(f"{where}: it would be dropped")
                continue
            if tag not in a_ds:
                out.append(f"{where}: it would be added")
                continue
            a, b = a_ds[tag], b_ds[tag]
            if a.VR == "SQ" or b.VR == "SQ":
                if a.VR != b.VR:
                    out.append(f"{where}: VR {a.VR} would become {b.VR}")
                elif len(a.value) != len(b.value):
                    out.append(f"{where}: {len(a.value)} items would become {len(b.value)}")
                else:
                    for i, (ia, ib) in enumerate(zip(a.value, b.value, strict=True)):
                        stack.append((ia, ib, f"{where}[{i + 1}] > ", False, a_cs, b_cs))
                continue
            diff = _element_diff(a, b, ctx)
            if diff:
                out.append(f"{where}: {diff}")
    return out


def implicit_vr_losses(ds: Dataset) -> tuple[list[str], list[str]]:
    """What an Implicit VR peer loses of an explicit-VR data set (PS3.5 A.1: it reads VRs from its dictionary).

    Returns:
        ``(warnings, failures)``: warnings name the private elements that arrive without their VRs
        and public ones stored with another text VR; failures name the elements whose stored VR
        contradicts the dictionary so that the peer would read another value (e.g. SS stored where
        the dictionary says US), which need an explicit VR syntax.
    """
    private: list[int] = []
    text_mismatch: list[str] = []
    failures: list[str] = []
    for elem in _iter_elements(ds):
        tag = int(elem.tag)
        if tag & 0xFFFF == 0 or tag >> 16 == 0x0002 or elem.VR in ("UN", "SQ"):
            continue
        if (tag >> 16) % 2:
            if tag & 0xFFFF >= 0x1000:  # a private data element (creators, xx10-xxFF, are LO to all)
                private.append(tag)
            continue
        if not dictionary_has_tag(tag):
            continue
        expected = dictionary_VR(tag)
        if expected == elem.VR or elem.VR in expected.split(" or "):
            continue
        if tag in (0x7FE00010,) or _empty(elem.value):
            continue
        what = f"{_name(tag)} stored as {elem.VR} where the dictionary says {expected}"
        if elem.VR in _TEXT_VRS and all(v in _TEXT_VRS for v in expected.split(" or ")):
            text_mismatch.append(what)
        else:
            failures.append(f"{what}: an Implicit VR peer would read another value (needs an explicit VR syntax)")
    warns = []
    if private:
        shown = ", ".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in private[:5])
        warns.append(
            f"{len(private)} private element(s) reach the Implicit VR peer without their VRs "
            f"({shown}{', ...' if len(private) > 5 else ''})"
        )
    if text_mismatch:
        warns.append("the Implicit VR peer reads the dictionary's VR: " + "; ".join(text_mismatch[:3]) + _more(text_mismatch, 3))
    return warns, failures


def _iter_elements(ds: Dataset) -> Iterator[DataElement]:
    """Every element of `ds` at every level, iteratively."""
    stack = [ds]
    while stack:
        for elem in stack.pop():
            yield elem
            if elem.VR == "SQ" and elem.value:
                stack.extend(elem.value)


# -- pixels ---------------------------------------------------------------------------------------------


def _native_little(uid: UID) -> bool:
    return not uid.is_encapsulated and uid.is_little_endian


def _check_pixel_bytes(source: Dataset, output: Dataset, label: str) -> None:
    """Native Little Endian to native Little Endian: the pixel values are the same bytes."""
    for keyword in _PIXEL_KEYWORDS:
        if keyword in source and not _same_bytes(bytes(source[keyword].value), bytes(output[keyword].value)):
            raise ConversionError(f"converting to {label} would change the {keyword} bytes")


def _check_pixels(source: Dataset, output: Dataset, dst: UID, kind: str, pixels: SourcePixels) -> None:
    """Decoded output pixels equal the source's, with the same photometric meaning (lossy: same shape)."""
    label = syntax_label(dst)
    src_pi = str(source.get("PhotometricInterpretation", "") or "").strip()
    out_pi = str(output.get("PhotometricInterpretation", "") or "").strip()
    if src_pi != out_pi and (src_pi, out_pi) not in _SAME_MEANING:
        raise ConversionError(f"converting to {label} would relabel Photometric Interpretation {src_pi} as {out_pi}")
    if dst.is_encapsulated and str(dst).startswith("1.2.840.10008.1.2.4.9") and "PixelData" in output:
        _check_j2k_codestream(output, out_pi, label)
    a = pixels.get(source)
    try:
        b = _decode(output)
    except Exception as exc:
        raise ConversionError(f"the pixels encoded as {label} cannot be decoded: {_reason(exc)}") from exc
    if a.shape != b.shape:
        raise ConversionError(f"converting to {label} would change the pixel array's shape {a.shape} to {b.shape}")
    if kind == "lossy":
        return
    if not np.array_equal(a, b):
        n = int(np.count_nonzero(a != b))
        raise ConversionError(f"converting to {label} would change {n} of {a.size} pixel values (not lossless)")


def _j2k_main_header(frame: bytes) -> dict[int, bytes]:
    """The marker segments of a JPEG 2000 codestream's main header (ISO 15444-1 A.2), by marker."""
    out: dict[int, bytes] = {}
    if frame[:2] != b"\xff\x4f":
        return out
    pos = 2
    while pos + 4 <= len(frame):
        marker = int.from_bytes(frame[pos : pos + 2], "big")
        if marker in (0xFF90, 0xFF93, 0xFFD9):  # SOT, SOD, EOC: the main header is over
            break
        length = int.from_bytes(frame[pos + 2 : pos + 4], "big")
        out.setdefault(marker, frame[pos + 4 : pos + 2 + length])
        pos += 2 + length
    return out


def _check_j2k_codestream(output: Dataset, pi: str, label: str) -> None:
    """The first JPEG 2000 codestream's colour transform and sign agree with the labels (PS3.5 8.2.4)."""
    items = encapsulated_items(output.PixelData)
    if not items or len(items) < 2:
        raise ConversionError(f"the {label} Pixel Data has no fragment")
    frame = items[1]
    header = _j2k_main_header(bytes(frame[:4096]))
    siz, cod = header.get(0xFF51, b""), header.get(0xFF52, b"")
    if len(siz) < 39 or len(cod) < 5:
        raise ConversionError(f"the {label} codestream has no SIZ or COD marker segment")
    components = int.from_bytes(siz[34:36], "big")
    signed = bool(siz[36] & 0x80)
    mct = cod[4]
    if int(output.get("PixelRepresentation", 0) or 0) == 1 and not signed:
        raise ConversionError(f"the {label} codestream is marked unsigned while Pixel Representation is 1 (signed)")
    if components >= 3 and mct and pi not in ("YBR_RCT", "YBR_ICT"):
        raise ConversionError(f"the {label} codestream applies a colour transform but is labelled {pi}")
    if not mct and pi in ("YBR_RCT", "YBR_ICT"):
        raise ConversionError(f"the {label} codestream has no colour transform but is labelled {pi}")
