"""The tree model: qtmodeltester, grouping, batched repaints, the failed-only proxy; the log buffer."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from core.scan import scan_paths
from helpers.data import TEST_FILES

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_level_fail("WARNING"), pytest.mark.qt_log_ignore("propagateSizeHints")]


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOM_COURIER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DICOM_COURIER_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def scanned() -> list:
    names = [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_RLE.dcm",
        "JPEG2000.dcm",
        "rtplan.dcm",
        "README.txt",
        "MR_truncated.dcm",
        "rtdose.dcm",
        "waveform_ecg.dcm",
    ]
    return scan_paths([str(TEST_FILES / n) for n in names])


def test_tree_model_passes_modeltester_through_changes(qapp, qtmodeltester, scanned) -> None:
    from ui import states as st
    from ui.models import InstanceTreeModel

    model = InstanceTreeModel(repaint_ms=10)
    qtmodeltester.check(model)
    model.add_instances(scanned[:3])
    model.add_instances(scanned[3:])
    model.add_instances(scanned)  # the same files again: ignored
    assert model.stats()["files"] == len(scanned)
    leaves = model.leaves()
    for n in leaves:
        model.set_state(n, st.STORED if n.kind == "instance" else n.state, {"status": "success", "state": "stored"})
    model.flush()
    qtmodeltester.check(model)
    first_patient = model.index(0, 0)
    model.remove([model.index(0, 0, model.index(0, 0, first_patient))])  # a series
    model.remove([model.index(model.rowCount() - 1, 0)])  # the not-DICOM group
    qtmodeltester.check(model)
    model.clear()
    assert model.rowCount() == 0
    qtmodeltester.check(model)


def test_grouping_and_columns(qapp, scanned) -> None:
    from ui.models import BAD, GROUP, PATIENT, Col, InstanceTreeModel, Role

    model = InstanceTreeModel()
    model.add_instances(scanned)
    kinds = [model.index(r, 0).data(Role.KIND) for r in range(model.rowCount())]
    assert kinds[-1] == GROUP and set(kinds[:-1]) == {PATIENT}
    group = model.index(model.rowCount() - 1, 0)
    bad = {model.index(r, 0, group).data(): model.index(r, Col.DETAILS, group).data() for r in range(model.rowCount(group))}
    assert set(bad) == {"README.txt", "MR_truncated.dcm"}
    assert "truncated" in bad["MR_truncated.dcm"]
    assert model.index(0, 0, group).data(Role.KIND) == BAD
    s = model.stats()
    assert s["instances"] == len(scanned) - 2 and s["bad"] == 2
    ct = next(n for n in model.leaves() if n.inst.path.endswith("CT_small.dcm"))
    idx = model.index_of(ct)
    assert model.index(idx.row(), Col.SOP_CLASS, idx.parent()).data() == "CT Image Storage"
    assert model.index(idx.row(), Col.SYNTAX, idx.parent()).data() == "Explicit VR LE"
    assert model.index(idx.row(), Col.STATE, idx.parent()).data() == "ready"
    assert "CT_small.dcm" in model.index(idx.row(), Col.ITEM, idx.parent()).data(0x03)  # tooltip


def test_state_changes_are_batched(qtbot, scanned) -> None:
    from ui import states as st
    from ui.models import InstanceTreeModel

    model = InstanceTreeModel(repaint_ms=100)
    model.add_instances(scanned)
    changes: list = []
    model.dataChanged.connect(lambda a, b, roles=(): changes.append((a, b)))
    for n in model.leaves():
        model.set_state(n, st.SENDING)
    for n in model.leaves():
        model.set_state(
            n,
            st.STORED,
            {
                "status": "success",
                "state": "stored",
                "status_code": 0,
                "status_meaning": "Success",
                "transfer_syntax": "1.2.840.10008.1.2",
                "converted_from": "1.2.840.10008.1.2.1",
            },
        )
    assert changes == [], "no repaint before the timer fires"
    qtbot.waitUntil(lambda: bool(changes), timeout=2000)
    parents = {id(n.parent) for n in model.leaves()} | {id(a) for n in model.leaves() for a in model._ancestors(n)}
    assert len(changes) <= len(parents) + 1, "one dataChanged per parent (and the root), not per row"

    # 2,000 instances of one series: 4,000 state changes, one repaint of a handful of ranges
    from core.scan import ScannedInstance

    big = InstanceTreeModel(repaint_ms=50)
    big.add_instances(
        [
            ScannedInstance(
                f"/x/{i}.dcm",
                sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                sop_instance_uid=f"1.2.3.{i}",
                patient_id="P",
                study_instance_uid="1.2",
                series_instance_uid="1.2.1",
                size=1000,
            )
            for i in range(2000)
        ]
    )
    many: list = []
    big.dataChanged.connect(lambda a, b, roles=(): many.append((a.row(), b.row())))
    for n in big.leaves():
        big.set_state(n, st.SENDING)
        big.set_state(n, st.STORED, {"status": "success", "state": "stored"})
    assert many == []
    qtbot.waitUntil(lambda: bool(many), timeout=2000)
    qtbot.wait(100)
    assert len(many) == 4 and (0, 1999) in many  # the series' rows, the series, the study, the patient
    ct = next(n for n in model.leaves() if n.inst.path.endswith("CT_small.dcm"))
    idx = model.index_of(ct)
    from ui.models import Col

    assert model.index(idx.row(), Col.SENT_AS, idx.parent()).data() == "Explicit VR LE → Implicit VR LE"
    assert model.index(idx.row(), Col.STATUS, idx.parent()).data() == "0x0000 Success"
    patient = model.index_of(ct).parent().parent().parent()
    assert "stored" in model.index(patient.row(), Col.STATE).data()


def test_failed_only_proxy(qapp, qtmodeltester, scanned) -> None:
    from ui import states as st
    from ui.models import InstanceTreeModel, ProblemFilterProxy

    model = InstanceTreeModel()
    model.add_instances(scanned)
    proxy = ProblemFilterProxy()
    proxy.setSourceModel(model)
    qtmodeltester.check(proxy)
    mr = next(n for n in model.leaves() if n.inst.path.endswith("MR_small.dcm"))
    model.set_state(mr, st.FAILED, {"status": "failure", "state": "failed", "message": "0xC000"})
    model.flush()
    proxy.set_only_problems(True)

    def visible_leaves(parent=None) -> list[str]:
        from PySide6.QtCore import QModelIndex

        parent = parent or QModelIndex()
        out = []
        for r in range(proxy.rowCount(parent)):
            i = proxy.index(r, 0, parent)
            out += visible_leaves(i) if proxy.rowCount(i) else [i.data()]
        return out

    assert sorted(visible_leaves()) == ["MR_small.dcm", "MR_truncated.dcm"]
    proxy.set_only_problems(False)
    assert len(visible_leaves()) == len(scanned)


def test_log_buffer_is_bounded_and_thread_safe(qtbot) -> None:
    import threading

    from ui.logpane import LogBuffer, LogPane

    buf = LogBuffer(capacity=50)
    log = logging.getLogger("ui.test")
    log.addHandler(buf)
    log.setLevel(logging.DEBUG)
    try:
        threads = [threading.Thread(target=lambda k=k: [log.info("t%d line %d", k, i) for i in range(40)]) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log.debug("a debug line")
        log.warning("a warning line")
        assert len(buf.all()) == 50
        pane = LogPane(buf)
        qtbot.addWidget(pane)
        pane.pull()
        text = pane.plain_text()
        assert "a warning line" in text and "a debug line" not in text
        pane.set_level(logging.WARNING)
        assert "a warning line" in pane.plain_text() and "t0 line" not in pane.plain_text()
        pane.set_level(logging.DEBUG)
        assert "a debug line" in pane.plain_text()
    finally:
        log.removeHandler(buf)


def test_progress_tracker_rates_and_eta() -> None:
    from ui.progress import ProgressTracker, format_duration

    now = [100.0]
    t = ProgressTracker(clock=lambda: now[0])
    t.reset(10, 10_000_000)
    for _ in range(5):
        now[0] += 1.0
        t.add(1_000_000)
    ips, bps = t.rates()
    assert ips == pytest.approx(1.0) and bps == pytest.approx(1e6)
    assert t.eta_s() == pytest.approx(5.0)
    assert "5 / 10 instances" in t.text() and "about 5 s left" in t.text()
    t.finish()
    assert "took 5 s" in t.text()
    assert format_duration(125) == "2 min 05 s"


def test_failure_report_writer_escapes_html(tmp_path: Path) -> None:
    from ui.failure_report import build_failure_report, write_failure_report

    inst = scan_paths([str(TEST_FILES / "CT_small.dcm")])[0]
    outcome = {
        "status": "failure",
        "state": "failed",
        "status_code": 0xC000,
        "error_comment": "<script>x</script>",
        "message": "0xC000 Cannot understand",
        "sop_class_uid": inst.sop_class_uid,
        "sop_instance_uid": inst.sop_instance_uid,
        "transfer_syntax": "1.2.840.10008.1.2",
        "converted_from": "1.2.840.10008.1.2.1",
        "path": inst.path,
    }
    report = build_failure_report([outcome], [inst], [], {"name": "P"}, {"total": 1, "failure": 1}, 0.0, 1.0)
    path = write_failure_report(str(tmp_path / "r.html"), report)
    text = Path(path).read_text()
    assert "<script>x" not in text and "&lt;script&gt;x&lt;/script&gt;" in text
    assert os.path.getsize(path) > 500
