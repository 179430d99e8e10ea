"""The test peers themselves behave as the other tests assume (checked with a plain pynetdicom SCU)."""

from __future__ import annotations

import time

import numpy as np
import pynetdicom._config
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO, DicomFileLike
from pydicom.filereader import read_file_meta_info
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    MRImageStorage,
    RLELossless,
)
from pynetdicom import AE

from helpers import casegen
from helpers.data import TEST_FILES


def _scu(scp, contexts, calling="FIXTURE_SCU", called=None):
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    for sop_class, syntaxes in contexts:
        ae.add_requested_context(sop_class, syntaxes)
    return ae.associate("127.0.0.1", scp.port, ae_title=called or scp.ae_title)


def test_scp_records_contexts_calling_ae_and_dataset(scp_factory, tmp_path):
    scp = scp_factory(accept={CTImageStorage: [ImplicitVRLittleEndian]}, max_pdu=8192)
    path = casegen.make_ct(tmp_path, 1)[0]
    assoc = _scu(scp, [(CTImageStorage, [ExplicitVRLittleEndian]), (CTImageStorage, [ImplicitVRLittleEndian])])
    assert assoc.is_established
    assert assoc.acceptor.maximum_length == 8192
    ds = casegen.ct_dataset("ct", 0)  # the same instance, built in memory with no original encoding
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    status = assoc.send_c_store(ds)
    assoc.release()
    assert status.Status == 0
    rec = scp.associations[0]
    assert rec.calling_ae == "FIXTURE_SCU" and rec.called_ae == "TESTPACS"
    assert rec.n_contexts == 2
    assert [ts for _, _, ts in rec.requested] == [[ExplicitVRLittleEndian], [ImplicitVRLittleEndian]]
    assert rec.accepted == [(CTImageStorage, ImplicitVRLittleEndian)]
    got = scp.received[str(ds.SOPInstanceUID)]
    assert np.array_equal(got.pixel_array, dcmread(path).pixel_array)
    assert rec.pdata_lengths and max(rec.pdata_lengths) <= 16384


def test_scp_statuses_abort_and_reject(scp_factory, tmp_path):
    answers = iter([("status", 0xA700, "TEST quota"), 0xB000, "abort"])
    scp = scp_factory(policy=lambda req: next(answers))
    paths = casegen.make_ct(tmp_path, 3)
    assoc = _scu(scp, [(CTImageStorage, [ExplicitVRLittleEndian])])
    s1 = assoc.send_c_store(paths[0])
    assert s1.Status == 0xA700 and s1.ErrorComment == "TEST quota"
    assert assoc.send_c_store(paths[1]).Status == 0xB000
    s3 = assoc.send_c_store(paths[2])
    assert not s3  # aborted: empty status
    for _ in range(50):
        if not assoc.is_established:
            break
        time.sleep(0.05)
    assert not assoc.is_established

    assoc = _scu(scp, [(CTImageStorage, [ExplicitVRLittleEndian])], called="WRONG")
    assert assoc.is_rejected
    rj = scp_factory(reject=(2, 3, 2))
    assoc = _scu(rj, [(CTImageStorage, [ExplicitVRLittleEndian])])
    assert assoc.is_rejected
    assert rj.associations[0].rejected == (2, 3, 2)


def test_scp_big_endian_only_decodes_swapped_pixels(scp_factory, tmp_path):
    scp = scp_factory(transfer_syntaxes=[ExplicitVRBigEndian])
    path = casegen.c03_mr_swap_visible(tmp_path)[0]
    ds = dcmread(path)
    assoc = _scu(scp, [(ds.SOPClassUID, [ExplicitVRBigEndian])])
    assert assoc.is_established
    be = dcmread(path)
    be.walk(lambda d, e: None)  # turn every raw (little endian) element into a value
    be.set_original_encoding(False, False)
    be.PixelData = casegen.c03_mr_pixels().byteswap().tobytes()
    be.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    assert assoc.send_c_store(be).Status == 0
    assoc.release()
    got = scp.received[str(ds.SOPInstanceUID)]
    assert np.array_equal(got.pixel_array, casegen.c03_mr_pixels())
    assert got.DiffusionBValue == 1000.0


@pytest.mark.interop
def test_storescp_fixture_receives(storescp, tmp_path):
    peer = storescp("+xi")
    ae = AE(ae_title="FIXTURE_SCU")
    ae.add_requested_context(CTImageStorage, [ImplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", peer.port, ae_title=peer.aet)
    ds = casegen.ct_dataset("ct", 0)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    assert str(ds.SOPInstanceUID) in peer.received()


@pytest.mark.interop
def test_orthanc_fixture_receives(orthanc, tmp_path):
    peer = orthanc()
    path = casegen.make_ct(tmp_path, 1)[0]
    ae = AE(ae_title="FIXTURE_SCU")
    ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", peer.dicom_port, ae_title=peer.aet)
    assert assoc.send_c_store(path).Status == 0
    assoc.release()
    uid = str(dcmread(path).SOPInstanceUID)
    assert peer.sop_instance_uids() == {uid}
    assert peer.stored_transfer_syntax(peer.instances()[uid]) == ExplicitVRLittleEndian


# --------------------------------------------------------------------------- the strict receiver


def _reencoded(path, implicit: bool, little: bool, syntax: str):
    """The data set of `path`, every element decoded, to be written by pynetdicom in `syntax`."""
    ds = dcmread(path)
    for _ in ds.iterall():  # turn every raw element into a value
        pass
    ds.set_original_encoding(implicit, little)
    ds.file_meta.TransferSyntaxUID = syntax
    return ds


def _write_raw(path, meta: FileMetaDataset, body: bytes):
    """A DICOM file whose data set is `body` exactly, whatever its file meta says."""
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(DicomFileLike(f), meta, enforce_standard=True)
        f.write(body)
    return path


def _encode(ds, implicit: bool, little: bool = True) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    write_dataset(fp, ds)
    return fp.getvalue()


def _meta(ds, syntax: str, uid: str | None = None) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = uid or ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    return meta


def test_strict_scp_takes_good_files_and_finds_them_unchanged(strict_scp, tmp_path):
    implicit_only = strict_scp(transfer_syntaxes=[ImplicitVRLittleEndian])
    as_stored = strict_scp(transfer_syntaxes=[JPEG2000Lossless, RLELossless, DeflatedExplicitVRLittleEndian])
    big_endian = strict_scp(transfer_syntaxes=[ExplicitVRBigEndian])
    mr = TEST_FILES / "MR_small.dcm"
    assoc = _scu(implicit_only, [(MRImageStorage, [ImplicitVRLittleEndian])], called=implicit_only.ae_title)
    assert assoc.send_c_store(_reencoded(mr, True, True, ImplicitVRLittleEndian)).Status == 0
    assoc.release()
    assert implicit_only.compare(mr) == []  # Explicit VR source, Implicit VR received: compared without VRs
    for name in ("MR_small_jp2klossless.dcm", "MR_small_RLE.dcm", "image_dfl.dcm"):
        src = dcmread(TEST_FILES / name, stop_before_pixels=True)
        assoc = _scu(as_stored, [(src.SOPClassUID, [src.file_meta.TransferSyntaxUID])], called=as_stored.ae_title)
        assert assoc.send_c_store(TEST_FILES / name).Status == 0, name
        assoc.release()
        assert as_stored.compare(TEST_FILES / name) == [], name
        assert as_stored.received_syntax[str(src.SOPInstanceUID)] == src.file_meta.TransferSyntaxUID
    be = TEST_FILES / "MR_small_bigendian.dcm"
    assoc = _scu(big_endian, [(MRImageStorage, [ExplicitVRBigEndian])], called=big_endian.ae_title)
    assert assoc.send_c_store(be).Status == 0
    assoc.release()
    assert big_endian.compare(be) == []
    assert not (implicit_only.failures or as_stored.failures or big_endian.failures)


def _implicit_body_labelled_explicit(tmp_path):
    ds = dcmread(TEST_FILES / "CT_small.dcm")
    return _write_raw(tmp_path / "mislabelled.dcm", _meta(ds, ExplicitVRLittleEndian), _encode(ds, implicit=True))


def _sequence_without_item_delimiter(tmp_path):
    ds = casegen.ct_dataset("seq", 0)
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = CTImageStorage, casegen.uid_for("seq", "ref")
    item.is_undefined_length_sequence_item = True
    ds.ReferencedImageSequence = [item]
    ds["ReferencedImageSequence"].is_undefined_length = True
    body = _encode(ds, implicit=False)
    item_end = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    assert body.count(item_end) == 1
    at = body.index(item_end)
    return _write_raw(tmp_path / "no-delimiter.dcm", _meta(ds, ExplicitVRLittleEndian), body[:at] + body[at + 8 :])


def _odd_length_value(tmp_path):
    ds = casegen.ct_dataset("odd", 0)
    ds.StudyDescription = "ABCD"  # 4 bytes, made 3 below, the rest of the data set unchanged
    body = _encode(ds, implicit=False)
    header = b"\x08\x00\x30\x10LO\x04\x00ABCD"
    assert header in body
    return _write_raw(
        tmp_path / "odd.dcm", _meta(ds, ExplicitVRLittleEndian), body.replace(header, b"\x08\x00\x30\x10LO\x03\x00ABC")
    )


def _encapsulated_under_native(tmp_path):
    ds = dcmread(TEST_FILES / "MR_small_RLE.dcm")
    return _write_raw(tmp_path / "rle-as-explicit.dcm", _meta(ds, ExplicitVRLittleEndian), _encode(ds, implicit=False))


def _uid_not_the_commands(tmp_path):
    ds = casegen.ct_dataset("uid", 0)
    meta = _meta(ds, ExplicitVRLittleEndian, uid=casegen.uid_for("another", "instance"))
    return _write_raw(tmp_path / "uid.dcm", meta, _encode(ds, implicit=False))


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (_implicit_body_labelled_explicit, "invalid VR (bytes 0a 00): not Explicit VR"),
        (_sequence_without_item_delimiter, "item delimiter"),
        (_odd_length_value, "odd value length 3"),
        (_encapsulated_under_native, "encapsulated Pixel Data under a native transfer syntax"),
        (_uid_not_the_commands, "SOPInstanceUID"),
    ],
    ids=["implicit-as-explicit", "no-item-delimiter", "odd-length", "encapsulated-as-native", "uid-mismatch"],
)
def test_strict_scp_refuses_a_data_set_that_contradicts_the_syntax(strict_scp, tmp_path, monkeypatch, corrupt, reason):
    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)  # send the file's bytes as they are
    path = corrupt(tmp_path)
    meta = read_file_meta_info(path)
    uid = str(meta.MediaStorageSOPInstanceUID)
    scp = strict_scp(transfer_syntaxes=[ExplicitVRLittleEndian])
    assoc = _scu(scp, [(meta.MediaStorageSOPClassUID, [ExplicitVRLittleEndian])], called=scp.ae_title)
    status = assoc.send_c_store(path)
    assoc.release()
    assert status.Status == 0xC000 and reason.split()[0] in status.ErrorComment
    assert reason in scp.failures[uid] and scp.refused_raw[uid]
    assert uid not in scp.received
    assert scp.compare(path, uid)[0].startswith(f"{uid} not received (refused: ")


def test_strict_scp_comparison_names_changed_values_and_pixels(strict_scp):
    """A data set that is well formed but not the source: a changed element, pixels relabelled big endian unswapped."""
    scp = strict_scp(transfer_syntaxes=[ExplicitVRBigEndian])
    src = TEST_FILES / "CT_small.dcm"
    ds = _reencoded(src, False, False, ExplicitVRBigEndian)  # the pixel bytes stay little endian: the known trap
    ds.PatientName = "TEST^CHANGED"
    assoc = _scu(scp, [(CTImageStorage, [ExplicitVRBigEndian])], called=scp.ae_title)
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    diffs = scp.compare(src)
    assert any(d.startswith("(0010,0010) PatientName: ") and "TEST^CHANGED" in d for d in diffs), diffs
    assert any(d.startswith("Pixel Data: ") and "values differ" in d for d in diffs), diffs
    with pytest.raises(AssertionError, match="PatientName"):
        scp.assert_same(src)
