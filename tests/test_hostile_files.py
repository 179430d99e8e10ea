"""Property: real files mutated (nesting, lengths, truncation, VR bytes, Transfer Syntax labels) always get an
outcome from the scan, the whole-data-set walk and prepare_payload - never an exception, never a hang."""

from __future__ import annotations

import struct
import time
from io import BytesIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.filereader import _read_file_meta_info
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID
from pynetdicom.presentation import build_context

from core import scan
from core.payload import PayloadError, plan_payload, prepare_payload
from core.walk import walk_file
from helpers.data import TEST_FILES

SEEDS = [
    "CT_small.dcm",
    "MR_small_bigendian.dcm",
    "rtplan.dcm",
    "image_dfl.dcm",
    "MR_small_jp2klossless.dcm",
    "SC_rgb_jpeg.dcm",
    "reportsi.dcm",
    "SC_rgb_small_odd.dcm",
]
LABELS = [
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.5",
]
TARGETS = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90"]


def _split(name: str) -> tuple[object, bytes]:
    """A test file's File Meta and the bytes of its data set."""
    raw = (TEST_FILES / name).read_bytes()
    fp = BytesIO(raw)
    fp.seek(132)
    meta = _read_file_meta_info(fp)
    return meta, raw[fp.tell() :]


PARTS = {name: _split(name) for name in SEEDS if (TEST_FILES / name).exists()}


def _file(meta: object, body: bytes) -> bytes:
    out = BytesIO()
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(out, meta)  # type: ignore[arg-type]
    return out.getvalue() + body


def _nesting(depth: int, implicit: bool) -> bytes:
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    head = b"\x08\x00\x15\x11" + (b"" if implicit else b"SQ\0\0") + b"\xff\xff\xff\xff"
    close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return (head + item) * depth + close * depth


@st.composite
def mutated(draw) -> bytes:
    name = draw(st.sampled_from(sorted(PARTS)))
    meta, body = PARTS[name]
    meta = meta.copy()  # type: ignore[attr-defined]
    body = bytearray(body)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["nest", "length", "truncate", "vr", "label", "flip"]))
        n = len(body)
        if n < 16:
            break
        pos = draw(st.integers(0, n - 8))
        if kind == "nest":
            depth = draw(st.sampled_from([3, 70, 600, 3000]))
            body[pos:pos] = _nesting(depth, draw(st.booleans()))
        elif kind == "length":
            body[pos : pos + 4] = draw(
                st.sampled_from([b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x01\x00\x00\x00", b"\x03\x01"])
            )
        elif kind == "truncate":
            body = body[:pos]
        elif kind == "vr":
            body[pos : pos + 2] = draw(st.sampled_from([b"ZZ", b"SQ", b"UN", b"OB", b"\x00\x00", b"UT", b"OW"]))
        elif kind == "label":
            meta.TransferSyntaxUID = UID(draw(st.sampled_from(LABELS)))  # type: ignore[attr-defined]
        else:
            for p in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=20)):
                body[p] = draw(st.integers(0, 255))
    return _file(meta, bytes(body))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_scan_walk_and_prepare_always_give_an_outcome(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("h") / "hostile.dcm"
    path.write_bytes(data)
    t0 = time.monotonic()
    inst = scan.read_instance(str(path))
    assert inst.status in ("ok", "skipped", "failure")
    assert inst.status == "ok" or inst.reason
    if inst.status == "ok":
        syntax = inst.encoding or inst.transfer_syntax
        walked = walk_file(str(path), syntax, inst.data_offset or 0)
        assert walked.ok or str(walked.fault)
        cands = []
        for i, ts in enumerate(dict.fromkeys([inst.transfer_syntax, *TARGETS])):
            cx = build_context(inst.sop_class_uid, [ts])
            cx.context_id = 2 * i + 1
            cands.append(cx)
        outcomes = []
        for fn in (plan_payload, prepare_payload):
            try:
                p = fn(str(path), inst, cands)
                outcomes.append(("ok", p.transfer_syntax, p.kind))
            except PayloadError as exc:
                assert exc.message
                outcomes.append(("error", exc.message))
        assert outcomes[0] == outcomes[1], outcomes  # the plan and the send agree
    assert time.monotonic() - t0 < 20, f"{time.monotonic() - t0:.1f} s"
