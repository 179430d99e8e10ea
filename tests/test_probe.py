"""Probe (issue 7 item 1): the acceptance map per SOP class x transfer syntax."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time

import pytest
from pydicom.uid import AllTransferSyntaxes

from core.negotiation import MAX_CONTEXTS
from core.probe import (
    REASON_ABSTRACT,
    REASON_TRANSFER,
    AcceptanceMap,
    ProbeError,
    _chunks,
    probe,
    probe_syntaxes,
    resolve_sop_classes,
    storage_sop_classes,
)
from helpers.config import make_config
from helpers.data import CT, EXPLICIT, IMPLICIT, J2K_LOSSLESS, MR, SC, copy_unique
from helpers.dcmtk import PICKY_CFG
from helpers.process import PROJECT_ROOT

RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"


# -- units -------------------------------------------------------------------------------------------------


def test_chunks_respect_the_context_limit_and_keep_classes_together():
    classes = [f"1.2.3.{i}" for i in range(7)]
    syntaxes = probe_syntaxes("all")
    groups = _chunks(classes, syntaxes, MAX_CONTEXTS)
    assert all(len(g) <= MAX_CONTEXTS for g in groups)
    flat = [p for g in groups for p in g]
    assert sorted(flat) == sorted((c, t) for c in classes for t in syntaxes)
    for g in groups:  # 39 syntaxes fit, so a class never straddles two associations
        for c in {a for a, _ in g}:
            assert sum(1 for a, _ in flat if a == c) == sum(1 for a, _ in g if a == c)


def test_chunks_split_a_class_only_when_it_alone_exceeds_the_limit():
    groups = _chunks(["1.2.3"], [f"1.2.840.10008.1.2.{i}" for i in range(300)], MAX_CONTEXTS)
    assert [len(g) for g in groups] == [128, 128, 44]


def test_probe_syntaxes():
    everything = probe_syntaxes("all")
    assert set(everything) == {str(u) for u in AllTransferSyntaxes}
    assert everything[:2] == [IMPLICIT, EXPLICIT]
    assert J2K_LOSSLESS in probe_syntaxes("common") and len(probe_syntaxes("common")) == 13
    assert probe_syntaxes(f"{IMPLICIT}, {IMPLICIT},{J2K_LOSSLESS}") == [IMPLICIT, J2K_LOSSLESS]
    with pytest.raises(ValueError, match="not a transfer syntax"):
        probe_syntaxes("1.2.3.4")


def test_resolve_sop_classes():
    assert len(resolve_sop_classes("all")) == len(storage_sop_classes()) >= 150
    assert resolve_sop_classes("used", [CT, MR, CT, ""]) == [CT, MR]
    assert resolve_sop_classes(f"{CT},{SC}") == [CT, SC]
    with pytest.raises(ValueError, match="needs DICOM files"):
        resolve_sop_classes("used", [])
    with pytest.raises(ValueError, match="not a SOP Class UID"):
        resolve_sop_classes("CT Image Storage")


def test_map_round_trip_csv_and_queries(tmp_path):
    m = AcceptanceMap(
        {"host": "h", "port": 1},
        {
            CT: {"accepted": [IMPLICIT], "rejected": {EXPLICIT: REASON_TRANSFER}},
            SC: {"accepted": [], "rejected": {IMPLICIT: REASON_ABSTRACT}},
        },
    )
    again = AcceptanceMap.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again.to_dict() == m.to_dict()
    assert again.answer(CT, IMPLICIT) == "accepted"
    assert again.answer(CT, EXPLICIT) == REASON_TRANSFER
    assert again.answer(CT, J2K_LOSSLESS) is None and again.answer(MR, IMPLICIT) is None
    assert again.covers([(CT, IMPLICIT), (SC, IMPLICIT)]) and not again.covers([(MR, IMPLICIT)])
    assert again.class_refused(SC) and not again.class_refused(CT)
    rows = list(csv.DictReader(io.StringIO(m.csv_text())))
    assert {(r["sop_class_uid"], r["transfer_syntax_uid"], r["result"]) for r in rows} == {
        (CT, IMPLICIT, "accepted"),
        (CT, EXPLICIT, "rejected"),
        (SC, IMPLICIT, "rejected"),
    }
    m.write_json(tmp_path / "m.json")
    m.write_csv(tmp_path / "m.csv")
    assert json.loads((tmp_path / "m.json").read_text())["sop_classes"][CT]["accepted"] == [IMPLICIT]
    with pytest.raises(ValueError):
        AcceptanceMap.from_dict({"peer": {}})
    assert "REFUSED (abstract syntax not supported)" in m.table()


def test_core_modules_import_no_qt():
    code = (
        "import sys; import core.probe, core.preflight, core.verify, cli.main; "
        "print([m for m in sys.modules if m.startswith('PySide6')])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- an in-process pynetdicom SCP ----------------------------------------------------------------------------


@pytest.fixture
def pynetdicom_scp(scp_factory):
    """CT as Implicit or Explicit VR LE, MR as JPEG 2000 Lossless; records each A-ASSOCIATE-RQ."""
    return scp_factory(ae_title="PICKY", accept={CT: [IMPLICIT, EXPLICIT], MR: [J2K_LOSSLESS]})


def test_probe_against_pynetdicom_scp_maps_reasons_and_splits_associations(pynetdicom_scp):
    scp = pynetdicom_scp
    classes = [CT, MR, SC, RT_DOSE, "1.2.840.10008.5.1.4.1.1.1"]
    progress = []
    m = probe(scp.config("COURIER_TEST"), classes, "all", on_progress=progress.append)
    n_syntax = len(AllTransferSyntaxes)
    seen = scp.associations
    assert m.peer["associations"] == len(seen) == -(-len(classes) * n_syntax // MAX_CONTEXTS) == 2
    assert all(a.n_contexts <= MAX_CONTEXTS for a in seen) and sum(a.n_contexts for a in seen) == 5 * n_syntax
    assert not scp.requests, "a probe never stores"
    assert [p.done for p in progress] == [1, 2] and progress[-1].total == 2
    assert set(m.sop_classes[CT]["accepted"]) == {IMPLICIT, EXPLICIT}
    assert set(m.sop_classes[CT]["rejected"].values()) == {REASON_TRANSFER}
    assert m.sop_classes[MR]["accepted"] == [J2K_LOSSLESS]
    for refused in (SC, RT_DOSE):
        assert m.sop_classes[refused]["accepted"] == []
        assert set(m.sop_classes[refused]["rejected"].values()) == {REASON_ABSTRACT}
        assert len(m.sop_classes[refused]["rejected"]) == n_syntax
    assert m.peer["implementation_class_uid"] and m.peer["max_pdu"] is not None and m.peer["probed_at"]


def test_probe_of_a_peer_that_accepts_nothing_still_gives_reasons(pynetdicom_scp):
    m = probe(pynetdicom_scp.config("COURIER_TEST"), [SC], "common")
    assert m.sop_classes[SC]["accepted"] == [] and m.class_refused(SC)


def test_probe_unreachable_raises():
    with pytest.raises(ProbeError, match="could not connect"):
        probe(make_config(1, "NOBODY"), [CT], "common")


# -- DCMTK storescp --------------------------------------------------------------------------------------------


@pytest.mark.interop
def test_picky_storescp_gives_exactly_its_policy(storescp):
    peer = storescp(config=PICKY_CFG, profile="Picky")
    m = probe(peer.config("COURIER_TEST"), [CT, MR, SC], "all")
    assert m.sop_classes[CT]["accepted"] == [IMPLICIT]
    assert m.sop_classes[MR]["accepted"] == [J2K_LOSSLESS]
    assert m.sop_classes[SC]["accepted"] == []
    assert set(m.sop_classes[SC]["rejected"].values()) == {REASON_ABSTRACT}
    for cls in (CT, MR):
        assert len(m.sop_classes[cls]["rejected"]) == len(AllTransferSyntaxes) - 1
        assert set(m.sop_classes[cls]["rejected"].values()) == {REASON_TRANSFER}
    assert m.peer["implementation_version_name"].startswith("OFFIS_DCMTK")
    assert not any(peer.out_dir.iterdir())


@pytest.mark.interop
def test_cli_probe_all_is_fast_and_writes_json_and_csv(storescp, run_cli, tmp_path):
    port = storescp("+xa").port
    t0 = time.monotonic()
    p = run_cli(
        "probe",
        "--host",
        "127.0.0.1",
        "--port",
        port,
        "--called-ae",
        "STORESCP",
        "--sop-classes",
        "all",
        "--json",
        tmp_path / "m.json",
        "--csv",
        tmp_path / "m.csv",
    )
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert elapsed < 60, elapsed  # about 3 s for 170 classes x 39 syntaxes over 57 associations here
    data = json.loads((tmp_path / "m.json").read_text())
    assert len(data["sop_classes"]) == len(storage_sop_classes())
    assert data["peer"]["associations"] >= len(storage_sop_classes()) * len(AllTransferSyntaxes) // MAX_CONTEXTS
    assert IMPLICIT in data["sop_classes"][CT]["accepted"] and J2K_LOSSLESS in data["sop_classes"][CT]["accepted"]
    assert "CT Image Storage" in p.stdout and "accepts" in p.stdout
    with open(tmp_path / "m.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(storage_sop_classes()) * len(AllTransferSyntaxes)


@pytest.mark.interop
def test_cli_probe_used_takes_the_classes_of_the_files(storescp, run_cli, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    copy_unique("CT_small.dcm", folder / "a.dcm")
    copy_unique("MR_small.dcm", folder / "b.dcm")
    port = storescp(config=PICKY_CFG, profile="Picky").port
    p = run_cli("probe", "--host", "127.0.0.1", "--port", port, "--called-ae", "STORESCP", "--json", tmp_path / "m.json", folder)
    assert p.returncode == 0, p.stderr
    assert set(json.loads((tmp_path / "m.json").read_text())["sop_classes"]) == {CT, MR}


def test_cli_probe_exit_codes(run_cli):
    p = run_cli("probe", "--host", "127.0.0.1", "--port", "1", "--called-ae", "X", "--sop-classes", CT)
    assert p.returncode == 3 and "could not connect" in p.stderr
    p = run_cli("probe", "--host", "127.0.0.1", "--port", "1", "--called-ae", "X", "--sop-classes", "used")
    assert p.returncode == 2


def test_negotiation_record_names_the_proposed_syntax_of_rejected_contexts(pynetdicom_scp):
    """pynetdicom reports a rejected context with the syntax of the A-ASSOCIATE-AC, which is not
    significant (PS3.8 9.3.3.2); the record must name the syntax we proposed."""
    from core.config import StoreConfig
    from core.negotiation import open_association

    cxs = [(CT, J2K_LOSSLESS), (CT, IMPLICIT), (MR, EXPLICIT), (SC, "1.2.840.10008.1.2.5")]
    assoc, record = open_association(StoreConfig.from_dict(pynetdicom_scp.config("COURIER_TEST")), cxs)
    assoc.release()
    assert [(r.abstract_syntax, r.transfer_syntax, r.result) for r in record.rejected] == [
        (CT, J2K_LOSSLESS, 4),
        (MR, EXPLICIT, 4),
        (SC, "1.2.840.10008.1.2.5", 3),
    ]
