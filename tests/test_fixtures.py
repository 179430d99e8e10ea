"""The test peers themselves behave as the other tests assume (checked with a plain pynetdicom SCU)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE

from helpers import casegen


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
