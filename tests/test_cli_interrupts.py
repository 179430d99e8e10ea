"""Every interrupt leaves a record (issue 12 item 6, the CLI's side).

``python main.py send`` (and ``resume``) against a slow in-process SCP, ended by SIGTERM, by
Ctrl+C once or twice, or by closing its terminal (a pseudo-terminal that hangs up): the send
stops, the journal records every instance's outcome, the report lists every file, the summary
is printed (where a terminal is left to print it on), the exit code is 128 + the signal, and no
traceback appears.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import casegen
from helpers.process import PROJECT_ROOT, run_cli

N_FILES = 120
DELAY_S = 0.05  # per C-STORE at the peer: the whole send would take about 6 s


def send_argv(port: int, work: Path, *more: str) -> list[str]:
    return [
        sys.executable,
        str(PROJECT_ROOT / "main.py"),
        "send",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--called-ae",
        "TESTPACS",
        "--journal",
        str(work / "j.sqlite"),
        "--report",
        str(work / "r.json"),
        *more,
        str(work / "in"),
    ]


def wait_stored(scp, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while len(scp.stored) < n:
        assert proc.poll() is None, f"the send ended (rc {proc.returncode}) before {n} instances were stored"
        assert time.monotonic() < end, f"only {len(scp.stored)} stored after {timeout} s"
        time.sleep(0.02)


def finish(proc: subprocess.Popen, timeout: float = 30) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"the send did not end within {timeout} s of the signal") from None
    return out, err


def check_record(work: Path, scp) -> dict[str, int]:
    """The report lists every file with an outcome; the journal agrees; returns the report's states."""
    report = json.loads((work / "r.json").read_text())
    entries = report["instances"]
    assert len(entries) == N_FILES
    states: dict[str, int] = {}
    for e in entries:
        assert e["state"] and e["message"], e
        states[e["state"]] = states.get(e["state"], 0) + 1
    assert states.get("stored", 0) == len(set(scp.stored)) and 0 < states["stored"] < N_FILES, states
    assert states.get("not-sent", 0) == N_FILES - states["stored"], states
    jobs = json.loads(run_cli("jobs", "--journal", work / "j.sqlite", "--json").stdout)
    assert len(jobs) == 1 and jobs[0]["state"] == "cancelled", jobs
    assert jobs[0]["stored"] == states["stored"] and jobs[0]["not_sent"] == states["not-sent"], jobs
    assert jobs[0]["pending"] == 0 and jobs[0]["in_flight"] == 0, jobs
    return states


@pytest.fixture
def slow_scp(scp_factory):
    return scp_factory(delay_s=DELAY_S)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    casegen.make_ct(tmp_path / "in", N_FILES, rows=8, cols=8, key="interrupt")
    return tmp_path


@pytest.mark.parametrize(
    ("signals", "code"),
    [
        ([signal.SIGTERM], 143),
        ([signal.SIGINT], 130),
        ([signal.SIGINT, signal.SIGINT], 130),
        ([signal.SIGTERM, signal.SIGTERM], 143),
    ],
    ids=["sigterm", "ctrl-c", "ctrl-c-twice", "sigterm-twice"],
)
def test_a_signal_ends_the_send_with_journal_report_and_summary(slow_scp, work, signals, code) -> None:
    proc = subprocess.Popen(
        send_argv(slow_scp.port, work),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    wait_stored(slow_scp, 5, proc)
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.01)
    _, err = finish(proc)
    assert "Traceback" not in err, err
    assert proc.returncode == code, err
    states = check_record(work, slow_scp)
    assert f"Stored {states['stored']} of {N_FILES}" in err, err
    assert "stopping after the current instance" in err, err
    assert "to send the rest: dicom-courier resume " in err, err
    if len(signals) > 1:
        assert "again: stopping as soon as possible" in err, err


def test_resume_is_interrupted_with_a_record_too(slow_scp, work) -> None:
    first = subprocess.Popen(send_argv(slow_scp.port, work), cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
    wait_stored(slow_scp, 3, first)
    first.send_signal(signal.SIGTERM)
    finish(first)
    done = len(slow_scp.stored)
    resume = subprocess.Popen(
        [
            sys.executable,
            str(PROJECT_ROOT / "main.py"),
            "resume",
            "--journal",
            str(work / "j.sqlite"),
            "--report",
            str(work / "r2.json"),
        ],
        cwd=PROJECT_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_stored(slow_scp, done + 3, resume)
    resume.send_signal(signal.SIGINT)
    _, err = finish(resume)
    assert "Traceback" not in err and resume.returncode == 130, err
    report = json.loads((work / "r2.json").read_text())
    assert len(report["instances"]) == N_FILES
    assert "not stored" in err, err  # the whole job's state is printed


def test_closing_the_terminal_ends_the_send_with_journal_and_report(slow_scp, work) -> None:
    """The send runs on a pseudo-terminal it owns; closing the terminal's master side hangs it up (SIGHUP)."""
    master, slave = os.openpty()
    owner = (
        "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    argv = send_argv(slow_scp.port, work)
    proc = subprocess.Popen(
        [sys.executable, "-c", owner, *argv[1:]],
        cwd=PROJECT_ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,  # a session of its own, whose controlling terminal is the pty
    )
    os.close(slave)
    seen = bytearray()
    stop = threading.Event()

    def drain() -> None:  # the progress bar must not fill the pty's buffer
        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0]:
                try:
                    seen.extend(os.read(master, 65536))
                except OSError:
                    return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_stored(slow_scp, 5, proc)
    finally:
        stop.set()
        reader.join(5)
        os.close(master)  # the terminal is gone: the kernel sends SIGHUP, writes now fail with EIO
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the send did not end within 30 s of the hang-up") from None
    assert b"Traceback" not in seen, seen.decode(errors="replace")
    assert proc.returncode == 129
    check_record(work, slow_scp)
