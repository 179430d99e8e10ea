"""The field cases (c01 ... c18) as tests: each builds its own input with casegen, runs the seed API
against an in-process SCP that behaves like the PEER of the case, and checks the EXPECTED outcome."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import (
    JPEG2000,
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLossless,
    JPEGLosslessSV1,
    MRImageStorage,
    RLELossless,
    RTDoseStorage,
    SecondaryCaptureImageStorage,
)

from helpers import casegen
from helpers.config import make_config
from helpers.scp import UNCOMPRESSED_LE

core = pytest.importorskip("core")


def uid_of(path) -> str:
    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


# --------------------------------------------------------------------------- c01


def test_c01_lossy_j2k_to_uncompressed_only_pacs(scp_factory, tmp_path):
    scp = scp_factory(accept={CTImageStorage: list(UNCOMPRESSED_LE)})
    paths = casegen.c01_lossy_j2k_ct(tmp_path)
    r = core.store_datasets_batch(scp.config(), paths)
    assert r["successful"] == 3 and r["failed"] == 0, r["details"]
    assert r["associations"] == 1 and len(scp.associations) == 1
    for path, d in zip(paths, r["details"], strict=True):
        assert d["status_code"] == 0x0000
        assert d["transfer_syntax"] in UNCOMPRESSED_LE
        src = dcmread(path)
        got = scp.received[uid_of(path)]
        assert np.array_equal(got.pixel_array, src.pixel_array), "compare with the decoded (lossy) source"
        assert got.LossyImageCompression == "01"
        assert float(got.LossyImageCompressionRatio) == 12
        assert got.LossyImageCompressionMethod == "ISO_15444_1"


def test_c01_report_names_the_transcoding(scp_factory, tmp_path):
    scp = scp_factory(accept={CTImageStorage: list(UNCOMPRESSED_LE)})
    path = casegen.c01_lossy_j2k_ct(tmp_path, n=1)[0]
    r = core.store_dataset(scp.config(), path)
    assert r["status"] == "success", r["message"]
    assert r["converted_from"] == JPEG2000
    assert "jpeg 2000" in r["message"].lower(), r["message"]
    # the proposal held the file's own syntax and an uncompressed fallback for CT
    proposed = {t for a in scp.associations for _, ab, ts in a.requested if ab == CTImageStorage for t in ts}
    assert JPEG2000 in proposed and proposed & set(UNCOMPRESSED_LE)


# --------------------------------------------------------------------------- c03


def test_c03_big_endian_only_peer_gets_real_byte_swap(scp_factory, tmp_path):
    scp = scp_factory(accept={MRImageStorage: [ExplicitVRBigEndian]})
    path = casegen.c03_mr_swap_visible(tmp_path)[0]
    r = core.store_dataset(scp.config(), path, transfer_syntax_strategy="standard")
    assert r["status"] == "success", r["message"]
    assert r["transfer_syntax"] == ExplicitVRBigEndian
    assert r["converted_from"] == ExplicitVRLittleEndian
    uid = uid_of(path)
    got = scp.received[uid]
    assert scp.received_syntax[uid] == ExplicitVRBigEndian
    arr = casegen.c03_mr_pixels()
    assert np.array_equal(got.pixel_array, arr), "pixel bytes were not swapped"
    assert got.DiffusionBValue == 1000.0
    assert got.MRDiffusionSequence[0].DiffusionBValue == 500.0
    assert got.LargestImagePixelValue == int(arr.max())
    assert got.SmallestImagePixelValue == int(arr.min())
    assert arr.byteswap().tobytes() in scp.raw[uid], "the wire must carry big endian pixel words"
    assert got.SOPInstanceUID == uid


# --------------------------------------------------------------------------- c04


def test_c04_jpeg_lossless_to_implicit_only_peer(scp_factory, tmp_path):
    scp = scp_factory(transfer_syntaxes=[ImplicitVRLittleEndian])
    paths = casegen.c04_jpeg_lossless_ct(tmp_path)
    r = core.store_datasets_batch(scp.config(), paths)
    assert r["successful"] == len(paths), r["details"]
    for i, (path, d) in enumerate(zip(paths, r["details"], strict=True)):
        assert d["transfer_syntax"] == ImplicitVRLittleEndian
        got = scp.received[uid_of(path)]
        assert np.array_equal(got.pixel_array, casegen.c04_source_pixels(i)), f"{path.name}: not lossless"


@pytest.mark.parametrize(("index", "syntax"), [(0, JPEGLosslessSV1), (2, JPEGLossless)])
def test_c04_converted_from_is_reported(scp_factory, tmp_path, index, syntax):
    scp = scp_factory(transfer_syntaxes=[ImplicitVRLittleEndian])
    path = casegen.c04_jpeg_lossless_ct(tmp_path)[index]
    r = core.store_dataset(scp.config(), path)
    assert r["status"] == "success", r["message"]
    assert r["converted_from"] == syntax and r["transfer_syntax"] == ImplicitVRLittleEndian


# --------------------------------------------------------------------------- c06


def test_c06_scan_bare_dataset_and_text_file(tmp_path):
    from core.scan import scan_paths

    dose, notes = casegen.c06_bare_rtdose_and_notes(tmp_path)
    found = {s.path if isinstance(s.path, str) else str(s.path): s for s in scan_paths([tmp_path])}
    d, n = found[str(dose)], found[str(notes)]
    assert d.status == "ok", d.reason
    assert d.sop_class_uid == RTDoseStorage and d.transfer_syntax == ImplicitVRLittleEndian
    assert any("meta" in note.lower() for note in d.notes), d.notes
    assert n.status == "skipped"
    assert "not" in n.reason.lower() and "dicom" in n.reason.lower(), n.reason


def test_c06_bare_dataset_is_sent_with_dose_intact(scp_factory, tmp_path):
    scp = scp_factory(accept={RTDoseStorage: list(UNCOMPRESSED_LE)})
    dose, _notes = casegen.c06_bare_rtdose_and_notes(tmp_path)
    r = core.store_datasets_batch(scp.config(), [dose])
    assert r["successful"] == 1, r["details"]
    assert "meta" in r["details"][0]["message"].lower(), r["details"][0]["message"]
    (got,) = scp.received.values()
    assert got.SOPClassUID == RTDoseStorage
    assert np.array_equal(got.pixel_array, casegen.c06_dose_grid())


# --------------------------------------------------------------------------- c08


def test_c08_missing_sop_class_uid(scp_factory, tmp_path):
    scp = scp_factory(accept={CTImageStorage: list(UNCOMPRESSED_LE)})
    paths = casegen.c08_missing_sop_class(tmp_path)
    r = core.store_datasets_batch(scp.config(), paths)
    d = r["details"]
    assert len(d) == 4 and [x["dataset_index"] for x in d] == [0, 1, 2, 3]
    assert d[0]["status"] == d[1]["status"] == "success"
    # 3: sent with the class from (0002,0002) and a warning - or refused - naming (0008,0016)
    assert "0008,0016" in d[2]["message"], d[2]["message"]
    if d[2]["status"] in ("success", "warning"):
        sent = [q for q in scp.requests if q.sop_instance_uid == uid_of(paths[2])]
        assert sent and sent[0].sop_class_uid == CTImageStorage
    # 4: failed before sending, naming both elements, not a generic context error
    assert d[3]["status"] == "failure"
    assert "0008,0016" in d[3]["message"] and "0002,0002" in d[3]["message"], d[3]["message"]
    assert uid_of(paths[3]) not in {q.sop_instance_uid for q in scp.requests}
    assert r["associations"] == 1


def test_c08_scan_reports_the_missing_element(tmp_path):
    from core.scan import scan_paths

    paths = casegen.c08_missing_sop_class(tmp_path)
    by_path = {str(s.path): s for s in scan_paths([str(p) for p in paths])}
    assert by_path[str(paths[0])].status == "ok"
    fourth = by_path[str(paths[3])]
    assert fourth.status == "failure"
    assert "0008,0016" in fourth.reason or "sop class uid" in fourth.reason.lower(), fourth.reason
    third = by_path[str(paths[2])]
    assert third.sop_class_uid == CTImageStorage or third.status == "failure"


# --------------------------------------------------------------------------- c11


def _c11_peer(scp_factory, with_compressed=True):
    # the peer's own preference: Implicit > Explicit > RLE > J2K Lossless
    syntaxes = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
    if with_compressed:
        syntaxes += [RLELossless, JPEG2000Lossless]
    return scp_factory(accept={CTImageStorage: syntaxes})


def test_c11_compressed_files_go_as_stored(scp_factory, tmp_path):
    scp = _c11_peer(scp_factory)
    paths = casegen.c11_j2k_lossless_and_rle(tmp_path)
    expected = [JPEG2000Lossless, JPEG2000Lossless, RLELossless]
    for path, syntax in zip(paths, expected, strict=True):
        r = core.store_dataset(scp.config(), path)
        assert r["status"] == "success", r["message"]
        assert r["transfer_syntax"] == syntax, f"{path.name} went as {r['transfer_syntax']}"
        assert r["converted_from"] is None
        uid = uid_of(path)
        assert scp.received_syntax[uid] == syntax
        assert scp.received[uid].PixelData == dcmread(path).PixelData, "not byte-for-byte as stored"
        assert len(scp.raw[uid]) < 128 * 128 * 2


def test_c11_batch_sent_as_stored(scp_factory, tmp_path):
    scp = _c11_peer(scp_factory)
    paths = casegen.c11_j2k_lossless_and_rle(tmp_path)
    r = core.store_datasets_batch(scp.config(), paths)
    assert r["successful"] == 3 and r["associations"] == 1
    assert [d["transfer_syntax"] for d in r["details"]] == [JPEG2000Lossless, JPEG2000Lossless, RLELossless]
    for path in paths:
        assert len(scp.raw[uid_of(path)]) < 128 * 128 * 2


def test_c11_fallback_decodes_when_peer_refuses_compressed(scp_factory, tmp_path):
    scp = _c11_peer(scp_factory, with_compressed=False)
    paths = casegen.c11_j2k_lossless_and_rle(tmp_path)
    r = core.store_datasets_batch(scp.config(), paths)
    assert r["successful"] == 3, r["details"]
    for i, path in enumerate(paths):
        assert r["details"][i]["transfer_syntax"] in UNCOMPRESSED_LE
        assert np.array_equal(scp.received[uid_of(path)].pixel_array, casegen.c11_pixels(i))


# --------------------------------------------------------------------------- c12


def test_c12_variant_a_keeps_implicit_for_big_ds(scp_factory, tmp_path):
    scp = scp_factory(accept={RTDoseStorage: [ExplicitVRLittleEndian, ImplicitVRLittleEndian]})
    path = casegen.c12_rtdose_big_dvh(tmp_path)[0]
    r = core.store_dataset(scp.config(), path)
    assert r["status"] == "success", r["message"]
    assert r["transfer_syntax"] == ImplicitVRLittleEndian
    got = scp.received[uid_of(path)]
    elem = got.DVHSequence[0]["DVHData"]
    assert elem.VR == "DS" and len(elem.value) == casegen.C12_DVH_VALUES


def test_c12_variant_b_fails_naming_the_element(scp_factory, tmp_path):
    scp = scp_factory(accept={RTDoseStorage: [ExplicitVRLittleEndian]})
    path = casegen.c12_rtdose_big_dvh(tmp_path)[0]
    try:
        r = core.store_dataset(scp.config(), path, max_retries=0)
        message, status = r["message"], r["status"]
    except core.AssociationError as e:  # pragma: no cover - an acceptable shape of the refusal
        message, status = str(e), "failure"
    assert status == "failure"
    assert "3004,0058" in message, message
    assert not scp.received, "must not be sent with VR UN"


def test_c12_in_a_batch_is_a_per_item_failure(scp_factory, tmp_path):
    scp = scp_factory(accept={RTDoseStorage: [ExplicitVRLittleEndian], CTImageStorage: list(UNCOMPRESSED_LE)})
    dose = casegen.c12_rtdose_big_dvh(tmp_path)[0]
    ct = casegen.make_ct(tmp_path / "ct", 1)[0]
    r = core.store_datasets_batch(scp.config(), [dose, ct])
    assert [d["status"] for d in r["details"]] == ["failure", "success"]
    assert "3004,0058" in r["details"][0]["message"]


# --------------------------------------------------------------------------- c13


def test_c13_130_sop_classes_need_two_associations(scp_factory, tmp_path):
    paths = casegen.c13_many_sop_classes(tmp_path)
    classes = casegen.storage_sop_classes()[:130]
    scp = scp_factory(accept={uid: list(UNCOMPRESSED_LE) for uid in classes})
    r = core.store_datasets_batch(scp.config(), paths)
    assert r["successful"] == 130 and r["failed"] == 0, [d for d in r["details"] if d["status"] != "success"][:3]
    assert scp.max_contexts_requested <= 128, [a.n_contexts for a in scp.associations]
    assert r["associations"] >= 2
    assert len(set(scp.received)) == 130
    proposed = {ab for a in scp.associations for _, ab, _ in a.requested}
    assert proposed == set(classes), "contexts must come from the batch"


# --------------------------------------------------------------------------- c14


def _c14_policy(req):
    number = int(req.dataset.InstanceNumber)
    code = casegen.C14_PEER_STATUS[number]
    return ("status", code, "TEST quota exceeded") if code else 0x0000


def test_c14_partial_a700(scp_factory, tmp_path):
    scp = scp_factory(policy=_c14_policy)
    paths = casegen.c14_six_ct(tmp_path)
    r = core.store_datasets_batch(scp.config(retry_backoff_s=0.05), paths)
    assert (r["successful"], r["warnings"], r["failed"]) == (4, 0, 2)
    assert [d["status"] for d in r["details"]] == ["success", "failure", "success", "success", "failure", "success"]
    for i in (1, 4):
        d = r["details"][i]
        assert d["status_code"] == 0xA700
        msg = d["message"].lower()
        assert "a700" in msg and "test quota exceeded" in msg and "resources" in msg, d["message"]
    assert r["associations"] == 1
    numbers = [int(q.dataset.InstanceNumber) for q in scp.requests]
    assert list(dict.fromkeys(numbers)) == [1, 2, 3, 4, 5, 6], numbers  # in order; a refused one may be retried
    assert all(numbers.count(n) == 1 for n in (1, 3, 4, 6)), numbers


def test_c14_failed_ones_can_be_resent_alone(scp_factory, tmp_path):
    paths = casegen.c14_six_ct(tmp_path)
    scp = scp_factory(policy=_c14_policy)
    r = core.store_datasets_batch(scp.config(retry_backoff_s=0.05), paths)
    failed = [paths[d["dataset_index"]] for d in r["details"] if d["status"] == "failure"]
    again = scp_factory()  # the PACS got more space
    r2 = core.store_datasets_batch(again.config(), failed)
    assert r2["successful"] == 2
    assert set(again.received) == {uid_of(p) for p in failed}


# --------------------------------------------------------------------------- c16


def test_c16_a_called_ae_not_recognised(scp_factory, tmp_path):
    scp = scp_factory(ae_title="TESTPACS")
    paths = casegen.c16_two_ct(tmp_path)
    cfg = make_config(scp.port, "STORESCP", "TESTSENDER")
    with pytest.raises(core.AssociationError) as info:
        core.store_dataset(cfg, paths[0])
    text = str(info.value)
    assert "STORESCP" in text and "called ae" in text.lower(), text
    assert not scp.requests
    assert 1 <= len(scp.associations) <= 4, "a permanent rejection must not start a retry loop"
    try:
        r = core.store_datasets_batch(cfg, paths)
    except core.AssociationError as e:
        assert "STORESCP" in str(e)
    else:
        assert r["successful"] == 0 and len(r["details"]) == 2
        assert all("STORESCP" in d["message"] for d in r["details"])
    assert not scp.requests


def test_c16_b_calling_ae_not_recognised(scp_factory, tmp_path):
    scp = scp_factory(ae_title="TESTPACS", require_calling_aet=["SOMEBODY"])
    cfg = make_config(scp.port, "TESTPACS", "TESTSENDER")
    with pytest.raises(core.AssociationError) as info:
        core.store_dataset(cfg, casegen.c16_two_ct(tmp_path)[0])
    text = str(info.value)
    assert "TESTSENDER" in text and "calling ae" in text.lower(), text


def test_c16_c_transient_rejection_then_accept(scp_factory, tmp_path):
    scp = scp_factory(reject=lambda n, rec: (2, 3, 2) if n < 2 else None)
    paths = casegen.c16_two_ct(tmp_path)
    r = core.store_datasets_batch(scp.config(retry_backoff_s=0.1), paths, transfer_syntax_strategy="standard")
    assert r["successful"] == 2, r["details"]
    assert len(scp.associations) == 3
    assert scp.associations[0].rejected == (2, 3, 2) and scp.associations[2].rejected is None


def test_c16_d_empty_calling_ae_refused_locally(scp_factory, tmp_path):
    scp = scp_factory()
    with pytest.raises(ValueError) as info:
        core.store_dataset(make_config(scp.port, "TESTPACS", ""), casegen.c16_two_ct(tmp_path)[0])
    assert "local_ae_title" in str(info.value) and "empty" in str(info.value).lower()
    assert not scp.associations


# --------------------------------------------------------------------------- c17


def test_c17_a_peer_max_pdu_zero(scp_factory, tmp_path):
    scp = scp_factory(max_pdu=0)
    path = casegen.c17_large_ct(tmp_path)[0]
    r = core.store_dataset(scp.config(), path)
    assert r["status"] == "success", r["message"]
    rec = scp.associations[0]
    assert not rec.violations, rec.violations
    assert rec.pdata_lengths and min(rec.pdata_lengths) > 0
    assert np.array_equal(scp.received[uid_of(path)].pixel_array, dcmread(path).pixel_array)


def test_c17_b_small_peer_max_pdu(scp_factory, tmp_path):
    scp = scp_factory(max_pdu=4096, max_pdata_length=4096)
    path = casegen.c17_large_ct(tmp_path)[0]
    r = core.store_dataset(scp.config(), path)
    assert r["status"] == "success", r["message"]
    rec = scp.associations[0]
    assert max(rec.pdata_lengths) <= 4096 and not rec.violations
    assert np.array_equal(scp.received[uid_of(path)].pixel_array, dcmread(path).pixel_array)
    assert "4096" in repr(r["attempts"]), "the peer's max PDU belongs in the negotiation record"


# --------------------------------------------------------------------------- c18


@pytest.mark.parametrize("as_dataset", [False, True], ids=["path", "dataset"])
def test_c18_odd_length_pixel_data_is_padded(scp_factory, tmp_path, as_dataset):
    # the peer prefers Explicit VR LE (the file's own syntax), so the hard case is exercised
    scp = scp_factory(
        accept={SecondaryCaptureImageStorage: [ExplicitVRLittleEndian, ImplicitVRLittleEndian]},
        abort_on_odd_length=True,
    )
    odd, normal = casegen.c18_odd_length_sc(tmp_path)
    items = [dcmread(odd), dcmread(normal)] if as_dataset else [odd, normal]
    r = core.store_datasets_batch(scp.config(), items)
    assert [d["status"] for d in r["details"]] == ["success", "success"], r["details"]
    assert r["associations"] == 1 and len(scp.associations) == 1
    assert not scp.associations[0].violations, scp.associations[0].violations
    got = scp.received[uid_of(odd)]
    assert len(got.PixelData) == 1024
    assert got.PixelData[:1023] == casegen.c18_pixels(31, 33).tobytes() and got.PixelData[1023:] == b"\x00"
    assert np.array_equal(got.pixel_array, casegen.c18_pixels(31, 33))
    assert len(scp.raw[uid_of(odd)]) % 2 == 0
    assert "pad" in r["details"][0]["message"].lower(), r["details"][0]["message"]
    assert uid_of(normal) in scp.received


def test_c13_kind_many_class_syntax_pairs(scp_factory, tmp_path):
    """65 SOP classes, each present in Explicit VR LE and in RLE Lossless: 130 (class, syntax) pairs."""
    classes = casegen.storage_sop_classes()[:65]
    paths = casegen.c13_many_sop_classes(tmp_path / "e", count=65)
    rle = []
    for i, p in enumerate(paths):
        ds = dcmread(p)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = casegen.uid_for("c13-rle", i)
        ds.SeriesDescription = "RLE copy"
        q = tmp_path / "r" / p.name
        q.parent.mkdir(exist_ok=True)
        # no pixel data: relabel as RLE would be a lie, so give each a tiny RLE image instead
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 4, 4
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = bytes(range(16))
        ds.compress(RLELossless)
        ds.save_as(q, enforce_file_format=True)
        rle.append(q)
    scp = scp_factory(accept={uid: [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless] for uid in classes})
    r = core.store_datasets_batch(scp.config(), paths + rle)
    assert r["successful"] == 130, [d for d in r["details"] if d["status"] != "success"][:3]
    assert scp.max_contexts_requested <= 128
    assert len(set(scp.received)) == 130
    assert [d["transfer_syntax"] for d in r["details"][65:]] == [RLELossless] * 65, "sent as stored"


# --------------------------------------------------------------------------- other inputs of the same kinds


def test_c03_kind_compressed_source_to_big_endian_only_peer(scp_factory, tmp_path):
    scp = scp_factory(accept={CTImageStorage: [ExplicitVRBigEndian]})
    path = casegen.c11_j2k_lossless_and_rle(tmp_path)[0]
    r = core.store_dataset(scp.config(), path, transfer_syntax_strategy="standard")
    assert r["status"] == "success", r["message"]
    assert r["transfer_syntax"] == ExplicitVRBigEndian and r["converted_from"] == JPEG2000Lossless
    got = scp.received[uid_of(path)]
    assert np.array_equal(got.pixel_array, casegen.c11_pixels(0))
    assert casegen.c11_pixels(0).byteswap().tobytes() in scp.raw[uid_of(path)]


def test_c06_kind_bare_explicit_dataset(scp_factory, tmp_path):
    from core.scan import scan_paths

    dose, _notes = casegen.c06_bare_rtdose_and_notes(tmp_path, implicit=False)
    (inst,) = scan_paths([dose])
    assert inst.status == "ok" and inst.transfer_syntax == ExplicitVRLittleEndian, (inst.status, inst.reason)
    scp = scp_factory(accept={RTDoseStorage: list(UNCOMPRESSED_LE)})
    r = core.store_datasets_batch(scp.config(), [dose])
    assert r["successful"] == 1, r["details"]
    (got,) = scp.received.values()
    assert np.array_equal(got.pixel_array, casegen.c06_dose_grid())


def test_c12_kind_rt_structure_set_contour_over_64k(scp_factory, tmp_path):
    from pydicom.uid import RTStructureSetStorage

    path = casegen.c12_rtstruct_big_contour(tmp_path)[0]
    keep = scp_factory(accept={RTStructureSetStorage: [ExplicitVRLittleEndian, ImplicitVRLittleEndian]})
    r = core.store_dataset(keep.config(), path)
    assert r["status"] == "success" and r["transfer_syntax"] == ImplicitVRLittleEndian, r
    elem = keep.received[uid_of(path)].ROIContourSequence[0].ContourSequence[0]["ContourData"]
    assert elem.VR == "DS" and len(elem.value) == 18000
    strict = scp_factory(accept={RTStructureSetStorage: [ExplicitVRLittleEndian]})
    try:
        r = core.store_dataset(strict.config(), path, max_retries=0)
        message, status = r["message"], r["status"]
    except core.AssociationError as e:  # pragma: no cover
        message, status = str(e), "failure"
    assert status == "failure" and "3006,0050" in message, message
    assert not strict.received


def test_c18_kind_implicit_source(scp_factory, tmp_path):
    scp = scp_factory(accept={SecondaryCaptureImageStorage: [ImplicitVRLittleEndian]}, abort_on_odd_length=True)
    odd, normal = casegen.c18_odd_length_sc(tmp_path, implicit=True)
    r = core.store_datasets_batch(scp.config(), [odd, normal])
    assert [d["status"] for d in r["details"]] == ["success", "success"], r["details"]
    got = scp.received[uid_of(odd)]
    assert len(got.PixelData) == 1024 and np.array_equal(got.pixel_array, casegen.c18_pixels(31, 33))


def test_c18_kind_odd_private_ob_element(scp_factory, tmp_path):
    scp = scp_factory(accept={SecondaryCaptureImageStorage: [ExplicitVRLittleEndian]}, abort_on_odd_length=True)
    path = casegen.c18_odd_length_private_ob(tmp_path)[0]
    r = core.store_dataset(scp.config(), path)
    assert r["status"] == "success", r["message"]
    got = scp.received[uid_of(path)]
    assert got[0x00291010].value == casegen.C18_PRIVATE_VALUE + b"\x00"
    assert len(scp.raw[uid_of(path)]) % 2 == 0
    assert np.array_equal(got.pixel_array, casegen.c18_pixels(8, 8))


def test_c13_kind_second_association_rejected_loses_nothing(scp_factory, tmp_path):
    paths = casegen.c13_many_sop_classes(tmp_path)
    classes = casegen.storage_sop_classes()[:130]
    scp = scp_factory(accept={uid: list(UNCOMPRESSED_LE) for uid in classes}, reject=lambda n, rec: (1, 1, 1) if n >= 1 else None)
    r = core.store_datasets_batch(scp.config(), paths)
    assert len(r["details"]) == 130 and r["total"] == 130
    ok = [d for d in r["details"] if d["status"] == "success"]
    rest = [d for d in r["details"] if d["status"] != "success"]
    assert ok and rest, "one association worked, the other was rejected"
    assert len(ok) == len(scp.received)
    assert all("reject" in d["message"].lower() for d in rest), rest[0]["message"]
    assert r["successful"] + r["failed"] + r["skipped"] + r["warnings"] == 130
