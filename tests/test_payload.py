"""core.payload: the one call before an instance goes out - stream as stored when nothing needs a rewrite,
else convert and verify, next candidate on failure, a named error when none works; the plan takes the same
decision; and the bytes it produces arrive intact at the strict receiver under the right syntax."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)
from pynetdicom import AE, _config
from pynetdicom.presentation import build_context

from core import scan
from core.payload import PayloadError, plan_payload, prepare_payload
from helpers import casegen
from helpers.data import TEST_FILES


def contexts(sop_class: str, *syntaxes: str) -> list:
    out = []
    for i, ts in enumerate(syntaxes):
        cx = build_context(sop_class, [ts])
        cx.context_id = 2 * i + 1
        out.append(cx)
    return out


def test_stored_syntax_accepted_and_clean_streams_the_file():
    path = str(TEST_FILES / "CT_small.dcm")
    inst = scan.read_instance(path)
    p = prepare_payload(path, inst, contexts(inst.sop_class_uid, ImplicitVRLittleEndian, ExplicitVRLittleEndian))
    assert p.streamed and p.data is None and p.path == path and p.offset == inst.data_offset
    assert p.kind == "as-stored" and p.transfer_syntax == ExplicitVRLittleEndian and not p.rewritten


def test_stored_syntax_not_accepted_converts_and_verifies():
    path = str(TEST_FILES / "CT_small.dcm")
    inst = scan.read_instance(path)
    p = prepare_payload(path, inst, [(cx, "why") for cx in contexts(inst.sop_class_uid, JPEG2000Lossless)])
    assert not p.streamed and p.data and p.converted_from == ExplicitVRLittleEndian
    assert p.kind == "lossless" and p.lossless and p.notes and "JPEG 2000 Lossless" in p.notes[0]


def test_odd_values_are_rewritten_even_when_the_syntax_is_accepted(tmp_path):
    odd, _normal = casegen.c18_odd_length_sc(tmp_path)
    inst = scan.read_instance(str(odd))
    assert inst.needs_rewrite
    p = prepare_payload(str(odd), inst, contexts(inst.sop_class_uid, inst.transfer_syntax))
    assert not p.streamed and p.rewritten and p.kind == "as-stored" and len(p.data) % 2 == 0


def test_a_failing_candidate_gives_way_to_the_next(tmp_path):
    ds = dcmread(TEST_FILES / "rtdose.dcm")  # 32-bit dose grid: no RLE or JPEG-LS encoder takes it
    path = str(TEST_FILES / "rtdose.dcm")
    inst = scan.read_instance(path)
    p = prepare_payload(path, inst, contexts(inst.sop_class_uid, RLELossless, JPEGLSLossless, ExplicitVRBigEndian))
    assert p.transfer_syntax == ExplicitVRBigEndian and len(p.tried) == 2
    assert [ts for ts, _ in p.tried] == [RLELossless, JPEGLSLossless]
    assert ds.BitsAllocated == 32


def test_no_candidate_is_a_named_error():
    path = str(TEST_FILES / "rtdose.dcm")
    inst = scan.read_instance(path)
    with pytest.raises(PayloadError) as info:
        prepare_payload(path, inst, contexts(inst.sop_class_uid, RLELossless, JPEGLSLossless))
    assert "RLE Lossless" in info.value.message and "JPEG-LS Lossless" in info.value.message
    assert len(info.value.tried) == 2


def test_undecodable_pixels_are_blocked_in_the_plan_as_in_the_send():
    """The field report: '0 blocked' in the plan, then raw codec errors at send time."""
    path = str(TEST_FILES / "JPEG-lossy.dcm")
    inst = scan.read_instance(path)
    cands = contexts(inst.sop_class_uid, ImplicitVRLittleEndian, ExplicitVRLittleEndian)
    with pytest.raises(PayloadError) as planned:
        plan_payload(path, inst, cands)
    with pytest.raises(PayloadError) as sent:
        prepare_payload(path, inst, cands)
    assert planned.value.message == sent.value.message and "cannot decode" in sent.value.message


def test_plan_and_send_take_the_same_decision():
    for name in ("CT_small.dcm", "MR_small_bigendian.dcm", "SC_rgb_jpeg.dcm", "rtdose.dcm", "OBXXXX1A.dcm"):
        path = str(TEST_FILES / name) if (TEST_FILES / name).exists() else None
        if path is None:
            continue
        inst = scan.read_instance(path)
        cands = contexts(inst.sop_class_uid, RLELossless, ImplicitVRLittleEndian)
        plan, sent = plan_payload(path, inst, cands), prepare_payload(path, inst, cands)
        assert (plan.transfer_syntax, plan.kind, plan.notes, plan.warnings) == (
            sent.transfer_syntax,
            sent.kind,
            sent.notes,
            sent.warnings,
        ), name
        assert plan.streamed == sent.streamed and plan.data is None
        assert sent.streamed or sent.data is not None


def test_a_malformed_data_set_fails_naming_the_element(tmp_path):
    src = (TEST_FILES / "CT_small.dcm").read_bytes()
    inst = scan.read_instance(str(TEST_FILES / "CT_small.dcm"))
    off = inst.data_offset  # swap the first two top-level elements: tags no longer ascend
    first = 8 + struct.unpack_from("<H", src, off + 6)[0]
    second = 8 + struct.unpack_from("<H", src, off + first + 6)[0]
    bad = src[:off] + src[off + first : off + first + second] + src[off : off + first] + src[off + first + second :]
    path = tmp_path / "bad.dcm"
    path.write_bytes(bad)
    scanned = scan.read_instance(str(path))
    assert scanned.status == "failure" and "ascending" in scanned.reason, scanned.reason
    with pytest.raises(PayloadError) as info:  # and with a record from before the damage, the walk names it too
        prepare_payload(str(path), inst, contexts(inst.sop_class_uid, ExplicitVRLittleEndian, ImplicitVRLittleEndian))
    assert info.value.fault is not None and "ascending" in str(info.value)


def test_a_file_swapped_after_the_scan_is_not_sent_under_the_old_uids(tmp_path):
    a, b = casegen.make_ct(tmp_path / "a", 2)
    inst = scan.read_instance(str(a))
    a.write_bytes(b.read_bytes())  # another instance now sits at the scanned path
    with pytest.raises(PayloadError, match="changed since it was scanned"):
        prepare_payload(str(a), inst, contexts(inst.sop_class_uid, inst.transfer_syntax))


def test_a_file_deleted_after_the_scan(tmp_path):
    (a,) = casegen.make_ct(tmp_path, 1)
    inst = scan.read_instance(str(a))
    a.unlink()
    with pytest.raises(PayloadError, match="no longer exists"):
        prepare_payload(str(a), inst, contexts(inst.sop_class_uid, inst.transfer_syntax))


def test_a_mislabelled_file_is_rewritten_never_streamed():
    path = str(TEST_FILES / "SC_rgb_jpeg.dcm")  # labelled JPEG Baseline, data set in Implicit VR
    inst = scan.read_instance(path)
    assert inst.encoding is not None and inst.needs_rewrite
    assert any("(0002,0010) says" in n for n in inst.notes)
    p = prepare_payload(path, inst, contexts(inst.sop_class_uid, JPEGBaseline8Bit))
    assert not p.streamed and p.rewritten and p.transfer_syntax == JPEGBaseline8Bit


def test_dataset_sources_go_through_the_same_checks():
    ds = dcmread(TEST_FILES / "MR_small_bigendian.dcm")
    from core.engine import _dataset_record

    inst = _dataset_record(ds, 0)
    p = prepare_payload(ds, inst, contexts(inst.sop_class_uid, JPEG2000Lossless))
    assert p.kind == "lossless" and p.data


# -- end to end: the bytes produced arrive intact at the strict receiver --------------------------------------


def send_bytes(port: int, sop_class: str, sop_instance: str, ts: str, data: bytes, tmp_path: Path) -> int:
    """C-STORE exactly `data` on a context of `ts` (pynetdicom streams a file's data set as it is)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID = sop_class, sop_instance, ts
    path = tmp_path / f"{sop_instance}.dcm"
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(f, meta)
        f.write(data)
    ae = AE(ae_title="COURIER")
    ae.add_requested_context(sop_class, [ts])
    old = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        assoc = ae.associate("127.0.0.1", port, ae_title="STRICT")
        assert assoc.is_established
        rsp = assoc.send_c_store(path)
        assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = old
        ae.shutdown()
    return int(rsp.Status)


SAMPLES = ["MR_small_bigendian.dcm", "CT_small.dcm", "SC_rgb.dcm", "SC_rgb_jpeg_gdcm.dcm", "MR_small_jp2klossless.dcm"]
TARGETS = [
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    RLELossless,
    JPEG2000Lossless,
    JPEGLSLossless,
    DeflatedExplicitVRLittleEndian,
]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name.split()[0] + t.name.split()[-1])
def test_converted_bytes_arrive_intact_at_the_strict_receiver(strict_scp, tmp_path, target):
    sources = [TEST_FILES / n for n in SAMPLES if (TEST_FILES / n).exists()]
    insts = [scan.read_instance(str(p)) for p in sources]
    scp = strict_scp(accept={i.sop_class_uid: [target] for i in insts})
    sent = 0
    for path, inst in zip(sources, insts, strict=True):
        try:
            p = prepare_payload(str(path), inst, contexts(inst.sop_class_uid, target))
        except PayloadError as exc:
            assert exc.tried, exc  # refused with a reason, never sent
            continue
        data = p.data if p.data is not None else path.read_bytes()[p.offset :]
        status = send_bytes(scp.port, inst.sop_class_uid, inst.sop_instance_uid, p.transfer_syntax, data, tmp_path)
        assert status == 0x0000, (path.name, scp.failures)
        assert scp.received_syntax[inst.sop_instance_uid] == target
        assert not scp.compare(path), (path.name, scp.compare(path))
        sent += 1
    assert sent >= 3
