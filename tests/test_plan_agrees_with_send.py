"""The dry-run plan and the real send agree, instance by instance (issue 11: each rule in one place).

A mixed batch (CT, MR, ultrasound, RT Plan and Secondary Capture; uncompressed, RLE, JPEG 2000
and JPEG Baseline; one SOP class the peer refuses; several that need a conversion; a file that
is not DICOM) is planned against a picky in-process pynetdicom SCP, then sent to it. Every
instance must end as planned: as stored, converted to the planned transfer syntax, or not sent;
and the SCP must have received exactly what the plan said, in the planned transfer syntax.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless, generate_uid
from pynetdicom import AE, evt

from core.engine import SendJob, items_from_scan
from core.outcomes import InstanceState, Status
from core.preflight import MSG_CLASS_REFUSED, plan_instances
from core.scan import scan_paths

pytestmark = pytest.mark.timeout(180)

CT, MR, US = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.6.1"
SC, RT_PLAN = "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.481.5"

#: What the picky peer accepts; Secondary Capture is not supported at all (result 3).
POLICY = {
    CT: [ImplicitVRLittleEndian],
    MR: [JPEG2000Lossless, ExplicitVRLittleEndian],
    US: [ExplicitVRLittleEndian],
    RT_PLAN: [ImplicitVRLittleEndian],
}

FILES = (
    "CT_small.dcm",  # Explicit VR LE -> Implicit VR LE
    "MR_small.dcm",  # as stored
    "MR_small_jp2klossless.dcm",  # as stored (compressed)
    "MR_small_RLE.dcm",  # RLE Lossless -> decompressed
    "MR_small_bigendian.dcm",  # Big Endian -> Little Endian
    "US1_J2KR.dcm",  # JPEG 2000 Lossless -> decompressed
    "rtplan.dcm",  # as stored, no pixel data
    "SC_rgb_jpeg_dcmtk.dcm",  # refused SOP class
    "SC_rgb.dcm",  # refused SOP class
)


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in FILES:
        ds = pydicom.dcmread(get_testdata_file(name))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[name, str(tmp_path)])
        ds.save_as(folder / name)
    (folder / "notes.txt").write_text("not DICOM")
    return folder


@pytest.fixture
def picky_scp():
    """A pynetdicom Storage SCP on an ephemeral loopback port; yields ``(port, received)``.

    `received` maps each stored SOP Instance UID to the transfer syntax it arrived in.
    """
    received: dict[str, str] = {}
    lock = threading.Lock()

    def on_store(event):
        with lock:
            received[str(event.request.AffectedSOPInstanceUID)] = str(event.context.transfer_syntax)
        return 0x0000

    ae = AE("PICKY")
    for sop_class, syntaxes in POLICY.items():
        ae.add_supported_context(sop_class, syntaxes)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()


def config(port: int) -> dict:
    return {
        "remote_host": "127.0.0.1",
        "remote_port": port,
        "remote_ae_title": "PICKY",
        "local_ae_title": "COURIER_TEST",
        "acse_timeout": 10,
        "dimse_timeout": 10,
        "network_timeout": 10,
        "connect_timeout": 5,
    }


@pytest.mark.parametrize(("strategy", "parallel"), [("compression", 1), ("universal", 1), ("standard", 3)])
def test_plan_and_send_agree_instance_by_instance(batch, picky_scp, strategy, parallel):
    port, received = picky_scp
    insts = scan_paths([batch])
    plans = plan_instances(insts, None, config(port), strategy, max_retries=4, parallel=parallel)
    assert not received, "planning stored something"
    result = SendJob(config(port), strategy, max_retries=4, parallel=parallel).run(items_from_scan(insts))

    kinds = {Path(p.path).name: p.plan for p in plans}
    assert kinds["CT_small.dcm"] == kinds["MR_small_RLE.dcm"] == kinds["MR_small_bigendian.dcm"] == "convert"
    # universal proposes only Implicit VR LE besides the stored syntax; this peer takes ultrasound only as Explicit VR LE
    assert kinds["US1_J2KR.dcm"] == ("blocked" if strategy == "universal" else "convert")
    assert kinds["MR_small_jp2klossless.dcm"] == kinds["rtplan.dcm"] == "as-stored"
    assert kinds["SC_rgb.dcm"] == kinds["SC_rgb_jpeg_dcmtk.dcm"] == "blocked"
    assert kinds["notes.txt"] == "skipped"

    assert len(plans) == len(result.outcomes) == len(insts)
    for plan, outcome in zip(plans, result.outcomes, strict=True):
        name = Path(plan.path).name
        why = (name, plan.message, outcome.message)
        assert outcome.index == plan.index, why
        if plan.plan == "skipped":
            assert outcome.status == Status.SKIPPED, why
            continue
        if plan.plan == "blocked":
            assert outcome.status == Status.FAILURE and outcome.state == InstanceState.FAILED, why
            assert outcome.sop_instance_uid not in received, why
            if plan.sop_class_uid == SC:
                assert plan.message == MSG_CLASS_REFUSED, why
            continue
        assert outcome.state == InstanceState.STORED, why
        assert outcome.transfer_syntax == plan.target_syntax, why
        assert outcome.strategy_used == plan.strategy, why
        assert outcome.converted_from == (plan.stored_syntax if plan.plan == "convert" else None), why
        assert received[str(outcome.sop_instance_uid)] == plan.target_syntax, why
    stored = {o.sop_instance_uid for o in result.outcomes if o.state == InstanceState.STORED}
    assert set(received) == stored
