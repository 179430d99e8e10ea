"""The scanner tells the truth: no false findings, a mislabelled encoding detected and read as it is,
hostile nesting a failure with its reason, and DICOMDIRs treated as an index whose references are found
by case and extension (c32 kind)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.filewriter import write_file_meta_info
from pydicom.pixels import pixel_array
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)
from pynetdicom.dsutils import encode
from pynetdicom.presentation import build_context

from core import scan
from core.payload import prepare_payload
from core.preflight import validate_instances
from helpers import casegen


def ct(number: int, study: str = "", series: str = "") -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.Modality = "TEST^PATIENT", "TEST-TRUTH", "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study or generate_uid(), series or generate_uid()
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20220520", "120000", "1", ""
    ds.ReferringPhysicianName, ds.PatientBirthDate, ds.PatientSex = "", "", "O"
    ds.SeriesNumber, ds.InstanceNumber = 1, number + 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 16, 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.ReferencedSeriesSequence = [Dataset()]
    ds.ReferencedSeriesSequence[0].SeriesInstanceUID = generate_uid()
    ds.PixelData = ((np.arange(256, dtype=np.uint16) * 13 + number) % 4096).tobytes()
    return ds


def part10(path: Path, label: str, ds: Dataset, real: str) -> Path:
    """A file whose File Meta says `label` while its data set is encoded as `real`."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = label
    r = ds.file_meta.TransferSyntaxUID.__class__(real)
    if r.is_little_endian:
        body = encode(ds, r.is_implicit_VR, True, r.is_deflated)
    else:  # pydicom writes pixel bytes as they are: a Big Endian body needs them swapped (verified elsewhere)
        from core.convert import encode_dataset

        body = encode_dataset(ds, real)[0]
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(f, meta)
        f.write(body)
    return path


# -- false findings ---------------------------------------------------------------------------------------


def test_a_failed_file_keeps_its_study_and_series_so_no_false_finding(tmp_path):
    path = casegen.make_ct(tmp_path, 1, 64, 64)[0]
    cut = tmp_path / "cut_in_pixels.dcm"
    cut.write_bytes(path.read_bytes()[:-100])
    (inst,) = scan.scan_paths([cut])
    assert inst.status == "failure"
    assert inst.study_instance_uid and inst.series_instance_uid
    findings = validate_instances([inst], read_headers=False)[inst.index]
    assert not [f for f in findings if "missing" in f.message and f.keyword in ("StudyInstanceUID", "SeriesInstanceUID")]


# -- a Transfer Syntax label that contradicts the encoding -------------------------------------------------


@pytest.mark.parametrize(
    ("label", "real"),
    [
        (ExplicitVRLittleEndian, ImplicitVRLittleEndian),
        (ImplicitVRLittleEndian, ExplicitVRLittleEndian),
        (ExplicitVRBigEndian, ExplicitVRLittleEndian),
        (ExplicitVRLittleEndian, ExplicitVRBigEndian),
        (ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian),
        (DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian),
        (ImplicitVRLittleEndian, ExplicitVRBigEndian),
    ],
    ids=lambda u: u.name.replace(" ", ""),
)
def test_a_false_label_is_read_with_the_real_encoding_and_rewritten(tmp_path, label, real):
    ds = ct(0)
    path = part10(tmp_path / "lying.dcm", label, ds, real)
    inst = scan.read_instance(str(path))
    assert inst.status == "ok", inst.reason
    assert inst.encoding is not None and inst.needs_rewrite
    assert inst.transfer_syntax == real
    assert any("(0002,0010) says" in n and "never sent under the false label" in n for n in inst.notes), inst.notes
    assert inst.study_instance_uid == ds.StudyInstanceUID
    # sent: never the raw bytes; the rewritten data set holds the same pixels
    for target in (label, ImplicitVRLittleEndian, ExplicitVRLittleEndian):
        cx = build_context(inst.sop_class_uid, [target])
        cx.context_id = 1
        p = prepare_payload(str(path), inst, [cx])
        assert not p.streamed and p.data is not None
        from helpers.strict import parse_strict

        out = parse_strict(p.data, target, inst.sop_class_uid, inst.sop_instance_uid)
        out.file_meta = FileMetaDataset()
        out.file_meta.TransferSyntaxUID = target
        assert np.array_equal(pixel_array(out), pixel_array(ds)), target
        assert out.ReferencedSeriesSequence[0].SeriesInstanceUID == ds.ReferencedSeriesSequence[0].SeriesInstanceUID


# -- hostile nesting --------------------------------------------------------------------------------------


def nested_file(path: Path, depth: int, dicm: bool = True) -> Path:
    ds = ct(0)
    del ds.ReferencedSeriesSequence  # the nesting takes its place
    body = encode(ds, False, True, False)
    seq_open = b"\x08\x00\x15\x11SQ\0\0\xff\xff\xff\xff" + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    seq_close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    cut = body.index(b"\x10\x00\x10\x00PN")  # (0008,1115) before (0010,0010): tags keep ascending
    nested = body[:cut] + seq_open * depth + seq_close * depth + body[cut:]
    with open(path, "wb") as f:
        if dicm:
            f.write(b"\0" * 128 + b"DICM")
            write_file_meta_info(f, ds.file_meta)
        f.write(nested)
    return path


@pytest.mark.parametrize("dicm", [True, False])
def test_600_nested_sequences_are_a_failure_with_a_reason(tmp_path, dicm):
    path = nested_file(tmp_path / "nested.dcm", 600, dicm)
    assert 20_000 < path.stat().st_size < 40_000
    (inst,) = scan.scan_paths([path])
    assert inst.status == "failure"
    assert "nested" in inst.reason and "RecursionError" not in inst.reason, inst.reason


def test_moderate_nesting_is_fine(tmp_path):
    (inst,) = scan.scan_paths([nested_file(tmp_path / "nested.dcm", 20)])
    assert inst.status == "ok", inst.reason


# -- DICOMDIR (c32 kind) -----------------------------------------------------------------------------------


def media(tmp_path: Path, count: int = 4) -> tuple[Path, list[Dataset]]:
    study, series = generate_uid(), generate_uid()
    sets = [ct(i, study, series) for i in range(count)]
    fs = FileSet()
    for ds in sets:
        fs.add(ds)
    root = tmp_path / "cd"
    fs.write(root)
    return root, sets


def mount_lowercase(root: Path) -> list[Path]:
    """Rename as a Linux mount may show a CD: lowercase folders, then lowercase/extension per file."""
    for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        d.rename(d.with_name(d.name.lower()))
    images = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    out = []
    for i, p in enumerate(images):
        target = {0: p.name.lower(), 1: p.name.lower(), 2: p.name + ".dcm"}.get(i, p.name.lower() + ".dcm")
        out.append(p.rename(p.with_name(target)))
    return out


def test_c32_kind_dicomdir_references_found_by_case_and_extension(tmp_path):
    root, sets = media(tmp_path)
    mount_lowercase(root)
    found = scan.scan_paths([root / "DICOMDIR"])
    dd = found[0]
    assert dd.status == "skipped" and dd.reason.startswith(scan.DICOMDIR_REASON)
    assert "4 referenced, 4 found (all by case-insensitive match, 2 of them with a .dcm extension)" in dd.reason, dd.reason
    ok = [i for i in found if i.status == "ok"]
    assert {i.sop_instance_uid for i in ok} == {str(d.SOPInstanceUID) for d in sets}
    assert all(any("found through a DICOMDIR" in n for n in i.notes) for i in ok)


@pytest.mark.parametrize("order", ["dicomdir", "folder", "both"])
def test_c32_kind_each_instance_once_whatever_is_selected(tmp_path, order):
    root, sets = media(tmp_path)
    mount_lowercase(root)
    paths = {"dicomdir": [root / "DICOMDIR"], "folder": [root], "both": [root / "DICOMDIR", root]}[order]
    found = scan.scan_paths(paths)
    ok = [i for i in found if i.status == "ok"]
    assert sorted(i.sop_instance_uid for i in ok) == sorted(str(d.SOPInstanceUID) for d in sets)
    assert all(i.duplicate_of is None for i in ok)
    assert [i.status for i in found if i.sop_class_uid == scan.MEDIA_STORAGE_DIRECTORY] == ["skipped"]


def test_a_missing_reference_is_named_and_does_not_stop_the_others(tmp_path):
    root, _sets = media(tmp_path, 3)
    images = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    images[1].unlink()
    found = scan.scan_paths([root / "DICOMDIR"])
    missing = [i for i in found if i.status == "failure"]
    assert len(missing) == 1 and missing[0].reason.startswith("missing: PT000000\\ST000000\\SE000000\\IM")
    assert sum(i.status == "ok" for i in found) == 2
    assert "3 referenced, 2 found; 1 missing" in found[0].reason


def test_a_record_uid_that_disagrees_with_the_file_is_noted(tmp_path):
    root, _sets = media(tmp_path, 1)
    image = next(p for p in root.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    ds = dcmread(image)
    ds.SOPInstanceUID = generate_uid()
    ds.save_as(image)
    found = scan.scan_paths([root / "DICOMDIR"])
    assert any("the DICOMDIR record" in n for n in found[1].notes), found[1].notes


def test_a_hostile_dicomdir_is_skipped_with_its_reason(tmp_path):
    root, _sets = media(tmp_path, 1)
    raw = (root / "DICOMDIR").read_bytes()
    (root / "DICOMDIR").write_bytes(raw[: len(raw) - 40])  # cut inside the records
    found = scan.scan_paths([root / "DICOMDIR"])
    assert found[0].status == "skipped" and found[0].reason.startswith(scan.DICOMDIR_REASON)


def test_a_deflated_file_is_read_on_the_fast_path(tmp_path):
    ds = ct(0)
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = c.compress(encode(ds, False, True, False)) + c.flush()
    path = tmp_path / "dfl.dcm"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(f, meta)
        f.write(body)
    inst = scan.read_instance(str(path))
    assert inst.status == "ok" and inst.transfer_syntax == DeflatedExplicitVRLittleEndian and not inst.needs_rewrite
