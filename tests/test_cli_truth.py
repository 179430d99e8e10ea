"""The CLI tells the truth (issue 12 item 8; issue 13's file names, the CLI's side).

``python main.py ...`` against real in-process peers: a folder without DICOM files and a
configuration error (a missing CA file, a key that does not match its certificate, a short secret
name without a project) exit 2 with the reason; the summary gives MB and MB/s; warnings and
duplicates are listed at the end; a send that worked after a fallback says the refused strategy
once, as a step, not as a failure; ``--stop-on-error`` names itself; an A-ABORT message ends with
a hint, and instances that an association failure left unsent are one line, not one each; file
names that are not UTF-8 are printed readably.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

from core.rules import BROKEN_PEER_BREAKS
from helpers import casegen
from helpers.process import PROJECT_ROOT, run_cli
from helpers.tls_pki import TestPki, make_test_pki

SUMMARY = re.compile(r"Stored (\d+) of (\d+) \(.*\) over \d+ association\(s\): ([\d.]+) MB in ([\d.]+) s \(([\d.]+) MB/s\)")


def send_args(port: int, *more: object) -> list[object]:
    return ["send", "--host", "127.0.0.1", "--port", port, "--called-ae", "TESTPACS", "--no-journal", *more]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def three(tmp_path: Path) -> Path:
    casegen.make_ct(tmp_path / "in", 3, key="truth")
    return tmp_path / "in"


# --------------------------------------------------------------------------- nothing to send


def test_a_folder_without_dicom_files_exits_2_saying_so(scp_factory, tmp_path: Path) -> None:
    scp = scp_factory()
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not DICOM\n")
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4\n")
    for extra in ((), ("--dry-run",)):
        res = run_cli(*send_args(scp.port, *extra, folder))
        assert res.returncode == 2, (extra, res.stderr)
        assert "no DICOM file" in res.stderr and str(folder) in res.stderr, res.stderr
    assert not scp.associations  # nothing to send: no association either


# --------------------------------------------------------------------------- configuration errors


def config_cases(pki: TestPki) -> dict[str, tuple[list[object], str]]:
    return {
        "missing CA file": (["--tls", "--tls-ca", pki.folder / "no-such-ca.pem"], "does not exist"),
        "key of another certificate": (
            ["--tls", "--tls-ca", pki.ca, "--tls-cert", pki.client, "--tls-key", pki.server_key],
            "does not match",
        ),
        "short secret name, no project": (["--tls", "--tls-ca-secret", "pacs-ca"], "no Google Cloud project"),
    }


@pytest.mark.parametrize("case", ["missing CA file", "key of another certificate", "short secret name, no project"])
def test_configuration_errors_exit_2_with_the_reason(scp_factory, three: Path, pki: TestPki, case: str) -> None:
    scp = scp_factory()
    flags, words = config_cases(pki)[case]
    env = {k: v for k, v in os.environ.items() if k != "GOOGLE_CLOUD_PROJECT"}
    for command in (
        send_args(scp.port, *flags, three),
        send_args(scp.port, "--dry-run", *flags, three),
        ["echo", "--host", "127.0.0.1", "--port", scp.port, "--called-ae", "TESTPACS", *flags],
    ):
        res = run_cli(*command, env=env)
        assert res.returncode == 2, (command[0], res.returncode, res.stderr)
        assert "configuration error" in res.stderr and words in res.stderr, res.stderr
        assert res.stderr.count(words) == 1, res.stderr  # said once, not once per instance
        assert "Traceback" not in res.stderr
    assert not scp.associations


# --------------------------------------------------------------------------- the summary and the end


def test_summary_gives_megabytes_and_rate_and_lists_warnings_and_duplicates(scp_factory, three: Path) -> None:
    first = sorted(three.iterdir())[0]
    shutil.copy(first, three / "zz_copy_of_first.dcm")
    warned = dcmread(sorted(three.iterdir())[1], stop_before_pixels=True).SOPInstanceUID
    scp = scp_factory(policy=lambda rq: 0xB000 if rq.sop_instance_uid == warned else 0x0000)
    res = run_cli(*send_args(scp.port, three))
    assert res.returncode == 0, res.stderr
    lines = res.stderr.strip().splitlines()
    m = SUMMARY.search(lines[-1])
    assert m, lines[-1]  # the summary is the last line
    assert (m[1], m[2]) == ("4", "4")
    size_mb = sum(p.stat().st_size for p in three.iterdir()) / 1e6
    assert abs(float(m[3]) - size_mb) < 0.01 and float(m[5]) > 0, (m[0], size_mb)
    text = res.stderr
    assert "Warnings:" in text and "0xB000" in text and sorted(three.iterdir())[1].name in text, text
    uid = dcmread(first, stop_before_pixels=True).SOPInstanceUID
    dup = text[text.index("Duplicates") :]
    assert uid in dup and first.name in dup and "zz_copy_of_first.dcm" in dup, text
    assert text.index("Warnings:") < text.index("Duplicates") < text.index("Stored 4 of 4")


def test_a_fallback_that_worked_is_one_step_not_a_failure(scp_factory, three: Path) -> None:
    scp = scp_factory(reject=lambda n, rec: "abort" if n == 0 else None)  # the first proposal is aborted
    res = run_cli(*send_args(scp.port, three))
    assert res.returncode == 0, res.stderr
    assert len(scp.stored) == 3
    assert "association failed" not in res.stderr and "FAILED" not in res.stderr, res.stderr
    steps = [line for line in res.stderr.splitlines() if line.startswith("step:")]
    assert len(steps) == 1, res.stderr
    assert "the PACS refused strategy standard" in steps[0] and steps[0].endswith("sent with conservative"), steps


def test_stop_on_error_names_itself(scp_factory, three: Path) -> None:
    scp = scp_factory(policy=lambda rq: 0xC000)
    res = run_cli(*send_args(scp.port, "--stop-on-error", three))
    assert res.returncode == 1, res.stderr
    assert "--stop-on-error: an instance failed, so the send stopped there; 2 instance(s) skipped" in res.stderr, res.stderr
    assert len(scp.requests) == 1


def test_an_abort_ends_with_a_hint_and_the_unsent_are_one_line(scp_factory, tmp_path: Path) -> None:
    casegen.make_ct(tmp_path / "in", 12, key="abort")
    scp = scp_factory(policy=lambda rq: "abort")
    res = run_cli(*send_args(scp.port, "--retry-attempts", "1", "--retry-backoff", "0.1", tmp_path / "in"))
    assert res.returncode == 1, res.stderr
    aborts = [line for line in res.stderr.splitlines() if "A-ABORT" in line]
    assert aborts and all("; hint: " in line for line in aborts), res.stderr
    # the instances the peer broke on (until it is judged broken) and one line for the rest, not one line each
    assert len(aborts) <= BROKEN_PEER_BREAKS + 1, res.stderr
    assert re.search(r"not sent \(\d+ instances\): ", res.stderr), res.stderr


def test_echo_abort_has_a_hint(scp_factory) -> None:
    scp = scp_factory(reject="abort")
    res = run_cli("echo", "--host", "127.0.0.1", "--port", scp.port, "--called-ae", "TESTPACS")
    assert res.returncode == 3, res.stderr
    assert "hint:" in res.stderr or "check" in res.stderr, res.stderr


# --------------------------------------------------------------------------- file names


def non_utf8_names(folder: Path) -> list[bytes]:
    """Rename the first two files to names that are not UTF-8 (Latin-1 bytes); return them."""
    names = [b"IM_\xe9t\xe9.dcm", b"IM_\xff.dcm"]
    for src, name in zip(sorted(folder.iterdir()), names, strict=False):
        os.rename(src, os.path.join(os.fsencode(folder), name))
    return names


def test_file_names_that_are_not_utf8_are_printed_readably(scp_factory, three: Path, tmp_path: Path) -> None:
    non_utf8_names(three)
    scp = scp_factory(policy=lambda rq: 0xC000)  # refuse all: every name is printed
    res = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "main.py"), *map(str, send_args(scp.port, "--report", tmp_path / "r.json", three))],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=False,
    )
    err = res.stderr.decode("utf-8")  # strict: what is printed is valid text
    assert res.returncode == 1 and "Traceback" not in err, err
    assert "IM_\\xe9t\\xe9.dcm" in err and "IM_\\xff.dcm" in err, err
    plan = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "main.py"), *map(str, send_args(scp.port, "--dry-run", three))],
        cwd=PROJECT_ROOT,
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
        check=False,
    )
    out = plan.stdout.decode("utf-8")
    assert plan.returncode == 0 and b"Traceback" not in plan.stderr, plan.stderr.decode(errors="replace")
    assert "IM_\\xe9t\\xe9.dcm: " in out and "IM_\\xff.dcm: " in out, out
