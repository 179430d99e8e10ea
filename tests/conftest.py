"""Shared fixtures: real DICOM peers on loopback, a private home, and a CLI runner.

Peers:
    scp_factory  an in-process pynetdicom Storage SCP on ("127.0.0.1", 0) that records what it saw
                 (requested contexts, calling AE, the requestor's max PDU, PDU lengths, decoded
                 data sets and their raw bytes) and answers each C-STORE as a policy says.
    storescp     DCMTK storescp with given flags, writing into a temporary folder.
    orthanc      Orthanc with a temporary JSON configuration, with REST helpers.

Every external process is started by the fixture and stopped by its own PID on teardown.
Interop fixtures skip with a message naming the package when a binary is missing; set
COURIER_REQUIRE_INTEROP=1 (CI does) to make such a skip a failure instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Headless Qt before any session-scoped QApplication (pytest-qt's qapp) can be created.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from pydicom import dcmread  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian  # noqa: E402
from pynetdicom import AE, evt  # noqa: E402
from pynetdicom.sop_class import _STORAGE_CLASSES, Verification  # noqa: E402

ALL_STORAGE_CLASSES: tuple[str, ...] = tuple(dict.fromkeys(str(u) for u in _STORAGE_CLASSES.values()))
UNCOMPRESSED_LE = (ImplicitVRLittleEndian, ExplicitVRLittleEndian)
SHORT_TIMEOUTS = {"acse_timeout": 5, "dimse_timeout": 5, "network_timeout": 5, "connect_timeout": 5}


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"peer exited early with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate `proc` (by its PID), then kill it if it does not exit within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def require_binary(tool: str, package: str) -> str:
    """Return the path of `tool`, or skip (fail under COURIER_REQUIRE_INTEROP=1) naming the package."""
    path = shutil.which(tool)
    if path is None:
        msg = f"needs {package}: apt-get install {package}"
        if os.environ.get("COURIER_REQUIRE_INTEROP"):
            pytest.fail(msg + " (interop tests are required here)")
        pytest.skip(msg)
    return path


def engine_config_keys() -> set[str]:
    """The config keys the engine knows (its StoreConfig fields), or an empty set."""
    try:
        from dataclasses import fields

        from core.config import StoreConfig

        return {f.name for f in fields(StoreConfig)}
    except Exception:
        return set()


def engine_extras(**wanted: Any) -> dict[str, Any]:
    """The subset of engine-specific config extensions (e.g. retry_backoff_s) that the engine knows,
    so tests stay fast without breaking if an extension is renamed."""
    known = engine_config_keys()
    return {k: v for k, v in wanted.items() if k in known}


def make_config(port: int, called_ae: str, calling_ae: str = "TEST_SCU", **extra: Any) -> dict[str, Any]:
    """A seed-style config dict for a loopback peer, with short timeouts and short retry back-off."""
    cfg: dict[str, Any] = {
        "remote_host": "127.0.0.1",
        "remote_port": port,
        "remote_ae_title": called_ae,
        "local_ae_title": calling_ae,
        **SHORT_TIMEOUTS,
        **engine_extras(retry_backoff_s=0.05),
    }
    cfg.update(extra)
    return cfg


# --------------------------------------------------------------------------- private home


@pytest.fixture(autouse=True)
def courier_home(tmp_path_factory, monkeypatch) -> Path:
    """Point every XDG directory (and HOME) at a temporary folder so no test touches real settings."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        (home / sub).mkdir()
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    # a working keyring that lives in the temporary data directory (keyrings.alt), never the user's
    try:
        import keyrings.alt.file  # noqa: F401

        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    except ImportError:
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    return home


# --------------------------------------------------------------------------- CLI


def _run_cli(*args: str | os.PathLike, timeout: float = 180, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py", *map(str, args)],
        cwd=cwd or PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess]:
    """``run_cli(*args, timeout=180)`` runs ``python main.py ARGS`` in the project root."""
    return _run_cli


# --------------------------------------------------------------------------- in-process SCP


@dataclass
class StoreRequest:
    """What a policy callback is given for one C-STORE request."""

    index: int  # 0-based over the SCP's lifetime
    assoc_index: int  # which association (0-based)
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    dataset: Dataset | None
    event: Any


@dataclass
class AssocRecord:
    """What the SCP saw of one association request."""

    calling_ae: str
    called_ae: str
    max_pdu: int  # the requestor's Maximum Length Received
    requested: list[tuple[int, str, list[str]]]  # (context id, abstract syntax, transfer syntaxes)
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (abstract syntax, transfer syntax)
    rejected: tuple[int, int, int] | None = None
    pdata_lengths: list[int] = field(default_factory=list)  # P-DATA-TF PDU lengths (bytes after header)
    stores: list[str] = field(default_factory=list)  # SOP Instance UIDs in arrival order
    implementation_class_uid: str = ""
    violations: list[str] = field(default_factory=list)  # PDU rules the requestor broke

    @property
    def n_contexts(self) -> int:
        return len(self.requested)


Policy = Callable[[StoreRequest], Any]


class RecordingSCP:
    """A pynetdicom Storage SCP running in this process; see :func:`scp_factory`."""

    def __init__(
        self,
        ae_title: str = "TESTPACS",
        accept: dict[str, Iterable[str]] | None = None,
        transfer_syntaxes: Iterable[str] = UNCOMPRESSED_LE,
        policy: Policy | None = None,
        reject: tuple[int, int, int] | Callable[[int, AssocRecord], tuple[int, int, int] | None] | None = None,
        require_called_aet: bool = True,
        require_calling_aet: Iterable[str] | None = None,
        max_pdu: int = 16384,
        abort_on_odd_length: bool = False,
        max_pdata_length: int | None = None,
    ) -> None:
        self.ae_title = ae_title
        self.policy = policy
        self.reject = reject
        self.abort_on_odd_length = abort_on_odd_length
        self.max_pdata_length = max_pdata_length
        self.lock = threading.Lock()
        self.associations: list[AssocRecord] = []
        self.requests: list[StoreRequest] = []
        self.received: dict[str, Dataset] = {}
        self.raw: dict[str, bytes] = {}
        self.received_syntax: dict[str, str] = {}
        self.decode_errors: dict[str, str] = {}
        self._assoc_index: dict[int, int] = {}

        ae = AE(ae_title=ae_title)
        ae.maximum_pdu_size = max_pdu
        ae.acse_timeout = 5
        ae.dimse_timeout = 5
        ae.network_timeout = 5
        ae.require_called_aet = require_called_aet
        if require_calling_aet:
            ae.require_calling_aet = list(require_calling_aet)
        if accept is None:
            accept = {uid: tuple(transfer_syntaxes) for uid in ALL_STORAGE_CLASSES}
        for sop_class, syntaxes in accept.items():
            ae.add_supported_context(sop_class, list(syntaxes))
        ae.add_supported_context(Verification, list(UNCOMPRESSED_LE))
        self.ae = ae
        handlers = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_PDU_RECV, self._on_pdu_recv),
            (evt.EVT_C_STORE, self._on_c_store),
            (evt.EVT_C_ECHO, lambda event: 0x0000),
        ]
        self.server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        self.port: int = self.server.server_address[1]

    # -- recording ---------------------------------------------------------

    def _record_for(self, assoc: Any) -> AssocRecord | None:
        idx = self._assoc_index.get(id(assoc))
        return None if idx is None else self.associations[idx]

    def _on_requested(self, event: Any) -> None:
        rq = event.assoc.requestor.primitive
        requested = [
            (int(cx.context_id), str(cx.abstract_syntax), [str(ts) for ts in cx.transfer_syntax])
            for cx in rq.presentation_context_definition_list
        ]
        rec = AssocRecord(
            calling_ae=str(rq.calling_ae_title).strip(),
            called_ae=str(rq.called_ae_title).strip(),
            max_pdu=int(rq.maximum_length_received or 0),
            requested=requested,
            implementation_class_uid=str(getattr(rq, "implementation_class_uid", "") or ""),
        )
        with self.lock:
            self._assoc_index[id(event.assoc)] = len(self.associations)
            self.associations.append(rec)
            n = len(self.associations) - 1
        rsd = self.reject(n, rec) if callable(self.reject) else self.reject
        if rsd == "abort":
            rec.rejected = (0, 0, 0)
            event.assoc.abort()  # A-ABORT during negotiation
        elif rsd:
            rec.rejected = tuple(rsd)
            event.assoc.acse.send_reject(*rsd)
            event.assoc.kill()  # as pynetdicom does after its own rejections: lets the DUL send the RJ

    def _on_accepted(self, event: Any) -> None:
        rec = self._record_for(event.assoc)
        if rec is not None:
            rec.accepted = [(str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in event.assoc.accepted_contexts]

    def _on_pdu_recv(self, event: Any) -> None:
        # Runs on the DUL thread: only record here; the C-STORE handler aborts when needed.
        pdu = event.pdu
        if type(pdu).__name__ != "P_DATA_TF":
            return
        length = int(pdu.pdu_length)
        rec = self._record_for(event.assoc)
        if rec is not None:
            rec.pdata_lengths.append(length)
            if self.max_pdata_length is not None and length > self.max_pdata_length:
                rec.violations.append(f"P-DATA-TF of {length} bytes > {self.max_pdata_length}")
            for item in pdu.presentation_data_value_items:
                data = item.presentation_data_value or b""
                if (len(data) - 1) % 2:  # the fragment after the message control header
                    rec.violations.append(f"odd PDV fragment of {len(data) - 1} bytes")

    def _on_c_store(self, event: Any) -> Any:
        req = event.request
        raw = req.DataSet.getvalue() if req.DataSet is not None else b""
        uid = str(req.AffectedSOPInstanceUID)
        ts = str(event.context.transfer_syntax)
        ds: Dataset | None = None
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
        except Exception as exc:  # keep going: the test asserts on decode_errors
            self.decode_errors[uid] = f"{type(exc).__name__}: {exc}"
        with self.lock:
            rec = self._record_for(event.assoc)
            assoc_index = self._assoc_index.get(id(event.assoc), -1)
            info = StoreRequest(
                index=len(self.requests),
                assoc_index=assoc_index,
                sop_class_uid=str(req.AffectedSOPClassUID),
                sop_instance_uid=uid,
                transfer_syntax=ts,
                dataset=ds,
                event=event,
            )
            self.requests.append(info)
        strict = self.abort_on_odd_length or self.max_pdata_length is not None
        if strict and ((rec is not None and rec.violations) or (self.abort_on_odd_length and len(raw) % 2)):
            event.assoc.abort()  # as a strict DCMTK-based peer does
            return 0xC000
        answer = self.policy(info) if self.policy else 0x0000
        if isinstance(answer, tuple) and answer and answer[0] == "sleep":
            time.sleep(float(answer[1]))
            answer = answer[2] if len(answer) > 2 else 0x0000
        if answer == "abort":
            event.assoc.abort()
            return 0x0000
        if isinstance(answer, tuple) and answer and answer[0] == "status":
            rsp = Dataset()
            rsp.Status = int(answer[1])
            if len(answer) > 2 and answer[2] is not None:
                rsp.ErrorComment = str(answer[2])
            answer = rsp
        status = int(answer.Status) if isinstance(answer, Dataset) else int(answer)
        if status in (0x0000, 0xB000, 0xB006, 0xB007):
            with self.lock:
                self.received[uid] = ds
                self.raw[uid] = raw
                self.received_syntax[uid] = ts
                if rec is not None:
                    rec.stores.append(uid)
        return answer

    # -- helpers -----------------------------------------------------------

    def config(self, calling_ae: str = "TEST_SCU", **extra: Any) -> dict[str, Any]:
        """The seed config dict that reaches this SCP."""
        return make_config(self.port, self.ae_title, calling_ae, **extra)

    @property
    def max_contexts_requested(self) -> int:
        return max((a.n_contexts for a in self.associations), default=0)

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def scp_factory() -> Callable[..., RecordingSCP]:
    """Start in-process Storage SCPs; each is shut down at teardown.

    ``scp_factory(ae_title="TESTPACS", accept={sop_class: [syntaxes]} | None,
    transfer_syntaxes=(Implicit, Explicit), policy=None, reject=None, require_called_aet=True,
    require_calling_aet=None, max_pdu=16384, abort_on_odd_length=False, max_pdata_length=None)``.

    ``accept=None`` accepts every storage SOP class with `transfer_syntaxes`. pynetdicom picks,
    per requested context, the first syntax of the SCP's own list that the requestor offered.
    A policy gets a :class:`StoreRequest` and returns a status int, a Dataset, ``("status", code,
    error_comment)``, ``"abort"`` or ``("sleep", seconds, status)``. ``reject`` is a
    ``(result, source, reason)`` tuple, ``"abort"`` (A-ABORT instead of an answer), or
    ``f(assoc_index, record) -> tuple | "abort" | None``.
    """
    started: list[RecordingSCP] = []

    def start(**kwargs: Any) -> RecordingSCP:
        scp = RecordingSCP(**kwargs)
        started.append(scp)
        return scp

    yield start
    for scp in started:
        scp.stop()


# --------------------------------------------------------------------------- DCMTK storescp


class StoreSCPProcess:
    """A running DCMTK storescp; ``received()`` maps SOP Instance UID -> stored file."""

    def __init__(self, workdir: Path, flags: Iterable[str], aet: str, nodelay: bool = True) -> None:
        exe = require_binary("storescp", "dcmtk")
        self.aet = aet
        self.out_dir = workdir / "received"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = workdir / f"storescp-{self.port}.log"
        self._log = open(self.log_path, "w")
        env = os.environ.copy()
        if nodelay:  # DCMTK leaves Nagle on unless told; keep the peer from being the bottleneck
            env["TCP_NODELAY"] = "1"
        self.proc = subprocess.Popen(
            [exe, "-aet", aet, "-od", str(self.out_dir), *flags, str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            wait_listening(self.port, self.proc)
        except Exception:
            self.stop()
            raise

    def config(self, calling_ae: str = "TEST_SCU", **extra: Any) -> dict[str, Any]:
        return make_config(self.port, self.aet, calling_ae, **extra)

    def received(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for p in self.out_dir.rglob("*"):
            if p.is_file():
                ds = dcmread(p, stop_before_pixels=True, force=True)
                found[str(ds.SOPInstanceUID)] = p
        return found

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


@pytest.fixture
def storescp(tmp_path) -> Callable[..., StoreSCPProcess]:
    """``storescp(*flags, aet="STORESCP", nodelay=True)`` starts DCMTK storescp (e.g. ``"+xi"``: Implicit
    VR LE only); ``nodelay`` sets DCMTK's TCP_NODELAY environment variable for the peer."""
    started: list[StoreSCPProcess] = []

    def start(*flags: str, aet: str = "STORESCP", nodelay: bool = True) -> StoreSCPProcess:
        workdir = tmp_path / f"storescp{len(started)}"
        workdir.mkdir()
        p = StoreSCPProcess(workdir, flags, aet, nodelay)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture(scope="module")
def storescp_implicit(tmp_path_factory) -> StoreSCPProcess:
    """One module-wide ``storescp +xi`` (Implicit VR Little Endian only)."""
    p = StoreSCPProcess(tmp_path_factory.mktemp("storescp-xi"), ["+xi"], "STORESCP")
    yield p
    p.stop()


# --------------------------------------------------------------------------- Orthanc


class OrthancProcess:
    """A running Orthanc on loopback with REST helpers."""

    def __init__(self, workdir: Path, aet: str, **config: Any) -> None:
        exe = require_binary("Orthanc", "orthanc")
        self.aet = aet
        self.dicom_port, self.http_port = free_port(), free_port()
        cfg = {
            "Name": "CourierTests",
            "StorageDirectory": str(workdir / "db"),
            "IndexDirectory": str(workdir / "db"),
            "DicomAet": aet,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": True,
            "Plugins": [],
            **config,
        }
        cfg_path = workdir / "orthanc.json"
        cfg_path.write_text(json.dumps(cfg))
        self.log_path = workdir / "orthanc.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([exe, str(cfg_path)], stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_listening(self.dicom_port, self.proc)
            wait_listening(self.http_port, self.proc)
        except Exception:
            self.stop()
            raise

    def config(self, calling_ae: str = "TEST_SCU", **extra: Any) -> dict[str, Any]:
        return make_config(self.dicom_port, self.aet, calling_ae, **extra)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as r:
            body = r.read()
        try:
            return json.loads(body)
        except ValueError:
            return body

    def instances(self) -> dict[str, str]:
        """SOP Instance UID -> Orthanc instance id."""
        out = {}
        for oid in self.get("/instances"):
            tags = self.get(f"/instances/{oid}/simplified-tags")
            out[tags["SOPInstanceUID"]] = oid
        return out

    def sop_instance_uids(self) -> set[str]:
        return set(self.instances())

    def stored_transfer_syntax(self, oid: str) -> str:
        return str(self.get(f"/instances/{oid}/metadata/TransferSyntax")).strip("b'\"")

    def stored_file(self, oid: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/instances/{oid}/file", timeout=10) as r:
            return r.read()

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


@pytest.fixture
def orthanc(tmp_path) -> Callable[..., OrthancProcess]:
    """``orthanc(aet="ORTHANC", **config)`` starts Orthanc; extra keys go into its JSON config."""
    started: list[OrthancProcess] = []

    def start(aet: str = "ORTHANC", **config: Any) -> OrthancProcess:
        workdir = tmp_path / f"orthanc{len(started)}"
        workdir.mkdir()
        p = OrthancProcess(workdir, aet, **config)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
