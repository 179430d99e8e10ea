"""Cases c31 (private and retired SOP classes) and c35 (newer VRs, an older receiver), with inputs of the same kinds.

c31: private and retired SOP classes are proposed as they are and, when the peer rejects them,
named as such; nothing is relabelled, one association, no generic "no valid presentation context".
c35: a per-destination "Implicit VR Little Endian only" preference (config key, profile field,
``send --implicit-vr-only``, shown in the report) sends files with UC/UR/SV/UV values
byte-identical; without it, an old receiver's aborts end with a hint naming the VRs and the setting.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ComprehensiveSRStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    UltrasoundImageStorage,
)

from core.config import StoreConfig
from core.engine import SendJob, items_from_scan
from core.preflight import plan_instances
from core.profiles import Profile
from core.scan import scan_paths
from core.send import SendRequest, run_send
from helpers import casegen

pytestmark = pytest.mark.timeout(120)

PHILIPS_PRIVATE = "1.3.46.670589.2.5.1.1"  # c31's private class
SIEMENS_CSA_NON_IMAGE = "1.3.12.2.1107.5.9.1"  # another private class, same kind
US_RETIRED = "1.2.840.10008.5.1.4.1.1.6"  # Ultrasound Image Storage (Retired)
NM_RETIRED = "1.2.840.10008.5.1.4.1.1.5"  # Nuclear Medicine Image Storage (Retired), same kind
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def fast(**kw):
    return {"acse_timeout": 5, "dimse_timeout": 5, "network_timeout": 5, "connect_timeout": 2, "retry_backoff_s": 5, **kw}


# -- c31 ------------------------------------------------------------------------------------------------------


def _image(ds: Dataset, index: int) -> None:
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 32
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = ((np.arange(32 * 32) + index) % 256).astype(np.uint8).tobytes()


def c31_study(folder: Path) -> dict[str, Path]:
    """One study: standard US and SR, two private and two retired classes (as old devices write them)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for n, (name, sop_class, modality) in enumerate(
        (
            ("us", UltrasoundImageStorage, "US"),
            ("sr", ComprehensiveSRStorage, "SR"),
            ("philips_private", PHILIPS_PRIVATE, "US"),
            ("us_retired", US_RETIRED, "US"),
            ("siemens_private", SIEMENS_CSA_NON_IMAGE, "OT"),
            ("nm_retired", NM_RETIRED, "NM"),
        )
    ):
        ds = casegen.base_dataset(sop_class, "c31-study", n, modality)
        if name == "sr":
            ds.ValueType, ds.CompletionFlag, ds.VerificationFlag = "CONTAINER", "COMPLETE", "UNVERIFIED"
            item = Dataset()
            item.RelationshipType, item.ValueType, item.TextValue = "CONTAINS", "TEXT", "TEST REPORT"
            ds.ContentSequence = Sequence([item])
        elif "private" in name:
            block = ds.private_block(0x0029, "TEST PRIVATE", create=True)
            block.add_new(0x10, "OB", b"\x01\x02" * 32)
        else:
            _image(ds, n)
        path = folder / f"{name}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out[name] = path
    return out


def test_c31_private_and_retired_classes_proposed_and_named(scp_factory, tmp_path):
    files = c31_study(tmp_path / "c31")
    scp = scp_factory(accept={UltrasoundImageStorage: UNCOMPRESSED, ComprehensiveSRStorage: UNCOMPRESSED})
    insts = scan_paths([str(tmp_path / "c31")])
    assert all(i.status == "ok" for i in insts), [(i.path, i.reason) for i in insts]
    result = SendJob(scp.config(**fast()), "standard", max_retries=4).run(items_from_scan(insts))
    by = {Path(o.path).stem: o for o in result.outcomes}

    assert len(scp.associations) == 1, "one association proposes every class; a refused class opens no other"
    proposed = {abstract for _cid, abstract, _ts in scp.associations[0].requested}
    assert {PHILIPS_PRIVATE, SIEMENS_CSA_NON_IMAGE, US_RETIRED, NM_RETIRED} <= proposed, "dropped before negotiation"
    assert by["us"].state == by["sr"].state == "stored"
    assert by["philips_private"].message == (
        "not sent: peer does not support SOP Class 1.3.46.670589.2.5.1.1 (private, not a standard storage class); "
        "rejected during association negotiation (abstract syntax not supported)"
    )
    assert by["siemens_private"].message.startswith(
        f"not sent: peer does not support SOP Class {SIEMENS_CSA_NON_IMAGE} (private, not a standard storage class)"
    )
    assert by["us_retired"].message.startswith(f"not sent: peer does not support Ultrasound Image Storage (Retired) {US_RETIRED}")
    assert by["nm_retired"].message.startswith(
        f"not sent: peer does not support Nuclear Medicine Image Storage (Retired) {NM_RETIRED}"
    )
    for name in ("philips_private", "siemens_private", "us_retired", "nm_retired"):
        assert by[name].state == "failed" and not by[name].resumable
        assert "no valid presentation context" not in by[name].message.lower()
    # never relabelled: what arrived carries its own class
    arrived = {str(ds.SOPInstanceUID): str(ds.SOPClassUID) for ds in scp.received.values() if ds is not None}
    assert sorted(arrived.values()) == sorted([UltrasoundImageStorage, ComprehensiveSRStorage])
    assert files["us_retired"].exists()


def test_c31_cli_exit_code_and_words(scp_factory, tmp_path, run_cli):
    c31_study(tmp_path / "c31")
    scp = scp_factory(accept={UltrasoundImageStorage: UNCOMPRESSED, ComprehensiveSRStorage: UNCOMPRESSED})
    report = tmp_path / "r.json"
    p = run_cli(
        "send",
        "--host",
        "127.0.0.1",
        "--port",
        str(scp.port),
        "--called-ae",
        scp.ae_title,
        "--no-journal",
        "--report",
        str(report),
        "--quiet",
        str(tmp_path / "c31"),
    )
    assert p.returncode == 1, p.stderr[-800:]
    assert "no valid presentation context" not in (p.stdout + p.stderr).lower()
    rep = json.loads(report.read_text())
    refused = [i for i in rep["instances"] if i["status"] == "failure"]
    assert len(refused) == 4 and all("peer does not support" in i["message"] for i in refused)


# -- c35 ------------------------------------------------------------------------------------------------------

NEW_VRS = {"UC", "UR", "SV", "UV", "OV", "OL"}


def c35_ct(folder: Path, index: int, variant: int) -> Path:
    """A CT slice with VRs added in 2013 or later, nested and top level (two variants of the kind)."""
    ds = casegen.ct_dataset(f"c35-{variant}", index, 32, 32)
    if variant == 0:  # as in the field report: multi-energy CT
        source, detector = Dataset(), Dataset()
        source.XRaySourceIndex, source.XRaySourceID = 1, "TEST TUBE A - dual energy source " * 4
        source.MultienergySourceTechnique = "SWITCHING_SOURCE"
        detector.XRayDetectorIndex, detector.XRayDetectorID = 1, "TEST DETECTOR 1 - photon counting " * 3
        detector.MultienergyDetectorType = "INTEGRATING"
        acquisition = Dataset()
        acquisition.MultienergyCTXRaySourceSequence = Sequence([source])
        acquisition.MultienergyCTXRayDetectorSequence = Sequence([detector])
        ds.MultienergyCTAcquisitionSequence = Sequence([acquisition])
        ds.MultienergyCTAcquisition = "YES"
        ds.RetrieveURL = f"https://pacs.example.invalid/wado/{ds.StudyInstanceUID}"
        ds.SelectorSVValue = [-(2**40), 7]
        ds.SelectorUVValue = [2**40 + index, 9]
    else:  # another kind: long code values and a URL at the top level
        code = Dataset()
        code.LongCodeValue = "TEST-" + "X" * 70  # UC (0008,0119)
        code.CodingSchemeDesignator = "99TEST"
        code.CodeMeaning = "Test long code"
        urn = Dataset()
        urn.URNCodeValue = "urn:oid:2.25.987654321"  # UR (0008,0120)
        urn.CodeMeaning = "Test URN code"
        ds.ProcedureCodeSequence = Sequence([code, urn])
        ds.PixelDataProviderURL = "https://pacs.example.invalid/jpip/test"  # UR (0028,7FE0)
        ds.SelectorSVValue = [-5]
    path = folder / f"c35_{variant}_{index}.dcm"
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def old_receiver(scp_factory):
    """Accepts CT as Explicit or Implicit VR LE; parses only the VRs of DICOM 2011: aborts on newer ones in explicit VR."""

    def policy(req):
        explicit = req.transfer_syntax != ImplicitVRLittleEndian and req.dataset is not None
        if explicit and any(e.VR in NEW_VRS for e in req.dataset.iterall()):
            return "abort"
        return 0x0000

    return scp_factory(accept={CTImageStorage: UNCOMPRESSED}, policy=policy)


def _raw_values(ds: Dataset, out: dict[str, bytes], prefix: str = "") -> dict[str, bytes]:
    """Raw value bytes of every element (sequences walked), keyed by tag path."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        key = f"{prefix}{int(tag):08X}"
        if ds[tag].VR == "SQ":
            for n, item in enumerate(ds[tag].value):
                _raw_values(item, out, f"{key}[{n}].")
        elif tag != 0x7FE00010:
            out[key] = bytes(raw.value) if isinstance(raw.value, bytes | bytearray) else b""
    return out


@pytest.mark.parametrize("variant", [0, 1])
def test_c35_implicit_only_sends_new_vrs_byte_identical(scp_factory, tmp_path, variant):
    paths = [c35_ct(tmp_path / "in", i, variant) for i in (1, 2)]
    scp = old_receiver(scp_factory)
    insts = scan_paths([str(p) for p in paths])
    cfg = StoreConfig.from_dict(scp.config(**fast(implicit_vr_only=True)))
    plans = plan_instances(insts, None, cfg, "standard", 4)
    assert [p.target_syntax for p in plans] == [ImplicitVRLittleEndian] * 2
    result = SendJob(cfg, "standard", 4).run(items_from_scan(insts))
    assert [o.state for o in result.outcomes] == ["stored"] * 2
    assert all(o.transfer_syntax == ImplicitVRLittleEndian for o in result.outcomes)
    assert scp.syntaxes == [ImplicitVRLittleEndian] * 2
    assert {ts for _cid, _abs, tss in scp.associations[0].requested for ts in tss} == {ImplicitVRLittleEndian}
    for path, o in zip(paths, result.outcomes, strict=True):
        source = _raw_values(dcmread(path), {})
        received = _raw_values(read_dataset(io.BytesIO(scp.raw[o.sop_instance_uid]), True, True), {})
        new_vr_tags = [k for k in source if k[-8:].upper() in _NEW_VR_TAGS[variant]]
        assert new_vr_tags, "the input lost its new VRs"
        for key in new_vr_tags:
            assert received[key] == source[key], key
        assert set(received) == set(source), "an element or an item went missing"


_NEW_VR_TAGS = {
    0: {"00189367", "00189371", "00081190", "00720082", "00720083"},
    1: {"00080119", "00080120", "00287FE0", "00720082"},
}


@pytest.mark.parametrize("variant", [0, 1])
def test_c35_old_receiver_aborts_explained_and_bounded(scp_factory, tmp_path, variant):
    paths = [c35_ct(tmp_path / "in", i, variant) for i in (1, 2)]
    scp = old_receiver(scp_factory)
    t0 = time.monotonic()
    result = SendJob(scp.config(**fast()), "standard", 4).run(items_from_scan(scan_paths([str(p) for p in paths])))
    assert time.monotonic() - t0 < 10
    assert len(scp.associations) <= 4, "more than one break and one lone retry per file"
    for o in result.outcomes:
        assert o.state == "failed" and o.message.startswith("the PACS aborted the association twice")
        assert "VRs introduced in 2013 or later" in o.message
        assert "try 'Implicit VR Little Endian only' for this destination" in o.message
    first = result.outcomes[0].message
    assert ("UC in (0018,9367)" in first) if variant == 0 else ("UC in (0008,0119)" in first)


def test_c35_setting_in_profile_cli_and_report(scp_factory, tmp_path, run_cli):
    paths = [c35_ct(tmp_path / "in", i, 0) for i in (1, 2)]
    where = {"remote_host": "127.0.0.1", "remote_ae_title": "OLDPACS"}
    assert Profile(**where, implicit_vr_only=True).to_store_config().implicit_vr_only
    assert not Profile(**where).to_store_config().implicit_vr_only
    scp = old_receiver(scp_factory)
    report = tmp_path / "r.json"
    p = run_cli(
        "send",
        "--host",
        "127.0.0.1",
        "--port",
        str(scp.port),
        "--called-ae",
        scp.ae_title,
        "--implicit-vr-only",
        "--no-journal",
        "--quiet",
        "--report",
        str(report),
        *map(str, paths),
    )
    assert p.returncode == 0, p.stderr[-800:]
    rep = json.loads(report.read_text())
    assert rep["job"]["implicit_vr_only"] is True
    assert [i["transfer_syntax"] for i in rep["instances"]] == [ImplicitVRLittleEndian] * 2


def test_c35_compressed_file_is_decoded_for_implicit_only_and_says_so(scp_factory, tmp_path):
    path = casegen.make_ct(tmp_path / "rle", 1, key="c35-rle", transfer_syntax=RLELossless)[0]
    scp = scp_factory(accept={CTImageStorage: (RLELossless, *UNCOMPRESSED)})
    cfg = StoreConfig.from_dict(scp.config(**fast(implicit_vr_only=True)))
    insts = scan_paths([str(path)])
    plans = plan_instances(insts, None, cfg, "compression", 4)
    result = run_send(SendRequest(cfg, instances=tuple(insts)))
    assert result.job is not None
    o = result.job.outcomes[0]
    assert o.state == "stored" and o.transfer_syntax == ImplicitVRLittleEndian and o.converted_from == RLELossless
    assert "converted" in o.message
    assert plans[0].plan == "convert" and plans[0].target_syntax == ImplicitVRLittleEndian


@pytest.mark.xfail(
    strict=True,
    reason="data stream (core/convert.py): Explicit -> Implicit VR goes through pydicom values, which drops "
    "trailing spaces beyond the one pad byte of a text value (UC 'ABC  ' arrives as 'ABC '); c35 asks for "
    "byte-identical values, i.e. a header-only transcoding",
)
def test_c35_text_values_with_two_trailing_spaces_stay_byte_identical(scp_factory, tmp_path):
    ds = casegen.ct_dataset("c35-spaces", 0)
    source = Dataset()
    source.XRaySourceID = "TEST TUBE B "  # 12 characters, written with no pad: the two spaces are the value's
    acquisition = Dataset()
    acquisition.MultienergyCTXRaySourceSequence = Sequence([source])
    ds.MultienergyCTAcquisitionSequence = Sequence([acquisition])
    ds.XRaySourceID = "ODD VALUE  "  # 11 characters: one pad space follows
    path = tmp_path / "spaces.dcm"
    ds.save_as(path, enforce_file_format=True)
    scp = scp_factory(accept={CTImageStorage: UNCOMPRESSED})
    result = SendJob(scp.config(**fast(implicit_vr_only=True))).run(items_from_scan(scan_paths([str(path)])))
    o = result.outcomes[0]
    received = _raw_values(read_dataset(io.BytesIO(scp.raw[o.sop_instance_uid]), True, True), {})
    assert received == _raw_values(dcmread(path), {})
