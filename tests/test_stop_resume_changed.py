"""What is sent is what was scanned; a hard stop ends the send between PDUs and leaves a record;
an instance the peer never got because it was down is resumable (issue 12 items 1 and 6, issue 13 item 7).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time

import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from core import events as ev
from core.config import StoreConfig
from core.engine import SendJob, items_from_scan
from core.journal import Journal
from core.scan import scan_paths
from core.send import Rerun, SendRequest, prepare_rerun, run_send
from helpers import casegen
from helpers.badpeers import Act, BadPeer, make_ct
from helpers.process import free_port
from helpers.scp import RecordingSCP

pytestmark = pytest.mark.timeout(120)

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def fast(**kw):
    return {"acse_timeout": 5, "dimse_timeout": 5, "network_timeout": 5, "connect_timeout": 2, "retry_backoff_s": 0.05, **kw}


# -- what is sent is what was scanned ---------------------------------------------------------------------


def test_files_changed_deleted_or_swapped_after_the_scan(scp_factory, tmp_path):
    paths = casegen.make_ct(tmp_path / "in", 6, key="scanned", mutate=lambda ds, i: setattr(ds, "ImageComments", "A" * 40))
    insts = scan_paths([str(tmp_path / "in")])
    time.sleep(0.01)
    os.remove(paths[1])  # deleted
    data = bytearray(paths[2].read_bytes())
    data[-1] ^= 0xFF  # same size, new content and time
    paths[2].write_bytes(bytes(data))
    other = casegen.ct_dataset("another-patient", 3, patient_id="TEST-OTHR")
    swap = tmp_path / "swap.dcm"
    other.ImageComments = ""
    other.save_as(swap, enforce_file_format=True)
    other.ImageComments = "B" * (paths[3].stat().st_size - swap.stat().st_size)  # the same size as the scanned file
    other.save_as(swap, enforce_file_format=True)
    assert swap.stat().st_size == paths[3].stat().st_size
    os.replace(swap, paths[3])  # another patient's data set under the scanned name
    grown = paths[4]
    mtime = grown.stat().st_mtime_ns
    grown.write_bytes(grown.read_bytes() + b"\0\0")
    os.utime(grown, ns=(mtime, mtime))  # the time put back: the size still tells
    scp = scp_factory(accept={CTImageStorage: UNCOMPRESSED})
    events: list[ev.Event] = []
    result = SendJob(scp.config(**fast()), on_event=events.append).run(items_from_scan(insts))
    states = [o.state for o in result.outcomes]
    assert states == ["stored", "failed", "failed", "failed", "failed", "stored"]
    assert "no longer exists" in result.outcomes[1].message
    assert all("changed since it was scanned" in o.message for o in result.outcomes[2:5])
    assert str(other.SOPInstanceUID) not in scp.stored and "TEST-OTHR" not in {
        str(ds.PatientID) for ds in scp.received.values() if ds is not None
    }
    assert len(scp.associations) == 1
    assert [e.how for e in events if isinstance(e, ev.AssociationReleased)] == ["released"], "the association was broken"
    assert all(o.tries == 0 for o in result.outcomes[1:5]), "a C-STORE was started for a changed file"


def test_all_files_gone_opens_no_association(scp_factory, tmp_path):
    paths = casegen.make_ct(tmp_path / "gone", 3, key="gone")
    insts = scan_paths([str(tmp_path / "gone")])
    for p in paths:
        p.unlink()
    scp = scp_factory()
    result = SendJob(scp.config(**fast())).run(items_from_scan(insts))
    assert not scp.associations
    assert all(o.state == "failed" and "no longer exists" in o.message and not o.resumable for o in result.outcomes)


def test_file_unreadable_when_opened_keeps_the_association(scp_factory, tmp_path, monkeypatch):
    """The open fails before the first byte of its message: the others go on on the same association."""
    paths = casegen.make_ct(tmp_path / "perm", 4, key="perm")
    insts = scan_paths([str(tmp_path / "perm")])
    real_open = open
    victim = str(paths[1])

    def flaky_open(file, *a, **kw):  # the file becomes unreadable between the check and the read
        if str(file) == victim:
            raise PermissionError(13, "Permission denied")
        return real_open(file, *a, **kw)

    monkeypatch.setattr("builtins.open", flaky_open)
    scp = scp_factory(accept={CTImageStorage: UNCOMPRESSED})
    events: list[ev.Event] = []
    result = SendJob(scp.config(**fast()), on_event=events.append).run(items_from_scan(insts))
    assert [o.state for o in result.outcomes] == ["stored", "failed", "stored", "stored"]
    assert "Permission denied" in result.outcomes[1].message
    assert len(scp.associations) == 1
    assert [e.how for e in events if isinstance(e, ev.AssociationReleased)] == ["released"]


# -- a hard stop ---------------------------------------------------------------------------------------------


def _stop_after(event: threading.Event, scp_stored: list, count: int) -> threading.Thread:
    def watch():
        while len(scp_stored) < count:
            time.sleep(0.01)
        event.set()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_hard_stop_while_waiting_for_a_response(scp_factory, tmp_path):
    casegen.make_ct(tmp_path / "slow", 30, key="slowstop")
    scp = scp_factory(accept={CTImageStorage: UNCOMPRESSED}, policy=lambda req: ("sleep", 0.4, 0x0000))
    stop = threading.Event()
    _stop_after(stop, scp.requests, 4)  # the 4th is at the peer, which takes 0.4 s to answer
    events: list[ev.Event] = []
    result = SendJob(scp.config(**fast()), on_event=events.append, stop=stop).run(
        items_from_scan(scan_paths([str(tmp_path / "slow")]))
    )
    stopped_at = time.monotonic()
    assert result.stopped and result.cancelled
    states = [o.state for o in result.outcomes]
    assert states[:3] == ["stored"] * 3
    assert states[3] == "unknown" and "the send was stopped after its data set was sent" in result.outcomes[3].message
    assert states[4:] == ["not-sent"] * 26
    assert all(o.message == "not sent: the send was stopped" for o in result.outcomes[4:])
    assert [e.how for e in events if isinstance(e, ev.AssociationReleased)] == ["aborted"]
    finished = next(e for e in events if isinstance(e, ev.JobFinished))
    assert finished.cancelled
    assert time.monotonic() - stopped_at < 1


def test_hard_stop_in_the_middle_of_a_data_set(tmp_path):
    paths = make_ct(tmp_path, 2, 1600, "bigstop")  # ~5 MB each: ~310 PDUs of 16 KiB
    stop = threading.Event()
    with BadPeer(lambda req: Act(slow_s=0.01), rcvbuf=16384) as peer:
        threading.Timer(1.0, stop.set).start()
        t0 = time.monotonic()
        result = SendJob(
            {"remote_host": "127.0.0.1", "remote_port": peer.port, "remote_ae_title": "BADPEER", **fast()}, stop=stop
        ).run(items_from_scan(scan_paths([str(p) for p in paths])))
        took = time.monotonic() - t0
        assert peer.interleaved == 0
        assert not peer.seen, "a partial data set was stored"
    assert took < 3, f"{took:.1f} s to stop"
    first, second = result.outcomes
    assert first.state == "not-sent" and "did not receive all of it" in first.message
    assert first.attempts_detail[0].result == "not-received"
    assert second.state == "not-sent" and second.message == "not sent: the send was stopped"


def test_run_send_hard_stop_writes_journal_and_report(scp_factory, tmp_path):
    casegen.make_ct(tmp_path / "in", 20, key="journalstop")
    scp = scp_factory(accept={CTImageStorage: UNCOMPRESSED}, policy=lambda req: ("sleep", 0.2, 0x0000))
    stop = threading.Event()
    _stop_after(stop, scp.stored, 2)
    journal, report = tmp_path / "j.sqlite", tmp_path / "r.json"
    request = SendRequest(
        StoreConfig.from_dict(scp.config(**fast())),
        paths=(str(tmp_path / "in"),),
        journal_path=str(journal),
        report_path=str(report),
    )
    result = run_send(request, stop=stop)
    assert result.job is not None and result.job.stopped
    rep = json.loads(report.read_text())
    assert len(rep["instances"]) == 20 and rep["job"]["stopped"] is True
    assert sum(i["state"] == "not-sent" for i in rep["instances"]) >= 16
    with Journal(journal) as j:
        job = j.job(result.job_id)
        assert job is not None and job.state == "cancelled"
        rows = j.instances(result.job_id)
        assert {r["state"] for r in rows} <= {"stored", "unknown", "not-sent"}
        assert job.resumable == sum(r["state"] in ("unknown", "not-sent") for r in rows) >= 16


# -- resume after the peer was down ----------------------------------------------------------------------------


def test_peer_down_then_resume_sends_what_never_reached_it(tmp_path):
    casegen.make_ct(tmp_path / "in", 5, key="down-resume")
    port = free_port()
    journal = tmp_path / "j.sqlite"
    cfg = StoreConfig.from_dict({"remote_host": "127.0.0.1", "remote_port": port, "remote_ae_title": "TESTPACS", **fast()})
    first = run_send(SendRequest(cfg, paths=(str(tmp_path / "in"),), journal_path=str(journal)))
    assert first.job is not None and first.job.no_association
    assert all(o.state == "failed" and o.resumable and "connection refused" in o.message for o in first.job.outcomes)
    with Journal(journal) as j:
        assert [job.id for job in j.interrupted_jobs()] == [first.job_id]
        assert j.job(first.job_id).resumable == 5
    scp = RecordingSCP(port=port)
    try:
        again = run_send(SendRequest(journal_path=str(journal), rerun=Rerun()))
    finally:
        scp.stop()
    assert again.job_id == first.job_id and again.job is not None
    assert [o.state for o in again.job.outcomes] == ["stored"] * 5
    assert again.job_counts.get("stored") == 5


def test_resume_leaves_what_failed_for_its_own_reasons(scp_factory, tmp_path):
    """Refused by the peer, unreadable, SOP class not supported: ``retry`` sends those, ``resume`` does not."""
    folder = tmp_path / "mixed"
    casegen.make_ct(folder, 2, key="resume-mixed")
    mr = casegen.base_dataset("1.2.840.10008.5.1.4.1.1.4", "resume-mr", 0, "MR")
    mr.save_as(folder / "mr.dcm", enforce_file_format=True)
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\x00")
    scp = scp_factory(accept={CTImageStorage: UNCOMPRESSED}, policy=lambda req: 0xA900)
    journal = tmp_path / "j.sqlite"
    first = run_send(SendRequest(StoreConfig.from_dict(scp.config(**fast())), paths=(str(folder),), journal_path=str(journal)))
    assert first.job is not None and not any(o.resumable for o in first.job.outcomes)
    with Journal(journal) as j:
        assert j.job(first.job_id).resumable == 0 and not j.interrupted_jobs()
        assert prepare_rerun(j, first.job_id).items == []
        failed = sum(o.state == "failed" for o in first.job.outcomes)
        assert failed >= 3 and len(prepare_rerun(j, first.job_id, ("failed",)).items) == failed


def test_old_journal_not_sent_rows_stay_resumable(tmp_path):
    """Journals written before this change recorded "peer unavailable" as not-sent; a resume still takes them."""
    casegen.make_ct(tmp_path / "in", 3, key="old-journal")
    port = free_port()
    journal = tmp_path / "j.sqlite"
    cfg = StoreConfig.from_dict({"remote_host": "127.0.0.1", "remote_port": port, "remote_ae_title": "TESTPACS", **fast()})
    first = run_send(SendRequest(cfg, paths=(str(tmp_path / "in"),), journal_path=str(journal)))
    db = sqlite3.connect(journal)
    db.execute("UPDATE instances SET state = 'not-sent', resumable = 0")
    db.commit()
    db.close()
    with Journal(journal) as j:
        assert j.job(first.job_id).resumable == 3
        assert len(prepare_rerun(j, first.job_id).items) == 3


def test_journal_created_before_the_resumable_column_opens(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE instances (job TEXT NOT NULL, idx INTEGER NOT NULL, path TEXT, sop_class_uid TEXT, "
        "sop_instance_uid TEXT, size INTEGER, state TEXT NOT NULL, status TEXT, status_code INTEGER, message TEXT, "
        "transfer_syntax TEXT, attempts INTEGER NOT NULL DEFAULT 0, first_started REAL, last_started REAL, "
        "finished REAL, PRIMARY KEY (job, idx))"
    )
    db.execute("INSERT INTO instances (job, idx, state) VALUES ('j1', 0, 'not-sent')")
    db.commit()
    db.close()
    with Journal(path) as j:
        assert j.instances("j1")[0]["resumable"] == 0


def test_saved_config_with_the_old_retry_key_is_still_read():
    cfg = StoreConfig.from_dict({"remote_host": "h", "remote_port": 104, "remote_ae_title": "A", "retry_attempts": 0})
    assert cfg.max_resends == 0 and cfg.reconnect_attempts == 0
    both = StoreConfig.from_dict(
        {"remote_host": "h", "remote_port": 104, "remote_ae_title": "A", "retry_attempts": 2, "max_resends": 0}
    )
    assert both.max_resends == 0 and both.reconnect_attempts == 2
    assert "retry_attempts" in StoreConfig.known_keys()
    with pytest.raises(ValueError, match="max_resends"):
        StoreConfig.from_dict({"remote_host": "h", "remote_port": 104, "remote_ae_title": "A", "max_resends": -1})


def test_cli_resend_options_named_for_what_they_do(run_cli, tmp_path):
    casegen.make_ct(tmp_path / "in", 1, key="cli-flags")
    bad = run_cli("send", "--host", "127.0.0.1", "--port", "104", "--called-ae", "X", "--max-resends", "-1", str(tmp_path / "in"))
    assert bad.returncode == 2 and "--max-resends" in bad.stderr, bad.stderr
    helptext = " ".join(run_cli("send", "--help").stdout.split())
    assert "0 = never re-send an instance" in helptext and "never re-sends an instance" in helptext
