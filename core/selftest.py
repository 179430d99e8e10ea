"""The ``--self-test`` mode: prove that this build can negotiate, store and convert DICOM.

Runs entirely in-process on the loopback interface, with no files written, no
network beyond ``127.0.0.1`` and no Qt (the frozen app runs it headless in CI):

1. checks that pydicom finds a decoder for every codec family we bundle
   (the pylibjpeg plugins are found through package entry points, which a frozen
   app only has if its build collected their metadata);
2. starts an embedded Storage SCP on ``("127.0.0.1", 0)`` that accepts every storage
   SOP class in every transfer syntax pydicom knows, and a second one that accepts
   only Implicit VR Little Endian (PS3.5 A.1, the syntax every peer must support);
3. C-ECHO (PS3.7 9.1.5) to the first SCP;
4. one C-STORE (PS3.7 9.1.1) per codec family -- uncompressed, RLE Lossless,
   JPEG Baseline, JPEG-LS Lossless, JPEG 2000 Lossless -- each checked on arrival:
   same SOP Instance UID, same transfer syntax, and decoded pixels equal to ours;
5. one JPEG 2000 instance sent to the Implicit-VR-only SCP, so it must be decoded
   on the way; checked the same way.

Each step prints one ``PASS ...``/``FAIL ...`` line; :func:`run_self_test` returns 0
only when every step passed.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

__all__ = ["run_self_test", "CODEC_FAMILIES"]

LOGGER = logging.getLogger(__name__)

#: (label, transfer syntax UID) of every codec family the app bundles.
CODEC_FAMILIES: tuple[tuple[str, str], ...] = (
    ("uncompressed", "1.2.840.10008.1.2.1"),  # Explicit VR Little Endian
    ("RLE Lossless", "1.2.840.10008.1.2.5"),
    ("JPEG Baseline", "1.2.840.10008.1.2.4.50"),
    ("JPEG-LS Lossless", "1.2.840.10008.1.2.4.80"),
    ("JPEG 2000 Lossless", "1.2.840.10008.1.2.4.90"),
)

_SCP_AE = "COURIER_TEST"
_SCU_AE = "COURIER_SELF"
_TIMEOUT_S = 15.0
_ROWS = _COLS = 64
_JPEG_FILE = "jpeg_baseline.dcm"


def _resource_dir() -> Path:
    """Return ``resources/selftest`` for a source checkout or a PyInstaller bundle."""
    candidates = [Path(__file__).resolve().parent.parent / "resources" / "selftest"]
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        candidates.append(Path(meipass) / "resources" / "selftest")
    for path in candidates:
        if path.is_dir():
            return path
    return candidates[0]


# ---------------------------------------------------------------------------- SCP


@dataclass
class _Received:
    """What an embedded SCP got: datasets by SOP Instance UID, and the syntax used."""

    datasets: dict[str, Any] = field(default_factory=dict)
    syntaxes: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _EmbeddedSCP:
    """A minimal in-memory Storage SCP (pynetdicom) on an ephemeral loopback port.

    Args:
        transfer_syntaxes: syntaxes accepted for every storage SOP class.
    """

    def __init__(self, transfer_syntaxes: list[str]) -> None:
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

        self.received = _Received()
        self.ae = AE(ae_title=_SCP_AE)
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = _TIMEOUT_S
        self.ae.maximum_pdu_size = 0
        for cx in AllStoragePresentationContexts:
            self.ae.add_supported_context(cx.abstract_syntax, transfer_syntaxes)
        self.ae.add_supported_context(Verification)
        handlers = [(evt.EVT_C_STORE, self._on_c_store), (evt.EVT_C_ECHO, lambda event: 0x0000)]
        self.server = self.ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        self.port: int = self.server.server_address[1]

    def _on_c_store(self, event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        uid = str(ds.SOPInstanceUID)
        with self.received.lock:
            self.received.datasets[uid] = ds
            self.received.syntaxes[uid] = str(event.context.transfer_syntax)
        return 0x0000

    def shutdown(self) -> None:
        self.server.shutdown()


# ---------------------------------------------------------------------------- data


def _pattern() -> Any:
    """Return a 64x64 uint16 test image (12 bits stored): gradient plus a disc."""
    import numpy as np

    y, x = np.mgrid[0:_ROWS, 0:_COLS]
    img = (x * 37 + y * 23) % 4096
    disc = (x - 32) ** 2 + (y - 28) ** 2 < 18**2
    img[disc] = 4095 - img[disc]
    return img.astype(np.uint16)


def _base_dataset() -> Any:
    """Return an uncompressed Secondary Capture dataset carrying :func:`_pattern`."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    arr = _pattern()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "SELFTEST^COURIER"
    ds.PatientID = "SELFTEST"
    ds.Modality = "OT"
    ds.ConversionType = "SYN"
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = arr.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = arr.tobytes()
    return ds


def _make_instances() -> list[tuple[str, Any, Any]]:
    """Return ``(label, dataset, expected pixels)`` for every codec family.

    The lossless families are encoded here with pydicom's encoders; pydicom has no
    JPEG Baseline encoder, so that one is read from ``resources/selftest`` (made by
    ``packaging/make_resources.py``) and its expected pixels are its own decoding.
    """
    import copy

    from pydicom import dcmread
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless, generate_uid

    original = _pattern()
    out: list[tuple[str, Any, Any]] = [("uncompressed", _base_dataset(), original)]
    for label, syntax in (("RLE Lossless", RLELossless), ("JPEG-LS Lossless", JPEGLSLossless)):
        ds = _base_dataset()
        ds.compress(syntax, generate_instance_uid=False)
        out.append((label, ds, original))
    jpeg = dcmread(_resource_dir() / _JPEG_FILE)
    jpeg.SOPInstanceUID = generate_uid()
    jpeg.file_meta.MediaStorageSOPInstanceUID = jpeg.SOPInstanceUID
    out.append(("JPEG Baseline", jpeg, copy.deepcopy(jpeg).pixel_array))
    ds = _base_dataset()
    ds.compress(JPEG2000Lossless, generate_instance_uid=False)
    out.append(("JPEG 2000 Lossless", ds, original))
    return out


# ---------------------------------------------------------------------------- steps


class _Report:
    """Collect and print ``PASS``/``FAIL`` lines."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.passed = 0
        self.failed = 0

    def line(self, ok: bool, text: str) -> bool:
        print(("PASS " if ok else "FAIL ") + text, file=self.out, flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok

    def step(self, name: str, func: Callable[[], str]) -> bool:
        """Run `func`; its return value is the detail of a PASS, an exception a FAIL."""
        try:
            detail = func()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a FAIL line
            LOGGER.debug("self-test step %s failed", name, exc_info=True)
            last = traceback.extract_tb(exc.__traceback__)[-1:]
            where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
            return self.line(False, f"{name}: {type(exc).__name__}: {exc}{where}")
        return self.line(True, f"{name}: {detail}" if detail else name)


def _check_codecs() -> str:
    """Every family has an available decoder (and the lossless ones an encoder)."""
    from pydicom.pixels import get_decoder, get_encoder
    from pydicom.uid import UID

    found, missing = [], []
    for label, syntax in CODEC_FAMILIES:
        dec = get_decoder(UID(syntax))
        plugins = list(dec.available_plugins)
        if not dec.is_available:
            missing.append(f"{label} decoder ({'; '.join(dec.missing_dependencies)})")
        if UID(syntax).is_compressed and "Baseline" not in label:
            enc = get_encoder(UID(syntax))
            if not enc.is_available:
                missing.append(f"{label} encoder ({'; '.join(enc.missing_dependencies)})")
        found.append(f"{label} [{', '.join(plugins) or 'native'}]")
    if missing:
        raise RuntimeError("missing " + ", ".join(missing))
    return "; ".join(found)


def _associate(port: int, contexts: list[tuple[str, list[str]]]) -> Any:
    """Associate with the embedded SCP on `port`, proposing `contexts`."""
    from pynetdicom import AE

    ae = AE(ae_title=_SCU_AE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = _TIMEOUT_S
    ae.connection_timeout = _TIMEOUT_S
    for abstract, syntaxes in contexts:
        ae.add_requested_context(abstract, syntaxes)
    assoc = ae.associate("127.0.0.1", port, ae_title=_SCP_AE)
    if not assoc.is_established:
        raise RuntimeError(f"association with 127.0.0.1:{port} not established")
    return assoc


def _echo(port: int) -> str:
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    assoc = _associate(port, [(Verification, ["1.2.840.10008.1.2"])])
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    code = getattr(status, "Status", None)
    if code != 0x0000:
        raise RuntimeError(f"C-ECHO status {code!r}")
    return f"{_SCP_AE} at 127.0.0.1:{port} answered status 0x0000"


def _store_all(port: int, instances: list[tuple[str, Any, Any]]) -> dict[str, int | None]:
    """Send every instance over one association; return ``{label: status or None}``."""
    contexts = [
        (str(ds.SOPClassUID), [str(ds.file_meta.TransferSyntaxUID)]) for _label, ds, _arr in instances
    ]
    assoc = _associate(port, contexts)
    statuses: dict[str, int | None] = {}
    try:
        for label, ds, _arr in instances:
            rsp = assoc.send_c_store(ds)
            statuses[label] = getattr(rsp, "Status", None)
    finally:
        assoc.release()
    return statuses


def _verify(received: _Received, ds: Any, expected: Any, syntax: str) -> str:
    """Check what the SCP got for `ds`: present, in `syntax`, same pixels."""
    import numpy as np

    uid = str(ds.SOPInstanceUID)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with received.lock:
            got = received.datasets.get(uid)
            got_syntax = received.syntaxes.get(uid)
        if got is not None:
            break
        time.sleep(0.02)
    else:
        raise RuntimeError(f"SOP Instance {uid} never arrived")
    if got_syntax != syntax:
        raise RuntimeError(f"arrived as {got_syntax}, expected {syntax}")
    arr = got.pixel_array
    if arr.shape != expected.shape or not np.array_equal(arr, expected):
        raise RuntimeError(f"decoded pixels differ (shape {arr.shape} vs {expected.shape})")
    return f"SOP Instance {uid} arrived as {got_syntax}, {arr.shape[1]}x{arr.shape[0]} pixels equal"


def _convert_and_store(port: int, ds: Any) -> tuple[str, int | None]:
    """Send compressed `ds` to an SCP that accepts only Implicit VR Little Endian.

    Uses the engine's ``core.store_dataset`` with the ``universal`` strategy when it
    exists; otherwise decodes here and lets pynetdicom re-encode as Implicit VR LE.
    """
    import copy

    import core

    store = getattr(core, "store_dataset", None)
    if callable(store):
        config = {"remote_host": "127.0.0.1", "remote_port": port, "remote_ae_title": _SCP_AE,
                  "local_ae_title": _SCU_AE}
        result = store(config, copy.deepcopy(ds), transfer_syntax_strategy="universal")
        status = getattr(result, "status", None)
        if status is None and isinstance(result, dict):
            status = result.get("status")
        return "core.store_dataset(strategy=universal)", status
    # TODO(lead): drop this branch once core.store_dataset lands.
    from pydicom.uid import ImplicitVRLittleEndian

    local = copy.deepcopy(ds)
    local.decompress(generate_instance_uid=False)
    assoc = _associate(port, [(str(local.SOPClassUID), [ImplicitVRLittleEndian])])
    try:
        rsp = assoc.send_c_store(local)  # explicit -> implicit VR LE by pynetdicom
    finally:
        assoc.release()
    return "decompress + pynetdicom", getattr(rsp, "Status", None)


# ---------------------------------------------------------------------------- entry


def run_self_test(out: TextIO | None = None) -> int:
    """Run the self-test, printing one ``PASS``/``FAIL`` line per step to `out`.

    Args:
        out: text stream for the report; ``sys.stdout`` when None.

    Returns:
        0 when every step passed, 1 otherwise. Never raises for a failed step.
    """
    out = sys.stdout if out is None else out
    report = _Report(out)
    started = time.monotonic()
    frozen = " (frozen)" if getattr(sys, "frozen", False) else ""
    print(f"DICOM Courier self-test{frozen}: Python {sys.version.split()[0]} on {sys.platform}",
          file=out, flush=True)

    report.step("codecs", _check_codecs)

    from pydicom.uid import AllTransferSyntaxes, ImplicitVRLittleEndian

    scps: list[_EmbeddedSCP] = []
    try:
        try:
            scp_all = _EmbeddedSCP([str(u) for u in AllTransferSyntaxes])
            scps.append(scp_all)
            scp_implicit = _EmbeddedSCP([ImplicitVRLittleEndian])
            scps.append(scp_implicit)
        except Exception as exc:  # noqa: BLE001
            report.line(False, f"embedded SCP: could not start ({type(exc).__name__}: {exc})")
            return _finish(report, started)
        report.line(True, f"embedded SCP: listening on 127.0.0.1:{scp_all.port} (all syntaxes) "
                          f"and 127.0.0.1:{scp_implicit.port} (Implicit VR Little Endian only)")

        report.step("C-ECHO", lambda: _echo(scp_all.port))

        instances: list[tuple[str, Any, Any]] = []

        def make() -> str:
            instances.extend(_make_instances())
            return ", ".join(f"{label} {len(ds.PixelData)} bytes" for label, ds, _ in instances)

        if not report.step("generate instances", make):
            return _finish(report, started)

        statuses: dict[str, int | None] = {}

        def store() -> str:
            statuses.update(_store_all(scp_all.port, instances))
            return f"{len(statuses)} C-STOREs over one association"

        report.step("C-STORE association", store)
        for label, ds, expected in instances:
            syntax = str(ds.file_meta.TransferSyntaxUID)

            def check(ds: Any = ds, expected: Any = expected, syntax: str = syntax, label: str = label) -> str:
                status = statuses.get(label)
                if status != 0x0000:
                    raise RuntimeError(f"C-STORE status {status!r}")
                return "status 0x0000, " + _verify(scp_all.received, ds, expected, syntax)

            report.step(f"C-STORE {label}", check)

        label, j2k, expected = next(i for i in instances if i[0] == "JPEG 2000 Lossless")

        def convert() -> str:
            how, status = _convert_and_store(scp_implicit.port, j2k)
            if status != 0x0000:
                raise RuntimeError(f"{how}: C-STORE status {status!r}")
            return f"{label} -> Implicit VR Little Endian via {how}, status 0x0000, " + _verify(
                scp_implicit.received, j2k, expected, ImplicitVRLittleEndian
            )

        report.step("convert", convert)
    finally:
        for scp in scps:
            try:
                scp.shutdown()
            except Exception:  # noqa: BLE001 - best effort at exit
                LOGGER.debug("SCP shutdown failed", exc_info=True)
    return _finish(report, started)


def _finish(report: _Report, started: float) -> int:
    total = report.passed + report.failed
    verdict = "passed" if report.failed == 0 else "FAILED"
    print(f"self-test {verdict}: {report.passed}/{total} steps passed in {time.monotonic() - started:.1f} s",
          file=report.out, flush=True)
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":  # pragma: no cover - convenience: python -m core.selftest
    sys.exit(run_self_test())
