"""Issue 14: the window tells the truth. Each test drives the real window (offscreen, on a 1280 x 800 screen)
and asserts what it shows: texts, counts, geometry.

Progress that never happened, results of one PACS shown for another, a job lost on close, a second
window sending to the first one's local test PACS, a window that grows off the screen, words a
radiographer cannot act on, an uncancellable connection test and a failure report of one send only.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from core.profiles import FILE_VERSION
from helpers.data import CT, MR, TEST_FILES
from helpers.gui import answer, ct_series, diag_text, drop, inside, send_and_wait, study_folder, use_profile

pytestmark = [
    pytest.mark.gui,
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("propagateSizeHints"),
    pytest.mark.timeout(180),
]

SCREEN_W, SCREEN_H = 1280, 800


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_peer() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (no A-ASSOCIATE-AC)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


def cell(window: Any, name: str, col: int) -> str:
    m = window.model
    n = next(x for x in m.leaves() if x.inst.path.endswith(name))
    i = m.index_of(n)
    return str(m.index(i.row(), col, i.parent()).data() or "")


# --------------------------------------------------------------------------- 1. every figure shown is true


def test_idle_window_shows_no_numbers_and_clear_all_asks_then_resets(qtbot, window, picky, tmp_path) -> None:
    assert window.progress.text() == "" and window.progress.value() <= 0, "no '0 / 1' at launch"
    assert "Drop DICOM files" in window.progress_label.text()
    assert not window.act_remove.isEnabled() and not window.act_clear.isEnabled(), "nothing to remove on an empty list"
    scp = picky(syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian))
    use_profile(window, scp)
    drop(qtbot, window, [tmp_path / "cts"] if ct_series(tmp_path / "cts", 3) else [])
    assert window.act_clear.isEnabled() and not window.act_remove.isEnabled(), "Remove needs a selection"
    send_and_wait(qtbot, window)
    assert window.progress.text() == "3 / 3" and window.progress_label.text().startswith("Done: 3 / 3 instances")
    # Clear all asks before discarding results; "Keep" keeps everything
    window.act_clear.trigger()
    text = answer(qtbot, window, "clear_box", "keep")
    assert "forget what was sent" in text and window.model.stats()["files"] == 3
    window.act_clear.trigger()
    answer(qtbot, window, "clear_box", "clear")
    assert window.model.stats()["files"] == 0
    assert window.progress.text() == "" and "Drop DICOM files" in window.progress_label.text()
    assert not window.plot.points and window.plot.average is None and not window.banner.isVisible()
    assert not window.act_clear.isEnabled() and not window.act_export.isEnabled()


def test_a_cancelled_send_counts_only_what_was_sent(qtbot, window, picky, tmp_path) -> None:
    from ui import states as st
    from ui.progress import rate_text

    scp = picky(delay_s=0.05, syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian))
    use_profile(window, scp, strategy="conservative")
    drop(qtbot, window, [tmp_path / "cts"] if ct_series(tmp_path / "cts", 300) else [])
    with qtbot.waitSignal(window.send_controller.send_finished, timeout=90000) as b:
        window.send_button.click()
        qtbot.waitUntil(lambda: window.model.counts().get(st.STORED, 0) >= 5, timeout=30000)
        window.cancel_button.click()
    job = b.args[0]
    stored = window.model.counts()[st.STORED]
    assert job.cancelled and 5 <= stored < 300 and len(scp.stored) == stored
    # the bar and the line count the stored, never the 300 handed to the engine
    assert window.progress.value() == stored and window.progress.maximum() == 300
    assert window.progress.text() == f"{stored} / 300"
    line = window.progress_label.text()
    assert line.startswith(f"Cancelled: {stored} / 300 instances · {300 - stored} not sent"), line
    assert "left" not in line and "took" in line
    # bar, line, plot and banner give the same rate, measured over what was sent
    ips = window.send_controller.tracker.rates()[0]
    assert rate_text(ips) in line and rate_text(ips) in window.banner.label.text()
    assert window.plot.labels()[0] == f"average {rate_text(ips)}"
    assert 0 < ips < 1000, "a rate of what was sent, not of the cancelled rest"
    assert (
        "Cancelled" in window.banner.label.text() and f"<b>{300 - stored}</b> not sent (cancelled)" in window.banner.label.text()
    )
    assert "#9ca3af" in window.progress.styleSheet(), "a cancelled bar looks cancelled"


def test_nothing_sent_to_a_stopped_peer_says_why_and_shows_no_rate(qtbot, window, tmp_path) -> None:
    from core.profiles import Profile

    port = free_port()  # nothing listens there
    dead = Profile(name="Stopped", remote_host="127.0.0.1", remote_port=port, remote_ae_title="STOPPED", connect_timeout_s=3)
    window.profiles.insert(window.profiles.rowCount(), dead)
    window._select_profile("Stopped")
    drop(qtbot, window, [tmp_path / "cts"] if ct_series(tmp_path / "cts", 20) else [])
    send_and_wait(qtbot, window)
    assert window.progress.value() == 0 and window.progress.text() == "0 / 20"
    line = window.progress_label.text()
    assert line.startswith("Nothing stored: 0 / 20 instances · 20 not sent") and "inst/s" not in line, line
    # the engine records them failed (resumable); the window shows them apart, with why
    assert "20 not sent: the PACS could not be reached" in line
    banner = window.banner.label.text()
    assert "Nothing was sent" in banner and ">0</b> failed" in banner
    assert "<b>20</b> not sent: the PACS could not be reached" in banner
    assert f"<b>Why:</b> Could not reach the PACS at 127.0.0.1:{port}: connection refused." in banner
    assert "<b>What to do:</b> nothing listens on port" in banner
    assert window.plot.placeholder() == "nothing was sent"
    assert window.retry_button.text() == "Send the not sent (20)", "no failure to retry: 20 were not sent"
    # the failure report says so too: failed in the journal's words, never reached the PACS, sent again on resume
    page = tmp_path / "report.html"
    with qtbot.waitSignal(window.report_controller.report_written, timeout=20000):
        assert window.export_failure_report(str(page), omit_patient=True)
    html = page.read_text()
    assert "<b>0</b> Failed" in html and "<b>20</b> Not sent: the PACS could not be reached" in html
    assert html.count("never reached the PACS; a resume sends it again") == 20


def test_wrong_called_ae_title_in_plain_words_once(qtbot, window, picky, tmp_path) -> None:
    scp = picky()
    use_profile(window, scp, name="Wrong AE", remote_ae_title="NOT_PICKY")
    with qtbot.waitSignal(window.echo_controller.echo_finished, timeout=20000):
        window.test_button.click()
    text = window.echo_label.text()
    assert text.startswith("✗ The PACS refused the connection: it does not know the called AE title 'NOT_PICKY'")
    assert "recognis" not in text and "service user" not in text and "service user" in window.echo_label.toolTip()
    drop(qtbot, window, [TEST_FILES / "CT_small.dcm"])
    send_and_wait(qtbot, window)
    banner = window.banner.label.text()
    assert "Nothing was sent" in banner and "does not know the called AE title" in banner
    assert "inst/s" not in window.progress_label.text()


# --------------------------------------------------------------------------- 2. results belong to a PACS


def test_results_belong_to_their_pacs_and_stored_ones_are_not_resent_silently(qtbot, window, picky, tmp_path) -> None:
    from ui import states as st
    from ui.models import Col

    a = picky(syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian), ae_title="PACS_A")
    b = picky(syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian), ae_title="PACS_B")
    use_profile(window, b, name="B")
    use_profile(window, a, name="A")
    files = ct_series(tmp_path / "cts", 4)
    drop(qtbot, window, [tmp_path / "cts"])
    send_and_wait(qtbot, window)
    assert window.model.counts() == {st.STORED: 4} and len(a.stored) == 4
    # another PACS: none of A's results on screen, no banner of A's send
    window._select_profile("B")
    assert window.model.counts() == {st.READY: 4}
    assert cell(window, "ct0000.dcm", Col.STATUS) == "" and cell(window, "ct0000.dcm", Col.STATE) == "ready"
    assert not window.banner.isVisible() and window.progress.text() == ""
    assert window.retry_button.text() == "Retry failed" and not window.act_export.isEnabled()
    # a plan against B shows B's plan, no "stored 0x0000 Success" of A's beside it
    with qtbot.waitSignal(window.plan_controller.plan_finished, timeout=30000):
        window.act_plan.trigger()
    assert not window.view.isColumnHidden(Col.PLAN) and "0x0000" not in cell(window, "ct0001.dcm", Col.STATUS)
    # back to A: its results again, and the plan made for B is gone
    window._select_profile("A")
    assert window.model.counts() == {st.STORED: 4} and cell(window, "ct0000.dcm", Col.STATUS).startswith("0x0000")
    assert window.view.isColumnHidden(Col.PLAN) and all(not n.plan for n in window.model.leaves())
    assert "A:" in window.banner.label.text() or "- A:" in window.banner.label.text()
    # Send all: A holds them all, so the window asks; Cancel sends nothing
    window.send_button.click()
    text = answer(qtbot, window, "resend_box", "cancel")
    assert "already holds 4 of these 4" in text
    assert len(a.stored) == 4 and not window.send_controller.busy
    # one new file: "Send the 1 not stored" sends only it
    extra = ct_series(tmp_path / "more", 1)[0]
    drop(qtbot, window, [extra])
    assert window.send_button.text() == "Send all (5)"
    window.send_button.click()
    qtbot.waitUntil(lambda: window.resend_box is not None, timeout=5000)
    assert set(window.resend_box.choices) == {"rest", "again", "cancel"}
    assert window.resend_box.choices["rest"].text() == "Send the 1 not stored"
    with qtbot.waitSignal(window.send_controller.send_finished, timeout=30000) as sig:
        answer(qtbot, window, "resend_box", "rest")
    assert len(sig.args[0].nodes) == 1 and len(a.stored) == 5 and len(b.stored) == 0
    assert files and window.model.counts() == {st.STORED: 5}


def test_a_plan_is_cleared_when_the_selection_or_the_send_no_longer_matches(qtbot, window, picky, tmp_path) -> None:
    from PySide6.QtCore import QItemSelectionModel

    from ui.models import Col

    scp = picky(sop_classes=(CT, MR))
    use_profile(window, scp)
    drop(qtbot, window, [TEST_FILES / "CT_small.dcm", TEST_FILES / "MR_small.dcm"])
    ct = next(n for n in window.model.leaves() if n.inst.path.endswith("CT_small.dcm"))
    mr = next(n for n in window.model.leaves() if n.inst.path.endswith("MR_small.dcm"))
    sel = window.view.selectionModel()
    flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
    sel.select(window.view.to_view(window.model.index_of(ct)), flags)
    with qtbot.waitSignal(window.plan_controller.plan_finished, timeout=30000):
        window.act_plan.trigger()
    assert not window.view.isColumnHidden(Col.PLAN) and ct.plan and not mr.plan
    # choosing the planned row again keeps the plan; choosing a row it does not cover clears it
    sel.select(window.view.to_view(window.model.index_of(ct)), flags)
    assert ct.plan and window.banner.kind == "plan"
    sel.select(window.view.to_view(window.model.index_of(mr)), flags)
    assert window.view.isColumnHidden(Col.PLAN) and not ct.plan and window.banner.kind == ""
    # a send whose plan cannot be made says so and leaves no old Plan column behind
    sel.clearSelection()
    with qtbot.waitSignal(window.plan_controller.plan_finished, timeout=30000):
        window.act_plan.trigger()
    assert not window.view.isColumnHidden(Col.PLAN)
    scp.stop()
    with qtbot.waitSignal(window.send_controller.plan_failed, timeout=30000):
        window.send_button.click()
    assert window.view.isColumnHidden(Col.PLAN) and not any(n.plan for n in window.model.leaves())
    qtbot.waitUntil(lambda: not window.send_controller.busy, timeout=30000)


# --------------------------------------------------------------------------- 3. nothing lost on close


def test_quitting_mid_send_asks_stops_and_the_next_start_offers_resume(qtbot, picky, tmp_path, monkeypatch) -> None:
    from ui import states as st
    from ui.app import build_window
    from ui.logpane import LogBuffer

    monkeypatch.setenv("DICOM_COURIER_CONFIG_DIR", str(tmp_path / "config"))
    scp = picky(delay_s=0.05, syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian))
    cfg, data = str(tmp_path / "config"), str(tmp_path / "data")
    w = build_window(LogBuffer(), cfg, data, remember_layout=True)
    qtbot.addWidget(w)
    w.show()
    use_profile(w, scp)
    drop(qtbot, w, [tmp_path / "cts"] if ct_series(tmp_path / "cts", 200) else [])
    w.send_button.click()
    qtbot.waitUntil(lambda: w.model.counts().get(st.STORED, 0) >= 3, timeout=30000)
    # Ctrl+Q asks instead of quitting; "Keep sending" keeps sending
    w.act_quit.trigger()
    text = answer(qtbot, w, "close_box", "keep")
    assert "is running" in text and "resume" in text and w.isVisible() and w.send_controller.sending
    # closing the window asks too; "Stop sending and quit" stops between instances and closes
    w.close()
    with qtbot.waitSignal(w.send_controller.send_finished, timeout=60000):
        answer(qtbot, w, "close_box", "stop")
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)
    job = w.send_controller.last_job
    stored = len(scp.stored)
    assert job.cancelled and 3 <= stored < 200
    # the next start offers to resume the instances the quit left unsent
    w2 = build_window(LogBuffer(), cfg, data, remember_layout=True)
    qtbot.addWidget(w2)
    w2.show()
    qtbot.waitUntil(lambda: w2.resume_banner.isVisible(), timeout=15000)
    label = w2.resume_banner.label.text()
    assert "stopped before the end" in label and f"<b>{200 - stored}</b> not sent" in label and job.job_id in label
    with qtbot.waitSignal(w2.send_controller.send_finished, timeout=90000) as b:
        w2.resume_banner.resume_button.click()
    assert b.args[0].resumed and len(scp.stored) == 200 and len(set(scp.stored)) == 200
    w2.close()


def test_closing_mid_instance_stops_between_pdus_and_the_job_stays_resumable(qtbot, tmp_path, monkeypatch) -> None:
    """Large files to a slow peer: once the user confirms, the window is gone within seconds (it does not wait
    for the instance in flight), the journal keeps the job resumable, and the next start offers Resume."""
    import time
    from types import SimpleNamespace

    from core.journal import Journal
    from helpers.badpeers import Act, BadPeer, make_ct
    from ui import states as st
    from ui.app import build_window
    from ui.logpane import LogBuffer

    monkeypatch.setenv("DICOM_COURIER_CONFIG_DIR", str(tmp_path / "config"))
    cfg, data = str(tmp_path / "config"), str(tmp_path / "data")
    make_ct(tmp_path / "big", 3, 1600, "gui-close")  # ~5 MB each: ~310 PDUs of 16 KiB, 20 ms each at the peer
    with BadPeer(lambda req: Act(slow_s=0.02), rcvbuf=16384) as peer:
        w = build_window(LogBuffer(), cfg, data, remember_layout=True)
        qtbot.addWidget(w)
        w.show()
        use_profile(w, SimpleNamespace(port=peer.port, ae_title="BADPEER"), strategy="conservative")
        drop(qtbot, w, [tmp_path / "big"])
        w.send_button.click()
        qtbot.waitUntil(lambda: w.model.counts().get(st.SENDING, 0) == 1, timeout=30000)
        qtbot.wait(700)  # well into the first data set (about 6 s of PDUs at this peer)
        w.close()
        t0 = time.monotonic()
        answer(qtbot, w, "close_box", "stop")
        qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)
        took = time.monotonic() - t0
        assert took < 4, f"{took:.1f} s to close"
        assert not peer.seen, "the instance cut off mid-way was not stored"
    job = w.send_controller.last_job
    assert job is not None and job.cancelled
    with Journal(w.journal_path) as j:
        record = j.job(job.job_id)
        assert record is not None and record.state == "cancelled" and record.resumable == 3
        assert {r["state"] for r in j.instances(job.job_id)} == {"not-sent"}
    w2 = build_window(LogBuffer(), cfg, data, remember_layout=True)
    qtbot.addWidget(w2)
    w2.show()
    qtbot.waitUntil(lambda: w2.resume_banner.isVisible(), timeout=15000)
    assert "<b>3</b> not sent" in w2.resume_banner.label.text() and job.job_id in w2.resume_banner.label.text()
    w2.close()


@pytest.fixture
def immutable() -> Iterator[Any]:
    """``make(path)``: set the immutable attribute (``chattr +i``: every write fails, open files too); undone at the end."""
    import subprocess

    done: list[Path] = []

    def make(path: Path) -> None:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here")
        done.append(path)

    yield make
    for path in done:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def test_a_journal_that_cannot_be_written_stops_the_send_and_the_banner_says_why(qtbot, window, tmp_path, immutable) -> None:
    import subprocess
    from types import SimpleNamespace

    from core.journal import Journal
    from helpers.badpeers import Act, BadPeer, make_ct
    from ui import states as st

    make_ct(tmp_path / "in", 150, 32, "gui-journal")
    with BadPeer(lambda req: Act(silent=0.01)) as peer:
        use_profile(window, SimpleNamespace(port=peer.port, ae_title="BADPEER"), strategy="conservative")
        drop(qtbot, window, [tmp_path / "in"])
        with qtbot.waitSignal(window.send_controller.send_finished, timeout=90000) as b:
            window.send_button.click()
            qtbot.waitUntil(lambda: window.model.counts().get(st.STORED, 0) >= 20, timeout=30000)
            for suffix in ("", "-wal"):  # the journal's disk fails: no write gets through
                immutable(Path(window.journal_path + suffix))
        job = b.args[0]
    assert job.journal_error and not job.cancelled
    banner = window.banner.label.text()
    assert "The send stopped: the send journal could not be written" in banner
    assert "<b>Why:</b> cannot write the send journal" in banner
    assert "Nothing the journal did not record is called stored" in banner
    assert "<b>What to do:</b> free some disk space" in banner
    assert window.progress_label.text().startswith("Stopped: ") and "#9ca3af" in window.progress.styleSheet()
    assert "could not be written" in window.statusBar().currentMessage()
    # what the window calls stored is what the journal recorded, no more
    for suffix in ("", "-wal"):  # the disk works again
        subprocess.run(["chattr", "-i", window.journal_path + suffix], check=True)
    with Journal(window.journal_path) as j:
        recorded = {r["idx"] for r in j.instances(job.job_id) if r["state"] == "stored"}
    shown = {i for i, n in job.by_index.items() if n.state == st.STORED}
    assert shown == recorded and 20 <= len(recorded) < 150
    assert window.model.counts().get(st.STORED, 0) == len(recorded)


def test_a_damaged_journal_is_set_aside_and_the_window_says_so(qtbot, tmp_path, monkeypatch) -> None:
    from ui.app import build_window
    from ui.logpane import LogBuffer

    monkeypatch.setenv("DICOM_COURIER_CONFIG_DIR", str(tmp_path / "config"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "journal.sqlite").write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 64)  # an SQLite header, then junk
    w = build_window(LogBuffer(), str(tmp_path / "config"), str(data), remember_layout=True)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.resume_controller.journal_noted, timeout=10000):
        w.show()
    text = w.banner.label.text()
    assert w.banner.isVisible() and text.startswith("The send journal was damaged") and "journal.sqlite.corrupt-" in text
    assert "can no longer be resumed" in text
    assert list(data.glob("journal.sqlite.corrupt-*")), "the damaged file is kept"
    w.close()


def test_no_resume_offer_once_the_rest_was_sent_in_the_same_session(qtbot, picky, tmp_path, monkeypatch) -> None:
    from ui import states as st
    from ui.app import build_window
    from ui.logpane import LogBuffer

    monkeypatch.setenv("DICOM_COURIER_CONFIG_DIR", str(tmp_path / "config"))
    scp = picky(delay_s=0.03, syntaxes=(ImplicitVRLittleEndian, ExplicitVRLittleEndian))
    cfg, data = str(tmp_path / "config"), str(tmp_path / "data")
    w = build_window(LogBuffer(), cfg, data, remember_layout=True)
    qtbot.addWidget(w)
    w.show()
    use_profile(w, scp)
    drop(qtbot, w, [tmp_path / "cts"] if ct_series(tmp_path / "cts", 80) else [])
    with qtbot.waitSignal(w.send_controller.send_finished, timeout=60000):
        w.send_button.click()
        qtbot.waitUntil(lambda: w.model.counts().get(st.STORED, 0) >= 3, timeout=30000)
        w.cancel_button.click()
    assert w.retry_button.text().startswith("Send the not sent")
    send_and_wait(qtbot, w, w.retry_button.click)  # a new job sends the rest
    assert w.model.counts() == {st.STORED: 80}
    w.close()
    w2 = build_window(LogBuffer(), cfg, data, remember_layout=True)
    qtbot.addWidget(w2)
    with qtbot.waitSignal(w2.resume_controller.interrupted_jobs_found, timeout=10000) as b:
        w2.show()
    assert b.args[0] == [] and not w2.resume_banner.isVisible(), "the cancelled job's rest is stored: nothing to resume"
    w2.close()


def local_profiles(cfg: Path, port: int) -> None:
    """A profiles.json whose only profile is the local test PACS on `port`."""
    cfg.mkdir(parents=True, exist_ok=True)
    local = {
        "name": "Local test PACS",
        "remote_host": "127.0.0.1",
        "remote_port": port,
        "remote_ae_title": "COURIER",
        "is_local_test": True,
    }
    (cfg / "profiles.json").write_text(json.dumps({"version": FILE_VERSION, "profiles": [local], "last_used": "Local test PACS"}))


def test_quit_mid_send_to_the_local_test_pacs_then_resume_starts_it_on_its_own_port(qtbot, tmp_path, monkeypatch) -> None:
    from ui import states as st
    from ui.app import build_window
    from ui.logpane import LogBuffer

    port = free_port()
    cfg, data = tmp_path / "config", tmp_path / "data"
    monkeypatch.setenv("DICOM_COURIER_CONFIG_DIR", str(cfg))
    local_profiles(cfg, port)
    ct_series(tmp_path / "cts", 1500)
    w = build_window(LogBuffer(), str(cfg), str(data), remember_layout=True)
    qtbot.addWidget(w)
    w.show()
    drop(qtbot, w, [tmp_path / "cts"])
    w.send_button.click()  # the local test PACS starts by itself
    qtbot.waitUntil(lambda: w.model.counts().get(st.STORED, 0) >= 50, timeout=60000)
    w.act_quit.trigger()
    with qtbot.waitSignal(w.send_controller.send_finished, timeout=60000):
        answer(qtbot, w, "close_box", "stop")
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)
    stored = w.model.counts()[st.STORED]
    assert stored < 1500, "stopped before the end"
    # the next start: the saved port is taken now, so this window's local test PACS moves, and Resume goes there
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the first window's PACS just closed it
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        w2 = build_window(LogBuffer(), str(cfg), str(data), remember_layout=True)
        qtbot.addWidget(w2)
        w2.show()
        qtbot.waitUntil(lambda: w2.resume_banner.isVisible(), timeout=15000)
        assert f"<b>{1500 - stored}</b> not sent" in w2.resume_banner.label.text()
        with qtbot.waitSignal(w2.send_controller.send_finished, timeout=120000) as b:
            w2.resume_banner.resume_button.click()
        assert b.args[0].resumed and w2.local_pacs_controller.port not in (None, port)
        assert len(w2.local_pacs_controller.scp.received) == 1500 - stored
        assert w2.model.counts() == {st.STORED: 1500 - stored}
    w2.shutdown()


# --------------------------------------------------------------------------- 4. the local test PACS is per window


def test_each_window_sends_to_its_own_local_test_pacs(qtbot, tmp_path, monkeypatch) -> None:
    from ui import states as st
    from ui.app import build_window
    from ui.logpane import LogBuffer

    port = free_port()
    windows = []
    for name in ("one", "two"):
        cfg = tmp_path / name / "config"
        cfg.mkdir(parents=True)
        # both saved profiles name the same port, as two windows of one user's app do
        (cfg / "profiles.json").write_text(
            json.dumps(
                {
                    "version": FILE_VERSION,
                    "profiles": [
                        {
                            "name": "Local test PACS",
                            "remote_host": "127.0.0.1",
                            "remote_port": port,
                            "remote_ae_title": "COURIER",
                            "is_local_test": True,
                        }
                    ],
                    "last_used": "Local test PACS",
                }
            )
        )
        w = build_window(LogBuffer(), str(cfg), str(tmp_path / name / "data"))
        qtbot.addWidget(w)
        w.show()
        assert w.store.local_test().remote_port == port and not w.store.read_only_reason
        windows.append(w)
    one, two = windows
    with qtbot.waitSignal(one.local_pacs_controller.running_changed, timeout=20000):
        one.local_pacs_controller.start()
    assert one.local_pacs_controller.port == port
    drop(qtbot, two, [TEST_FILES / "CT_small.dcm", TEST_FILES / "MR_small.dcm"])
    send_and_wait(qtbot, two)  # starts window two's own local test PACS: the port is taken, it moves
    moved = two.local_pacs_controller.port
    assert moved not in (None, port)
    assert two.model.counts() == {st.STORED: 2}
    assert len(two.local_pacs_controller.scp.received) == 2 and len(one.local_pacs_controller.scp.received) == 0
    assert f"on port {moved} ({port} was taken): 2 received" in two.scp_label.text()
    assert f"127.0.0.1:{moved}" in diag_text(two.diag_model)
    # the moved port is this window's, never saved
    saved = json.loads((tmp_path / "two" / "config" / "profiles.json").read_text())
    assert [p["remote_port"] for p in saved["profiles"] if p.get("is_local_test")] == [port]
    assert two.store.local_test().remote_port == port
    # a connection test of the local test profile reaches the window's own PACS too
    with qtbot.waitSignal(two.echo_controller.echo_finished, timeout=20000) as b:
        two.test_button.click()
    assert b.args[1] is None and two.echo_controller.profile.remote_port == moved
    for w in windows:
        w.shutdown()


# --------------------------------------------------------------------------- 5. the layout fits a laptop


def test_the_window_fits_1280x800_after_a_long_test_message(qtbot, window) -> None:
    from core.profiles import Profile

    screen = window.screen().availableGeometry()
    assert (screen.width(), screen.height()) == (SCREEN_W, SCREEN_H), "the tests' offscreen screen is a laptop's"
    assert window.width() <= SCREEN_W and window.height() <= SCREEN_H, "no fixed 1500 x 900"
    host = "a-pacs-host-name-that-does-not-exist-anywhere.radiology.hospital.example.invalid"
    window.profiles.insert(
        window.profiles.rowCount(), Profile(name="Far", remote_host=host, remote_port=104, remote_ae_title="FAR")
    )
    window._select_profile("Far")
    with qtbot.waitSignal(window.echo_controller.echo_finished, timeout=30000):
        window.test_button.click()
    qtbot.wait(50)
    msg = window.echo_label.text()
    assert len(msg) > 150 and host in msg, msg
    assert window.width() <= SCREEN_W, "the message wraps; the window does not grow"
    assert window.echo_label.height() > window.echo_label.fontMetrics().height() * 1.5, "wrapped on two lines or more"
    for b in (window.send_button, window.cancel_button, window.test_button):
        assert inside(b, SCREEN_W, SCREEN_H), b.text()
    assert inside(window.statusBar(), SCREEN_W, SCREEN_H)
    # usable at 1024 x 700 too
    window.resize(1024, 700)
    qtbot.wait(50)
    assert window.width() <= 1024 and window.height() <= 700
    for b in (window.send_button, window.cancel_button, window.test_button):
        assert inside(b, 1024, 700), b.text()


def test_the_reason_is_visible_without_scrolling(qtbot, window, picky, tmp_path) -> None:
    from ui.models import Col

    scp = picky(sop_classes=(CT, MR))
    use_profile(window, scp)
    drop(qtbot, window, [study_folder(tmp_path)])
    send_and_wait(qtbot, window)
    window.view.show_column(Col.PLAN, 260)  # a plan column appears: the reason stays in view
    hdr = window.view.header()
    right = hdr.sectionViewportPosition(Col.DETAILS) + 120
    assert hdr.sectionViewportPosition(Col.DETAILS) >= 0 and right <= window.view.viewport().width()
    # the current row's full reason is under the tree, wrapped
    rt = next(n for n in window.model.leaves() if n.inst.path.endswith("rtplan.dcm"))
    window.view.setCurrentIndex(window.view.to_view(window.model.index_of(rt)))
    assert window.reason_label.isVisible()
    # a refused SOP class is a failure with its reason ("not sent" is for a send the user stopped)
    assert window.reason_label.text().startswith("rtplan.dcm: failed - ") and "RT Plan" in window.reason_label.text()


def test_profile_editor_fits_and_shows_tls_only_when_on(qtbot, window) -> None:
    from PySide6.QtWidgets import QDialogButtonBox

    from core.profiles import Profile
    from ui.profiles_ui import ProfileEditor

    ed = ProfileEditor(Profile(name="P", remote_host="pacs", remote_port=104, remote_ae_title="PACS"), window.pool, parent=window)
    qtbot.addWidget(ed)
    ed.show()
    qtbot.wait(20)
    save = ed.buttons.button(QDialogButtonBox.StandardButton.Save)
    assert not ed.tls_box.isVisible()
    assert ed.width() <= SCREEN_W and ed.height() <= SCREEN_H and inside(save, SCREEN_W, SCREEN_H)
    off_height = ed.height()
    ed.tls_enabled.setChecked(True)
    qtbot.wait(20)
    assert ed.tls_box.isVisible() and ed.height() >= off_height
    assert ed.width() <= SCREEN_W and ed.height() <= SCREEN_H and inside(save, SCREEN_W, SCREEN_H)
    # jargon explained where it is asked for
    assert "seconds" in ed.edits["acse_timeout_s"].toolTip() and "Protocol Data Unit" in ed.edits["max_pdu_bytes"].toolTip()
    assert "PACS's own AE title" in ed.edits["remote_ae_title"].toolTip()


# --------------------------------------------------------------------------- 6. words for radiographers


def test_a_working_fallback_shows_declined_contexts_as_a_neutral_note(qtbot, window, picky, tmp_path) -> None:
    from PySide6.QtCore import QModelIndex

    scp = picky(sop_classes=(CT, MR))  # Implicit VR LE only: most proposed combinations are declined
    use_profile(window, scp, strategy="compression")
    drop(qtbot, window, [TEST_FILES / "CT_small.dcm", TEST_FILES / "MR_small.dcm"])
    send_and_wait(qtbot, window)
    text = diag_text(window.diag_model)
    m = re.search(
        r"Note \| the PACS declined (\d+) combination\(s\) of SOP class and transfer syntax; all instances went through another",
        text,
    )
    assert m and int(m.group(1)) > 0, text
    dm = window.diag_model

    def icons(parent: QModelIndex) -> list[bool]:
        out = []
        for r in range(dm.rowCount(parent)):
            i = dm.index(r, 0, parent)
            if str(i.data()).startswith("Rejected"):
                out += [not dm.itemFromIndex(i).icon().isNull()]
                out += [not dm.itemFromIndex(dm.index(k, 0, i)).icon().isNull() for k in range(dm.rowCount(i))]
            out += icons(i)
        return out

    assert icons(QModelIndex()) and not any(icons(QModelIndex())), "no red cross for a declined combination that harmed nothing"


def test_hints_dates_dicomdir_double_click_and_log(qtbot, window, picky, tmp_path) -> None:
    from PySide6.QtCore import Qt

    from core.profiles import Profile
    from ui import states as st
    from ui.models import Col

    assert "No PACS yet?" in window.view.hint_text()
    window.profiles.insert(
        window.profiles.rowCount(), Profile(name="Main", remote_host="pacs", remote_port=104, remote_ae_title="M")
    )
    assert "No PACS yet?" not in window.view.hint_text(), "only while there is no PACS of one's own"
    # a DICOMDIR is an index with its referenced files, not "not DICOM"
    drop(qtbot, window, [TEST_FILES / "dicomdirtests" / "DICOMDIR"])
    idx = next(n for n in window.model.leaves() if n.inst.path.endswith("DICOMDIR"))
    assert idx.state == st.INDEX and cell(window, "DICOMDIR", Col.STATE) == "DICOMDIR index"
    refs = window.model.stats()["instances"]
    assert refs > 0 and f"lists {refs} file(s)" in cell(window, "DICOMDIR", Col.DETAILS)
    assert window.model.stats()["bad"] == 0 and "1 DICOMDIR index" in window.counts_label.text()
    # dates in one format, the locale's (ISO in the C locale the tests run in), whatever the file wrote
    drop(qtbot, window, [TEST_FILES / "ExplVR_BigEnd.dcm", TEST_FILES / "CT_small.dcm"])
    dates = {
        window.model.index(r, Col.DATE, window.model.index(p, 0)).data()
        for p in range(window.model.rowCount())
        for r in range(window.model.rowCount(window.model.index(p, 0)))
    } - {"", None}
    assert {"1997-04-24", "2004-01-19"} <= dates and all(re.fullmatch(r"\d{4}-\d\d-\d\d", d) for d in dates), dates
    # a double-click shows details and leaves "Send all" as it was
    window.view.expandAll()
    qtbot.wait(20)
    before = window.send_button.text()
    assert before.startswith("Send all")
    ct = next(n for n in window.model.leaves() if n.inst.path.endswith("CT_small.dcm"))
    window.view.scrollTo(window.view.to_view(window.model.index_of(ct)))
    qtbot.wait(20)
    rect = window.view.visualRect(window.view.to_view(window.model.index_of(ct)))
    assert rect.isValid() and window.view.viewport().rect().contains(rect.center())
    opened: list[Any] = []
    window.view.details_requested.connect(opened.append)
    # a double-click as the window gets it: the first click's press and release, then the double-click
    qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened and window.send_button.text() == before, "a double-click must not turn Send all into Send selected (1)"
    # no traceback in the log pane below Debug
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("core.test").exception("Something broke while sending")
    window.log_pane.pull()
    info = window.log_pane.plain_text()
    assert "Something broke while sending" in info and "Traceback" not in info
    window.log_pane.set_level(logging.DEBUG)
    assert "Traceback" in window.log_pane.plain_text()


def test_plain_words_and_jargon_tooltips() -> None:
    from ui.controllers.echo import echo_line
    from ui.wording import GLOSSARY, plain_reason

    assert "C-ECHO C-ECHO" not in echo_line({"status": "success", "message": "C-ECHO succeeded", "rtt_ms": 1.0})
    from core.diagnostics import explain_rejection

    msg, _ = explain_rejection(1, 1, 7, "WRONG", "US")
    assert msg.count("not recognised") == 1, msg
    plain = plain_reason(f"not sent: {msg}")
    assert plain.what == "The PACS refused the connection: it does not know the called AE title 'WRONG'"
    assert plain.hint.startswith("check the called AE title in the profile")
    for term in ("acse_timeout", "max_pdu", "presentation_context", "ae_title"):
        assert len(GLOSSARY[term]) > 60
    from ui.tree_nodes import HEADER_TIPS, Col

    assert "encoding" in HEADER_TIPS[Col.SYNTAX] and "kind of DICOM object" in HEADER_TIPS[Col.SOP_CLASS]


# --------------------------------------------------------------------------- 7. test connection


def test_test_connection_counts_down_and_can_be_cancelled(qtbot, window, silent_peer) -> None:
    from core.profiles import Profile

    p = Profile(
        name="Silent",
        remote_host="127.0.0.1",
        remote_port=silent_peer,
        remote_ae_title="SILENT",
        dimse_timeout_s=10,
        acse_timeout_s=20,
        connect_timeout_s=5,
    )
    window.profiles.insert(window.profiles.rowCount(), p)
    window._select_profile("Silent")
    window.test_button.click()
    assert window.pacs_panel.cancel_button.isVisible() and not window.act_test.isEnabled()
    first = int(re.search(r"at most (\d+) s left", window.echo_label.text()).group(1))
    assert 30 <= first <= 35
    qtbot.waitUntil(lambda: int(re.search(r"at most (\d+) s left", window.echo_label.text()).group(1)) < first, timeout=3000)
    with qtbot.waitSignal(window.echo_controller.echo_cancelled, timeout=2000):
        window.pacs_panel.cancel_button.click()
    assert window.echo_label.text().startswith("Connection test cancelled")
    assert window.act_test.isEnabled() and not window.pacs_panel.cancel_button.isVisible()


def test_profile_editor_gives_the_main_windows_hints_and_cancel(qtbot, window, silent_peer) -> None:
    from core.profiles import Profile
    from ui.profiles_ui import ProfilesDialog

    dlg = ProfilesDialog(window.profiles, window.pool, window, local_pacs=window.local_pacs_controller)
    qtbot.addWidget(dlg)
    local = window.store.local_test()
    ed = dlg.editor_for(local, window.profiles.row_of(local.name))
    qtbot.addWidget(ed)
    assert not window.local_pacs_controller.running
    with qtbot.waitSignal(ed.echo_controller.echo_finished, timeout=20000):
        ed.test_button.click()
    assert "the local test PACS is not running" in ed.test_result.text() and "Ctrl+Shift+L" in ed.test_result.text()
    ed2 = dlg.editor_for(Profile(name="S", remote_host="127.0.0.1", remote_port=silent_peer, remote_ae_title="S"), -1)
    qtbot.addWidget(ed2)
    ed2.test_button.click()
    assert ed2.test_button.text() == "Cancel test" and re.search(r"at most \d+ s left", ed2.test_result.text())
    ed2.test_button.click()
    assert ed2.test_result.text().startswith("Connection test cancelled") and ed2.test_button.text() == "Test connection"


# --------------------------------------------------------------------------- 8. the failure report


def test_failure_report_covers_every_send_unreadable_files_labels_and_anonymous_paths(qtbot, window, picky, tmp_path) -> None:
    folder = study_folder(tmp_path)
    mr_uid = str(pydicom.dcmread(TEST_FILES / "MR_small.dcm", stop_before_pixels=True).SOPInstanceUID)
    policy = {"fail": True}
    scp = picky(status_for=lambda ds: 0xA700 if policy["fail"] and ds.SOPInstanceUID == mr_uid else 0)
    use_profile(window, scp)
    drop(qtbot, window, [folder])
    send_and_wait(qtbot, window)
    policy["fail"] = False
    send_and_wait(qtbot, window, window.retry_button.click)  # a second send to the same PACS
    path = tmp_path / "report.json"
    with qtbot.waitSignal(window.report_controller.report_written, timeout=20000):
        assert window.export_failure_report(str(path))
    rep = json.loads(path.read_text())
    # every instance sent to this PACS (not the retry's 2): CT, and MR on the retry, stored; the Secondary Capture and the
    # RT Plan failed (classes the picky PACS refuses: failures with the reason, not "not sent")
    summary = rep["summary"]
    assert (summary["total"], summary["success"], summary["failure"], summary["not_sent"]) == (4, 2, 2, 0)
    assert len(rep["jobs"]) == 2 and rep["job"]["sends"] == 2
    by_file = {Path(e["file"]).name: e for e in rep["instances"]}
    assert "MR_small.dcm" not in by_file, "its latest send stored it"
    assert by_file["broken.dcm"]["state"] == "unreadable" and by_file["broken.dcm"]["message"]
    assert by_file["README.txt"]["state"] == "not DICOM"
    assert by_file["rtplan.dcm"]["state"] == "failed" and "does not support RT Plan" in by_file["rtplan.dcm"]["message"]
    assert not by_file["rtplan.dcm"]["resumable"]
    html_path = tmp_path / "report.html"
    with qtbot.waitSignal(window.report_controller.report_written, timeout=20000):
        window.export_failure_report(str(html_path))
    page = html_path.read_text()
    assert "Association (ACSE) timeout, s" in page and "acse_timeout_s" not in page
    assert "<b>2</b> Failed" in page and "Not sent" not in page, "a refused class is a failure, nothing was stopped"
    assert "2 sends to this PACS" in page
    # names as people write them; with patient data left out, no folder (nor a name in the file name)
    anon = tmp_path / "anon.json"
    with qtbot.waitSignal(window.report_controller.report_written, timeout=20000):
        window.export_failure_report(str(anon), omit_patient=True)
    entries = json.loads(anon.read_text())["instances"]
    assert all("/" not in e["file"] and str(tmp_path) not in e["file"] for e in entries)
    assert all(e["patient_name"] == "" and e["patient_id"] == "" for e in entries)


def test_report_writes_person_names_as_people_do(tmp_path) -> None:
    from core.scan import scan_paths
    from ui.failure_report import anonymous_path, build_failure_report

    f = ct_series(tmp_path / "x", 1, name="DOE^JANE^Q")[0]
    inst = scan_paths([str(f)])[0]
    o = {"status": "failure", "state": "failed", "status_code": 0xA700, "message": "m", "path": str(f)}
    rep = build_failure_report([o], [inst], [], {"acse_timeout_s": 30}, {"total": 1}, 0.0, 1.0)
    assert rep["instances"][0]["patient_name"] == "DOE, JANE Q"
    assert anonymous_path("/home/x/DOE_JANE/img1.dcm", "DOE^JANE") == "img1.dcm"
    hashed = anonymous_path("/home/x/jane_doe_1.dcm", "DOE^JANE")
    assert hashed.startswith("file-") and hashed.endswith(".dcm") and "doe" not in hashed
