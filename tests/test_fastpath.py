"""The fast paths: the header walker agrees with pydicom, PDUs respect the peer's maximum,
parallel associations keep studies whole, and no C-STORE response is ever lost."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

import core.scan as scan
from core.engine import SendJob, items_from_scan
from core.fastheader import read_fast_header
from core.fastpath import encode_c_store_rq, parse_command


def _ct(folder: Path, n: int, size: int = 16, studies: int = 1) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    uids = [(generate_uid(), generate_uid()) for _ in range(studies)]
    for i in range(n):
        study, series = uids[i % studies]
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID = CTImageStorage
        ds.PatientName, ds.PatientID, ds.Modality = "TEST^PATIENT", "TEST-FAST", "CT"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = study, series, i + 1
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = ((np.arange(size * size, dtype=np.uint16) + i) % 4096).tobytes()
        p = folder / f"im{i:05d}.dcm"
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    return paths


def recorder(scp_factory, max_pdu: int = 16384, syntaxes=(ExplicitVRLittleEndian, ImplicitVRLittleEndian)):
    """An in-process Storage SCP for CT that records what it received and the PDU sizes."""
    return scp_factory(ae_title="RECORDER", accept={CTImageStorage: list(syntaxes)}, max_pdu=max_pdu, max_associations=8)


def config(peer, **kw):
    return {"remote_host": "127.0.0.1", "remote_port": peer.port, "remote_ae_title": "RECORDER", "dimse_timeout": 10, **kw}


def pdu_sizes(peer) -> list[int]:
    return [n for a in peer.associations for n in a.pdata_lengths]


def test_fast_header_agrees_with_pydicom_on_every_test_file():
    tf = Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent
    fields = (
        "status",
        "sop_class_uid",
        "sop_instance_uid",
        "transfer_syntax",
        "patient_id",
        "study_instance_uid",
        "series_instance_uid",
        "modality",
        "pad_tags",
        "needs_rewrite",
    )
    checked = 0
    for f in sorted(glob.glob(str(tf / "*"))):
        if read_fast_header(f, os.path.getsize(f)) is None:
            continue
        fast = scan.read_instance(f)
        original = scan.read_fast_header
        scan.read_fast_header = lambda p, s: None
        try:
            slow = scan.read_instance(f)
        finally:
            scan.read_fast_header = original
        assert [getattr(fast, k) for k in fields] == [getattr(slow, k) for k in fields], f
        checked += 1
    assert checked > 50


def test_command_set_round_trip():
    cmd = encode_c_store_rq(7, CTImageStorage, "1.2.3.4.5")
    fields = parse_command(cmd)
    assert int.from_bytes(fields[0x00000110], "little") == 7
    assert fields[0x00000002].rstrip(b"\0").decode() == CTImageStorage
    assert int.from_bytes(fields[0x00000000], "little") == len(cmd) - 12


@pytest.mark.parametrize("peer_max", [4096, 0])
def test_pdus_never_exceed_the_peer_maximum(scp_factory, tmp_path, peer_max):
    """c17: a small maximum is honoured; 0 means unlimited and still works."""
    paths = _ct(tmp_path / "in", 2, size=256)  # 128 KiB of pixel data each
    peer = recorder(scp_factory, max_pdu=peer_max)
    job = SendJob(config(peer), "standard")
    result = job.run(items_from_scan(scan.scan_paths([tmp_path / "in"])))
    peer.stop()
    assert [o.status for o in result.outcomes] == ["success", "success"]
    assert result.associations[0].peer_max_pdu == peer_max
    if peer_max:
        assert max(pdu_sizes(peer)) <= peer_max
    for p in paths:
        src = pydicom.dcmread(p)
        assert np.array_equal(peer.received[str(src.SOPInstanceUID)].pixel_array, src.pixel_array)


def test_parallel_associations_keep_each_study_whole(scp_factory, tmp_path):
    _ct(tmp_path / "in", 40, studies=4)
    peer = recorder(scp_factory)
    job = SendJob(config(peer), "standard", parallel=3)
    result = job.run(items_from_scan(scan.scan_paths([tmp_path / "in"])))
    peer.stop()
    assert result.summary()["success"] == 40 and len(peer.received) == 40
    assert result.established == 3
    by_assoc: dict[str, set] = {}
    for o in result.outcomes:
        by_assoc.setdefault(o.study_instance_uid, set()).add(o.association)
    assert all(len(a) == 1 for a in by_assoc.values()), by_assoc


def test_parallel_backs_off_when_the_peer_refuses_extra_associations(scp_factory, tmp_path):
    _ct(tmp_path / "in", 30, studies=3)
    peer = recorder(scp_factory)
    peer.server.ae.maximum_associations = 1  # the peer rejects a second concurrent association
    job = SendJob(config(peer, retry_backoff_s=0.2), "standard", parallel=3)
    result = job.run(items_from_scan(scan.scan_paths([tmp_path / "in"])))
    peer.stop()
    assert result.summary()["success"] == 30, [o.message for o in result.outcomes if o.status != "success"]
    assert len(peer.received) == 30


def test_many_small_files_over_one_association_lose_no_response(scp_factory, tmp_path):
    """DESIGN.md's lost C-STORE response: 300 quick stores in a row, none may time out."""
    _ct(tmp_path / "in", 300)
    peer = recorder(scp_factory)
    job = SendJob(config(peer, dimse_timeout=5), "standard")
    result = job.run(items_from_scan(scan.scan_paths([tmp_path / "in"])))
    peer.stop()
    assert result.summary()["success"] == 300
    assert result.established == 1


def test_a_small_instance_is_one_write_of_two_pdus(tmp_path, monkeypatch):
    """The command and a small data set go in separate PDUs (c29) but in one sendmsg call."""
    from core.fastpath import DirectChannel
    from helpers.badpeers import RawSCP

    _ct(tmp_path / "in", 5)
    writes: list[int] = []
    original = DirectChannel._write

    def counting(self, parts):
        writes.append(len(parts))
        return original(self, parts)

    monkeypatch.setattr(DirectChannel, "_write", counting)
    with RawSCP() as peer:
        result = SendJob({**config(peer), "remote_ae_title": "RAW"}, "standard").run(
            items_from_scan(scan.scan_paths([tmp_path / "in"]))
        )
        pdus = list(peer.pdus)
    assert result.summary()["success"] == 5
    assert writes == [4] * 5, writes  # one write per instance: PDU header + command, PDU header + data set
    assert len(pdus) == 10
