"""Pre-flight (issue 7 items 2 and 3): the plan per instance, and validation findings."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pydicom
import pytest
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import AllTransferSyntaxes

from core.engine import SendJob, items_from_scan
from core.preflight import (
    MSG_CLASS_REFUSED,
    MSG_ONLY_LOSSY,
    PlanError,
    needs_confirmation,
    plan_instances,
    summarize,
    summary_text,
    validate_instances,
    validate_uid,
)
from core.probe import REASON_ABSTRACT, REASON_TRANSFER, AcceptanceMap, probe
from core.scan import scan_paths
from helpers.config import make_config
from helpers.data import CT, EXPLICIT, IMPLICIT, J2K_LOSSLESS, MR, RT_PLAN, SC, TEST_FILES, copy_unique
from helpers.dcmtk import PICKY_CFG

J2K_LOSSY = "1.2.840.10008.1.2.4.91"  # encodable here, unlike JPEG Baseline


def policy_map(policy: dict[str, set[str]]) -> AcceptanceMap:
    """A complete map: every syntax pydicom knows, accepted per `policy`, every other class refused."""
    classes = {}
    for cls, accepted in policy.items():
        classes[cls] = {
            "accepted": [str(t) for t in AllTransferSyntaxes if str(t) in accepted],
            "rejected": {
                str(t): REASON_TRANSFER if accepted else REASON_ABSTRACT for t in AllTransferSyntaxes if str(t) not in accepted
            },
        }
    return AcceptanceMap({"host": "127.0.0.1", "port": 1}, classes)


PICKY = {CT: {IMPLICIT}, MR: {J2K_LOSSLESS}, SC: set(), RT_PLAN: set()}


@pytest.fixture
def mixed(tmp_path) -> Path:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in (
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_RLE.dcm",
        "MR_small_bigendian.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "rtplan.dcm",
    ):
        copy_unique(name, folder / name)
    (folder / "readme.txt").write_text("not DICOM")
    return folder


def by_name(plans):
    return {Path(p.path).name: p for p in plans}


# -- validation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", True),
        ("0.1", True),
        ("1.02.3", False),
        ("1..2", False),
        (".1.2", False),
        ("1.2.", False),
        ("1.2.a", False),
        ("1." + "1" * 63, False),
        ("", False),
    ],
)
def test_validate_uid(value, ok):
    assert (validate_uid(value) == "") is ok


def test_validation_names_each_finding_with_its_tag(tmp_path):
    src = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    no_study = copy.deepcopy(src)
    del no_study.StudyInstanceUID
    no_study.save_as(tmp_path / "a_no_study.dcm")
    bad_series = copy.deepcopy(src)
    bad_series.SeriesInstanceUID = "1.2.03.4"
    bad_series.SOPInstanceUID = bad_series.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.1"
    bad_series.save_as(tmp_path / "b_bad_series.dcm")
    dup = copy.deepcopy(src)
    dup.SOPInstanceUID = dup.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.1"
    dup.save_as(tmp_path / "c_duplicate.dcm")
    mismatch = copy.deepcopy(src)  # written as Implicit VR, labelled Explicit VR
    mismatch.SOPInstanceUID = mismatch.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.2"
    mismatch.file_meta.TransferSyntaxUID = EXPLICIT
    with open(tmp_path / "d_mismatch.dcm", "wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        fp = DicomFileLike(f)
        write_file_meta_info(fp, mismatch.file_meta, enforce_standard=False)
        fp.is_little_endian, fp.is_implicit_VR = True, True
        write_dataset(fp, mismatch)
    encaps = copy.deepcopy(src)  # encapsulated pixel data under a native syntax
    encaps.SOPInstanceUID = encaps.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.3"
    encaps.save_as(tmp_path / "e_encaps.dcm")
    raw = (tmp_path / "e_encaps.dcm").read_bytes()
    pos = raw.rindex(b"\xe0\x7f\x10\x00OW")
    frag = b"\xfe\xff\x00\xe0\x00\x00\x00\x00" + b"\xfe\xff\x00\xe0\x04\x00\x00\x00abcd" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    (tmp_path / "e_encaps.dcm").write_bytes(raw[:pos] + b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff" + frag)

    insts = scan_paths([tmp_path])
    found = {Path(insts[i].path).name: fs for i, fs in validate_instances(insts).items()}

    def tags(name):
        return {f.tag for f in found.get(name, [])}

    assert "(0020,000D)" in tags("a_no_study.dcm")
    assert any("missing" in f.message for f in found["a_no_study.dcm"])
    assert "(0020,000E)" in tags("b_bad_series.dcm")
    assert any("leading zero" in f.message for f in found["b_bad_series.dcm"])
    assert "(0008,0018)" in tags("c_duplicate.dcm")
    assert any("duplicate" in f.message for f in found["c_duplicate.dcm"])
    assert "(0002,0010)" in tags("d_mismatch.dcm")
    assert "(7FE0,0010)" in tags("e_encaps.dcm")
    assert all(f.keyword for fs in found.values() for f in fs if f.tag)
    assert all(str(f).startswith(f.tag) for fs in found.values() for f in fs)


# -- planning from a map (no network) -----------------------------------------------------------------------------


def test_plan_from_a_saved_map(mixed):
    insts = scan_paths([mixed])
    plans = by_name(plan_instances(insts, policy_map(PICKY), make_config(1, "STORESCP"), "compression"))
    assert plans["CT_small.dcm"].plan == "convert"
    assert plans["CT_small.dcm"].message == "convert Explicit VR LE → Implicit VR LE (lossless)"
    assert plans["MR_small.dcm"].message == "convert Explicit VR LE → JPEG 2000 Lossless (lossless)"
    assert plans["MR_small_jp2klossless.dcm"].plan == "as-stored"
    assert plans["MR_small_jp2klossless.dcm"].message == "as stored"
    assert plans["MR_small_RLE.dcm"].message == "convert RLE Lossless → JPEG 2000 Lossless (lossless)"
    assert plans["MR_small_bigendian.dcm"].plan == "convert"
    assert plans["SC_rgb_jpeg_dcmtk.dcm"].message == MSG_CLASS_REFUSED
    assert plans["rtplan.dcm"].message == MSG_CLASS_REFUSED
    assert plans["readme.txt"].plan == "skipped"
    out = plans["CT_small.dcm"].to_outcome()
    assert out["status"] == "planned" and out["plan"] == "convert" and out["transfer_syntax"] == IMPLICIT
    s = summarize(plans.values())
    assert (s["as-stored"], s["convert"], s["blocked"], s["skipped"]) == (1, 4, 2, 1)
    assert summary_text(plans.values()).startswith("1 as stored, 4 converted, 2 blocked")
    assert needs_confirmation(plans.values())


def test_plan_lossy_only_peer(mixed):
    insts = [i for i in scan_paths([mixed]) if i.sop_class_uid == CT]
    amap = policy_map({CT: {J2K_LOSSY}})
    [p] = plan_instances(insts, amap, make_config(1, "STORESCP"), "compression")
    assert p.plan == "blocked" and p.message == MSG_ONLY_LOSSY
    [p] = plan_instances(insts, amap, make_config(1, "STORESCP", allow_lossy=True), "extended")
    assert p.plan == "convert" and p.kind == "lossy" and "(lossy)" in p.message and needs_confirmation([p])


def test_plan_decompress_lossy_source():
    insts = list(scan_paths([TEST_FILES / "SC_rgb_jpeg_dcmtk.dcm"]))
    [p] = plan_instances(insts, policy_map({SC: {EXPLICIT}}), make_config(1, "STORESCP"), "standard")
    assert p.message == "convert JPEG Baseline → Explicit VR LE (decompress lossy source)"
    assert p.kind == "decompress-lossy" and not p.lossy


def test_plan_file_problem(tmp_path):
    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) // 2])
    [p] = plan_instances(scan_paths([tmp_path]), policy_map(PICKY), make_config(1, "STORESCP"), "standard")
    assert p.plan == "blocked" and p.message.startswith("blocked: file problem (truncated file")


def test_plan_without_a_map_needs_the_peer():
    insts = scan_paths([TEST_FILES / "CT_small.dcm"])
    with pytest.raises(PlanError, match="could not connect"):
        plan_instances(insts, None, make_config(1, "STORESCP"), "standard")


# -- the plan matches the real send ---------------------------------------------------------------------------------


def assert_send_matches(plans, outcomes):
    assert len(plans) == len(outcomes)
    for p, o in zip(plans, outcomes, strict=True):
        name = Path(p.path).name
        if p.plan == "skipped":
            assert o.status == "skipped", name
        elif p.plan == "blocked":
            assert o.status == "failure", (name, p.message, o.message)
        else:
            assert o.status in ("success", "warning"), (name, p.message, o.message)
            assert o.transfer_syntax == p.target_syntax, (name, p.message, o)
            assert bool(o.converted_from) == (p.plan == "convert"), (name, p.message, o)
            assert o.strategy_used == p.strategy, (name, p.strategy, o.strategy_used)


@pytest.mark.interop
@pytest.mark.parametrize(
    ("strategy", "parallel"), [("compression", 1), ("standard", 1), ("universal", 1), ("universal", 3), ("compression", 4)]
)
def test_plan_matches_the_real_send_to_picky_storescp(storescp, mixed, strategy, parallel):
    insts = scan_paths([mixed])
    peer = storescp(config=PICKY_CFG, profile="Picky")
    cfg = peer.config()
    negotiated = plan_instances(insts, None, cfg, strategy, parallel=parallel)
    amap = probe(cfg, [CT, MR, SC, RT_PLAN], "all")
    mapped = plan_instances(insts, amap, cfg, strategy, parallel=parallel)
    assert not any(peer.out_dir.iterdir()), "planning stored something"
    result = SendJob(cfg, strategy, max_retries=4, parallel=parallel).run(items_from_scan(insts))
    assert [p.message for p in negotiated] == [p.message for p in mapped]
    assert_send_matches(negotiated, result.outcomes)
    if strategy == "compression":
        assert by_name(negotiated)["MR_small_jp2klossless.dcm"].plan == "as-stored"
        assert by_name(negotiated)["MR_small.dcm"].plan == "convert"
    if strategy == "universal" and parallel == 1:  # no J2K in universal, but the batch's J2K file brings one
        assert by_name(negotiated)["MR_small.dcm"].target_syntax == J2K_LOSSLESS


@pytest.mark.interop
def test_cli_dry_run_report_then_send(storescp, run_cli, tmp_path, mixed):
    peer = storescp(config=PICKY_CFG, profile="Picky")
    tgt = ["--host", "127.0.0.1", "--port", peer.port, "--called-ae", "STORESCP", "--strategy", "compression"]
    p = run_cli("send", *tgt, "--dry-run", "--report", tmp_path / "plan.json", mixed)
    assert p.returncode == 1, p.stderr  # something is blocked
    assert "as stored" in p.stdout and "blocked" in p.stdout
    assert not any(peer.out_dir.iterdir())
    rep = json.loads((tmp_path / "plan.json").read_text())
    assert rep["summary"]["dry_run"] and rep["summary"]["blocked"] == 2
    planned = {Path(i["path"]).name: i for i in rep["instances"]}
    assert planned["CT_small.dcm"]["status"] == "planned" and planned["CT_small.dcm"]["plan"] == "convert"
    assert planned["SC_rgb_jpeg_dcmtk.dcm"]["message"] == MSG_CLASS_REFUSED
    p = run_cli("send", *tgt, "--dry-run", "--report", tmp_path / "plan.csv", mixed / "CT_small.dcm")
    assert p.returncode == 0, p.stderr
    assert "plan" in (tmp_path / "plan.csv").read_text().splitlines()[0]
    p = run_cli("probe", *tgt[:6], "--json", tmp_path / "m.json", mixed)
    p = run_cli("send", *tgt, "--dry-run", "--acceptance-map", tmp_path / "m.json", "--report", tmp_path / "plan2.json", mixed)
    assert json.loads((tmp_path / "plan2.json").read_text())["job"]["plan_source"] == "acceptance map"
    p = run_cli("send", *tgt, "--report", tmp_path / "real.json", mixed)
    real = {Path(i["path"]).name: i for i in json.loads((tmp_path / "real.json").read_text())["instances"]}
    for name, i in planned.items():
        if i["plan"] == "blocked":
            assert real[name]["status"] == "failure"
        elif i["plan"] in ("as-stored", "convert"):
            assert real[name]["transfer_syntax"] == i["transfer_syntax"]


def test_plan_message_names_only_lossy_after_a_probe_of_a_pynetdicom_scp(scp_factory, mixed):
    scp = scp_factory(ae_title="LOSSY", accept={CT: [J2K_LOSSY]})
    cfg = make_config(scp.port, "LOSSY")
    insts = [i for i in scan_paths([mixed]) if i.sop_class_uid == CT]
    [live] = plan_instances(insts, None, cfg, "compression")
    amap = probe(cfg, [CT], "all")
    [mapped] = plan_instances(insts, amap, cfg, "compression")
    result = SendJob(cfg, "compression").run(items_from_scan(insts))
    assert live.plan == mapped.plan == "blocked" and result.outcomes[0].status == "failure"
    assert "none of the transfer syntaxes proposed" in live.message
    assert mapped.message == MSG_ONLY_LOSSY


def test_partial_map_with_the_peer_out_of_reach_plans_from_the_map():
    insts = scan_paths([TEST_FILES / "CT_small.dcm"])
    amap = AcceptanceMap({}, {CT: {"accepted": [IMPLICIT], "rejected": {}}})  # probed with one syntax only
    [p] = plan_instances(insts, amap, make_config(1, "STORESCP"), "standard")
    assert p.plan == "convert" and p.target_syntax == IMPLICIT
