"""Peers for the issue-7 tests (probe, pre-flight, arrival check): DCMTK storescp with a
per-SOP-class policy, Orthanc, and an in-process pynetdicom SCP. Self-contained so that these
tests run with or without the shared conftest; every process is stopped by its own PID.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pydicom.data
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
CT, MR, SC = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.7"
IMPLICIT, EXPLICIT, J2K_LOSSLESS = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.90"
SHORT = {"acse_timeout": 5, "dimse_timeout": 5, "network_timeout": 5, "connect_timeout": 5}

#: CT only Implicit VR LE, MR only JPEG 2000 Lossless, Secondary Capture refused (storescp -xf FILE Picky).
PICKY_CFG = r"""[[TransferSyntaxes]]
[Implicit]
TransferSyntax1 = LittleEndianImplicit
[J2KLossless]
TransferSyntax1 = JPEG2000LosslessOnly
[Uncompressed]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = LittleEndianImplicit
[[PresentationContexts]]
[Picky]
PresentationContext1 = VerificationSOPClass\Uncompressed
PresentationContext2 = CTImageStorage\Implicit
PresentationContext3 = MRImageStorage\J2KLossless
[[Profiles]]
[Picky]
PresentationContexts = Picky
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"peer exited early with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"needs `{tool}`: apt-get install -y dcmtk orthanc")


@contextlib.contextmanager
def storescp(work: Path, *flags: str, aet: str = "STORESCP") -> Iterator[int]:
    """DCMTK storescp writing into work/recv; yields its port."""
    require("storescp")
    recv = work / "recv"
    recv.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with open(work / f"storescp-{port}.log", "w") as log:
        proc = subprocess.Popen(
            ["storescp", "-aet", aet, "-od", str(recv), *flags, str(port)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_listening(port, proc)
            yield port
        finally:
            stop(proc)


@contextlib.contextmanager
def picky_storescp(work: Path) -> Iterator[int]:
    cfg = work / "picky.cfg"
    cfg.write_text(PICKY_CFG)
    with storescp(work, "-xf", str(cfg), "Picky") as port:
        yield port


@contextlib.contextmanager
def orthanc(work: Path, aet: str = "ORTHANC", **config) -> Iterator[tuple[int, int]]:
    """Orthanc on loopback; yields (DICOM port, HTTP port)."""
    require("Orthanc")
    work.mkdir(parents=True, exist_ok=True)
    dport, hport = free_port(), free_port()
    cfg = {
        "Name": "CourierTest",
        "StorageDirectory": str(work / "db"),
        "IndexDirectory": str(work / "db"),
        "DicomAet": aet,
        "DicomPort": dport,
        "HttpPort": hport,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        "Plugins": [],
        **config,
    }
    (work / "orthanc.json").write_text(json.dumps(cfg))
    with open(work / "orthanc.log", "w") as log:
        proc = subprocess.Popen(["Orthanc", str(work / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_listening(dport, proc)
            wait_listening(hport, proc)
            yield dport, hport
        finally:
            stop(proc)


def orthanc_instance_count(hport: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{hport}/instances", timeout=10) as r:
        return len(json.loads(r.read()))


def copy_unique(name: str, dst: Path, tag: str = "courier-test") -> Path:
    """Copy a pydicom test file with a fresh SOP Instance UID (so batches hold no duplicates)."""
    ds = pydicom.dcmread(TEST_FILES / name)
    uid = pydicom.uid.generate_uid(entropy_srcs=[tag, name, str(dst)])
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.save_as(dst)
    return dst


def config(port: int, called: str = "STORESCP", calling: str = "COURIER_TEST", **extra) -> dict:
    return {
        "remote_host": "127.0.0.1",
        "remote_port": port,
        "remote_ae_title": called,
        "local_ae_title": calling,
        **SHORT,
        **extra,
    }


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "main.py"), *map(str, args)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
