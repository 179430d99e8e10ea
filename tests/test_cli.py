"""The CLI (python main.py ...): send, echo and scp against real peers; exit codes; JSON/CSV reports."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import (
    JPEG2000,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from helpers import casegen
from helpers.process import PROJECT_ROOT, free_port
from helpers.scp import UNCOMPRESSED_LE

pytestmark = pytest.mark.skipif(not (PROJECT_ROOT / "main.py").exists(), reason="main.py not written yet")

REPORT_COLUMNS = [
    "path",
    "status",
    "message",
    "status_code",
    "sop_class_uid",
    "sop_instance_uid",
    "transfer_syntax",
    "converted_from",
    "strategy_used",
]


def send_args(port, called="TESTPACS", *more):
    return ["send", "--host", "127.0.0.1", "--port", str(port), "--called-ae", called, *more]


def load(report: Path) -> dict:
    return json.loads(report.read_text())


def names(rep) -> list[str]:
    return [Path(i["path"]).name for i in rep["instances"]]


# --------------------------------------------------------------------------- send


def test_send_folder_all_stored_exit_0_and_json_report(scp_factory, run_cli, tmp_path):
    scp = scp_factory()
    folder = tmp_path / "in"
    paths = casegen.make_ct(folder, 3)
    (folder / "zz_notes.txt").write_text("not DICOM\n")
    report = tmp_path / "report.json"
    p = run_cli(*send_args(scp.port), "--calling-ae", "CLI_TEST", "--report", report, folder)
    assert p.returncode == 0, p.stderr[-2000:]
    rep = load(report)
    assert set(rep) >= {"summary", "instances", "associations"}
    assert isinstance(rep["summary"], dict)
    assert names(rep) == [p.name for p in paths] + ["zz_notes.txt"]
    for inst in rep["instances"]:
        assert set(REPORT_COLUMNS) <= set(inst), set(REPORT_COLUMNS) - set(inst)
    assert [i["status"] for i in rep["instances"]] == ["success"] * 3 + ["skipped"]
    assert rep["instances"][0]["sop_instance_uid"] == dcmread(paths[0]).SOPInstanceUID
    assert rep["instances"][0]["status_code"] == 0
    assert rep["instances"][3]["message"]
    assert len(rep["associations"]) >= 1
    assert scp.associations[0].calling_ae == "CLI_TEST"
    assert len(scp.received) == 3


@pytest.mark.slow  # the engine retries 0xA700 (out of resources) with back-off
def test_send_partial_failure_exit_1(scp_factory, run_cli, tmp_path):
    def policy(req):
        code = casegen.C14_PEER_STATUS[int(req.dataset.InstanceNumber)]
        return ("status", code, "TEST quota exceeded") if code else 0

    scp = scp_factory(policy=policy)
    casegen.c14_six_ct(tmp_path / "in")
    report = tmp_path / "r.json"
    p = run_cli(*send_args(scp.port), "--report", report, tmp_path / "in")
    assert p.returncode == 1, p.stderr[-2000:]
    rep = load(report)
    st = [i["status"] for i in rep["instances"]]
    assert st == ["success", "failure", "success", "success", "failure", "success"]
    assert rep["instances"][1]["status_code"] == 0xA700
    assert "TEST quota exceeded" in rep["instances"][1]["message"]


def test_send_stop_on_error_skips_the_rest(scp_factory, run_cli, tmp_path):
    scp = scp_factory(policy=lambda req: ("status", 0xC000, "TEST no") if req.index == 1 else 0)
    casegen.make_ct(tmp_path / "in", 4)
    report = tmp_path / "r.json"
    p = run_cli(*send_args(scp.port), "--stop-on-error", "--report", report, tmp_path / "in")
    assert p.returncode == 1
    assert [i["status"] for i in load(report)["instances"]] == ["success", "failure", "skipped", "skipped"]
    assert len(scp.requests) == 2


def test_send_csv_report_has_the_same_columns(scp_factory, run_cli, tmp_path):
    scp = scp_factory()
    casegen.make_ct(tmp_path / "in", 2)
    report = tmp_path / "r.csv"
    p = run_cli(*send_args(scp.port), "--report", report, tmp_path / "in")
    assert p.returncode == 0, p.stderr[-2000:]
    with open(report, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    assert set(REPORT_COLUMNS) <= set(rows[0]), rows[0].keys()
    assert all(r["status"] == "success" for r in rows)


def test_send_strategy_universal(scp_factory, run_cli, tmp_path):
    scp = scp_factory()
    casegen.make_ct(tmp_path / "in", 1)
    report = tmp_path / "r.json"
    p = run_cli(*send_args(scp.port), "--strategy", "universal", "--report", report, tmp_path / "in")
    assert p.returncode == 0, p.stderr[-2000:]
    proposed = {t for a in scp.associations for _, _, ts in a.requested for t in ts}
    assert proposed <= {ImplicitVRLittleEndian, ExplicitVRLittleEndian}  # the strategy + the file's own
    assert load(report)["instances"][0]["strategy_used"] == "universal"


def test_send_converted_from_in_report(scp_factory, run_cli, tmp_path):
    scp = scp_factory(accept={CTImageStorage: [ImplicitVRLittleEndian]})
    casegen.c01_lossy_j2k_ct(tmp_path / "in", n=1)
    report = tmp_path / "r.json"
    p = run_cli(*send_args(scp.port), "--report", report, tmp_path / "in")
    assert p.returncode == 0, p.stderr[-2000:]
    inst = load(report)["instances"][0]
    assert inst["converted_from"] == JPEG2000 and inst["transfer_syntax"] == ImplicitVRLittleEndian


def test_send_as_stored_in_report(scp_factory, run_cli, tmp_path):
    scp = scp_factory(accept={CTImageStorage: [ImplicitVRLittleEndian, ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless]})
    casegen.c11_j2k_lossless_and_rle(tmp_path / "in")
    report = tmp_path / "r.json"
    p = run_cli(*send_args(scp.port), "--report", report, tmp_path / "in")
    assert p.returncode == 0, p.stderr[-2000:]
    rep = load(report)
    assert [i["transfer_syntax"] for i in rep["instances"]] == [JPEG2000Lossless, JPEG2000Lossless, RLELossless]
    assert all(i["converted_from"] is None for i in rep["instances"])


def test_send_bare_dataset_and_notes(scp_factory, run_cli, tmp_path):
    from pydicom.uid import RTDoseStorage

    scp = scp_factory(accept={RTDoseStorage: list(UNCOMPRESSED_LE)})
    casegen.c06_bare_rtdose_and_notes(tmp_path / "in")
    report = tmp_path / "r.json"
    p = run_cli(*send_args(scp.port), "--report", report, tmp_path / "in")
    assert p.returncode == 0, p.stderr[-2000:]
    by = {Path(i["path"]).name: i for i in load(report)["instances"]}
    assert by["c06_rtdose_no_meta.dcm"]["status"] == "success"
    assert "meta" in by["c06_rtdose_no_meta.dcm"]["message"].lower()
    assert by["notes.txt"]["status"] == "skipped"


def test_send_lossy_needs_allow_lossy(scp_factory, run_cli, tmp_path):
    scp = scp_factory(accept={CTImageStorage: [JPEG2000]})
    casegen.make_ct(tmp_path / "in", 1, 32, 32)
    p = run_cli(*send_args(scp.port), "--strategy", "extended", "--max-retries", "0", tmp_path / "in")
    assert p.returncode in (1, 3), p.stderr[-2000:]
    assert not scp.received
    p = run_cli(*send_args(scp.port), "--strategy", "extended", "--allow-lossy", tmp_path / "in")
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(scp.received) == 1


def test_send_max_retries_bounds_the_fallback(scp_factory, run_cli, tmp_path):
    def reject_compressed(n, rec):
        return (1, 1, 1) if any(UID(t).is_compressed for _, _, ts in rec.requested for t in ts) else None

    scp = scp_factory(reject=reject_compressed)
    casegen.make_ct(tmp_path / "in", 1)
    p = run_cli(*send_args(scp.port), "--strategy", "extended", "--max-retries", "0", tmp_path / "in")
    assert p.returncode == 3, p.stderr[-2000:]
    p = run_cli(*send_args(scp.port), "--strategy", "extended", "--max-retries", "2", tmp_path / "in")
    assert p.returncode == 0, p.stderr[-2000:]


def test_send_no_association_exit_3(run_cli, tmp_path):
    casegen.make_ct(tmp_path / "in", 1)
    p = run_cli(*send_args(free_port()), tmp_path / "in")
    assert p.returncode == 3, (p.returncode, p.stderr[-2000:])
    text = (p.stderr + p.stdout).lower()
    assert "refused" in text or "could not connect" in text


def test_send_wrong_called_ae_exit_3_names_it(scp_factory, run_cli, tmp_path):
    scp = scp_factory(ae_title="TESTPACS")
    casegen.c16_two_ct(tmp_path / "in")
    p = run_cli(*send_args(scp.port, "STORESCP"), "--calling-ae", "TESTSENDER", tmp_path / "in")
    assert p.returncode == 3, p.stderr[-2000:]
    text = p.stderr + p.stdout
    assert "STORESCP" in text and "called ae" in text.lower()
    assert not scp.requests


@pytest.mark.parametrize(
    "args",
    [
        ["send", "--port", "104", "--called-ae", "X", "."],  # no --host
        ["send", "--host", "127.0.0.1", "--port", "abc", "--called-ae", "X", "."],
        ["send", "--host", "127.0.0.1", "--port", "104", "--called-ae", "X", "--strategy", "turbo", "."],
        ["send", "--host", "127.0.0.1", "--port", "104", "--called-ae", "SEVENTEEN_LETTERS", "."],
        ["send", "--host", "127.0.0.1", "--port", "104", "--called-ae", "X", "--calling-ae", "", "."],
        ["frobnicate"],
    ],
    ids=["no-host", "bad-port", "bad-strategy", "long-ae", "empty-calling-ae", "unknown-command"],
)
def test_usage_and_config_errors_exit_2(run_cli, args):
    p = run_cli(*args)
    assert p.returncode == 2, (p.returncode, p.stderr[-1000:])
    assert p.stderr.strip()


def test_send_log_level_goes_to_stderr(scp_factory, run_cli, tmp_path):
    scp = scp_factory()
    casegen.make_ct(tmp_path / "in", 1)
    p = run_cli(*send_args(scp.port), "--log-level", "DEBUG", tmp_path / "in")
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stderr.strip()
    assert "TEST^PATIENT" not in p.stderr, "patient names never go into the log"


# --------------------------------------------------------------------------- echo


def test_echo(scp_factory, run_cli):
    scp = scp_factory()
    ok = run_cli("echo", "--host", "127.0.0.1", "--port", scp.port, "--called-ae", "TESTPACS", "--calling-ae", "ECHO_TEST")
    assert ok.returncode == 0, ok.stderr[-1000:]
    assert re.search(r"\d+(\.\d+)?\s*ms", ok.stdout), "the round-trip time is printed"
    assert "16384" in ok.stdout, "the negotiation (peer max PDU) is printed"
    assert scp.associations[0].calling_ae == "ECHO_TEST"
    closed = run_cli("echo", "--host", "127.0.0.1", "--port", free_port(), "--called-ae", "TESTPACS")
    assert closed.returncode == 3
    wrong = run_cli("echo", "--host", "127.0.0.1", "--port", scp.port, "--called-ae", "NOPE")
    assert wrong.returncode == 3
    assert "NOPE" in wrong.stderr + wrong.stdout


# --------------------------------------------------------------------------- scp


@pytest.fixture
def cli_scp(courier_scp):
    """``cli_scp(*extra)`` starts ``main.py scp --ae-title COURIER --store-dir DIR --bind 127.0.0.1 EXTRA``;
    returns (port, store folder)."""

    def start(*extra):
        p = courier_scp(*extra)
        return p.port, p.store_dir

    return start


def _stored(store: Path) -> dict[str, Path]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in store.rglob("*") if p.is_file()}


def test_cli_scp_stores_what_it_receives(cli_scp, tmp_path):
    import core

    port, store = cli_scp()
    paths = casegen.make_ct(tmp_path / "in", 2)
    r = core.store_datasets_batch(
        {"remote_host": "127.0.0.1", "remote_port": port, "remote_ae_title": "COURIER", "dimse_timeout": 5, "acse_timeout": 5},
        paths,
    )
    assert r["successful"] == 2, r["details"]
    assert set(_stored(store)) == {str(dcmread(p).SOPInstanceUID) for p in paths}


def test_cli_scp_accept_limits_syntaxes(cli_scp, tmp_path):
    import core

    port, _store = cli_scp("--accept", "universal")
    path = casegen.make_ct(tmp_path / "in", 1)[0]
    r = core.store_dataset(
        {"remote_host": "127.0.0.1", "remote_port": port, "remote_ae_title": "COURIER", "dimse_timeout": 5}, path
    )
    assert r["status"] == "success" and r["transfer_syntax"] == ImplicitVRLittleEndian


def test_cli_scp_accept_explicit_syntax_list(cli_scp, tmp_path):
    import core

    port, _store = cli_scp("--accept", ExplicitVRLittleEndian)
    path = casegen.make_ct(tmp_path / "in", 1)[0]
    cfg = {"remote_host": "127.0.0.1", "remote_port": port, "remote_ae_title": "COURIER", "dimse_timeout": 5}
    r = core.store_dataset(cfg, path, transfer_syntax_strategy="universal")
    assert r["status"] == "success" and r["transfer_syntax"] == ExplicitVRLittleEndian


def test_send_single_files_and_a_dicomdir(scp_factory, run_cli, tmp_path):
    from pydicom.fileset import FileSet

    scp = scp_factory()
    src = casegen.make_ct(tmp_path / "src", 3, key="cd")
    fs = FileSet()
    for p in src:
        fs.add(dcmread(p))
    fs.write(tmp_path / "cd")
    extra = casegen.make_ct(tmp_path / "loose", 1, key="loose")[0]
    report = tmp_path / "r.json"
    p = run_cli(*send_args(scp.port), "--report", report, tmp_path / "cd" / "DICOMDIR", extra)
    assert p.returncode == 0, p.stderr[-2000:]
    want = {str(dcmread(x).SOPInstanceUID) for x in [*src, extra]}
    assert set(scp.received) == want
    rep = load(report)
    assert sum(i["status"] == "success" for i in rep["instances"]) == 4


def test_send_duplicate_uids_are_reported(scp_factory, run_cli, tmp_path):
    scp = scp_factory()
    path = casegen.make_ct(tmp_path / "a", 1)[0]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "copy.dcm").write_bytes(path.read_bytes())
    report = tmp_path / "r.json"
    p = run_cli(*send_args(scp.port), "--report", report, tmp_path / "a", tmp_path / "b")
    assert p.returncode in (0, 1), p.stderr[-2000:]
    rep = load(report)
    assert len(rep["instances"]) == 2
    assert "duplicate" in rep["instances"][1]["message"].lower(), rep["instances"][1]


def test_send_nothing_to_send(scp_factory, run_cli, tmp_path):
    scp = scp_factory()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.txt").write_text("no DICOM here\n")
    p = run_cli(*send_args(scp.port), tmp_path / "in")
    assert p.returncode in (0, 1, 2), p.stderr[-2000:]
    assert not scp.requests


def test_send_missing_path_is_named(scp_factory, run_cli, tmp_path):
    scp = scp_factory()
    p = run_cli(*send_args(scp.port), tmp_path / "does-not-exist")
    assert p.returncode in (1, 2), (p.returncode, p.stderr[-1000:])  # usage error or a failed input
    assert "does-not-exist" in p.stderr
    assert not scp.requests


def test_cli_report_keeps_the_associations(scp_factory, run_cli, tmp_path):
    scp = scp_factory(max_pdu=20480)
    casegen.make_ct(tmp_path / "in", 2)
    report = tmp_path / "r.json"
    p = run_cli("send", "--host", "127.0.0.1", "--port", scp.port, "--called-ae", "TESTPACS", "--report", report, tmp_path / "in")
    assert p.returncode == 0, p.stderr[-1000:]
    assocs = json.loads(report.read_text())["associations"]
    assert len(assocs) == 1 and "20480" in json.dumps(assocs)


def test_send_unknown_host_exit_3(run_cli, tmp_path):
    casegen.make_ct(tmp_path / "in", 1)
    p = run_cli("send", "--host", "no-such-host.invalid", "--port", "104", "--called-ae", "X", tmp_path / "in")
    assert p.returncode == 3, (p.returncode, p.stderr[-1500:])
    assert "no-such-host.invalid" in p.stderr
    assert "Traceback" not in p.stderr


def test_echo_unknown_host_exit_3(run_cli):
    p = run_cli("echo", "--host", "no-such-host.invalid", "--port", "104", "--called-ae", "X")
    assert p.returncode == 3, (p.returncode, p.stderr[-1500:])
    assert "Traceback" not in p.stderr


def test_send_warnings_only_exit_0(scp_factory, run_cli, tmp_path):
    scp = scp_factory(policy=lambda req: 0xB000)
    casegen.make_ct(tmp_path / "in", 2)
    report = tmp_path / "r.json"
    p = run_cli(*send_args(scp.port), "--report", report, tmp_path / "in")
    assert p.returncode == 0, p.stderr[-1000:]
    assert [i["status"] for i in load(report)["instances"]] == ["warning", "warning"]
