"""Issues 5, 6 and 7 in the window: probe grid, plan confirmation, resume banner, throughput plot, arrival check,
and diagnostics with parallel associations. Real in-process pynetdicom peers on loopback, offscreen."""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import evt

from helpers.data import CT, MR, TEST_FILES
from helpers.gui import diag_text, drop, send_and_wait, study_folder, use_profile

pytestmark = [
    pytest.mark.gui,
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("propagateSizeHints"),
    pytest.mark.timeout(120),
]

SC, RTPLAN = "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.481.5"


def ct_files(folder: Path, n: int, studies: int = 1) -> list[Path]:
    """`n` small CT instances (Explicit VR LE) spread over `studies` studies; invented patient."""
    folder.mkdir(parents=True, exist_ok=True)
    src = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    src.PatientName = "TEST^PATIENT"
    study_uids = [generate_uid() for _ in range(studies)]
    series_uids = [generate_uid() for _ in range(studies)]
    out = []
    for i in range(n):
        src.StudyInstanceUID = study_uids[i % studies]
        src.SeriesInstanceUID = series_uids[i % studies]
        src.SOPInstanceUID = generate_uid()
        src.InstanceNumber = i + 1
        p = folder / f"ct{i:03d}.dcm"
        src.save_as(p, enforce_file_format=True)
        out.append(p)
    return out


# --------------------------------------------------------------------------- probe (issue 7)


def test_probe_shows_the_grid_saves_the_map_and_exports(qtbot, window, picky, tmp_path) -> None:
    from PySide6.QtCore import Qt

    from ui.probe_dialog import ACCEPTED, REJECTED, GridRole

    scp = picky(sop_classes=(CT, MR), syntaxes=(ImplicitVRLittleEndian,))
    use_profile(window, scp)
    drop(qtbot, window, [study_folder(tmp_path)])
    assert window.probe_button.isEnabled() and window.probe_button.text() == "Probe"
    with qtbot.waitSignal(window.probe_controller.probe_finished, timeout=60000) as b:
        window.probe_button.click()
    amap, error = b.args
    assert error is None
    assert set(amap.sop_classes) == {CT, MR, SC, RTPLAN}, "'used': the classes of the loaded files only"
    assert amap.accepted(CT) == [ImplicitVRLittleEndian]
    assert scp.stored == [], "a probe stores nothing"
    # the grid: SOP classes x transfer syntaxes, the reason in the tooltip
    dlg = window.probe_dialog
    assert dlg is not None and dlg.isVisible()
    grid = dlg.model
    assert grid.rowCount() == 4 and grid.columnCount() == len(amap.peer["syntaxes"]) >= 30
    row = {grid.classes[r]: r for r in range(grid.rowCount())}
    col = {grid.syntaxes[c]: c for c in range(grid.columnCount())}
    cell = grid.index(row[CT], col[ImplicitVRLittleEndian])
    assert cell.data(GridRole.RESULT) == ACCEPTED and cell.data() == "✓"
    cell = grid.index(row[CT], col[ExplicitVRLittleEndian])
    assert cell.data(GridRole.RESULT) == REJECTED and cell.data() == "✗"
    assert "transfer syntaxes not supported" in cell.data(3)  # ToolTipRole
    cell = grid.index(row[RTPLAN], col[ImplicitVRLittleEndian])
    assert cell.data(GridRole.RESULT) == REJECTED and "abstract syntax not supported" in cell.data(GridRole.REASON)
    vertical = Qt.Orientation.Vertical
    assert grid.headerData(row[CT], vertical) == "CT Image Storage"
    assert set(grid.classes[:2]) == {CT, MR}, "classes that accept something come first"
    assert "probed" in dlg.summary.text() and "2 of 4 SOP classes accepted" in dlg.summary.text()
    # saved with the profile, with its date, on disk
    p = window.current_profile()
    assert p.acceptance_map["sop_classes"][CT]["accepted"] == [ImplicitVRLittleEndian]
    assert p.acceptance_map["peer"]["probed_at"].startswith(time.strftime("%Y-", time.gmtime()))
    on_disk = json.loads(Path(window.store.path).read_text())
    saved = next(x for x in on_disk["profiles"] if x["name"] == p.name)
    assert saved["acceptance_map"]["sop_classes"][RTPLAN]["accepted"] == []
    assert on_disk["version"] >= 1
    from core.profiles import ProfileStore

    again = ProfileStore(window.store.path)
    again.load()
    assert again.get(p.name).acceptance_map == p.acceptance_map, "the map survives a reload"
    # export JSON and CSV
    assert dlg.export(str(tmp_path / "map.json")) == "" and dlg.export(str(tmp_path / "map.csv")) == ""
    doc = json.loads((tmp_path / "map.json").read_text())
    assert doc["sop_classes"][CT]["accepted"] == [ImplicitVRLittleEndian]
    assert doc["sop_classes"][CT]["rejected"][ExplicitVRLittleEndian] == "transfer syntaxes not supported"
    rows = list(csv.DictReader((tmp_path / "map.csv").open()))
    assert {"sop_class_uid": CT, "transfer_syntax_uid": ImplicitVRLittleEndian, "result": "accepted"}.items() <= next(
        r for r in rows if r["sop_class_uid"] == CT and r["result"] == "accepted"
    ).items()
    assert any(r["sop_class_uid"] == RTPLAN and r["reason"] == "abstract syntax not supported" for r in rows)
    # the saved map can be shown again later
    dlg.close()
    assert window.act_show_map.isEnabled()
    assert window.show_saved_map().model.rowCount() == 4


def test_probe_of_an_unreachable_peer_says_why(qtbot, window, picky) -> None:
    scp = picky()
    use_profile(window, scp, remote_ae_title="NOT_PICKY")
    with qtbot.waitSignal(window.probe_controller.probe_finished, timeout=30000) as b:
        window.act_probe.trigger()
    amap, error = b.args
    assert amap is None and "NOT_PICKY" in error
    assert window.echo_label.text().startswith("✗ Probe failed")
    assert window.probe_dialog is None


# --------------------------------------------------------------------------- plan before send (issue 7)


def test_send_asks_first_when_the_plan_blocks_something(qtbot, window, picky, tmp_path) -> None:
    from ui import states as st
    from ui.models import Col

    scp = picky(sop_classes=(CT, MR))  # SC (the JPEG 2000 file) and RT Plan are refused
    use_profile(window, scp)
    drop(qtbot, window, [study_folder(tmp_path)])
    with qtbot.waitSignal(window.confirmation_requested, timeout=30000) as b:
        window.send_button.click()
    box = b.args[0]
    assert (box is window.confirm_box and box.isVisible() and not box.isModal()) or box.windowModality()
    assert "2 as stored" in box.text() or "as stored" in box.text()
    assert "2 blocked" in box.text()
    assert "SOP class not accepted" in box.informativeText()
    assert not window.act_send.isEnabled(), "no second send while the question is open"
    # the plan column is filled before anything is sent
    assert not window.view.isColumnHidden(Col.PLAN)
    plans = {Path(n.inst.path).name: n.plan for n in window.model.leaves() if n.plan}
    assert plans["rtplan.dcm"].startswith("blocked") and "Implicit VR LE" in plans["CT_small.dcm"]
    # Cancel: nothing is sent
    window.confirm_cancel_button.click()
    qtbot.waitUntil(lambda: window.confirm_box is None, timeout=5000)
    assert scp.stored == [] and window.model.counts().get(st.STORED, 0) == 0
    assert "nothing was sent" in window.progress_label.text()
    assert window.act_send.isEnabled()
    # Send anyway: the blocked ones end failed (never sent: no context), the rest stored
    asked: list[Any] = []
    window.confirmation_requested.connect(asked.append)
    job = send_and_wait(qtbot, window)
    assert len(asked) == 1
    states = {Path(n.inst.path).name: n.state for n in window.model.leaves() if n.kind == "instance"}
    assert states["CT_small.dcm"] == st.STORED and states["MR_small.dcm"] == st.STORED
    assert states["rtplan.dcm"] == st.FAILED and states["JPEG2000.dcm"] == st.FAILED
    assert job.summary["success"] == 2
    assert "Plan before sending:" in window.banner.label.text() and "2 blocked" in window.banner.label.text()
    assert "plan: " in diag_text(window.diag_model)


def test_send_without_problems_does_not_ask_and_uses_the_saved_map(qtbot, window, picky, tmp_path) -> None:
    from ui import states as st

    scp = picky(sop_classes=(CT,), syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian))
    requests: list[str] = []
    scp.server.bind(evt.EVT_REQUESTED, lambda e: requests.append(e.assoc.requestor.ae_title))
    use_profile(window, scp)
    ct_files(tmp_path / "cts", 3)
    drop(qtbot, window, [tmp_path / "cts"])
    with qtbot.waitSignal(window.probe_controller.probe_finished, timeout=60000):
        window.act_probe.trigger()
    window.probe_dialog.close()
    probes = len(requests)
    asked: list[Any] = []
    window.confirmation_requested.connect(asked.append)
    send_and_wait(qtbot, window)
    assert asked == [] and window.model.counts() == {st.STORED: 3}
    assert len(requests) == probes + 1, "the plan came from the saved map: one association, the send's"
    assert all(n.plan == "as stored" for n in window.model.leaves())


# --------------------------------------------------------------------------- journal and resume (issue 5)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def interrupted_job(journal_path: Path, files: list[Path], port: int, stored: int) -> str:
    """Record a job as a crashed sender leaves it: `stored` instances stored, the next in flight, the rest pending."""
    from core import events as ev
    from core.config import StoreConfig
    from core.engine import Item
    from core.journal import Journal
    from core.outcomes import InstanceOutcome, InstanceState, Status
    from core.scan import read_instance

    cfg = StoreConfig.from_dict(
        {
            "remote_host": "127.0.0.1",
            "remote_port": port,
            "remote_ae_title": "PICKY",
            "local_ae_title": "COURIER_TEST",
            "acse_timeout": 5,
            "dimse_timeout": 5,
            "network_timeout": 5,
            "connect_timeout": 5,
        }
    )
    items = [Item(i, str(p), read_instance(str(p))) for i, p in enumerate(files)]
    with Journal(journal_path) as j:
        j.create_job(
            "crashedjob01",
            "Picky",
            cfg.peer,
            {"config": cfg.to_dict(), "strategy": "conservative", "max_retries": 2, "continue_on_error": True},
            items,
        )
        rec = j.recorder("crashedjob01")
        rec(ev.JobStarted("crashedjob01", len(items), sum(it.inst.size for it in items)))
        for it in items[:stored]:
            rec(ev.InstanceStarted(it.index, ImplicitVRLittleEndian))
            rec(
                ev.InstanceFinished(
                    it.index,
                    InstanceOutcome(
                        it.index,
                        None,
                        Status.SUCCESS,
                        InstanceState.STORED,
                        "stored",
                        status_code=0,
                        sop_instance_uid=it.inst.sop_instance_uid,
                        transfer_syntax=ImplicitVRLittleEndian,
                    ),
                )
            )
        rec(ev.InstanceStarted(items[stored].index, ImplicitVRLittleEndian))  # in flight when the power went
        j._db.execute("UPDATE jobs SET pid = ? WHERE id = ?", (dead_pid(), "crashedjob01"))
    return "crashedjob01"


def test_resume_banner_offers_the_interrupted_job_and_sends_the_rest(qtbot, tmp_path, picky, monkeypatch) -> None:
    from core.journal import Journal
    from ui import states as st
    from ui.app import build_window
    from ui.logpane import LogBuffer

    monkeypatch.setenv("DICOM_COURIER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DICOM_COURIER_DATA_DIR", str(tmp_path / "data"))
    scp = picky(syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian))
    files = ct_files(tmp_path / "cts", 6)
    (tmp_path / "data").mkdir()
    journal_path = tmp_path / "data" / "journal.sqlite"
    job_id = interrupted_job(journal_path, files, scp.port, stored=2)
    w = build_window(LogBuffer(), str(tmp_path / "config"), str(tmp_path / "data"))
    qtbot.addWidget(w)
    assert w.journal_path == str(journal_path)
    with qtbot.waitSignal(w.resume_controller.interrupted_jobs_found, timeout=10000) as b:
        w.show()
    [job] = b.args[0]
    assert job.id == job_id and job.resumable == 4
    assert w.resume_banner.isVisible()
    assert "interrupted" in w.resume_banner.label.text() and "<b>2</b> of 6 stored" in w.resume_banner.label.text()
    assert "1 in doubt" in w.resume_banner.label.text()
    assert w.model.rowCount() == 0, "the banner does not load anything by itself"
    try:
        with qtbot.waitSignal(w.send_controller.send_finished, timeout=60000) as b:
            w.resume_banner.resume_button.click()
        record = b.args[0]
        assert record.resumed and record.job_id == job_id
        assert not w.resume_banner.isVisible()
        # only the four not confirmed were sent, with live states in the tree
        sent = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files[2:]}
        assert set(scp.stored) == sent and len(scp.stored) == 4
        by_name = {Path(n.inst.path).name: n.state for n in w.model.leaves()}
        assert by_name == {f.name: st.STORED for f in files[2:]}
        assert "Resumed job" in w.banner.label.text()
        with Journal(journal_path) as j:
            after = j.job(job_id)
            assert after.state == "finished" and after.counts.get("stored") == 6 and after.resumable == 0
        qtbot.waitUntil(lambda: not w.resume_controller.interrupted, timeout=5000)
    finally:
        w.shutdown()


def test_dismiss_hides_the_banner_and_gui_sends_are_journalled(qtbot, window, picky, tmp_path) -> None:
    from core.journal import Journal

    scp = picky(syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian))
    use_profile(window, scp)
    ct_files(tmp_path / "cts", 3)
    drop(qtbot, window, [tmp_path / "cts"])
    record = send_and_wait(qtbot, window)
    with Journal(window.journal_path) as j:
        job = j.job(record.job_id)
        assert job is not None and job.state == "finished" and job.counts.get("stored") == 3
        assert job.profile == "Picky" and job.options["config"]["remote_port"] == scp.port
        rows = j.instances(record.job_id)
    assert [r["state"] for r in rows] == ["stored"] * 3
    # a job of ours shown as interrupted can be dismissed
    with Journal(window.journal_path) as j:
        j._db.execute("UPDATE jobs SET state = 'running', pid = ? WHERE id = ?", (dead_pid(), record.job_id))
        j._db.execute("UPDATE instances SET state = 'unknown' WHERE job = ? AND idx = 2", (record.job_id,))
    with qtbot.waitSignal(window.resume_controller.interrupted_jobs_found, timeout=10000) as b:
        window.resume_controller.check_interrupted_jobs()
    assert [j.id for j in b.args[0]] == [record.job_id] and window.resume_banner.isVisible()
    window.resume_banner.dismiss_button.click()
    assert not window.resume_banner.isVisible()
    with qtbot.waitSignal(window.resume_controller.interrupted_jobs_found, timeout=10000) as b:
        window.resume_controller.check_interrupted_jobs()
    assert b.args[0] == [] and not window.resume_banner.isVisible()


# --------------------------------------------------------------------------- throughput plot (issue 6)


def test_the_plot_receives_points_while_sending(qtbot, window, picky, tmp_path) -> None:
    scp = picky(syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian), delay_s=0.08)
    use_profile(window, scp)
    ct_files(tmp_path / "cts", 14)
    drop(qtbot, window, [tmp_path / "cts"])
    assert len(window.plot.points) == 0
    send_and_wait(qtbot, window)
    pts = list(window.plot.points)
    assert len(pts) >= 3, pts
    assert all(b[0] >= a[0] for a, b in itertools.pairwise(pts)), "time goes forward"
    assert max(p[1] for p in pts) > 1.0 and max(p[2] for p in pts) > 0.0  # inst/s and MB/s
    image = window.plot.grab().toImage()
    blue = sum(
        1 for x in range(0, image.width(), 2) for y in range(image.height()) if image.pixelColor(x, y).name() in ("#2563eb",)
    )
    assert blue > 5, "the instances/s line is drawn"


def test_plot_widget_alone(qtbot) -> None:
    from ui.throughput import ThroughputPlot

    plot = ThroughputPlot()
    qtbot.addWidget(plot)
    plot.resize(360, 60)
    plot.grab()  # empty: draws the hint
    for t in range(10):
        plot.add_point(t * 0.25, 100 + t, 2e6)
    assert len(plot.points) == 10 and plot.points[-1] == (2.25, 109.0, 2.0)
    assert not plot.grab().isNull()
    plot.clear()
    assert len(plot.points) == 0


# --------------------------------------------------------------------------- arrival check (issue 7)


def test_arrival_check_fills_the_verified_column(qtbot, window, scp_factory, tmp_path) -> None:
    from ui.models import Col

    files = ct_files(tmp_path / "cts", 3)
    lost = {str(pydicom.dcmread(files[1], stop_before_pixels=True).SOPInstanceUID)}
    # stores CT and does storage commitment on the N-ACTION's association; never commits the `lost` instances
    scp = scp_factory(
        ae_title="PICKY", accept={CT: [ImplicitVRLittleEndian, ExplicitVRLittleEndian]}, commit=lambda uid: uid not in lost
    )
    p = use_profile(window, scp, verify_arrival=True)
    assert p.verify_arrival
    drop(qtbot, window, [tmp_path / "cts"])
    assert window.view.isColumnHidden(Col.VERIFIED)
    job = send_and_wait(qtbot, window)
    scp.stop()
    assert len(scp.stored) == 3
    # the commitment failed for one; the C-FIND fallback is not offered by this peer, so it stays unconfirmed
    assert job.arrival["counts"] == {"committed": 2, "not checked": 1}
    assert not window.view.isColumnHidden(Col.VERIFIED)
    m = window.model
    verified = {}
    for n in m.leaves():
        i = m.index_of(n)
        verified[Path(n.inst.path).name] = m.index(i.row(), Col.VERIFIED, i.parent()).data()
    assert verified == {files[0].name: "committed", files[1].name: "not checked", files[2].name: "committed"}
    assert "Arrival check" in window.banner.label.text() and "could not confirm" in window.banner.label.text()


# --------------------------------------------------------------------------- diagnostics, parallel associations


def test_ended_lines_go_under_their_own_association(qtbot) -> None:
    from core import events as ev
    from ui.diagnostics import DiagnosticsModel

    m = DiagnosticsModel()
    m.begin_job("Send", "test")
    rec = {"strategy": "standard", "accepted": [], "rejected": [], "proposed": []}
    m.association_negotiated({**rec, "index": 0})
    m.association_negotiated({**rec, "index": 1})
    m.association_released(ev.AssociationReleased("released", 5, 1))
    m.association_released(ev.AssociationReleased("aborted", 3, 0))
    text = diag_text(m)
    first, second = text.split("Association 2")
    assert "Ended | aborted after 3 stored" in first and "after 5" not in first
    assert "Ended | released after 5 stored" in second and "after 3" not in second


def test_diagnostics_with_two_parallel_associations(qtbot, window, picky, tmp_path) -> None:
    scp = picky(syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian), delay_s=0.02)
    use_profile(window, scp, parallel_associations=2)
    ct_files(tmp_path / "cts", 10, studies=2)
    drop(qtbot, window, [tmp_path / "cts"])
    job = send_and_wait(qtbot, window)
    assert job.summary["success"] == 10
    dm = window.diag_model
    top = dm.index(dm.rowCount() - 1, 0)
    assocs = [dm.index(r, 0, top) for r in range(dm.rowCount(top)) if str(dm.index(r, 0, top).data()).startswith("Association")]
    assert len(assocs) == 2
    stored_by_assoc = []
    for a in assocs:
        ended = [dm.index(r, 1, a).data() for r in range(dm.rowCount(a)) if dm.index(r, 0, a).data() == "Ended"]
        assert len(ended) == 1, diag_text(dm)
        stored_by_assoc.append(int(ended[0].split(" after ")[1].split()[0]))
    # each association carried one whole study of 5
    assert stored_by_assoc == [5, 5]


def test_cancel_while_planning_sends_nothing(qtbot, window, picky, tmp_path) -> None:
    scp = picky(syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian))
    use_profile(window, scp)
    ct_files(tmp_path / "cts", 3)
    drop(qtbot, window, [tmp_path / "cts"])
    window.send_button.click()
    assert window.act_cancel.isEnabled() and not window.act_send.isEnabled()
    window.act_cancel.trigger()
    assert window.act_send.isEnabled() and "nothing was sent" in window.progress_label.text()
    qtbot.wait(1500)  # the plan's late answer is ignored
    assert window.send_controller.worker is None and scp.stored == []
    # a new send after that goes through normally
    send_and_wait(qtbot, window)
    assert len(scp.stored) == 3


def test_acceptance_grid_model_passes_the_model_tester(qtmodeltester) -> None:
    from core.probe import AcceptanceMap
    from ui.probe_dialog import AcceptanceGridModel

    amap = AcceptanceMap(
        peer={"syntaxes": [ImplicitVRLittleEndian, ExplicitVRLittleEndian]},
        sop_classes={
            CT: {"accepted": [ImplicitVRLittleEndian], "rejected": {ExplicitVRLittleEndian: "transfer syntaxes not supported"}},
            RTPLAN: {
                "accepted": [],
                "rejected": {
                    ImplicitVRLittleEndian: "abstract syntax not supported",
                    ExplicitVRLittleEndian: "abstract syntax not supported",
                },
            },
        },
    )
    model = AcceptanceGridModel(amap)
    qtmodeltester.check(model)
    assert (model.rowCount(), model.columnCount()) == (2, 2) and model.classes[0] == CT


def test_a_dismissed_job_stays_dismissed_after_a_restart(qtbot, tmp_path, picky, monkeypatch) -> None:
    from ui.app import build_window
    from ui.logpane import LogBuffer

    monkeypatch.setenv("DICOM_COURIER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DICOM_COURIER_DATA_DIR", str(tmp_path / "data"))
    scp = picky()
    (tmp_path / "data").mkdir()
    interrupted_job(tmp_path / "data" / "journal.sqlite", ct_files(tmp_path / "cts", 3), scp.port, stored=1)
    for round_ in (1, 2):
        w = build_window(LogBuffer(), str(tmp_path / "config"), str(tmp_path / "data"), remember_layout=True)
        qtbot.addWidget(w)
        with qtbot.waitSignal(w.resume_controller.interrupted_jobs_found, timeout=10000) as b:
            w.show()
        if round_ == 1:
            assert len(b.args[0]) == 1 and w.resume_banner.isVisible()
            w.resume_banner.dismiss_button.click()
        else:
            assert b.args[0] == [] and not w.resume_banner.isVisible()
        w.close()
