"""The send journal, resume, retry and jobs (issue 5, items 1-2)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from core import events as ev
from core.engine import SendJob, items_from_inputs
from core.journal import RESUME_STATES, RETRY_STATES, Journal, default_journal_path, public_options
from core.outcomes import InstanceOutcome, InstanceState, Status
from core.send import prepare_rerun
from helpers.badpeers import Act, BadPeer, make_ct
from helpers.process import PROJECT_ROOT, run_cli

pytestmark = pytest.mark.timeout(120)


def config(port: int, **kw):
    return {
        "remote_host": "127.0.0.1",
        "remote_port": port,
        "remote_ae_title": "BADPEER",
        "dimse_timeout": 2,
        "network_timeout": 2,
        "retry_backoff_s": 0.05,
        **kw,
    }


def run_job(journal: Journal, job_id: str, port: int, paths, **kw):
    items = items_from_inputs(paths)
    journal.create_job(job_id, "test", f"BADPEER@127.0.0.1:{port}", {"config": config(port, **kw)}, items)
    return SendJob(config(port, **kw), on_event=journal.recorder(job_id), job_id=job_id).run(items)


def test_journal_records_every_instance_and_attempt(tmp_path):
    paths = make_ct(tmp_path / "in", 5, 32, "j1")
    script = lambda req: Act(status=0xA700) if req.n == 2 else Act(status=0xA900) if req.n == 5 else Act()  # noqa: E731
    with BadPeer(script) as peer, Journal(tmp_path / "j.sqlite") as journal:
        run_job(journal, "job1", peer.port, paths)
        rows = journal.instances("job1")
        job = journal.job("job1")
        attempts = journal.attempts("job1", 1)
        mode = journal._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert [r["state"] for r in rows] == ["stored", "stored", "stored", "failed", "stored"]
    assert rows[3]["status_code"] == 0xA900 and "0xA900" in rows[3]["message"]
    assert rows[0]["path"] == paths[0] and rows[0]["sop_instance_uid"] and rows[0]["transfer_syntax"]
    assert [a["status_code"] for a in attempts] == [0xA700, 0x0000] and rows[1]["attempts"] == 2
    assert job.state == "finished" and job.counts["stored"] == 4 and job.counts["failed"] == 1


def test_events_reach_the_front_end_only_after_the_journal_recorded_them(tmp_path):
    """Grouped commits (issue 15): an outcome is passed on once its group is committed, read from another connection."""
    paths = make_ct(tmp_path / "in", 4, 32, "j2")
    path = tmp_path / "j.sqlite"
    finished, started = [], []
    with BadPeer() as peer, Journal(path) as journal:
        items = items_from_inputs(paths)
        journal.create_job("job2", None, None, {"config": config(peer.port)}, items)
        other = sqlite3.connect(path, check_same_thread=False)  # events come from the journal's thread too

        def front(e):
            if isinstance(e, ev.InstanceStarted | ev.InstanceFinished):
                state = other.execute("SELECT state FROM instances WHERE job='job2' AND idx=?", (e.index,)).fetchone()[0]
                (started if isinstance(e, ev.InstanceStarted) else finished).append(state)

        rec = journal.recorder("job2", front)
        SendJob(config(peer.port), on_event=rec, job_id="job2").run(items)
        other.close()
    assert finished == ["stored"] * 4
    assert set(started) <= {"in-flight", "stored"}, started  # a start and its end may share a group


def test_outcomes_arriving_together_share_a_commit(tmp_path):
    """Grouped commits: 1,000 outcomes handed over back to back need far fewer commits than outcomes.

    (How many depends on the clock only through the 5 ms idle rule, so the bound is loose.)
    """
    items = items_from_inputs(make_ct(tmp_path / "in", 1, 16, "jg"))
    with Journal(tmp_path / "j.sqlite") as journal:
        journal.create_job("jg", None, None, {"config": config(11112)}, items * 1)
        rec = journal.recorder("jg")
        rec(ev.JobStarted("jg", 1, 0))
        outcome = InstanceOutcome(0, None, Status.SUCCESS, InstanceState.STORED, "stored", status_code=0)
        for _ in range(1000):
            rec(ev.InstanceStarted(0, "1.2.840.10008.1.2.1"))
            rec(ev.InstanceFinished(0, outcome))
        rec(ev.JobFinished({}, None, False))
        assert journal.job("jg").counts.get("stored") == 1
    assert 1 <= rec.groups <= 200, rec.groups


def test_crash_leaves_in_flight_and_resume_selects_it(tmp_path):
    paths = make_ct(tmp_path / "in", 4, 32, "j3")
    items = items_from_inputs(paths)
    with Journal(tmp_path / "j.sqlite") as journal:
        journal.create_job("job3", "p", "peer", {"config": config(11112)}, items)
        rec = journal.recorder("job3")
        rec(ev.JobStarted("job3", 4, 0))
        rec(ev.InstanceStarted(0, "1.2.840.10008.1.2.1"))
        rec(ev.InstanceFinished(0, InstanceOutcome(0, None, Status.SUCCESS, InstanceState.STORED, "stored", status_code=0)))
        rec(ev.InstanceStarted(1, "1.2.840.10008.1.2.1"))
        # the process dies here: simulate by pretending its pid is gone
        journal._db.execute("UPDATE jobs SET pid = 999999999 WHERE id = 'job3'")
    with Journal(tmp_path / "j.sqlite") as journal:
        job = journal.job("job3")
        assert job.state == "interrupted" and job.counts == {"total": 4, "stored": 1, "in-flight": 1, "pending": 2}
        assert [j.id for j in journal.interrupted_jobs()] == ["job3"]
        plan = prepare_rerun(journal, "job3", RESUME_STATES)
        assert [it.index for it in plan.items] == [1, 2, 3]
        assert plan.config["remote_port"] == 11112
        attempts = journal.attempts("job3", 1)
        assert len(attempts) == 1 and attempts[0]["result"] is None  # cut short


def test_rerun_refuses_a_changed_file(tmp_path):
    paths = make_ct(tmp_path / "in", 2, 32, "j4")
    with Journal(tmp_path / "j.sqlite") as journal:
        journal.create_job("job4", None, None, {"config": config(11112)}, items_from_inputs(paths))
        make_ct(tmp_path / "other", 1, 32, "another")[0]
        os.replace(tmp_path / "other" / "ct_0001.dcm", paths[0])
        plan = prepare_rerun(journal, "job4", RETRY_STATES)
    assert plan.items[0].inst.status == "failure" and "changed since the job started" in plan.items[0].inst.reason
    assert plan.items[1].inst.status == "ok"


def test_options_never_hold_secrets():
    opts = public_options(
        {
            "config": {
                "tls_key_password": "hunter2",
                "tls_key_password_keyring": "entry",
                "tls_client_key_file": "/k.pem",
                "remote_host": "h",
            },
            "api_key": "x",
        }
    )
    assert opts == {"config": {"tls_key_password_keyring": "entry", "tls_client_key_file": "/k.pem", "remote_host": "h"}}


def test_default_journal_under_user_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("DICOM_COURIER_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_journal_path().startswith(str(tmp_path)) and default_journal_path().endswith("journal.sqlite")
    monkeypatch.setenv("DICOM_COURIER_DATA_DIR", str(tmp_path / "d"))
    assert default_journal_path() == str(tmp_path / "d" / "journal.sqlite")


# -- CLI ---------------------------------------------------------------------------------------------------


def cli(*args, env=None, timeout=120):
    return run_cli(*args, env=env, timeout=timeout)


def target(peer):
    return [
        "--host",
        "127.0.0.1",
        "--port",
        str(peer.port),
        "--called-ae",
        "BADPEER",
        "--dimse-timeout",
        "3",
        "--network-timeout",
        "3",
    ]


def test_cli_send_retry_jobs(tmp_path):
    make_ct(tmp_path / "in", 6, 32, "cli1")
    refusing = {"on": True}
    journal = str(tmp_path / "j.sqlite")
    with BadPeer(lambda req: Act(status=0xC000) if refusing["on"] and req.n in (2, 4) else Act()) as peer:
        first = cli("send", *target(peer), "--journal", journal, str(tmp_path / "in"))
        assert first.returncode == 1, first.stderr
        assert first.stderr.startswith("job ")
        job_id = first.stderr.split()[1]
        listing = json.loads(cli("jobs", "--journal", journal, "--json").stdout)
        assert listing[0]["id"] == job_id and listing[0]["stored"] == 4 and listing[0]["failed"] == 2
        assert {"id", "started", "profile"} <= set(listing[0])
        refusing["on"] = False
        report = tmp_path / "retry.json"
        again = cli("retry", job_id[:6], "--journal", journal, "--report", str(report))
        assert again.returncode == 0, again.stderr
        assert len(peer.log) == 8  # 6 + the 2 failed ones, nothing stored sent again
    rep = json.loads(report.read_text())
    assert [i["status"] for i in rep["instances"]] == ["success"] * 6
    assert [a["status_code"] for a in rep["instances"][1]["attempts_detail"]] == [0xC000, 0x0000]
    text = cli("jobs", "--journal", journal).stdout
    assert job_id in text and "finished" in text
    assert cli("retry", "nosuchjob", "--journal", journal).returncode == 2


def test_cli_kill_then_resume(tmp_path):
    make_ct(tmp_path / "in", 40, 32, "cli2")
    journal = str(tmp_path / "j.sqlite")
    with BadPeer(lambda req: Act(silent=0.05)) as peer:
        proc = subprocess.Popen(
            [sys.executable, "main.py", "send", *target(peer), "--journal", journal, str(tmp_path / "in")],
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.monotonic() + 60
        while sum(peer.seen.values()) < 10 and time.monotonic() < end:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with Journal(journal) as j:
            job = j.jobs()[0]
            assert job.state == "interrupted"
            # grouped commits (issue 15): the last group may be uncommitted: in flight or pending
            not_stored = {r["sop_instance_uid"] for r in j.instances(job.id) if r["state"] not in ("stored", "stored-warning")}
        resumed = cli("resume", "--journal", journal)
        assert resumed.returncode == 0, resumed.stderr
        assert cli("resume", "--journal", journal).stderr.startswith("nothing to resume")
    assert len(peer.seen) == 40
    dups = {u for u, c in peer.seen.items() if c > 1}
    assert dups <= not_stored, "an instance the journal had recorded as stored was sent again"


def test_cli_journal_errors_and_defaults(tmp_path):
    env = {**os.environ, "DICOM_COURIER_DATA_DIR": str(tmp_path / "data")}
    missing = cli("jobs", "--journal", str(tmp_path / "nope.sqlite"), env=env)
    assert missing.returncode == 2 and "no journal" in missing.stderr
    assert cli("jobs", "--json", env=env).stdout.strip() == "[]"  # the default journal, empty
    assert cli("resume", env=env).stderr.startswith("nothing to resume")


def test_synchronous_mode(tmp_path, monkeypatch):
    with Journal(tmp_path / "a.sqlite") as j:
        assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    monkeypatch.setenv("DICOM_COURIER_JOURNAL_SYNC", "full")
    with Journal(tmp_path / "b.sqlite") as j:
        assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
