"""core.scan.scan_paths: files, folders (recursive), DICOMDIR, header-only reads, bad input kept
with a reason, duplicates flagged, nothing modified."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.fileset import FileSet
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from helpers import casegen

scan = pytest.importorskip("core.scan")

ATTRS = (
    "path",
    "status",
    "reason",
    "notes",
    "sop_class_uid",
    "sop_instance_uid",
    "transfer_syntax",
    "patient_id",
    "study_instance_uid",
    "series_instance_uid",
    "modality",
    "size",
)


def by_name(instances) -> dict[str, object]:
    return {Path(str(i.path)).name: i for i in instances}


def test_folder_is_scanned_recursively_in_order(tmp_path):
    casegen.make_ct(tmp_path / "a", 2, key="a")
    casegen.make_ct(tmp_path / "b" / "deeper", 2, key="b")
    found = scan.scan_paths([tmp_path])
    assert len(found) == 4
    assert all(i.status == "ok" for i in found)
    # a second scan gives the same order
    assert [str(i.path) for i in found] == [str(i.path) for i in scan.scan_paths([tmp_path])]


def test_record_fields(tmp_path):
    path = casegen.make_ct(tmp_path, 1)[0]
    (inst,) = scan.scan_paths([path])
    for attr in ATTRS:
        assert hasattr(inst, attr), attr
    ds = dcmread(path)
    assert inst.status == "ok" and not inst.reason
    assert inst.sop_class_uid == CTImageStorage
    assert inst.sop_instance_uid == ds.SOPInstanceUID
    assert inst.transfer_syntax == ExplicitVRLittleEndian
    assert inst.patient_id == "TEST-CT"
    assert inst.study_instance_uid == ds.StudyInstanceUID
    assert inst.series_instance_uid == ds.SeriesInstanceUID
    assert inst.modality == "CT"
    assert inst.size == path.stat().st_size
    assert list(inst.notes) == []


def test_compressed_syntaxes_are_read_from_the_header(tmp_path):
    paths = casegen.c11_j2k_lossless_and_rle(tmp_path)
    found = scan.scan_paths(paths)
    assert [i.transfer_syntax for i in found] == [JPEG2000Lossless, JPEG2000Lossless, RLELossless]


def test_non_dicom_files_are_skipped_with_a_reason(tmp_path):
    casegen.make_ct(tmp_path, 1)
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    found = by_name(scan.scan_paths([tmp_path]))
    for name in ("notes.txt", "empty.dcm", "picture.png"):
        assert found[name].status == "skipped", (name, found[name].status, found[name].reason)
        assert found[name].reason, name
    assert found["ct_001.dcm"].status == "ok"


def test_truncated_file_is_a_failure_with_reason(tmp_path):
    path = casegen.make_ct(tmp_path, 1, 64, 64)[0]
    cut = tmp_path / "truncated.dcm"
    cut.write_bytes(path.read_bytes()[:1500])
    (inst,) = scan.scan_paths([cut])
    assert inst.status == "failure" and inst.reason


def test_missing_sop_instance_uid_is_a_failure_naming_it(tmp_path):
    path = casegen.make_ct(tmp_path, 1)[0]
    ds = dcmread(path)
    del ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    (inst,) = scan.scan_paths([path])
    assert inst.status == "failure"
    assert "0008,0018" in inst.reason or "sop instance uid" in inst.reason.lower(), inst.reason


def test_bare_dataset_without_file_meta(tmp_path):
    dose, _ = casegen.c06_bare_rtdose_and_notes(tmp_path)
    (inst,) = scan.scan_paths([dose])
    assert inst.status == "ok"
    assert any("meta" in n.lower() for n in inst.notes), inst.notes


def test_duplicate_sop_instance_uids_are_flagged(tmp_path):
    path = casegen.make_ct(tmp_path / "one", 1)[0]
    copy = tmp_path / "two" / "copy.dcm"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    found = scan.scan_paths([tmp_path / "one", tmp_path / "two"])
    assert len(found) == 2
    assert any("duplicate" in n.lower() for n in found[1].notes), found[1].notes


def test_dicomdir_expands_to_referenced_instances(tmp_path):
    src = casegen.make_ct(tmp_path / "src", 3, key="dd")
    fs = FileSet()
    for p in src:
        fs.add(dcmread(p))
    out = tmp_path / "cd"
    fs.write(out)
    found = scan.scan_paths([out / "DICOMDIR"])
    ok = [i for i in found if i.status == "ok"]
    assert {i.sop_instance_uid for i in ok} == {str(dcmread(p).SOPInstanceUID) for p in src}
    assert len(ok) == 3


def test_scan_does_not_modify_files(tmp_path):
    paths = casegen.make_ct(tmp_path, 2) + casegen.c18_odd_length_sc(tmp_path / "odd")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    scan.scan_paths([tmp_path])
    assert before == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_one_bad_file_never_stops_the_rest(tmp_path):
    good = casegen.make_ct(tmp_path, 3)
    (tmp_path / "ct_000_bad.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 40)
    found = scan.scan_paths([tmp_path])
    assert len(found) == 4
    assert sum(i.status == "ok" for i in found) == 3
    assert {Path(str(i.path)).name for i in found if i.status == "ok"} == {p.name for p in good}


def _lying_file(tmp_path) -> Path:
    """JPEG 2000 Lossless pixel data (encapsulated, undefined length) under a File Meta that claims
    Explicit VR Little Endian."""
    src = casegen.c11_j2k_lossless_and_rle(tmp_path / "src")[0]
    ds = dcmread(src)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / "lying.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_transfer_syntax_contradicting_the_encoding_is_caught(tmp_path):
    (inst,) = scan.scan_paths([_lying_file(tmp_path)])
    if inst.status == "ok":  # a safe inference is allowed, and must be stated
        assert inst.transfer_syntax == JPEG2000Lossless and inst.notes, (inst.transfer_syntax, inst.notes)
    else:
        assert inst.status == "failure"
        text = inst.reason.lower()
        assert "transfer syntax" in text or "encapsulated" in text or "0002,0010" in text, inst.reason


def test_file_truncated_inside_pixel_data_is_a_failure(tmp_path):
    path = casegen.make_ct(tmp_path, 1, 64, 64)[0]
    cut = tmp_path / "cut_in_pixels.dcm"
    cut.write_bytes(path.read_bytes()[:-100])
    (inst,) = scan.scan_paths([cut])
    assert inst.status == "failure", (inst.status, inst.reason)
    assert "truncat" in inst.reason.lower() or "7fe0,0010" in inst.reason.lower(), inst.reason


def test_truncated_file_is_never_sent(scp_factory, tmp_path):
    core = pytest.importorskip("core")
    path = casegen.make_ct(tmp_path, 1, 64, 64)[0]
    cut = tmp_path / "cut_in_pixels.dcm"
    cut.write_bytes(path.read_bytes()[:-100])
    scp = scp_factory()
    r = core.store_datasets_batch(scp.config(), [cut, path])
    assert [d["status"] for d in r["details"]] == ["failure", "success"], r["details"]
    assert len(scp.requests) == 1


@pytest.fixture(scope="module")
def whole_ct(tmp_path_factory) -> bytes:
    return casegen.make_ct(tmp_path_factory.mktemp("whole"), 1, 32, 32)[0].read_bytes()


def _element_boundaries(raw: bytes) -> set[int]:
    """Offsets where an element starts or the file ends (Explicit VR LE, no sequences)."""
    long_vrs = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UT", b"UN", b"UC", b"UR"}
    pos, bounds = 132, {132}
    while pos < len(raw):
        vr = raw[pos + 4 : pos + 6]
        assert vr != b"SQ"
        if vr in long_vrs:
            pos += 12 + int.from_bytes(raw[pos + 8 : pos + 12], "little")
        else:
            pos += 8 + int.from_bytes(raw[pos + 6 : pos + 8], "little")
        bounds.add(pos)
    return bounds


def test_every_truncation_inside_an_element_is_caught(whole_ct, tmp_path):
    """Cut a valid file inside an element (header or Pixel Data): never "ok", never an exception.
    (A cut exactly between two elements leaves a shorter but well-formed file.)"""
    bounds = _element_boundaries(whole_ct)
    offsets = [n for n in range(133, len(whole_ct), 7) if n not in bounds]
    folder = tmp_path / "cuts"
    folder.mkdir()
    for n in offsets:
        (folder / f"cut_{n:05d}.dcm").write_bytes(whole_ct[:n])
    found = scan.scan_paths([folder])
    assert len(found) == len(offsets)
    wrong = [int(Path(str(i.path)).stem[4:]) for i in found if i.status == "ok"]
    assert not wrong, f"{len(wrong)} of {len(offsets)} cut files pass as ok, e.g. cut at bytes {wrong[:8]}"
    assert all(i.reason for i in found)


def test_cut_in_the_header_is_never_sent(scp_factory, whole_ct, tmp_path):
    """A file cut just after the SOP UIDs, inside the next element's header, still has what
    negotiation needs, but no image."""
    core = pytest.importorskip("core")
    uid = str(dcmread(__import__("io").BytesIO(whole_ct)).SOPInstanceUID).encode()
    n = whole_ct.index(uid, 300) + len(uid) + 3  # inside the tag/VR/length of the next element
    cut = tmp_path / "cut_header.dcm"
    cut.write_bytes(whole_ct[:n])
    scp = scp_factory()
    r = core.store_datasets_batch(scp.config(), [cut])
    assert r["details"][0]["status"] == "failure", r["details"][0]
    assert not scp.requests


def test_random_bytes_never_crash_the_scanner(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=st.binary(max_size=600), dicm=st.booleans())
    def check(body, dicm):
        path = tmp_path / "random.dcm"
        path.write_bytes((b"\x00" * 128 + b"DICM" if dicm else b"") + body)
        (inst,) = scan.scan_paths([path])
        assert inst.status in ("ok", "skipped", "failure")
        if inst.status != "ok":
            assert inst.reason

    check()
