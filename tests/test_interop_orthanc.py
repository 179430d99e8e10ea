"""Interop with Orthanc, a real PACS: its REST API on loopback confirms what was stored, in which
transfer syntax, and that a wrong called AE title is refused with a clear message."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless, RLELossless, generate_uid

from helpers import casegen

core = pytest.importorskip("core")
pytestmark = pytest.mark.interop

NO_COMPRESSION = {
    "JpegTransferSyntaxAccepted": False,
    "Jpeg2000TransferSyntaxAccepted": False,
    "JpegLosslessTransferSyntaxAccepted": False,
    "JpipTransferSyntaxAccepted": False,
    "Mpeg2TransferSyntaxAccepted": False,
    "RleTransferSyntaxAccepted": False,
}


def uid_of(path) -> str:
    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_batch_stored_in_orthanc(orthanc, tmp_path):
    peer = orthanc()
    paths = casegen.make_ct(tmp_path / "in", 4)
    r = core.store_datasets_batch(peer.config(), paths)
    assert r["successful"] == 4, r["details"]
    assert peer.sop_instance_uids() == {uid_of(p) for p in paths}


def test_compressed_kept_when_orthanc_accepts_it(orthanc, tmp_path):
    peer = orthanc()
    paths = casegen.c11_j2k_lossless_and_rle(tmp_path / "in")
    r = core.store_datasets_batch(peer.config(), paths)
    assert r["successful"] == 3, r["details"]
    stored = peer.instances()
    for path, syntax in zip(paths, [JPEG2000Lossless, JPEG2000Lossless, RLELossless], strict=True):
        oid = stored[uid_of(path)]
        assert peer.stored_transfer_syntax(oid) == syntax
        assert dcmread(io.BytesIO(peer.stored_file(oid))).PixelData == dcmread(path).PixelData


def test_compressed_decoded_when_orthanc_refuses_it(orthanc, tmp_path):
    peer = orthanc(**NO_COMPRESSION)
    paths = casegen.c11_j2k_lossless_and_rle(tmp_path / "c11") + casegen.c04_jpeg_lossless_ct(tmp_path / "c04")
    r = core.store_datasets_batch(peer.config(), paths)
    assert r["successful"] == len(paths), r["details"]
    stored = peer.instances()
    assert set(stored) == {uid_of(p) for p in paths}
    for path in paths:
        oid = stored[uid_of(path)]
        assert peer.stored_transfer_syntax(oid) in (ImplicitVRLittleEndian, ExplicitVRLittleEndian)
        got = dcmread(io.BytesIO(peer.stored_file(oid)))
        assert np.array_equal(got.pixel_array, dcmread(path).pixel_array), path.name


def test_wrong_called_ae_is_a_clear_association_error(orthanc, tmp_path):
    peer = orthanc()
    cfg = peer.config()
    cfg["remote_ae_title"] = "WRONG_AE"
    with pytest.raises(core.AssociationError) as info:
        core.store_dataset(cfg, casegen.make_ct(tmp_path, 1)[0])
    text = str(info.value)
    assert "called ae" in text.lower() and "WRONG_AE" in text, text
    assert peer.sop_instance_uids() == set()


def test_cli_mixed_folder_to_picky_orthanc(orthanc, run_cli, tmp_path):
    """A folder with real test files, a text file and a truncated file; Orthanc refuses compression."""
    peer = orthanc(**NO_COMPRESSION)
    folder = tmp_path / "mixed"
    folder.mkdir()
    sent = []
    for name in ("CT_small.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm"):
        ds = dcmread(get_testdata_file(name))
        uid = generate_uid(entropy_srcs=["courier-orthanc", name])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.save_as(folder / name)
        sent.append(name)
    (folder / "notes.txt").write_text("not a DICOM file\n")
    (folder / "truncated.dcm").write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes()[:1500])
    report = tmp_path / "r.json"
    p = run_cli(
        "send",
        "--host",
        "127.0.0.1",
        "--port",
        peer.dicom_port,
        "--called-ae",
        peer.aet,
        "--calling-ae",
        "TEST_CLI",
        "--report",
        report,
        folder,
    )
    assert p.returncode == 1, p.stderr[-2000:]
    rep = json.loads(report.read_text())
    by = {Path(i["path"]).name: i for i in rep["instances"]}
    assert set(by) == set(sent) | {"notes.txt", "truncated.dcm"}
    assert all(by[n]["status"] == "success" for n in sent), {n: by[n]["message"] for n in sent}
    assert by["notes.txt"]["status"] == "skipped"
    assert by["truncated.dcm"]["status"] == "failure" and by["truncated.dcm"]["message"]
    assert peer.sop_instance_uids() == {uid_of(folder / n) for n in sent}


def test_cli_echo_orthanc(orthanc, run_cli):
    peer = orthanc()
    p = run_cli("echo", "--host", "127.0.0.1", "--port", peer.dicom_port, "--called-ae", peer.aet)
    assert p.returncode == 0, p.stderr[-1000:]


def test_unregistered_calling_ae_is_named(orthanc, tmp_path):
    """c16 variant B against a real PACS: Orthanc stores only from registered modalities."""
    peer = orthanc(
        DicomAlwaysAllowStore=False,
        DicomAlwaysAllowEcho=False,
        DicomModalities={"registered": ["REGISTERED", "127.0.0.1", 104]},
    )
    with pytest.raises(core.AssociationError) as info:
        core.store_dataset(peer.config("TESTSENDER"), casegen.make_ct(tmp_path, 1)[0])
    text = str(info.value)
    assert "TESTSENDER" in text and "calling ae" in text.lower(), text
    assert peer.sop_instance_uids() == set()


def test_registered_calling_ae_stores(orthanc, tmp_path):
    peer = orthanc(
        DicomAlwaysAllowStore=False,
        DicomModalities={"courier": ["TESTSENDER", "127.0.0.1", 104]},
    )
    path = casegen.make_ct(tmp_path, 1)[0]
    r = core.store_dataset(peer.config("TESTSENDER"), path)
    assert r["status"] == "success", r["message"]
    assert peer.sop_instance_uids() == {uid_of(path)}
