"""Shared fixtures: real DICOM peers on loopback, a private home, a CLI runner and the main window.

The peers themselves live in ``tests/helpers`` (one way to start each); these fixtures start them
and stop them at teardown:

    scp_factory        an in-process pynetdicom Storage SCP (helpers.scp.RecordingSCP)
    strict_scp         the strict receiver (helpers.strict.StrictSCP)
    picky              the window tests' picky PACS (a RecordingSCP with helpers.scp.picky_options)
    storescp           DCMTK storescp with given flags, configuration file or TLS (helpers.dcmtk)
    storescp_implicit  one module-wide ``storescp +xi``
    orthanc            Orthanc with a temporary JSON configuration (helpers.orthanc)
    courier_scp        our own ``main.py scp`` in its own process (helpers.process)
    run_cli            ``python main.py ARGS``
    window             the main window, offscreen, with private folders (helpers.gui)

Every external process is started by the fixture and stopped by its own PID on teardown.
Interop fixtures skip with a message naming the package when a binary is missing; set
COURIER_REQUIRE_INTEROP=1 (CI does) to make such a skip a failure instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `core` and `ui` from this checkout

from helpers.dcmtk import StoreSCPProcess
from helpers.gui import open_window
from helpers.orthanc import OrthancProcess
from helpers.process import CourierSCPProcess
from helpers.process import run_cli as _run_cli
from helpers.scp import RecordingSCP, picky_options
from helpers.strict import StrictSCP

# Headless Qt before any session-scoped QApplication (pytest-qt's qapp) can be created.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


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


@pytest.fixture
def run_cli() -> Callable[..., Any]:
    """``run_cli(*args, timeout=180)`` runs ``python main.py ARGS`` in the project root."""
    return _run_cli


# --------------------------------------------------------------------------- in-process SCPs


@pytest.fixture
def scp_factory() -> Iterator[Callable[..., RecordingSCP]]:
    """``scp_factory(**options)`` starts an in-process Storage SCP (see :class:`helpers.scp.RecordingSCP`
    for the options: accepted SOP classes and syntaxes, policy, reject, max PDU, ...)."""
    started: list[RecordingSCP] = []

    def start(**kwargs: Any) -> RecordingSCP:
        scp = RecordingSCP(**kwargs)
        started.append(scp)
        return scp

    yield start
    for scp in started:
        scp.stop()


@pytest.fixture
def strict_scp() -> Iterator[Callable[..., StrictSCP]]:
    """``strict_scp(**options)`` starts the strict receiver (:class:`helpers.strict.StrictSCP`), e.g.
    ``strict_scp(transfer_syntaxes=[ImplicitVRLittleEndian])``; ``scp.compare(source)`` checks an instance."""
    started: list[StrictSCP] = []

    def start(**kwargs: Any) -> StrictSCP:
        scp = StrictSCP(**kwargs)
        started.append(scp)
        return scp

    yield start
    for scp in started:
        scp.stop()


@pytest.fixture
def picky(scp_factory: Callable[..., RecordingSCP]) -> Callable[..., RecordingSCP]:
    """``picky(sop_classes=(CT, MR), syntaxes=(Implicit,), ae_title="PICKY", status_for=None, delay_s=0)``:
    a Storage SCP that accepts only those classes and syntaxes (see :func:`helpers.scp.picky_options`)."""
    return lambda **kw: scp_factory(**picky_options(**kw))


# --------------------------------------------------------------------------- DCMTK storescp


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[Callable[..., StoreSCPProcess]]:
    """``storescp(*flags, aet="STORESCP", nodelay=True, config=None, profile=None)`` starts DCMTK storescp
    (e.g. ``"+xi"``: Implicit VR LE only; ``*helpers.dcmtk.tls_flags(...)``: TLS; ``config=PICKY_CFG,
    profile="Picky"``: an association configuration file); ``nodelay`` sets DCMTK's TCP_NODELAY."""
    started: list[StoreSCPProcess] = []

    def start(*flags: str, aet: str = "STORESCP", nodelay: bool = True, **kw: Any) -> StoreSCPProcess:
        workdir = tmp_path / f"storescp{len(started)}"
        workdir.mkdir()
        p = StoreSCPProcess(workdir, flags, aet, nodelay, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture(scope="module")
def storescp_implicit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreSCPProcess]:
    """One module-wide ``storescp +xi`` (Implicit VR Little Endian only)."""
    p = StoreSCPProcess(tmp_path_factory.mktemp("storescp-xi"), ["+xi"], "STORESCP")
    yield p
    p.stop()


# --------------------------------------------------------------------------- Orthanc


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Callable[..., OrthancProcess]]:
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


# --------------------------------------------------------------------------- our own SCP, in its own process


@pytest.fixture
def courier_scp(tmp_path: Path) -> Iterator[Callable[..., CourierSCPProcess]]:
    """``courier_scp(*extra, ae_title="COURIER", store=True, bind="127.0.0.1")`` starts ``python main.py scp``
    (writing into a temporary folder when `store`); its output goes to a log file beside that folder."""
    started: list[CourierSCPProcess] = []

    def start(*extra: str, ae_title: str = "COURIER", store: bool = True, bind: str | None = "127.0.0.1") -> CourierSCPProcess:
        n = len(started)
        store_dir = tmp_path / f"store{n}" if store else None
        p = CourierSCPProcess(ae_title, store_dir, extra, bind, log=tmp_path / f"courier-scp{n}.log")
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


# --------------------------------------------------------------------------- the main window


@pytest.fixture(scope="session")
def qapp_args(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The GUI tests run on one offscreen screen of 1280 x 800 (a laptop's), as ``main.py --screenshot`` does."""
    args = ["dicom-courier-tests"]
    if os.environ.get("QT_QPA_PLATFORM", "offscreen").startswith("offscreen"):
        from ui.app import offscreen_platform

        args += ["-platform", offscreen_platform(str(tmp_path_factory.mktemp("qt-screen")))]
    return args


@pytest.fixture
def window(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The main window, shown offscreen, with private config and data folders."""
    yield from open_window(qtbot, tmp_path, monkeypatch)
