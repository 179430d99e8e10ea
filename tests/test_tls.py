"""TLS and secrets: ``core.tls`` and ``core.secrets`` against real peers and real client code.

Peers: DCMTK ``storescp +tls`` (marked ``interop``) with a PKI made here (``tests/tls_pki.py``);
a local gRPC server speaking the Secret Manager API, driven through the real
``SecretManagerServiceClient``; a test keyring in memory (``helpers.keyrings``: the app refuses
keyrings.alt's plain-text file, see tests/test_secrets_at_rest.py).
Covers case c25 (TLS on one side only; a peer that wants a client certificate) and issue 4.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import ssl
import stat
import warnings
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import keyring
import pytest
from google.cloud.secretmanager_v1 import SecretManagerServiceClient
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)
from google.cloud.secretmanager_v1.types import (
    AccessSecretVersionRequest,
    AccessSecretVersionResponse,
    SecretPayload,
)
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from core import secrets, tls
from core.config import StoreConfig
from core.errors import TlsConfigError
from helpers.dcmtk import StoreSCPProcess, tls_flags
from helpers.keyrings import MemoryKeyring, use_keyring
from helpers.process import free_port
from helpers.tls_pki import LOCAL_SANS, TestPki, make_leaf, make_test_pki, write_leaf

STORESCP = shutil.which("storescp")
needs_storescp = pytest.mark.skipif(
    STORESCP is None,
    reason="DCMTK storescp is not installed (apt-get install -y dcmtk); the TLS interop tests need it",
)


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def tls_peer(storescp: Callable[..., StoreSCPProcess], pki: TestPki, key: Path, cert: Path, auth: str = "-ic") -> StoreSCPProcess:
    """storescp +tls with `key`/`cert`, trusting our CA; ``-rc`` requires a client certificate."""
    return storescp(*tls_flags(key, cert, pki.ca, require_client_cert=auth == "-rc"))


def config(port: int = 104, **extra: object) -> StoreConfig:
    values: dict[str, object] = {
        "remote_host": "127.0.0.1",
        "remote_port": port,
        "remote_ae_title": "STORESCP",
        "tls_enabled": True,
    }
    values.update(extra)
    return StoreConfig.from_dict(values)


def client_files(pki: TestPki) -> dict[str, str]:
    return {
        "tls_ca_cert_file": str(pki.ca),
        "tls_client_cert_file": str(pki.client),
        "tls_client_key_file": str(pki.client_key),
    }


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """A test keyring (in memory), installed as the process's keyring."""
    with use_keyring(MemoryKeyring()) as backend:
        yield backend


@pytest.fixture(autouse=True)
def _no_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(secrets.PASSWORD_ENV, raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)


def ct_dataset() -> Dataset:
    """A 16x16 CT image, Explicit VR Little Endian (as case c25 builds)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.PatientName = "CT", "TEST-TLS", "TEST^TLS"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(512)
    return ds


def associate(port: int, tls_args: tuple[ssl.SSLContext, str | None] | None):
    ae = AE(ae_title="COURIER")
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = 5
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    return ae.associate("127.0.0.1", port, ae_title="STORESCP", tls_args=tls_args)


def echo_and_store(port: int, tls_args: tuple[ssl.SSLContext, str | None]) -> dict:
    """C-ECHO and C-STORE over TLS; return the session info; assert both succeed."""
    assoc = associate(port, tls_args)
    assert assoc.is_established
    try:
        assert assoc.send_c_echo().Status == 0x0000
        assert assoc.send_c_store(ct_dataset()).Status == 0x0000
        return tls.tls_session_info(assoc)
    finally:
        assoc.release()


# --------------------------------------------------------------------------------------------
# Success over a real TLS peer (DCMTK storescp +tls)
# --------------------------------------------------------------------------------------------
@pytest.mark.interop
@needs_storescp
def test_mutual_tls_echo_and_store(storescp, pki):
    peer = tls_peer(storescp, pki, pki.server_key, pki.server, "-rc")
    info = echo_and_store(peer.port, tls.build_ssl_context(config(peer.port, **client_files(pki))))
    assert list(peer.out_dir.iterdir()), "storescp received nothing"
    assert info["tls"] and info["protocol"] in ("TLSv1.2", "TLSv1.3")
    assert info["peer_subject"] == "CN=pacs" and info["peer_issuer"] == "CN=Courier Test CA"
    assert info["expires_soon"] is False and info["days_left"] > 300


@pytest.mark.interop
@needs_storescp
def test_server_authenticated_tls_without_client_certificate(storescp, pki):
    peer = tls_peer(storescp, pki, pki.server_key, pki.server, "-ic")
    echo_and_store(peer.port, tls.build_ssl_context(config(peer.port, tls_ca_cert_file=str(pki.ca))))


@pytest.mark.interop
@needs_storescp
def test_tls12_with_rsa_server(storescp, pki):
    """DCMTK 3.6.7's default BCP 195 profile offers RSA suites in TLS 1.2; ours must match one."""
    peer = tls_peer(storescp, pki, pki.rsa_server_key, pki.rsa_server, "-rc")
    ctx, host = tls.build_ssl_context(config(peer.port, **client_files(pki)))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    info = echo_and_store(peer.port, (ctx, host))
    assert info["protocol"] == "TLSv1.2" and "GCM" in info["cipher"]


@pytest.mark.interop
@needs_storescp
@pytest.mark.parametrize("source", ["keyring", "env"])
def test_encrypted_client_key(storescp, pki, memory_keyring, monkeypatch, source):
    peer = tls_peer(storescp, pki, pki.server_key, pki.server, "-rc")
    files = client_files(pki) | {"tls_client_key_file": str(pki.client_key_encrypted)}
    if source == "keyring":
        secrets.set_key_password("pacs-a", pki.client_key_password)
        cfg = config(peer.port, tls_key_password_keyring="pacs-a", **files)
    else:
        monkeypatch.setenv(secrets.PASSWORD_ENV, pki.client_key_password)
        cfg = config(peer.port, **files)
    echo_and_store(peer.port, tls.build_ssl_context(cfg))


@pytest.mark.interop
@needs_storescp
def test_hostname_check_can_be_switched_off(storescp, pki):
    peer = tls_peer(storescp, pki, pki.othername_key, pki.othername)
    cfg = config(peer.port, tls_ca_cert_file=str(pki.ca), tls_verify_hostname=False)
    echo_and_store(peer.port, tls.build_ssl_context(cfg))
    assert tls.handshake_problem(cfg) is None


@pytest.mark.interop
@needs_storescp
def test_session_info_warns_before_expiry(storescp, pki, tmp_path):
    key, cert = write_leaf(tmp_path, "soon", make_leaf(pki.authority, "soon-pacs", LOCAL_SANS, days=(-1, 10)))
    peer = tls_peer(storescp, pki, key, cert)
    info = echo_and_store(peer.port, tls.build_ssl_context(config(peer.port, tls_ca_cert_file=str(pki.ca))))
    assert info["expires_soon"] is True and 8 <= info["days_left"] <= 10


# --------------------------------------------------------------------------------------------
# Diagnosed failures against a real TLS peer
# --------------------------------------------------------------------------------------------
def assert_names_peer(message: str, port: int) -> None:
    assert f"127.0.0.1:{port}" in message and "TLS" in message, message


def assert_fails(port: int, tls_args: tuple[ssl.SSLContext, str | None] | None) -> None:
    """Associate, check that it fails, and let go of the socket pynetdicom 3.0.4 leaves unclosed
    on a failed connection (a ResourceWarning, not our code's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        assoc = associate(port, tls_args)
        assert not assoc.is_established
        if assoc.ident is not None:
            assoc.join(5)
        raw = getattr(assoc.dul.socket, "socket", None)
        if raw is not None:
            raw.close()
        del assoc, raw
        gc.collect()


def failed_association(port: int, cfg: StoreConfig) -> tuple[ssl.SSLContext, str | None]:
    """Associate with `cfg`'s context and check that it fails; return the context for diagnosis."""
    tls_args = tls.build_ssl_context(cfg)
    assert_fails(port, tls_args)
    return tls_args


@pytest.mark.interop
@needs_storescp
def test_peer_requires_client_certificate_tls13(storescp, pki):
    peer = tls_peer(storescp, pki, pki.server_key, pki.server, "-rc")
    cfg = config(peer.port, tls_ca_cert_file=str(pki.ca))
    message = tls.diagnose_handshake(cfg, tls_args=failed_association(peer.port, cfg))
    assert_names_peer(message, peer.port)
    assert "requires a client certificate" in message


@pytest.mark.interop
@needs_storescp
def test_peer_requires_client_certificate_tls12(storescp, pki):
    """With TLS 1.2 the alert comes during the handshake (a generic handshake_failure)."""
    peer = tls_peer(storescp, pki, pki.rsa_server_key, pki.rsa_server, "-rc")
    ctx, host = tls.build_ssl_context(config(peer.port, tls_ca_cert_file=str(pki.ca)))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    message = tls.diagnose_handshake(config(peer.port), tls_args=(ctx, host))
    assert_names_peer(message, peer.port)
    assert "requires a client certificate" in message


@pytest.mark.interop
@needs_storescp
def test_peer_does_not_trust_our_client_certificate(storescp, pki):
    peer = tls_peer(storescp, pki, pki.server_key, pki.server, "-rc")
    cfg = config(
        peer.port,
        tls_ca_cert_file=str(pki.ca),
        tls_client_cert_file=str(pki.rogue_client),
        tls_client_key_file=str(pki.rogue_client_key),
    )
    message = tls.diagnose_handshake(cfg, tls_args=failed_association(peer.port, cfg))
    assert_names_peer(message, peer.port)
    assert "does not trust our client certificate" in message


@pytest.mark.interop
@needs_storescp
def test_unknown_issuer_is_refused_not_bypassed(storescp, pki):
    peer = tls_peer(storescp, pki, pki.server_key, pki.server)
    cfg = config(peer.port, tls_ca_cert_file=str(pki.rogue_ca))
    message = tls.diagnose_handshake(cfg, tls_args=failed_association(peer.port, cfg))
    assert_names_peer(message, peer.port)
    assert "verification failed: unknown issuer" in message and "CN=Courier Test CA" in message


@pytest.mark.interop
@needs_storescp
def test_expired_server_certificate(storescp, pki):
    peer = tls_peer(storescp, pki, pki.expired_key, pki.expired)
    cfg = config(peer.port, tls_ca_cert_file=str(pki.ca))
    message = tls.diagnose_handshake(cfg, tls_args=failed_association(peer.port, cfg))
    assert_names_peer(message, peer.port)
    assert "expired" in message and "CN=old-pacs" in message


@pytest.mark.interop
@needs_storescp
def test_server_certificate_not_yet_valid(storescp, pki):
    peer = tls_peer(storescp, pki, pki.future_key, pki.future)
    cfg = config(peer.port, tls_ca_cert_file=str(pki.ca))
    message = tls.diagnose_handshake(cfg, tls_args=failed_association(peer.port, cfg))
    assert_names_peer(message, peer.port)
    assert "not yet valid" in message


@pytest.mark.interop
@needs_storescp
def test_host_name_mismatch(storescp, pki):
    peer = tls_peer(storescp, pki, pki.othername_key, pki.othername)
    cfg = config(peer.port, tls_ca_cert_file=str(pki.ca))
    message = tls.diagnose_handshake(cfg, tls_args=failed_association(peer.port, cfg))
    assert_names_peer(message, peer.port)
    assert "does not name host 127.0.0.1" in message and "pacs.example" in message
    assert "--no-verify-hostname" in message


@pytest.mark.interop
@needs_storescp
def test_tls_sent_to_a_plain_port(storescp, pki):
    """c25 peer B: a plain storescp; our ClientHello gets no TLS answer."""
    peer = storescp()
    cfg = config(peer.port, tls_ca_cert_file=str(pki.ca))
    message = tls.diagnose_handshake(cfg, tls_args=failed_association(peer.port, cfg))
    assert_names_peer(message, peer.port)
    assert "did not answer the TLS handshake" in message and "is TLS enabled on its side?" in message
    assert tls.diagnose_plain_to_tls("127.0.0.1", peer.port, 3.0) is None


@pytest.mark.interop
@needs_storescp
@pytest.mark.parametrize("auth", ["-ic", "-rc"])
def test_plain_dicom_sent_to_a_tls_port(storescp, pki, auth):
    """c25 peer A (and C): a plain association breaks; the port is found to speak TLS."""
    peer = tls_peer(storescp, pki, pki.server_key, pki.server, auth)
    assert_fails(peer.port, None)
    message = tls.diagnose_plain_to_tls("127.0.0.1", peer.port, 3.0)
    assert message is not None and f"127.0.0.1:{peer.port}" in message
    assert "may require TLS" in message and "--tls" in message


def test_connection_refused_is_named():
    cfg = config(free_port())
    message = tls.diagnose_handshake(cfg)
    assert_names_peer(message, cfg.remote_port)
    assert "connection refused" in message
    assert tls.diagnose_plain_to_tls("127.0.0.1", cfg.remote_port, 1.0) is None


# --------------------------------------------------------------------------------------------
# Configuration errors (no peer needed)
# --------------------------------------------------------------------------------------------
def test_context_settings(pki):
    ctx, host = tls.build_ssl_context(config(tls_ca_cert_file=str(pki.ca)))
    assert ctx.protocol == ssl.PROTOCOL_TLS_CLIENT and ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname is True and host == "127.0.0.1"
    assert all(c["protocol"] == "TLSv1.3" or "GCM" in c["name"] or "CHACHA" in c["name"] for c in ctx.get_ciphers())
    relaxed, _ = tls.build_ssl_context(config(tls_ca_cert_file=str(pki.ca), tls_verify_hostname=False))
    assert relaxed.check_hostname is False and relaxed.verify_mode == ssl.CERT_REQUIRED


def test_missing_file(pki, tmp_path):
    with pytest.raises(TlsConfigError, match="does not exist") as info:
        tls.build_ssl_context(config(tls_ca_cert_file=str(tmp_path / "nope.pem")))
    assert str(tmp_path / "nope.pem") in info.value.message and info.value.remote_ae == "STORESCP"


def test_unreadable_file(pki, tmp_path, monkeypatch):
    with pytest.raises(TlsConfigError, match="is a folder, not a file"):
        tls.build_ssl_context(config(tls_ca_cert_file=str(tmp_path)))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tls, "open", denied, raising=False)  # root could read a chmod 0 file
    with pytest.raises(TlsConfigError, match="cannot be read \\(permission denied\\)"):
        tls.build_ssl_context(config(tls_ca_cert_file=str(pki.ca)))


def test_not_pem(pki, tmp_path):
    der = tmp_path / "ca.der"
    der.write_bytes(b"\x30\x82\x01\x0a" + bytes(100))
    with pytest.raises(TlsConfigError, match="not a PEM certificate"):
        tls.build_ssl_context(config(tls_ca_cert_file=str(der)))
    with pytest.raises(TlsConfigError, match="not a PEM private key"):
        tls.build_ssl_context(config(**client_files(pki) | {"tls_client_key_file": str(der)}))


def test_key_does_not_match_certificate(pki):
    cfg = config(**client_files(pki) | {"tls_client_key_file": str(pki.server_key)})
    with pytest.raises(TlsConfigError, match="does not match the client certificate"):
        tls.build_ssl_context(cfg)


def test_encrypted_key_without_passphrase(pki, memory_keyring):
    cfg = config(
        **client_files(pki) | {"tls_client_key_file": str(pki.client_key_encrypted)},
        tls_key_password_keyring="no-such-entry",
    )
    with pytest.raises(TlsConfigError, match="encrypted and no passphrase is set"):
        tls.build_ssl_context(cfg)


def test_wrong_passphrase_is_named_but_not_shown(pki, monkeypatch, caplog):
    monkeypatch.setenv(secrets.PASSWORD_ENV, "not-the-passphrase-42")
    cfg = config(**client_files(pki) | {"tls_client_key_file": str(pki.client_key_encrypted)})
    with caplog.at_level(logging.DEBUG), pytest.raises(TlsConfigError, match="wrong passphrase") as info:
        tls.build_ssl_context(cfg)
    assert secrets.PASSWORD_ENV in info.value.message
    assert "not-the-passphrase-42" not in info.value.message + repr(info.value.details) + caplog.text


def test_both_file_and_secret_is_refused(pki):
    with pytest.raises(TlsConfigError, match="not both"):
        tls.build_ssl_context(config(tls_ca_cert_file=str(pki.ca), tls_ca_cert_secret_name="ca"))


def test_key_without_certificate_is_refused(pki):
    with pytest.raises(TlsConfigError, match="no client certificate"):
        tls.build_ssl_context(config(tls_ca_cert_file=str(pki.ca), tls_client_key_file=str(pki.client_key)))


def test_private_dir_is_private_and_removed_on_error():
    with pytest.raises(RuntimeError), tls._private_dir() as folder:  # noqa: PT012  # the checks run inside the folder
        path = tls._private_file(folder, "key.pem", b"x")
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        raise RuntimeError("boom")
    assert not os.path.exists(folder)


def test_diagnose_returns_config_errors(tmp_path):
    message = tls.diagnose_handshake(config(tls_ca_cert_file=str(tmp_path / "missing.pem")))
    assert "does not exist" in message


# --------------------------------------------------------------------------------------------
# Google Cloud Secret Manager through the real client, against a local gRPC service
# --------------------------------------------------------------------------------------------
class FakeSecretManager:
    """The Secret Manager service's AccessSecretVersion method on a loopback gRPC port."""

    SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"

    def __init__(self) -> None:
        self.secrets: dict[str, bytes] = {}
        self.forbidden: set[str] = set()
        self.bad_crc: set[str] = set()
        self.requested: list[str] = []

    def access(self, request: AccessSecretVersionRequest, context: grpc.ServicerContext):
        self.requested.append(request.name)
        if request.name in self.forbidden:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"Permission denied on {request.name}")
        name = request.name.replace("/versions/latest", "/versions/1")
        if name not in self.secrets:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.name}] not found")
        data = self.secrets[name]
        crc = secrets._crc32c(data) ^ (1 if name in self.bad_crc else 0)
        return AccessSecretVersionResponse(name=name, payload=SecretPayload(data=data, data_crc32c=crc))

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.unary_unary_rpc_method_handler(
            self.access,
            request_deserializer=AccessSecretVersionRequest.deserialize,
            response_serializer=AccessSecretVersionResponse.serialize,
        )
        return grpc.method_handlers_generic_handler(self.SERVICE, {"AccessSecretVersion": method})


@pytest.fixture
def secret_manager() -> Iterator[tuple[FakeSecretManager, SecretManagerServiceClient]]:
    fake = FakeSecretManager()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((fake.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    client = SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel))
    yield fake, client
    channel.close()
    server.stop(None)


def test_resolve_secret_names():
    full = "projects/p1/secrets/ca/versions/3"
    assert secrets.resolve_secret_name(full) == full
    assert secrets.resolve_secret_name("projects/p1/secrets/ca") == "projects/p1/secrets/ca/versions/latest"
    assert secrets.resolve_secret_name("ca", "p2") == "projects/p2/secrets/ca/versions/latest"
    with pytest.raises(TlsConfigError, match=r"short name.*gcp_project_id"):
        secrets.resolve_secret_name("ca")
    with pytest.raises(TlsConfigError, match="not a Secret Manager secret ID"):
        secrets.resolve_secret_name("projects/p1/secret/ca")


def test_fetch_secret_through_the_real_client(secret_manager):
    fake, client = secret_manager
    fake.secrets["projects/p1/secrets/ca/versions/1"] = b"PEM"
    assert secrets.fetch_secret("ca", project_id="p1", client=client) == b"PEM"
    assert secrets.fetch_secret("projects/p1/secrets/ca/versions/1", client=client) == b"PEM"
    assert fake.requested == ["projects/p1/secrets/ca/versions/latest", "projects/p1/secrets/ca/versions/1"]


def test_secret_errors_are_named(secret_manager):
    fake, client = secret_manager
    fake.secrets["projects/p1/secrets/corrupt/versions/1"] = b"PEM"
    fake.bad_crc.add("projects/p1/secrets/corrupt/versions/1")
    fake.forbidden.add("projects/p1/secrets/locked/versions/latest")
    with pytest.raises(TlsConfigError, match=r"projects/p1/secrets/missing/versions/latest.*does not exist"):
        secrets.fetch_secret("missing", "p1", client=client)
    with pytest.raises(TlsConfigError, match=r"locked/versions/latest.*permission denied") as info:
        secrets.fetch_secret("locked", "p1", client=client)
    assert info.value.details == {
        "kind": "secret",
        "secret": "projects/p1/secrets/locked/versions/latest",
        "error": "PermissionDenied",
    }
    with pytest.raises(TlsConfigError, match="corrupted"):
        secrets.fetch_secret("corrupt", "p1", client=client)


def test_no_credentials_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-credentials.json"))
    with pytest.raises(TlsConfigError, match=r"secrets/ca/versions/latest.*no Google Cloud credentials"):
        secrets.fetch_secret("ca", "p1")


def test_crc32c_known_vector():
    assert secrets._crc32c(b"123456789") == 0xE3069283


@pytest.mark.interop
@needs_storescp
def test_mutual_tls_with_everything_from_secret_manager(storescp, pki, secret_manager, monkeypatch, caplog):
    """CA, client certificate and encrypted key from secrets; the key passes through a private
    temporary folder that is gone afterwards; nothing secret reaches the log."""
    fake, client = secret_manager
    for name, path in (("ca", pki.ca), ("cert", pki.client), ("key", pki.client_key_encrypted)):
        fake.secrets[f"projects/hospital/secrets/{name}/versions/1"] = path.read_bytes()
    monkeypatch.setenv(secrets.PASSWORD_ENV, pki.client_key_password)
    folders: list[str] = []
    real_private_file = tls._private_file

    def spy(folder: str, name: str, data: bytes) -> str:
        folders.append(folder)
        return real_private_file(folder, name, data)

    monkeypatch.setattr(tls, "_private_file", spy)
    peer = tls_peer(storescp, pki, pki.server_key, pki.server, "-rc")
    cfg = config(
        peer.port,
        gcp_project_id="hospital",
        tls_ca_cert_secret_name="ca",
        tls_client_cert_secret_name="projects/hospital/secrets/cert",
        tls_client_key_secret_name="projects/hospital/secrets/key/versions/1",
    )
    with caplog.at_level(logging.DEBUG):
        echo_and_store(peer.port, tls.build_ssl_context(cfg, secret_client=client))
    assert sorted(fake.requested) == [
        "projects/hospital/secrets/ca/versions/latest",
        "projects/hospital/secrets/cert/versions/latest",
        "projects/hospital/secrets/key/versions/1",
    ]
    assert folders and not any(os.path.exists(f) for f in folders)
    key_body = "".join(pki.client_key_encrypted.read_text().splitlines()[1:-1])[:40]
    assert key_body not in caplog.text.replace("\n", "")
    assert pki.client_key_password not in caplog.text


def test_secret_error_reaches_build_ssl_context(secret_manager):
    _, client = secret_manager
    cfg = config(gcp_project_id="p1", tls_ca_cert_secret_name="absent")
    with pytest.raises(TlsConfigError, match="projects/p1/secrets/absent/versions/latest") as info:
        tls.build_ssl_context(cfg, secret_client=client)
    assert info.value.remote_ae == "STORESCP" and info.value.details["item"] == "CA certificate"


# --------------------------------------------------------------------------------------------
# Keyring
# --------------------------------------------------------------------------------------------
def test_keyring_round_trip(memory_keyring, monkeypatch):
    assert secrets.get_key_password("pacs-b") is None
    secrets.set_key_password("pacs-b", "s3cret")
    assert secrets.get_key_password("pacs-b") == "s3cret"
    assert keyring.get_password(secrets.KEYRING_SERVICE, "pacs-b") == "s3cret"
    monkeypatch.setenv(secrets.PASSWORD_ENV, "from-env")
    assert secrets.key_password("pacs-b") == ("s3cret", "keyring entry 'pacs-b'")
    assert secrets.delete_key_password("pacs-b") is True
    assert secrets.delete_key_password("pacs-b") is False
    assert secrets.key_password("pacs-b") == ("from-env", secrets.PASSWORD_ENV)
    monkeypatch.delenv(secrets.PASSWORD_ENV)
    assert secrets.key_password(None) == (None, None)
