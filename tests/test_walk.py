"""core.walk: the whole-data-set walk names each kind of corruption, passes every good file, stays
iterative and bounded, and finds the real encoding behind a false Transfer Syntax label."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
)

from core import scan
from core.walk import (
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    MAX_DEPTH,
    Encoding,
    FaultKind,
    detect_encoding,
    walk_dataset,
    walk_file,
)
from helpers import casegen
from helpers.data import data_dirs

SC = "1.2.840.10008.5.1.4.1.1.7"
UID_A = "1.2.826.0.1.3680043.8.498.1"


def enc(ds: Dataset, implicit: bool = False, little: bool = True) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    write_dataset(fp, ds)
    return fp.getvalue()


def el(tag: int, vr: bytes, value: bytes) -> bytes:
    """One Explicit VR Little Endian element."""
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return head + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def item(body: bytes, undefined: bool = True) -> bytes:
    if undefined:
        return struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + body + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body


SEQ_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def sq(tag: int, items: bytes, undefined: bool = True) -> bytes:
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + b"SQ\0\0"
    if undefined:
        return head + struct.pack("<I", 0xFFFFFFFF) + items + SEQ_END
    return head + struct.pack("<I", len(items)) + items


def base() -> bytes:
    return el(0x00080016, b"UI", SC.encode() + b"\0"[: len(SC) % 2]) + el(0x00080018, b"UI", UID_A.encode() + b"\0")


def good_files() -> list[Path]:
    out = []
    for d in data_dirs():
        out += [p for p in sorted(d.rglob("*")) if p.is_file()]
    return out


# -- good data passes ---------------------------------------------------------------------------------


def test_every_readable_file_of_the_corpus_walks_clean():
    walked = 0
    for path in good_files():
        inst = scan.read_instance(str(path))
        if inst.status != "ok" or not inst.data_offset:
            continue
        syntax = inst.encoding or inst.transfer_syntax
        r = walk_file(
            path,
            syntax,
            inst.data_offset,
            encapsulated=inst.transfer_syntax.startswith("1.2.840.10008.1.2.4") or inst.transfer_syntax == "1.2.840.10008.1.2.5",
            expect_sop_class=None if inst.fix_sop_class else inst.sop_class_uid,
            expect_sop_instance=inst.sop_instance_uid,
        )
        assert r.ok, f"{path.name}: {r.fault}"
        walked += 1
    assert walked > 150


@pytest.mark.parametrize(
    "syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian]
)
def test_a_real_data_set_walks_under_each_native_syntax(tmp_path, syntax):
    from core.convert import encode_dataset

    ds = dcmread(casegen.make_ct(tmp_path, 1)[0])
    data, _, _ = encode_dataset(ds, syntax)
    r = walk_dataset(data, syntax, expect_sop_class=str(ds.SOPClassUID), expect_sop_instance=str(ds.SOPInstanceUID))
    assert r.ok, r.fault
    assert r.elements > 20 and not r.repairs
    if syntax != DeflatedExplicitVRLittleEndian:
        assert r.pixel_length == len(ds.PixelData)


# -- each kind of corruption is named ---------------------------------------------------------------------


def fault_of(data: bytes, syntax=ExplicitVRLittleEndian, **kw):
    r = walk_dataset(data, syntax, **kw)
    assert r.fault is not None, "expected a fault"
    return r.fault


def test_value_longer_than_the_data_is_truncation_naming_the_element():
    data = base() + el(0x00100010, b"PN", b"TEST^PATIENT")[:-4]
    f = fault_of(data)
    assert f.kind is FaultKind.TRUNCATED and f.tag == 0x00100010 and f.keyword == "PatientName"
    assert "(0010,0010) PatientName" in str(f)


def test_data_ending_inside_a_header_is_truncation():
    f = fault_of(base() + b"\x10\x00\x10\x00PN")
    assert f.kind is FaultKind.TRUNCATED and "header" in f.problem


def test_missing_item_delimiter_is_named():
    data = base() + sq(0x00081115, struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + el(0x0020000E, b"UI", b"1.2\0") + SEQ_END)
    f = fault_of(data)
    assert "sequence delimiter" in f.problem and "item" in f.problem
    assert "ReferencedSeriesSequence" in str(f)


def test_missing_sequence_delimiter_is_named():
    data = base() + el(0x00081115, b"SQ", b"")[:8] + struct.pack("<I", 0xFFFFFFFF) + item(el(0x0020000E, b"UI", b"1.2\0"))
    data = data[: len(data)]  # the sequence is never closed
    f = fault_of(data)
    assert f.tag == 0x00081115 and "no sequence delimiter" in f.problem


def test_tags_out_of_order_and_repeated():
    f = fault_of(el(0x00100020, b"LO", b"ID") + el(0x00100010, b"PN", b"A^B "))
    assert "ascending" in f.problem and f.tag == 0x00100010
    f = fault_of(el(0x00100010, b"PN", b"A^B ") + el(0x00100010, b"PN", b"A^B "))
    assert "repeated" in f.problem


def test_tags_out_of_order_inside_an_item_name_the_item():
    body = el(0x00081155, b"UI", b"1.2\0") + el(0x00081150, b"UI", b"1.2\0")
    f = fault_of(base() + sq(0x00081140, item(body) + item(body)))
    assert f.tag == 0x00081150 and "item 1 of (0008,1140) ReferencedImageSequence" in str(f)


def test_invalid_vr_where_the_syntax_is_explicit():
    f = fault_of(base() + b"\x10\x00\x10\x00ZZ\x04\x00A^B ")
    assert "invalid VR" in f.problem and f.tag == 0x00100010


def test_undefined_length_on_a_plain_element():
    f = fault_of(base() + b"\x10\x00\x10\x00UT\0\0\xff\xff\xff\xff")
    assert "undefined length" in f.problem


def test_item_delimiter_in_a_defined_length_item():
    f = fault_of(base() + sq(0x00081115, item(el(0x0020000E, b"UI", b"1.2\0") + struct.pack("<HHI", 0xFFFE, 0xE00D, 0), False)))
    assert "item delimiter" in f.problem


def test_delimiter_with_a_nonzero_length():
    bad_end = struct.pack("<HHI", 0xFFFE, 0xE0DD, 4)
    f = fault_of(base() + el(0x00081115, b"SQ", b"")[:8] + struct.pack("<I", 0xFFFFFFFF) + item(b"") + bad_end)
    assert "non-zero length" in f.problem


def encapsulated(*fragments: bytes, bot: bytes = b"", end: bool = True) -> bytes:
    body = struct.pack("<HHI", 0xFFFE, 0xE000, len(bot)) + bot
    for frag in fragments:
        body += struct.pack("<HHI", 0xFFFE, 0xE000, len(frag)) + frag
    head = b"\xe0\x7f\x10\x00OB\0\0\xff\xff\xff\xff"
    return head + body + (SEQ_END if end else b"")


def test_encapsulated_pixel_data_structure():
    ok = walk_dataset(base() + encapsulated(b"\xff\x4f" + b"\0" * 10), JPEG2000Lossless)
    assert ok.ok and ok.encapsulated and ok.fragments == 1
    assert "no sequence delimiter" in fault_of(base() + encapsulated(b"ab", end=False), JPEG2000Lossless).problem
    assert "no fragment" in fault_of(base() + encapsulated(), JPEG2000Lossless).problem
    assert "multiple of 4" in fault_of(base() + encapsulated(b"ab", bot=b"\0\0"), JPEG2000Lossless).problem
    assert "encapsulated" in fault_of(base() + encapsulated(b"ab"), ExplicitVRLittleEndian).problem
    native = base() + el(0x7FE00010, b"OW", b"\0\0" * 8)
    assert "native" in fault_of(native, JPEG2000Lossless).problem


def test_odd_fragment_and_odd_values_are_repairs_not_faults():
    r = walk_dataset(base() + el(0x00100010, b"PN", b"ODD") + encapsulated(b"abc"), JPEG2000Lossless)
    assert r.ok
    what = [str(x) for x in r.repairs]
    assert any("PatientName" in w and "padded to 4" in w for w in what), what
    assert any("fragment 1" in w and "inside its item" in w for w in what), what


def test_uids_must_match_the_command():
    data = base()
    assert walk_dataset(data, ExplicitVRLittleEndian, expect_sop_class=SC, expect_sop_instance=UID_A).ok
    f = fault_of(data, expect_sop_instance="1.2.3")
    assert f.kind is FaultKind.UID and f.tag == 0x00080018 and "1.2.3" in f.problem
    f = fault_of(el(0x00100010, b"PN", b"A^B "), expect_sop_class=SC)
    assert f.kind is FaultKind.UID and "missing" in f.problem


def test_deflated_data_is_inflated_and_bounded():
    raw = base() + el(0x00100010, b"PN", b"A^B ")
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = c.compress(raw) + c.flush()
    assert walk_dataset(deflated, DeflatedExplicitVRLittleEndian).ok
    assert fault_of(b"not deflate at all", DeflatedExplicitVRLittleEndian).kind is FaultKind.DEFLATE
    assert fault_of(deflated[:-4], DeflatedExplicitVRLittleEndian).kind is FaultKind.DEFLATE
    c2 = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    bomb = c2.compress(b"\0" * (4 << 20)) + c2.flush()
    f = fault_of(bomb, DeflatedExplicitVRLittleEndian, max_inflated_bytes=1 << 20)
    assert f.kind is FaultKind.DEFLATE and "more than" in f.problem


def nested(depth: int, implicit: bool = False) -> bytes:
    """`depth` undefined-length sequences, each in an item of the last."""
    if implicit:
        open_ = b"\x08\x00\x15\x11\xff\xff\xff\xff" + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    else:
        open_ = b"\x08\x00\x15\x11SQ\0\0\xff\xff\xff\xff" + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + SEQ_END
    return open_ * depth + close * depth


@pytest.mark.parametrize("implicit", [False, True])
def test_thousands_of_nested_sequences_are_a_fault_not_a_recursion_error(implicit):
    syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    prefix = b"" if implicit else base()
    assert walk_dataset(prefix + nested(10, implicit), syntax).ok
    t0 = time.monotonic()
    f = fault_of(prefix + nested(5000, implicit), syntax)
    assert f.kind is FaultKind.DEPTH and f"deeper than {MAX_DEPTH}" in f.problem
    assert time.monotonic() - t0 < 1
    # the bound is a parameter; the walk itself is iterative
    assert walk_dataset(prefix + nested(5000, implicit), syntax, max_depth=10**6).ok


def test_big_endian_walk():
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Rows = SC, UID_A, 7
    ds.ReferencedSeriesSequence = [Dataset()]
    ds.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3"
    data = enc(ds, little=False)
    assert walk_dataset(data, ExplicitVRBigEndian, expect_sop_instance=UID_A).ok
    assert not walk_dataset(data, ExplicitVRLittleEndian).ok


# -- the real encoding behind a false label -----------------------------------------------------------------


def sample() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SC, UID_A
    ds.PatientName, ds.PatientID, ds.Rows, ds.Columns = "TEST^PATIENT", "ID1", 4, 4
    ds.ReferencedSeriesSequence = [Dataset()]
    ds.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3"
    return ds


@pytest.mark.parametrize(
    ("real", "label"),
    [
        (IMPLICIT_LE, EXPLICIT_LE),
        (EXPLICIT_LE, IMPLICIT_LE),
        (EXPLICIT_LE, EXPLICIT_BE),
        (EXPLICIT_BE, EXPLICIT_LE),
        (IMPLICIT_LE, EXPLICIT_BE),
    ],
)
def test_detect_encoding_finds_the_real_one(real: Encoding, label: Encoding):
    data = enc(sample(), real.implicit, real.little)
    assert not walk_dataset(data, label).ok
    found = detect_encoding(data, 0, label)
    assert found is not None and found.encoding == real


def test_detect_deflated_behind_an_explicit_label_and_the_reverse():
    raw = enc(sample())
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = c.compress(raw) + c.flush()
    found = detect_encoding(deflated, 0, EXPLICIT_LE)
    assert found is not None and found.encoding.deflated
    found = detect_encoding(raw, 0, Encoding(False, True, True))
    assert found is not None and found.encoding == EXPLICIT_LE


def test_damaged_data_is_not_mistaken_for_a_mislabel():
    data = enc(sample())
    assert detect_encoding(data[: len(data) - 5], 0, EXPLICIT_LE) is None
