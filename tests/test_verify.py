"""Arrival check (issue 7 item 4): storage commitment and C-FIND, against Orthanc and pynetdicom."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from core.engine import SendJob, items_from_scan
from core.scan import scan_paths
from core.verify import (
    COMMITTED,
    FOUND,
    NOT_CHECKED,
    NOT_FOUND,
    apply_to_outcomes,
    verify_arrival,
)
from helpers.config import make_config
from helpers.data import copy_unique
from helpers.process import free_port

OUR_AE = "COURIER_TEST"


@pytest.fixture
def folder(tmp_path) -> Path:
    f = tmp_path / "in"
    f.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "MR_small_jp2klossless.dcm", "SC_rgb_jpeg_dcmtk.dcm"):
        copy_unique(name, f / name, tag=str(tmp_path))
    return f


def send(cfg, folder):
    insts = scan_paths([folder])
    result = SendJob(cfg, "standard").run(items_from_scan(insts))
    assert all(o.status == "success" for o in result.outcomes), [o.message for o in result.outcomes]
    return result.outcomes


def ghost(outcomes):
    """An instance the PACS never received (same series as the first)."""
    o = outcomes[0].to_dict()
    o["sop_instance_uid"] = generate_uid()
    return o


# -- Orthanc ------------------------------------------------------------------------------------------------------


@pytest.mark.interop
def test_orthanc_storage_commitment_on_a_new_association(orthanc, folder):
    listen = free_port()
    peer = orthanc(DicomModalities={"courier": [OUR_AE, "127.0.0.1", listen]})
    cfg = peer.config(OUR_AE)
    outcomes = send(cfg, folder)
    assert peer.instance_count() == 4
    missing = ghost(outcomes)
    result = verify_arrival(cfg, [*outcomes, missing], listen_port=listen, timeout_s=15)
    for o in outcomes:
        assert result.verified[o.sop_instance_uid] == COMMITTED
    assert result.verified[missing["sop_instance_uid"]] == NOT_FOUND  # refused by the commitment, then not found
    assert result.commitment["via"] == "new association"
    assert result.commitment["event_type"] == 2
    assert missing["sop_instance_uid"] in result.commitment["failed"]
    assert result.methods == ["storage-commitment", "c-find"]


@pytest.mark.interop
def test_orthanc_unknown_ae_falls_back_to_c_find(orthanc, folder):
    peer = orthanc(DicomAlwaysAllowFind=True)
    cfg = peer.config("STRANGER")
    outcomes = send(cfg, folder)
    missing = ghost(outcomes)
    t0 = time.monotonic()
    result = verify_arrival(cfg, [*outcomes, missing])
    elapsed = time.monotonic() - t0
    assert elapsed < 8, elapsed  # Orthanc refuses the N-ACTION at once: no waiting for a report
    assert {result.verified[o.sop_instance_uid] for o in outcomes} == {FOUND}
    assert result.verified[missing["sop_instance_uid"]] == NOT_FOUND
    assert result.methods == ["c-find"]
    assert any("N-ACTION refused" in m for m in result.messages)
    series = outcomes[0].series_instance_uid
    assert result.series[series]["expected"] == 2 and result.series[series]["found"] == 1
    outcomes = apply_to_outcomes(outcomes, result)
    assert all(o.verified == FOUND for o in outcomes)


@pytest.mark.interop
def test_orthanc_without_find_permission_is_not_checked(orthanc, folder):
    peer = orthanc(DicomAlwaysAllowFind=False)
    cfg = peer.config("STRANGER")
    outcomes = send(cfg, folder)
    result = verify_arrival(cfg, outcomes, method="c-find")
    assert set(result.verified.values()) == {NOT_CHECKED}
    assert result.messages


@pytest.mark.interop
def test_cli_send_verify_arrival_with_commitment(orthanc, run_cli, tmp_path, folder):
    listen = free_port()
    dport = orthanc(DicomModalities={"courier": [OUR_AE, "127.0.0.1", listen]}).dicom_port
    p = run_cli(
        "send",
        "--host",
        "127.0.0.1",
        "--port",
        dport,
        "--called-ae",
        "ORTHANC",
        "--calling-ae",
        OUR_AE,
        "--verify-arrival",
        "--commit-port",
        listen,
        "--report",
        tmp_path / "r.json",
        folder,
    )
    assert p.returncode == 0, p.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert {i["verified"] for i in rep["instances"]} == {COMMITTED}
    assert rep["job"]["arrival_check"]["commitment"]["via"] == "new association"
    assert "Arrival check: 4 committed" in p.stderr


# -- an in-process SCP that reports on the same association --------------------------------------------------------


@pytest.fixture
def committing_scp(scp_factory):
    """Accepts storage commitment and sends the N-EVENT-REPORT on the N-ACTION's association;
    commits to every instance whose UID does not end in '.999'."""
    scp = scp_factory(ae_title="COMMITTER", accept={}, commit=lambda uid: not uid.endswith(".999"), commit_delay_s=0.2)
    return scp.port, scp.commitment_requests


def test_commitment_report_on_the_same_association(committing_scp):
    port, seen = committing_scp
    refs = [
        {
            "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
            "sop_instance_uid": f"1.2.3.{i}",
            "study_instance_uid": "1.2.3",
            "series_instance_uid": "1.2.3.4",
        }
        for i in (1, 2)
    ]
    refs.append({**refs[0], "sop_instance_uid": "1.2.3.1.999"})
    result = verify_arrival(make_config(port, "COMMITTER", OUR_AE), refs, method="commitment", timeout_s=5)
    assert result.verified == {"1.2.3.1": COMMITTED, "1.2.3.2": COMMITTED, "1.2.3.1.999": NOT_FOUND}
    assert result.commitment["via"] == "same association"
    assert result.commitment["failed"] == {"1.2.3.1.999": "no such object instance"}
    [info] = seen
    assert info.TransactionUID == result.commitment["transaction_uid"]
    assert [r.ReferencedSOPInstanceUID for r in info.ReferencedSOPSequence] == ["1.2.3.1", "1.2.3.2", "1.2.3.1.999"]


def test_commitment_refused_then_c_find_refused_is_not_checked(committing_scp):
    port, _seen = committing_scp
    refs = [
        {
            "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
            "sop_instance_uid": "1.2.3.1",
            "study_instance_uid": "1.2.3",
            "series_instance_uid": "1.2.3.4",
        }
    ]
    result = verify_arrival(make_config(port, "COMMITTER", OUR_AE), refs, method="c-find")
    assert result.verified == {"1.2.3.1": NOT_CHECKED}
    assert any("c-find" in m for m in result.messages)
