"""The main window, offscreen: drop files, edit profiles, test connections, send, cancel, retry, export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from helpers.data import CT, MR, TEST_FILES
from helpers.gui import diag_text, drop, send_and_wait, states_by_file, study_folder, use_profile

pytestmark = [
    pytest.mark.gui,
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("propagateSizeHints"),
    pytest.mark.timeout(120),
]


def test_drop_a_folder_fills_the_tree(qtbot, window, tmp_path) -> None:
    from ui.models import Col

    folder = study_folder(tmp_path)
    drop(qtbot, window, [folder])
    s = window.model.stats()
    assert (s["files"], s["instances"], s["bad"]) == (6, 4, 2)
    assert window.send_button.text() == "Send all (4)"
    # dropping the same folder again adds nothing
    drop(qtbot, window, [folder])
    assert window.model.stats()["files"] == 6
    # the non-DICOM group lists each file with its reason
    group = window.model.index(window.model.rowCount() - 1, 0)
    reasons = {
        window.model.index(r, 0, group).data(): window.model.index(r, Col.DETAILS, group).data()
        for r in range(window.model.rowCount(group))
    }
    assert "not a DICOM file" in reasons["README.txt"] and "truncated" in reasons["broken.dcm"]
    # selecting a series chooses what is sent
    ct = next(n for n in window.model.leaves() if n.inst.path.endswith("CT_small.dcm"))
    series = window.view.to_view(window.model.index_of(ct).parent())
    window.view.selectionModel().select(
        series, window.view.selectionModel().SelectionFlag.ClearAndSelect | window.view.selectionModel().SelectionFlag.Rows
    )
    assert window.send_button.text() == "Send selected (1)"
    window.remove_selected()
    assert window.model.stats()["instances"] == 3
    window.clear_all()
    assert window.model.stats()["files"] == 0


def test_profile_editor_validates_as_you_type(qtbot, window) -> None:
    from PySide6.QtWidgets import QDialogButtonBox

    from core.profiles import Profile
    from ui.profiles_ui import ProfilesDialog

    dlg = ProfilesDialog(window.profiles, window.pool, window)
    qtbot.addWidget(dlg)
    ed = dlg.editor_for(Profile(name="New", remote_host="pacs", remote_port=104, remote_ae_title="PACS"), -1)
    qtbot.addWidget(ed)
    save = ed.buttons.button(QDialogButtonBox.StandardButton.Save)
    assert save.isEnabled() and ed.reasons() == {}
    ed.set_field_text("remote_port", "70000")
    assert "outside 1-65535" in ed.reasons()["remote_port"] and not save.isEnabled()
    ed.set_field_text("remote_port", "11112")
    ed.set_field_text("remote_ae_title", "A_TITLE_WAY_TOO_LONG")
    assert "at most 16" in ed.reasons()["remote_ae_title"]
    ed.set_field_text("remote_ae_title", "PACS\\1")
    assert "backslash" in ed.reasons()["remote_ae_title"]
    ed.set_field_text("remote_ae_title", "MAINPACS")
    ed.set_field_text("local_ae_title", "")
    assert "empty" in ed.reasons()["local_ae_title"]
    ed.set_field_text("local_ae_title", "AXIOM_SCU")
    ed.set_field_text("name", "Local test PACS")
    assert "already has this name" in ed.reasons()["name"]
    ed.set_field_text("name", "Main")
    ed.set_field_text("max_pdu_bytes", "12")
    assert "4096" in ed.reasons()["max_pdu_bytes"]
    ed.set_field_text("max_pdu_bytes", "65536")
    ed.set_field_text("dimse_timeout_s", "2.5")
    assert ed.reasons() == {} and save.isEnabled()
    p = ed.profile()
    assert (p.name, p.remote_port, p.remote_ae_title, p.max_pdu_bytes, p.dimse_timeout_s) == (
        "Main",
        11112,
        "MAINPACS",
        65536,
        2.5,
    )
    window.profiles.insert(window.profiles.rowCount(), p)
    on_disk = json.loads(Path(window.store.path).read_text())
    assert "Main" in [x["name"] for x in on_disk["profiles"]]
    dlg.list.setCurrentIndex(window.profiles.index(window.profiles.row_of("Main")))
    dlg.duplicate_selected()
    assert "Main copy" in window.store.names()


def test_test_connection_success_and_rejection(qtbot, window, picky) -> None:
    scp = picky()
    use_profile(window, scp)
    with qtbot.waitSignal(window.echo_controller.echo_finished, timeout=20000) as b:
        window.test_button.click()
    result, error = b.args
    assert error is None and result["status_code"] == 0
    assert window.echo_label.text().startswith("✓ C-ECHO") and "accepted Implicit VR LE" in window.echo_label.text()
    assert "Verification" in window.echo_label.toolTip()
    use_profile(window, scp, name="Wrong AE", remote_ae_title="NOT_PICKY")
    with qtbot.waitSignal(window.echo_controller.echo_finished, timeout=20000) as b:
        window.test_button.click()
    result, error = b.args
    assert result is None and "rejected" in error.lower() and "NOT_PICKY" in error
    assert window.echo_label.text().startswith("✗")
    text = diag_text(window.diag_model)
    assert "Test connection" in text and "failed" in text


def test_editor_test_connection(qtbot, window, picky) -> None:
    from core.profiles import Profile
    from ui.profiles_ui import ProfileEditor

    scp = picky()
    ed = ProfileEditor(Profile(name="E", remote_host="127.0.0.1", remote_port=scp.port, remote_ae_title="PICKY"), window.pool)
    qtbot.addWidget(ed)
    with qtbot.waitSignal(ed.echo_controller.echo_finished, timeout=20000) as b:
        ed.test_button.click()
    assert b.args[1] is None and "round trip" in ed.test_result.text()


def test_send_to_a_picky_pacs_shows_states_and_diagnostics(qtbot, window, picky, tmp_path) -> None:
    from ui import states as st
    from ui.models import Col

    mr_uid = str(pydicom.dcmread(TEST_FILES / "MR_small.dcm", stop_before_pixels=True).SOPInstanceUID)
    scp = picky(
        sop_classes=(CT, MR, "1.2.840.10008.5.1.4.1.1.7"),
        status_for=lambda ds: (0xC000, "MR <rejected> by policy") if ds.SOPInstanceUID == mr_uid else 0,
    )
    use_profile(window, scp, local_ae_title="COURIER_TEST")
    drop(qtbot, window, [study_folder(tmp_path)])
    job = send_and_wait(qtbot, window)
    states = states_by_file(window)
    assert states["CT_small.dcm"] == st.STORED
    assert states["JPEG2000.dcm"] == st.STORED
    assert states["MR_small.dcm"] == st.FAILED
    assert states["rtplan.dcm"] == st.FAILED  # refused class: failed with the reason; not-sent is for a stopped send
    assert states["README.txt"] == st.NOT_DICOM and states["broken.dcm"] == st.UNREADABLE
    # what the peer saw: our calling AE title, Implicit VR LE only
    assert set(scp.calling) == {"COURIER_TEST"} and set(scp.syntaxes) == {ImplicitVRLittleEndian}
    assert len(scp.stored) == 2
    # per-instance columns: status, conversion, reason
    m = window.model

    def cell(name: str, col: int) -> str:
        n = next(x for x in m.leaves() if x.inst.path.endswith(name))
        i = m.index_of(n)
        return m.index(i.row(), col, i.parent()).data()

    assert cell("CT_small.dcm", Col.SENT_AS) == "Explicit VR LE → Implicit VR LE"
    assert cell("JPEG2000.dcm", Col.SENT_AS).startswith("JPEG 2000 → Implicit VR LE")
    assert cell("MR_small.dcm", Col.STATUS).startswith("0xC000")
    assert "MR <rejected> by policy" in cell("MR_small.dcm", Col.DETAILS)
    assert "RT Plan Storage" in cell("rtplan.dcm", Col.DETAILS)
    # Ctrl+C copies the selected rows' states and reasons
    window.view.selectAll()
    copied = window.copy_selected()
    assert "MR_small.dcm\tfailed\t0xC000" in copied and copied.count("\n") == 7
    window.view.clearSelection()
    # double-click (or Details…) shows everything about one file
    mr = next(x for x in m.leaves() if x.inst.path.endswith("MR_small.dcm"))
    box = window.show_details(m.index_of(mr))
    assert box is not None and "PACS comment: MR <rejected> by policy" in box.informativeText()
    assert "0xC000" in box.informativeText() and "failed" in box.text()
    box.close()
    # the summary banner, retry button and the diagnostics
    assert window.banner.isVisible()
    banner = window.banner.label.text()
    # a refused SOP class is a failure, not "not sent" (reserved for a send the user stopped)
    assert "<b>2</b> stored" in banner and "2</b> failed" in banner and "not sent" not in banner
    assert (
        "<b>Failed:</b> The PACS refused it: 0xC000 Cannot Understand (1); The PACS does not accept RT Plan Storage (1)."
        in banner
    )
    # issue 14: the button counts failures as failures (and unsent instances apart, when there are any)
    assert window.act_retry.isEnabled() and window.retry_button.text() == "Retry failed (2)"
    text = diag_text(window.diag_model)
    assert "Association 1 | established - strategy compression" in text
    assert "Rejected" in text and "RT Plan Storage | abstract syntax not supported" in text
    assert ("Peer max PDU" in text and "Ended | released after 1 stored" in text) or "Ended | released" in text
    assert job.summary["success"] == 2
    # progress (issue 14): every instance reached an outcome (the refused RT Plan a failure, not "not sent"); rates shown
    assert (window.progress.value(), window.progress.maximum()) == (4, 4)
    assert "4 / 4 instances ·" in window.progress_label.text() and "not sent" not in window.progress_label.text()
    assert "MB/s" in window.progress_label.text()
    # failed only
    window.act_failed_only.setChecked(True)
    assert window.failed_only_box.isChecked()

    def visible(parent=None) -> list[str]:
        from PySide6.QtCore import QModelIndex

        parent = parent or QModelIndex()
        out: list[str] = []
        for r in range(window.proxy.rowCount(parent)):
            i = window.proxy.index(r, 0, parent)
            out += visible(i) if window.proxy.rowCount(i) else [i.data()]
        return out

    assert sorted(visible()) == ["MR_small.dcm", "broken.dcm", "rtplan.dcm"]
    # the log pane got the engine's messages
    window.log_pane.pull()
    assert "Association accepted by PICKY@127.0.0.1" in window.log_pane.plain_text()


def make_series(folder: Path, n: int) -> list[Path]:
    folder.mkdir()
    src = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    out = []
    for i in range(n):
        src.SOPInstanceUID = generate_uid()
        src.InstanceNumber = i + 1
        p = folder / f"ct{i:03d}.dcm"
        src.save_as(p, enforce_file_format=True)
        out.append(p)
    return out


def test_cancel_mid_send_marks_the_rest_not_sent(qtbot, window, picky, tmp_path) -> None:
    from ui import states as st

    scp = picky(delay_s=0.3, syntaxes=("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"))
    use_profile(window, scp, strategy="conservative")
    drop(qtbot, window, [tmp_path / "cts"] if make_series(tmp_path / "cts", 12) else [])
    with qtbot.waitSignal(window.send_controller.send_finished, timeout=60000) as b:
        window.send_button.click()
        assert window.act_cancel.isEnabled() and not window.act_send.isEnabled()
        qtbot.waitUntil(lambda: window.model.counts().get(st.STORED, 0) >= 1, timeout=20000)
        window.act_cancel.trigger()
    job = b.args[0]
    counts = window.model.counts()
    assert job.cancelled
    assert 1 <= counts.get(st.STORED, 0) < 12
    assert counts.get(st.NOT_SENT, 0) == 12 - counts[st.STORED]
    assert all("cancelled" in o["message"] for o in job.outcomes.values() if o["state"] == "not-sent")
    assert len(scp.stored) == counts[st.STORED]
    assert "Ended | released" in diag_text(window.diag_model)
    assert "Cancelled" in window.banner.label.text()
    assert window.act_send.isEnabled() and not window.act_cancel.isEnabled()


def test_retry_failed_sends_only_the_failed(qtbot, window, picky, tmp_path) -> None:
    from ui import states as st

    files = make_series(tmp_path / "cts", 5)
    refuse = {
        str(pydicom.dcmread(files[1], stop_before_pixels=True).SOPInstanceUID),
        str(pydicom.dcmread(files[3], stop_before_pixels=True).SOPInstanceUID),
    }
    policy = {"fail": True}
    scp = picky(status_for=lambda ds: 0xC001 if policy["fail"] and str(ds.SOPInstanceUID) in refuse else 0)
    use_profile(window, scp)
    drop(qtbot, window, [tmp_path / "cts"])
    send_and_wait(qtbot, window)
    assert window.model.counts() == {st.STORED: 3, st.FAILED: 2}
    policy["fail"] = False
    job = send_and_wait(qtbot, window, window.retry_button.click)
    assert len(job.nodes) == 2
    assert window.model.counts() == {st.STORED: 5}
    assert len(scp.stored) == 5 and set(scp.stored[-2:]) == refuse
    assert not window.act_retry.isEnabled()


def test_export_failure_report_in_three_formats(qtbot, window, picky, tmp_path) -> None:
    mr_uid = str(pydicom.dcmread(TEST_FILES / "MR_small.dcm", stop_before_pixels=True).SOPInstanceUID)
    scp = picky(status_for=lambda ds: (0xA900, "<b>dataset & class</b>") if ds.SOPInstanceUID == mr_uid else 0xB000)
    use_profile(window, scp)
    drop(qtbot, window, [study_folder(tmp_path)])
    send_and_wait(qtbot, window)
    assert window.act_export.isEnabled()
    out = {}
    for ext in ("json", "csv", "html"):
        path = tmp_path / f"report.{ext}"
        with qtbot.waitSignal(window.report_controller.report_written, timeout=20000) as b:
            assert window.export_failure_report(str(path))
        assert b.args == [str(path), ""]
        out[ext] = path.read_text(encoding="utf-8")
    rep = json.loads(out["json"])
    by_file = {Path(e["file"]).name: e for e in rep["instances"]}
    # warned (0xB000), failed (0xA900), failed (RT Plan, a refused class; no longer "not sent") and (issue 14) the unreadable
    # and non-DICOM files are all listed
    assert set(by_file) == {"CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtplan.dcm", "broken.dcm", "README.txt"}
    mr = by_file["MR_small.dcm"]
    assert mr["status_code"] == "0xA900" and mr["error_comment"] == "<b>dataset & class</b>"
    assert mr["hint"] and mr["study_instance_uid"] and mr["series_instance_uid"] and mr["sop_instance_uid"] == mr_uid
    assert mr["patient_id"] and mr["transfer_syntax_tried"] == "Implicit VR LE"
    assert mr["fallback_steps"] and mr["fallback_steps"][0].startswith("#1 compression: accepted Implicit VR LE")
    assert by_file["CT_small.dcm"]["status"] == "warning" and by_file["CT_small.dcm"]["status_code"] == "0xB000"
    assert by_file["rtplan.dcm"]["state"] == "failed" and "RT Plan" in by_file["rtplan.dcm"]["message"]
    assert "abstract syntax not supported" in " ".join(by_file["rtplan.dcm"]["fallback_steps"])
    assert rep["profile"]["name"] == "Picky" and rep["profile"]["remote_port"] == scp.port
    assert rep["negotiation"][0]["peer_max_pdu"] is not None and rep["job"]["started"]
    assert not {"password", "passphrase", "private_key"} & set(rep["profile"])
    rows = list(csv.DictReader(out["csv"].splitlines()))
    assert {Path(r["file"]).name for r in rows} == set(by_file)
    assert next(r for r in rows if r["file"].endswith("MR_small.dcm"))["status_code"] == "0xA900"
    html = out["html"]
    assert html.startswith("<!DOCTYPE html>") and "&lt;b&gt;dataset &amp; class&lt;/b&gt;" in html
    assert "<b>dataset" not in html and "0xA900" in html and "MR_small.dcm" in html
    assert "Report written" in window.banner.label.text()
    # patient data can be left out
    path = tmp_path / "anon.json"
    with qtbot.waitSignal(window.report_controller.report_written, timeout=20000):
        window.export_failure_report(str(path), omit_patient=True)
    anon = json.loads(path.read_text())
    assert all(e["patient_id"] == "" and e["patient_name"] == "" for e in anon["instances"])
    assert anon["job"]["patient_data_omitted"] is True


def test_local_test_pacs_from_the_menu(qtbot, window, tmp_path) -> None:
    from ui import states as st

    window.act_scp_keep.setChecked(True)
    with qtbot.waitSignal(window.local_pacs_controller.running_changed, timeout=20000) as b:
        window.local_pacs_controller.start(accept="implicit", port=0)
    assert b.args == [True] and window.local_pacs_controller.scp is not None and window.act_scp.isChecked()
    prof = window.store.local_test()
    # issue 14: the port this window's SCP got is its own; the saved profile keeps its port
    assert window.local_pacs_controller.resolve(prof).remote_port == window.local_pacs_controller.scp.port
    assert prof.remote_port == 11112
    assert "Implicit VR Little Endian only" in window.scp_label.text()
    window._select_profile(prof.name)
    drop(qtbot, window, [TEST_FILES / "CT_small.dcm", TEST_FILES / "MR_small_RLE.dcm"])
    send_and_wait(qtbot, window)
    assert window.model.counts() == {st.STORED: 2}
    assert all((n.outcome or {}).get("converted_from") for n in window.model.leaves())
    assert len(window.local_pacs_controller.scp.received) == 2
    assert len(list((tmp_path / "data" / "local-test-pacs").glob("*.dcm"))) == 2
    with qtbot.waitSignal(window.local_pacs_controller.running_changed, timeout=20000) as b:
        window.act_scp.setChecked(False)
    assert b.args == [False] and window.local_pacs_controller.scp is None


def test_window_layout_is_remembered(qtbot, tmp_path) -> None:
    from ui.app import build_window
    from ui.logpane import LogBuffer
    from ui.models import Col

    cfg = str(tmp_path / "layout")
    w = build_window(LogBuffer(), cfg, str(tmp_path / "data"), remember_layout=True)
    qtbot.addWidget(w)
    w.view.setColumnWidth(Col.SOP_CLASS, 333)
    w.view.setColumnHidden(Col.SIZE, True)
    w.act_show_log.setChecked(False)
    w.local_pacs_controller.set_accept("uncompressed", restart=False)
    w.close()
    assert (tmp_path / "layout" / "window.ini").exists()
    w2 = build_window(LogBuffer(), cfg, str(tmp_path / "data"), remember_layout=True)
    qtbot.addWidget(w2)
    assert w2.view.columnWidth(Col.SOP_CLASS) == 333 and w2.view.isColumnHidden(Col.SIZE)
    assert not w2.act_show_log.isChecked() and w2.local_pacs_controller.accept == "uncompressed"
    w2.close()


def test_plan_fills_the_plan_column_without_sending(qtbot, window, picky, tmp_path) -> None:
    from ui.models import Col

    scp = picky(sop_classes=(CT, MR, "1.2.840.10008.5.1.4.1.1.7"))
    use_profile(window, scp)
    drop(qtbot, window, [study_folder(tmp_path)])
    assert window.view.isColumnHidden(Col.PLAN)
    with qtbot.waitSignal(window.plan_controller.plan_finished, timeout=30000) as b:
        window.act_plan.trigger()
    plans, error = b.args
    assert error is None and len(plans) == 4
    assert not window.view.isColumnHidden(Col.PLAN)
    by_file = {Path(n.inst.path).name: n.plan for n in window.model.leaves() if n.plan}
    assert "Explicit VR LE → Implicit VR LE" in by_file["CT_small.dcm"]
    assert by_file["rtplan.dcm"].startswith("blocked")
    assert "Plan" in window.banner.label.text() and "1 blocked" in window.banner.label.text()
    assert scp.stored == [], "planning stores nothing"


def test_test_connection_over_tls(qtbot, window, scp_factory, tmp_path) -> None:
    """A TLS profile (certificates as files) reaches a TLS peer; a wrong CA gives the analysed error."""
    import ssl

    pytest.importorskip("cryptography")
    from helpers.tls_pki import make_test_pki

    pki = make_test_pki(tmp_path / "pki")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(str(pki.server), str(pki.server_key))
    scp = scp_factory(ae_title="TLSPACS", accept={}, verification_syntaxes=[ImplicitVRLittleEndian], ssl_context=ctx)
    port = scp.port
    from core.profiles import Profile

    good = Profile(
        name="TLS",
        remote_host="127.0.0.1",
        remote_port=port,
        remote_ae_title="TLSPACS",
        tls_enabled=True,
        tls_ca_cert_file=str(pki.ca),
        tls_client_cert_file=str(pki.client),
        tls_client_key_file=str(pki.client_key),
        connect_timeout_s=5,
        acse_timeout_s=5,
    )
    window.profiles.insert(window.profiles.rowCount(), good)
    window.profile_box.setCurrentIndex(window.profiles.rowCount() - 1)
    with qtbot.waitSignal(window.echo_controller.echo_finished, timeout=30000) as b:
        window.test_button.click()
    result, error = b.args
    assert error is None, error
    assert result["tls"]["tls"] and "TLSv1" in window.echo_label.text()
    assert "TLS | TLSv1" in diag_text(window.diag_model) and "Peer certificate |" in diag_text(window.diag_model)
    from dataclasses import replace

    window.profiles.replace_at(window.profiles.rowCount() - 1, replace(good, tls_ca_cert_file=str(pki.rogue_ca)))
    with qtbot.waitSignal(window.echo_controller.echo_finished, timeout=30000) as b:
        window.test_button.click()
    result, error = b.args
    assert result is None and "certificate" in error.lower()


def test_editor_sets_implicit_vr_only_resends_and_reconnects_and_the_send_uses_them(qtbot, window, tmp_path) -> None:
    import json

    from core.profiles import Profile, ProfileStore
    from ui.profiles_ui import ProfileEditor

    ed = ProfileEditor(Profile(name="Old PACS", remote_host="pacs", remote_port=104, remote_ae_title="OLD"), window.pool)
    qtbot.addWidget(ed)
    # plain labels, and tooltips that say what each does
    assert ed.implicit_vr_only.text() == "Implicit VR Little Endian only (for older PACS)" and not ed.implicit_vr_only.isChecked()
    assert "newer than they know" in ed.implicit_vr_only.toolTip() and "UC, UR, SV, UV" in ed.implicit_vr_only.toolTip()
    assert "0 = never" in ed.max_resends.toolTip() and "down or busy" in ed.reconnect_attempts.toolTip()
    assert (ed.max_resends.value(), ed.reconnect_attempts.value()) == (3, 5)  # the engine's defaults
    assert ed.max_resends.maximum() == 10 and ed.reconnect_attempts.maximum() == 50
    ed.implicit_vr_only.setChecked(True)
    ed.max_resends.setValue(0)
    ed.reconnect_attempts.setValue(9)
    assert ed.validate()
    p = ed.profile()
    window.profiles.insert(window.profiles.rowCount(), p)
    saved = next(x for x in json.loads(Path(window.store.path).read_text())["profiles"] if x["name"] == "Old PACS")
    assert (saved["implicit_vr_only"], saved["max_resends"], saved["reconnect_attempts"]) == (True, 0, 9)
    again = ProfileStore(window.store.path)
    again.load()
    _job, request, *_ = window.send_controller._new_job([], again.get("Old PACS"))  # the request a send hands to core
    cfg = request.config
    assert (cfg.implicit_vr_only, cfg.max_resends, cfg.reconnect_attempts) == (True, 0, 9)
    ed2 = ProfileEditor(again.get("Old PACS"), window.pool)  # and the editor shows them back
    qtbot.addWidget(ed2)
    assert ed2.implicit_vr_only.isChecked() and (ed2.max_resends.value(), ed2.reconnect_attempts.value()) == (0, 9)
    assert ed2.max_resends.text() == "0 (never)"


def test_key_passphrase_goes_to_the_keyring_not_the_profile(qtbot, window, tmp_path) -> None:
    import keyring

    from core.profiles import Profile
    from core.secrets import KEYRING_SERVICE
    from helpers.keyrings import MemoryKeyring
    from ui.profiles_ui import ProfileEditor

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())  # a test keyring: the app refuses keyrings.alt's plain-text file
    try:
        ed = ProfileEditor(
            Profile(name="Secure PACS", remote_host="pacs", remote_port=2762, remote_ae_title="PACS", tls_enabled=True),
            window.pool,
        )
        qtbot.addWidget(ed)
        with qtbot.waitSignal(ed.passphrase_stored, timeout=20000) as b:
            ed.store_passphrase("correct horse battery")
        assert b.args == [""]
        assert keyring.get_password(KEYRING_SERVICE, "Secure PACS") == "correct horse battery"
        p = ed.profile()
        assert p.tls_key_password_keyring == "Secure PACS"
        window.profiles.insert(window.profiles.rowCount(), p)
        assert "correct horse battery" not in Path(window.store.path).read_text()
    finally:
        keyring.set_keyring(previous)
