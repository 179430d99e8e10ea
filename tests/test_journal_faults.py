"""The journal under faults (issue 13 items 1, 2, 6, 8; issue 15 item 2).

One runner per job, a journal on a full or read-only file system, a damaged journal, file names
that are not UTF-8, grouped commits and memory that does not grow with the corpus. The file
systems are real: a 160 KiB tmpfs, a read-only bind mount, an immutable file (``chattr +i``),
damaged SQLite files; the peers are real (:class:`helpers.badpeers.BadPeer`, pynetdicom).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from core import events as ev
from core.config import StoreConfig
from core.engine import Item, items_from_inputs
from core.errors import JobBusyError
from core.journal import GROUP_MAX, GROUP_S, Journal
from core.outcomes import Attempt, AttemptResult, InstanceOutcome, InstanceState, Status
from core.report import build_report, write_report
from core.scan import ScannedInstance
from core.send import Rerun, SendRequest, run_send
from helpers.badpeers import Act, BadPeer, make_ct
from helpers.process import PROJECT_ROOT, run_cli

pytestmark = pytest.mark.timeout(240)

NON_UTF8 = b"IM_\xe9t\xe9.dcm"


def config(port: int, **kw) -> dict:
    return {
        "remote_host": "127.0.0.1",
        "remote_port": port,
        "remote_ae_title": "BADPEER",
        "dimse_timeout": 5,
        "network_timeout": 5,
        "retry_backoff_s": 0.05,
        **kw,
    }


def target(peer: BadPeer) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(peer.port), "--called-ae", "BADPEER", "--dimse-timeout", "5"]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def interrupted(journal_path: Path, paths: list[str], port: int, job_id: str = "crashed") -> str:
    """A job as a sender killed before its first C-STORE leaves it: every instance pending, its pid dead."""
    with Journal(journal_path) as j:
        j.create_job(job_id, "test", f"BADPEER@127.0.0.1:{port}", {"config": config(port)}, items_from_inputs(paths))
    db = sqlite3.connect(journal_path)
    with db:
        db.execute("UPDATE jobs SET state = 'running', pid = ? WHERE id = ?", (dead_pid(), job_id))
    db.close()
    return job_id


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


# -- real file systems -------------------------------------------------------------------------------------


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount ({' '.join(args)}): {proc.stderr.strip()} (needs root)")


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 160 KiB tmpfs (grow it with ``mount -o remount,size=...``)."""
    where = tmp_path / "tmpfs"
    where.mkdir()
    _mount("-t", "tmpfs", "-o", "size=160k", "tmpfs", str(where))
    try:
        yield where
    finally:
        _umount(where)


@pytest.fixture
def read_only_bind(tmp_path):
    """``(rw, ro)``: a folder and a read-only bind mount of it."""
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    _mount("--bind", str(rw), str(ro))
    try:
        _mount("-o", "remount,bind,ro", str(ro))
        yield rw, ro
    finally:
        _umount(ro)


@pytest.fixture
def immutable(tmp_path):
    """``make(path)``: set the immutable attribute (``chattr +i``: every write fails, open files too); undone at the end."""
    done: list[Path] = []

    def make(path: Path) -> None:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here")
        done.append(path)

    yield make
    for path in done:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


# -- 1. one runner per job -----------------------------------------------------------------------------------


def test_a_job_is_claimed_by_one_holder_named_when_busy(tmp_path):
    paths = make_ct(tmp_path / "in", 3, 32, "claim1")
    path = tmp_path / "j.sqlite"
    with Journal(path) as a:
        a.create_job("job1", None, None, {"config": config(11112)}, items_from_inputs(paths))
        with Journal(path) as b:
            with pytest.raises(JobBusyError) as busy:
                b.claim("job1")
            assert busy.value.pid == os.getpid() and busy.value.host == socket.gethostname()
            assert f"process {os.getpid()} on {socket.gethostname()} since " in busy.value.message
            assert b.job("job1").state == "running"
            a.release("job1")
            assert b.job("job1").state == "interrupted"
            assert b.claim("job1") == 2  # the second run
            with pytest.raises(JobBusyError):
                a.claim("job1")


def test_a_reused_pid_does_not_hold_a_job(tmp_path):
    """The pid of the claim is alive, but its process started after the claim: the holder is gone."""
    if not os.path.exists(f"/proc/{os.getppid()}/stat"):
        pytest.skip("needs /proc")
    paths = make_ct(tmp_path / "in", 2, 32, "claim2")
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.create_job("job2", None, None, {"config": config(11112)}, items_from_inputs(paths))
        j._claims.clear()
        j._db.execute("UPDATE jobs SET pid = ?, locked_since = ? WHERE id = 'job2'", (os.getppid(), time.time()))
        assert j.job("job2").state == "running"  # a live process that was there before the claim
        with pytest.raises(JobBusyError):
            j.claim("job2")
        j._db.execute("UPDATE jobs SET locked_since = 1000.0 WHERE id = 'job2'")  # claimed in 1970
        assert j.job("job2").state == "interrupted"
        assert j.claim("job2") == 2


def test_concurrent_resumes_send_each_instance_once(tmp_path):
    """Five ``resume`` processes started 50 ms apart: one sends, the others name it and exit 2 (or find nothing left).

    Reading 600 files back takes the first a moment: on main the others resumed the same job
    in that window and sent hundreds of instances twice.
    """
    n = 600
    paths = make_ct(tmp_path / "in", n, 32, "claim3")
    journal = tmp_path / "j.sqlite"
    with BadPeer(lambda req: Act(silent=0.003)) as peer:
        interrupted(journal, paths, peer.port)
        cmd = [sys.executable, "main.py", "resume", "--journal", str(journal)]
        procs = []
        for _ in range(5):
            procs.append(subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            time.sleep(0.05)
        outs = [p.communicate(timeout=180) for p in procs]
    rcs = [p.returncode for p in procs]
    errs = [o[1] for o in outs]
    assert all("Traceback" not in e for e in errs), errs
    assert len(peer.seen) == n
    assert max(peer.seen.values()) == 1, f"{sum(peer.seen.values()) - n} duplicates; rcs {rcs}"
    assert rcs.count(0) >= 1 and set(rcs) <= {0, 2}, (rcs, errs)
    for rc, err in zip(rcs, errs, strict=True):
        if rc == 2:
            assert "is already being sent by process" in err and " since " in err, err


def test_resume_of_a_job_being_sent_names_the_sender_and_exits_2(tmp_path):
    make_ct(tmp_path / "in", 60, 32, "claim4")
    journal = str(tmp_path / "j.sqlite")
    with BadPeer(lambda req: Act(silent=0.05)) as peer:
        send = subprocess.Popen(
            [sys.executable, "main.py", "send", *target(peer), "--journal", journal, str(tmp_path / "in")],
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        end = time.monotonic() + 60
        while sum(peer.seen.values()) < 5 and time.monotonic() < end:
            time.sleep(0.02)
        job_id = json.loads(run_cli("jobs", "--journal", journal, "--json").stdout)[0]["id"]
        by_id = run_cli("resume", job_id, "--journal", journal)
        latest = run_cli("resume", "--journal", journal)
        err = send.communicate(timeout=120)[1]
    assert send.returncode == 0, err
    for second in (by_id, latest):
        no_traceback(second)
        assert second.returncode == 2, second.stderr
        assert f"job {job_id} is already being sent by process {send.pid} on {socket.gethostname()} since " in second.stderr
    assert len(peer.seen) == 60 and max(peer.seen.values()) == 1


# -- 2. a journal that cannot be written stops the send; a damaged one is set aside ----------------------------


def test_a_full_disk_stops_the_send_and_resume_sends_only_what_was_not_recorded(tmp_path, small_tmpfs):
    """The issue's case: the default journal on a 160 KiB tmpfs, 200 instances (on main: "Stored 200 of 200", exit 0)."""
    make_ct(tmp_path / "in", 200, 64, "full1")
    env = {**os.environ, "DICOM_COURIER_DATA_DIR": str(small_tmpfs)}
    report = tmp_path / "r.json"
    with BadPeer(lambda req: Act(silent=0.002)) as peer:
        first = run_cli("send", *target(peer), "--report", report, tmp_path / "in", env=env)
        sent_first = sum(peer.seen.values())
        subprocess.run(["mount", "-o", "remount,size=16m", str(small_tmpfs)], check=True)  # space is freed
        with Journal(small_tmpfs / "journal.sqlite") as j:
            job = j.jobs()[0]
            recorded = {r["sop_instance_uid"] for r in j.instances(job.id) if r["state"] == "stored"}
        resumed = run_cli("resume", env=env)
    no_traceback(first)
    assert first.returncode == 1, first.stderr
    assert "cannot write the send journal" in first.stderr and "the send stops" in first.stderr
    assert "Stored 200 of 200" not in first.stderr
    assert job.state == "interrupted"
    entries = json.loads(report.read_text())["instances"]
    reported = {e["sop_instance_uid"] for e in entries if e["status"] in ("success", "warning")}
    assert reported == recorded, "the report and the journal disagree about what is stored"
    assert f"Stored {len(recorded)} of 200" in first.stderr
    unrecorded = [e for e in entries if e["message"].startswith("outcome not recorded")]
    assert sent_first < 200 and len(unrecorded) <= GROUP_MAX
    assert resumed.returncode == 0, resumed.stderr
    assert len(peer.seen) == 200, "an instance was lost"
    twice = {u for u, n in peer.seen.items() if n > 1}
    assert twice <= {e["sop_instance_uid"] for e in unrecorded}, "an instance recorded as stored was sent again"


def _send_and_break_journal(tmp_path: Path, journal_path: Path, peer: BadPeer, breaker, after: int = 40):
    """run_send of 150 instances; `breaker()` runs once the front end has seen `after` outcomes."""
    paths = make_ct(tmp_path / "in", 150, 32, "break")
    seen: list[ev.Event] = []
    fired = threading.Event()

    def front(event: ev.Event) -> None:
        seen.append(event)
        done = sum(isinstance(e, ev.InstanceFinished) for e in seen)
        if done >= after and not fired.is_set():
            fired.set()
            breaker()

    request = SendRequest(
        StoreConfig.from_dict(config(peer.port)),
        paths=tuple(paths),
        journal_path=str(journal_path),
        journal_required=True,
        report_path=str(tmp_path / "r.csv"),
    )
    return run_send(request, front), seen


def _check_honest(result, journal_path: Path, peer: BadPeer, seen: list[ev.Event], report: Path) -> None:
    """What the send reported stored is exactly what the journal recorded; the send stopped early."""
    assert result.journal_error and "cannot write the send journal" in result.journal_error
    assert any(isinstance(e, ev.JournalFailed) for e in seen)
    with Journal(journal_path) as j:
        rows = j.instances(result.job_id)
        assert j.job(result.job_id).state == "interrupted"
    recorded = {r["idx"] for r in rows if r["state"] == "stored"}
    reported = {o.index for o in result.job.outcomes if o.stored}
    assert reported == recorded
    shown = {e.index for e in seen if isinstance(e, ev.InstanceFinished) and e.outcome.stored}
    assert shown == recorded, "the front end was shown stored what the journal did not record"
    [end] = [e for e in seen if isinstance(e, ev.JobFinished)]
    assert end.summary["success"] == len(recorded) and end.error == result.journal_error and not end.cancelled
    assert 40 <= len(recorded) < 150 and sum(peer.seen.values()) < 150
    assert not result.job.cancelled and result.job.error == result.journal_error
    with open(report, newline="", encoding="utf-8") as f:
        assert sum(r["status"] == "success" for r in csv.DictReader(f)) == len(recorded)


def _resume_sends_the_rest(journal_path: Path, peer: BadPeer, result) -> None:
    before = dict(peer.seen)
    again = run_send(SendRequest(journal_path=str(journal_path), journal_required=True, rerun=Rerun(result.job_id)))
    assert again.journal_error is None and again.job_counts["stored"] == 150
    assert len(peer.seen) == 150
    resent = {u for u, n in peer.seen.items() if n > before.get(u, 0)}
    unrecorded = {o.sop_instance_uid for o in result.job.outcomes if o.message.startswith("outcome not recorded")}
    assert {u for u in resent if u in before} <= unrecorded  # only the uncommitted group goes twice


def test_disk_full_mid_send_stops_between_instances_honestly(tmp_path, small_tmpfs):
    subprocess.run(["mount", "-o", "remount,size=2m", str(small_tmpfs)], check=True)
    journal_path = small_tmpfs / "j.sqlite"
    filler = small_tmpfs / "filler"

    def fill() -> None:
        try:
            with open(filler, "wb", buffering=0) as f:
                while True:
                    f.write(b"\0" * 4096)
        except OSError:
            pass

    with BadPeer(lambda req: Act(silent=0.003)) as peer:
        result, seen = _send_and_break_journal(tmp_path, journal_path, peer, fill)
        assert "full" in result.journal_error
        filler.unlink()
        _check_honest(result, journal_path, peer, seen, tmp_path / "r.csv")
        _resume_sends_the_rest(journal_path, peer, result)


def test_journal_that_becomes_read_only_mid_send_stops_it(tmp_path, immutable):
    journal_path = tmp_path / "j.sqlite"

    def freeze() -> None:
        for suffix in ("", "-wal"):
            immutable(Path(str(journal_path) + suffix))

    with BadPeer(lambda req: Act(silent=0.003)) as peer:
        result, seen = _send_and_break_journal(tmp_path, journal_path, peer, freeze)
        for suffix in ("", "-wal"):
            subprocess.run(["chattr", "-i", str(journal_path) + suffix], check=True)
        _check_honest(result, journal_path, peer, seen, tmp_path / "r.csv")
        _resume_sends_the_rest(journal_path, peer, result)


def test_read_only_journal_sends_nothing_and_says_so(tmp_path, read_only_bind):
    rw, ro = read_only_bind
    make_ct(tmp_path / "in", 3, 32, "ro1")
    with BadPeer() as peer:
        interrupted(rw / "j.sqlite", sorted(str(p) for p in (tmp_path / "in").iterdir()), peer.port)
        send = run_cli("send", *target(peer), "--journal", ro / "new.sqlite", tmp_path / "in")
        resume = run_cli("resume", "--journal", ro / "j.sqlite")
        jobs = run_cli("jobs", "--journal", ro / "j.sqlite")
    for proc in (send, resume, jobs):
        no_traceback(proc)
        assert proc.returncode == 2, proc.stderr
        assert "journal" in proc.stderr
    assert not peer.seen


def _damaged_journal(path: Path, how: str, seed: int = 0) -> None:
    """A journal of 3 jobs x 300 instances, then damaged (`how`): pages overwritten, page-header bits flipped, the tail cut."""
    items = [
        Item(i, f"/data/IM{i:04d}.dcm", ScannedInstance(f"/data/IM{i:04d}.dcm", sop_instance_uid=f"1.2.3.{i}", size=10))
        for i in range(300)
    ]
    with Journal(path) as j:
        for n in range(3):
            j.create_job(f"job{n}", "p", "PEER@h:104", {"config": {}}, items)
    data = bytearray(path.read_bytes())
    page = 4096
    pages = len(data) // page
    assert pages > 8 and not Path(str(path) + "-wal").exists()
    rng = random.Random(seed)
    if how == "pages":  # damaged pages, intact header
        for p in range(2, 6):
            data[p * page : (p + 1) * page] = rng.randbytes(page)
    elif how == "bits":  # a flipped bit in each b-tree page's type
        for p in range(1, pages):
            data[p * page] ^= 0x10
    elif how == "tail":  # the file cut
        del data[len(data) // 2 :]
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["pages", "bits", "tail"])
def test_a_damaged_journal_is_set_aside_with_a_message(tmp_path, how):
    for command in ("jobs", "resume"):
        path = tmp_path / command / "journal.sqlite"
        path.parent.mkdir()
        _damaged_journal(path, how)
        proc = run_cli(command, "--journal", path)
        no_traceback(proc)
        assert proc.returncode == 0, proc.stderr
        assert "damaged" in proc.stderr and "moved to" in proc.stderr, proc.stderr
        [aside] = list(path.parent.glob("journal.sqlite.corrupt-*"))
        assert aside.stat().st_size > 8 * 4096
        with Journal(path) as j:
            assert j.jobs() == []  # a fresh journal


def test_random_damage_never_ends_in_a_traceback(tmp_path):
    """Flipped bits anywhere (the check on opening may not see them all): jobs and resume end with a message."""
    base = tmp_path / "base.sqlite"
    _damaged_journal(base, "none")
    clean = base.read_bytes()
    rng = random.Random(13)
    for trial in range(6):
        path = tmp_path / f"t{trial}" / "journal.sqlite"
        path.parent.mkdir()
        data = bytearray(clean)
        for _ in range(40):
            data[rng.randrange(100, len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        for command in ("jobs", "resume"):
            proc = run_cli(command, "--journal", path)
            no_traceback(proc)
            assert proc.returncode in (0, 2), proc.stderr


def test_a_file_that_is_not_a_journal_is_left_alone(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a journal\n" * 400)
    proc = run_cli("jobs", "--journal", path)
    no_traceback(proc)
    assert proc.returncode == 2 and "cannot open the journal" in proc.stderr
    assert path.read_text() == "not a journal\n" * 400 and not list(tmp_path.glob("*.corrupt-*"))


# -- 3. grouped commits ---------------------------------------------------------------------------------------


def test_outcomes_are_committed_in_groups(tmp_path):
    paths = make_ct(tmp_path / "in", 300, 32, "group1")
    with BadPeer() as peer:
        result = run_send(
            SendRequest(StoreConfig.from_dict(config(peer.port)), paths=tuple(paths), journal_path=str(tmp_path / "j.sqlite"))
        )
    with Journal(tmp_path / "j.sqlite") as j:
        job = j.job(result.job_id)
        attempts = j.attempts(result.job_id)
    assert job.state == "finished" and job.counts["stored"] == 300
    assert [(a["idx"], a["attempt"], a["result"]) for a in attempts] == [(i, 1, "success") for i in range(300)]


def test_a_lone_outcome_is_committed_within_the_group_time(tmp_path):
    paths = make_ct(tmp_path / "in", 2, 32, "group2")
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.create_job("g2", None, None, {"config": {}}, items_from_inputs(paths))
        rec = j.recorder("g2")
        rec(ev.JobStarted("g2", 2, 0))
        rec(ev.InstanceStarted(0, "1.2.840.10008.1.2.1"))
        rec(ev.InstanceFinished(0, InstanceOutcome(0, paths[0], Status.SUCCESS, InstanceState.STORED, "stored", 0)))
        groups = rec.groups
        time.sleep(GROUP_S + 0.25)  # nothing else happens: the send waits for a slow peer
        other = sqlite3.connect(path)
        state = other.execute("SELECT state FROM instances WHERE job = 'g2' AND idx = 0").fetchone()[0]
        other.close()
        assert state == "stored" and rec.groups == groups + 1


CRASH = """
import os, sys, time
sys.path[:0] = [{root!r}, {tests!r}]
from core import events as ev
from core.engine import Item
from core.journal import Journal
from core.outcomes import Attempt, AttemptResult, InstanceOutcome, InstanceState, Status
from core.scan import ScannedInstance
n = 700
j = Journal({path!r})
items = [Item(i, f"/x/{{i}}", ScannedInstance(f"/x/{{i}}", size=1)) for i in range(n)]
j.create_job("crash", None, None, {{"config": {{}}}}, items)
rec = j.recorder("crash")
rec(ev.JobStarted("crash", n, n))
for i in range(n):
    rec(ev.InstanceStarted(i, "1.2.840.10008.1.2.1"))
    a = Attempt(1, time.time(), "1.2.840.10008.1.2.1", 0, AttemptResult.SUCCESS, 0, "Success", 0.001)
    rec(ev.InstanceFinished(i, InstanceOutcome(i, f"/x/{{i}}", Status.SUCCESS, InstanceState.STORED, "stored", 0,
                                               tries=1, attempts_detail=(a,))))
os._exit(0)  # kill -9: no close, no final commit
"""


def test_a_crash_loses_at_most_the_last_group(tmp_path):
    path = tmp_path / "j.sqlite"
    script = CRASH.format(root=str(PROJECT_ROOT), tests=str(PROJECT_ROOT / "tests"), path=str(path))
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with Journal(path) as j:
        job = j.job("crash")
        rows = j.instances("crash")
    assert job.state == "interrupted"
    stored = [r["idx"] for r in rows if r["state"] == "stored"]
    assert stored == list(range(len(stored))), "outcomes are committed in order"
    assert 700 - len(stored) <= GROUP_MAX, f"{700 - len(stored)} outcomes lost, more than one group"
    assert all(r["state"] in ("pending", "in-flight") for r in rows[len(stored) :]), "a resume sends the rest"


# -- 4. file names that are not UTF-8 -------------------------------------------------------------------------


@pytest.fixture
def odd_names(tmp_path):
    """Three CT files, the second named with bytes that are not UTF-8 (the test's folder path is ASCII)."""
    folder = tmp_path / "in"
    paths = make_ct(folder, 3, 32, "names")
    odd = os.path.join(os.fsencode(folder), NON_UTF8)
    os.rename(paths[1], odd)
    return folder, os.fsdecode(odd)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_non_utf8_names_are_sent_journalled_and_reported_losslessly(tmp_path, odd_names, fmt):
    folder, odd = odd_names
    report = tmp_path / f"r.{fmt}"
    journal = tmp_path / "j.sqlite"
    with BadPeer() as peer:
        result = run_send(
            SendRequest(
                StoreConfig.from_dict(config(peer.port)),
                paths=(str(folder),),
                journal_path=str(journal),
                report_path=str(report),
            )
        )
    assert len(peer.seen) == 3 and all(o.stored for o in result.job.outcomes)
    with Journal(journal) as j:
        paths = [r["path"] for r in j.instances(result.job_id)]
        kinds = [r[0] for r in j._db.execute("SELECT typeof(path) FROM instances ORDER BY idx")]
    assert odd in paths and kinds.count("blob") == 1
    if fmt == "json":
        entries = json.loads(report.read_text(encoding="utf-8"))["instances"]
    else:
        with open(report, newline="", encoding="utf-8") as f:
            entries = list(csv.DictReader(f))
    [entry] = [e for e in entries if e.get("path_b64")]
    assert entry["path"].endswith("IM_\\xe9t\\xe9.dcm")  # readable
    assert base64.b64decode(entry["path_b64"]) == os.fsencode(odd)  # exact
    assert os.path.exists(base64.b64decode(entry["path_b64"]))
    assert sum(bool(e.get("path_b64")) for e in entries) == 1


def test_a_non_utf8_name_is_resumed(tmp_path, odd_names):
    folder, odd = odd_names
    journal = tmp_path / "j.sqlite"
    with BadPeer() as peer:
        interrupted(journal, sorted(os.path.join(folder, n) for n in os.listdir(folder)), peer.port)
        again = run_send(SendRequest(journal_path=str(journal), journal_required=True, rerun=Rerun("crashed")))
    assert again.job_counts["stored"] == 3 and len(peer.seen) == 3
    assert odd in [o.path for o in again.job.outcomes]


def test_cli_prints_non_utf8_names_without_a_traceback(tmp_path, odd_names):
    """Under a UTF-8 locale stdout is strict: the names are printed readably, never as a UnicodeEncodeError."""
    folder, _ = odd_names
    env = {**os.environ, "LANG": "en_US.UTF-8", "LC_ALL": "en_US.UTF-8", "PYTHONUTF8": "0"}
    with BadPeer(lambda req: Act(status=0xA900)) as peer:  # each refusal is printed with its file name
        runs = [
            subprocess.run(
                [sys.executable, "main.py", "send", *target(peer), *args, str(folder)],
                cwd=PROJECT_ROOT,
                capture_output=True,
                env=env,
                timeout=120,
            )
            for args in (["--journal", str(tmp_path / "j.sqlite"), "--report", str(tmp_path / "r.csv")], ["--dry-run"])
        ]
    send, dry = ((p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")) for p in runs)
    assert "Traceback" not in send[2] + dry[2], send[2] + dry[2]
    assert send[0] == 1, send[2]
    named = ("IM_\\xe9t\\xe9.dcm", "IM_\\udce9t\\udce9.dcm")  # core.report.readable, or Python's backslashreplace
    assert any(n in send[2] for n in named), send[2]
    assert dry[0] == 0 and any(n in dry[1] for n in named), dry[1]


# -- 5. memory: the recorder and the report do not grow with the corpus ---------------------------------------


def _outcome(i: int) -> InstanceOutcome:
    a = Attempt(1, 1.0, "1.2.840.10008.1.2.1", 0, AttemptResult.SUCCESS, 0, "Success", 0.001)
    return InstanceOutcome(
        i,
        f"/data/IM{i:06d}.dcm",
        Status.SUCCESS,
        InstanceState.STORED,
        "stored (sent as stored)",
        0,
        "1.2.840.10008.5.1.4.1.1.2",
        f"1.2.3.{i}",
        "1.2.840.10008.1.2.1",
        tries=1,
        attempts_detail=(a,),
    )


def _recorder_peak(tmp_path: Path, n: int) -> int:
    items = [Item(i, f"/data/IM{i:06d}.dcm", ScannedInstance(f"/data/IM{i:06d}.dcm", size=1)) for i in range(n)]
    with Journal(tmp_path / f"m{n}.sqlite") as j:
        j.create_job("m", None, None, {"config": {}}, items)
        del items
        rec = j.recorder("m")
        tracemalloc.start()
        rec(ev.JobStarted("m", n, n))
        for i in range(n):
            rec(ev.InstanceStarted(i, "1.2.840.10008.1.2.1"))
            rec(ev.InstanceFinished(i, _outcome(i)))
        rec(ev.JobFinished({}))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_the_recorder_keeps_nothing_per_instance(tmp_path):
    small, large = _recorder_peak(tmp_path, 5_000), _recorder_peak(tmp_path, 40_000)
    assert large - small < 500_000, f"{small / 1e6:.2f} MB for 5,000 outcomes, {large / 1e6:.2f} MB for 40,000"


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_the_report_is_streamed(tmp_path, fmt):
    def peak(n: int) -> int:
        report = build_report(lambda: (_outcome(i) for i in range(n)), {"total": n}, [], {"id": "x"})
        tracemalloc.start()
        write_report(tmp_path / f"r{n}.{fmt}", report)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top

    small, large = peak(2_000), peak(40_000)
    assert large - small < 500_000, f"{small / 1e6:.2f} MB for 2,000 entries, {large / 1e6:.2f} MB for 40,000"


def test_streamed_json_is_what_json_dump_writes(tmp_path):
    outcomes = [_outcome(i) for i in range(3)]
    report = build_report(outcomes, {"total": 3}, [], {"id": "x", "peer": "P"})
    write_report(tmp_path / "r.json", report)
    expected = {**report, "instances": list(report["instances"])}
    assert (tmp_path / "r.json").read_text() == json.dumps(expected, indent=2, default=str) + "\n"
    empty = build_report([], {"total": 0}, [], None)
    write_report(tmp_path / "e.json", empty)
    assert (tmp_path / "e.json").read_text() == json.dumps({**empty, "instances": []}, indent=2) + "\n"


def test_an_old_journal_is_brought_up_to_date(tmp_path):
    """A version 1 journal (no claim columns) opens, lists its jobs and resumes."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, started REAL NOT NULL, finished REAL, state TEXT NOT NULL, profile TEXT, "
        "peer TEXT, options TEXT, pid INTEGER, host TEXT, runs INTEGER NOT NULL DEFAULT 0, summary TEXT, error TEXT, "
        "updated REAL);"
        f"INSERT INTO jobs (id, started, state, pid, host, runs) VALUES ('old', 1.0, 'running', {dead_pid()}, "
        f"'{socket.gethostname()}', 1);"
        "PRAGMA user_version=1;"
    )
    db.close()
    with Journal(path) as j:
        assert j.job("old").state == "interrupted"
        assert j.claim("old") == 2
