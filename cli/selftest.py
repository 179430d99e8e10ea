"""The ``--self-test`` mode: prove that this build can negotiate, store and convert DICOM.

Runs the app's own engine entirely in-process on the loopback interface, with no
Qt (the frozen app runs it headless in CI) and files only in a temporary folder:

1. checks that pydicom finds a decoder for every codec family we bundle
   (the pylibjpeg plugins are found through package entry points, which a frozen
   app only has if its build collected their metadata);
2. starts the embedded Storage SCP (:class:`core.scp.EmbeddedSCP`) twice on
   ``("127.0.0.1", 0)``: one accepts every transfer syntax pydicom knows, the other
   only Implicit VR Little Endian (PS3.5 A.1, the syntax every peer must support);
3. C-ECHO (PS3.7 9.1.5) with :func:`core.echo.echo`, in the clear and over TLS
   (PS3.15 B.9; a throw-away CA and server certificate, the engine's TLS context);
4. one C-STORE (PS3.7 9.1.1) per codec family -- uncompressed, RLE Lossless,
   JPEG Baseline, JPEG-LS Lossless, JPEG 2000 Lossless -- over one association with
   :func:`core.store_datasets_batch` (strategy ``extended``), each checked on
   arrival: same SOP Instance UID, same transfer syntax, decoded pixels equal to ours;
5. the JPEG 2000 instance sent with :func:`core.store_dataset` (strategy
   ``universal``) to the Implicit-VR-only SCP, so it must be decoded on the way;
   checked the same way.

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
# ---------------------------------------------------------------------------- SCP


@dataclass
class _Received:
    """Where an embedded SCP wrote each instance, by SOP Instance UID."""

    paths: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_store(self, uid: str, path: str | None) -> None:
        with self.lock:
            self.paths[uid] = path or ""


def _start_scp(accept: str, store_dir: Path) -> tuple[Any, _Received]:
    """Start :class:`core.scp.EmbeddedSCP` on an ephemeral loopback port.

    Args:
        accept: ``"everything"`` or ``"implicit"`` (see :func:`core.scp.accepted_syntaxes`).
        store_dir: where it writes what it receives.

    Returns:
        ``(scp, received)``; stop the SCP with ``scp.stop()``.
    """
    from core.scp import EmbeddedSCP

    received = _Received()
    scp = EmbeddedSCP(
        port=0, ae_title=_SCP_AE, store_dir=str(store_dir), accept=accept, bind="127.0.0.1", on_store=received.on_store
    )
    scp.start()
    return scp, received


def _config(port: int) -> dict[str, Any]:
    """Return the seed-API config dict for the embedded SCP on `port`."""
    return {
        "remote_host": "127.0.0.1",
        "remote_port": port,
        "remote_ae_title": _SCP_AE,
        "local_ae_title": _SCU_AE,
        "acse_timeout": _TIMEOUT_S,
        "dimse_timeout": _TIMEOUT_S,
        "network_timeout": _TIMEOUT_S,
        "connect_timeout": _TIMEOUT_S,
    }


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
        except Exception as exc:
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


def _echo(port: int) -> str:
    """C-ECHO through the engine (:func:`core.echo.echo`)."""
    from core.echo import echo

    result = echo(_config(port))
    if result.get("status_code") != 0x0000:
        raise RuntimeError(f"C-ECHO status {result.get('status_code')!r}: {result.get('message')}")
    return f"{_SCP_AE} at 127.0.0.1:{port} answered status 0x0000 in {result.get('rtt_ms', 0):.1f} ms"


def _make_tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """Write a throw-away CA and a server certificate for 127.0.0.1 (ECDSA P-256, 1 day).

    Returns:
        ``(ca_cert, server_cert, server_key)`` PEM paths.
    """
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("DICOM Courier self-test CA"))
        .issuer_name(name("DICOM Courier self-test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def _tls_echo(folder: Path) -> str:
    """C-ECHO over TLS (PS3.15 B.9) with the engine's TLS set-up (:mod:`core.tls`).

    A pynetdicom Verification SCP listens on loopback with a certificate from a throw-away CA;
    the engine trusts only that CA and checks the host name (127.0.0.1, an IP SAN).
    """
    import ssl

    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    from core.echo import echo

    ca, cert, key = _make_tls_files(folder)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    server_ctx.load_cert_chain(str(cert), str(key))
    ae = AE(ae_title=_SCP_AE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = _TIMEOUT_S
    ae.add_supported_context(Verification)
    server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=server_ctx)
    assert server is not None  # block=False always returns the server
    try:
        port = server.server_address[1]
        config = _config(port) | {"tls_enabled": True, "tls_ca_cert_file": str(ca), "tls_verify_hostname": True}
        result = echo(config)
    finally:
        server.shutdown()
    if result.get("status_code") != 0x0000:
        raise RuntimeError(f"C-ECHO status {result.get('status_code')!r}: {result.get('message')}")
    tls = result.get("tls") or {}
    how = ", ".join(str(tls[k]) for k in ("protocol", "cipher") if tls.get(k)) or "TLS"
    return f"{ssl.OPENSSL_VERSION}; {_SCP_AE} at 127.0.0.1:{port} answered status 0x0000 over {how}"


def _check_secret_backends() -> str:
    """The TLS secret sources import: Google Secret Manager and keyring (nothing is read)."""
    import importlib
    import importlib.metadata as md

    found = []
    for module, dist in (("google.cloud.secretmanager", "google-cloud-secret-manager"), ("keyring", "keyring")):
        importlib.import_module(module)
        found.append(f"{dist} {md.version(dist)}")
    return ", ".join(found)


def _store_all(port: int, instances: list[tuple[str, Any, Any]]) -> tuple[dict[str, dict[str, Any]], int]:
    """Send every instance with :func:`core.store_datasets_batch` (strategy ``extended``).

    Returns:
        ``({label: per-instance detail dict}, number of associations used)``.
    """
    from core import store_datasets_batch

    batch = store_datasets_batch(
        _config(port),
        [ds for _label, ds, _arr in instances],
        transfer_syntax_strategy="extended",
        continue_on_error=True,
        max_retries=0,
    )
    by_index = {d.get("dataset_index", i): d for i, d in enumerate(batch.get("details", []))}
    details = {label: by_index.get(i, {}) for i, (label, _ds, _arr) in enumerate(instances)}
    return details, int(batch.get("associations") or 0)


def _verify(received: _Received, ds: Any, expected: Any, syntax: str) -> str:
    """Check what the SCP wrote for `ds`: present, in `syntax`, same decoded pixels."""
    import numpy as np
    from pydicom import dcmread

    uid = str(ds.SOPInstanceUID)
    deadline = time.monotonic() + 5
    while True:
        with received.lock:
            path = received.paths.get(uid)
        if path is not None or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    if path is None:
        raise RuntimeError(f"SOP Instance {uid} never arrived")
    got = dcmread(path)
    got_syntax = str(got.file_meta.TransferSyntaxUID)
    if str(got.SOPInstanceUID) != uid:
        raise RuntimeError(f"arrived with SOP Instance UID {got.SOPInstanceUID}, sent {uid}")
    if got_syntax != syntax:
        raise RuntimeError(f"arrived as {got_syntax}, expected {syntax}")
    arr = got.pixel_array
    if arr.shape != expected.shape or not np.array_equal(arr, expected):
        raise RuntimeError(f"decoded pixels differ (shape {arr.shape} vs {expected.shape})")
    return f"SOP Instance {uid} arrived as {got_syntax}, {arr.shape[1]}x{arr.shape[0]} pixels equal"


def _convert_and_store(port: int, ds: Any) -> dict[str, Any]:
    """Send compressed `ds` with :func:`core.store_dataset` (strategy ``universal``)."""
    import copy

    from core import store_dataset

    return store_dataset(_config(port), copy.deepcopy(ds), transfer_syntax_strategy="universal", max_retries=0)


# ---------------------------------------------------------------------------- entry


def run_self_test(out: TextIO | None = None) -> int:
    """Run the self-test, printing one ``PASS``/``FAIL`` line per step to `out`.

    Args:
        out: text stream for the report; ``sys.stdout`` when None.

    Returns:
        0 when every step passed, 1 otherwise. Never raises for a failed step.
    """
    import tempfile

    out = sys.stdout if out is None else out
    report = _Report(out)
    started = time.monotonic()
    frozen = " (frozen)" if getattr(sys, "frozen", False) else ""
    print(f"DICOM Courier self-test{frozen}: Python {sys.version.split()[0]} on {sys.platform}", file=out, flush=True)

    report.step("codecs", _check_codecs)

    scps: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="courier-selftest-") as tmp:
        try:
            try:
                scp_all, got_all = _start_scp("everything", Path(tmp) / "all")
                scps.append(scp_all)
                scp_implicit, got_implicit = _start_scp("implicit", Path(tmp) / "implicit")
                scps.append(scp_implicit)
            except Exception as exc:
                report.line(False, f"embedded SCP: could not start ({type(exc).__name__}: {exc})")
                return _finish(report, started)
            report.line(
                True,
                f"embedded SCP: listening on 127.0.0.1:{scp_all.port} (all syntaxes) "
                f"and 127.0.0.1:{scp_implicit.port} (Implicit VR Little Endian only)",
            )

            report.step("C-ECHO", lambda: _echo(scp_all.port))
            report.step("C-ECHO over TLS", lambda: _tls_echo(Path(tmp) / "tls"))
            report.step("secret back ends", _check_secret_backends)

            instances: list[tuple[str, Any, Any]] = []

            def make() -> str:
                instances.extend(_make_instances())
                return ", ".join(f"{label} {len(ds.PixelData)} bytes" for label, ds, _ in instances)

            if not report.step("generate instances", make):
                return _finish(report, started)

            details: dict[str, dict[str, Any]] = {}

            def store() -> str:
                got, n_assoc = _store_all(scp_all.port, instances)
                details.update(got)
                return f"{len(instances)} C-STOREs over {n_assoc} association(s)"

            report.step("C-STORE batch", store)
            for label, ds, expected in instances:
                syntax = str(ds.file_meta.TransferSyntaxUID)

                def check(ds: Any = ds, expected: Any = expected, syntax: str = syntax, label: str = label) -> str:
                    detail = details.get(label, {})
                    if detail.get("status_code") != 0x0000:
                        raise RuntimeError(
                            f"C-STORE {detail.get('status')!r} status {detail.get('status_code')!r}: {detail.get('message')}"
                        )
                    return "status 0x0000, " + _verify(got_all, ds, expected, syntax)

                report.step(f"C-STORE {label}", check)

            label, j2k, expected = next(i for i in instances if i[0] == "JPEG 2000 Lossless")

            def convert() -> str:
                from pydicom.uid import ImplicitVRLittleEndian

                result = _convert_and_store(scp_implicit.port, j2k)
                if result.get("status_code") != 0x0000:
                    raise RuntimeError(
                        f"C-STORE {result.get('status')!r} status {result.get('status_code')!r}: {result.get('message')}"
                    )
                return (
                    f"{label} -> Implicit VR Little Endian by core.store_dataset(strategy=universal), "
                    f"status 0x0000, " + _verify(got_implicit, j2k, expected, ImplicitVRLittleEndian)
                )

            report.step("convert", convert)
        finally:
            for scp in scps:
                try:
                    scp.stop()
                except Exception:
                    LOGGER.debug("SCP shutdown failed", exc_info=True)
    return _finish(report, started)


def _finish(report: _Report, started: float) -> int:
    total = report.passed + report.failed
    verdict = "passed" if report.failed == 0 else "FAILED"
    print(
        f"self-test {verdict}: {report.passed}/{total} steps passed in {time.monotonic() - started:.1f} s",
        file=report.out,
        flush=True,
    )
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":  # pragma: no cover - convenience: python -m cli.selftest
    sys.exit(run_self_test())
