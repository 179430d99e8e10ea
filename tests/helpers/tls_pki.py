"""A throw-away test PKI made with the ``cryptography`` package (EC P-256, SHA-256).

Test material only: every key is generated fresh in the test's ``tmp_path`` and never reused.
Used by ``tests/test_tls.py`` and available to any test that needs a TLS peer
(DCMTK ``storescp +tls key.pem cert.pem +cf ca.pem``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "Authority",
    "Leaf",
    "make_ca",
    "make_leaf",
    "write_leaf",
    "LOCAL_SANS",
    "TestPki",
    "make_test_pki",
]

#: Subject alternative names for a server reached on loopback.
LOCAL_SANS: list[x509.GeneralName] = [
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.DNSName("localhost"),
]


_CA_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True)
class Authority:
    """A self-signed certification authority (key and certificate)."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        """The CA certificate in PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Leaf:
    """An end-entity key and certificate signed by an :class:`Authority`."""

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        """The certificate in PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, password: bytes | None = None) -> bytes:
        """The private key in PKCS#8 PEM, encrypted with `password` when given."""
        enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def make_ca(cn: str, days: int = 365) -> Authority:
    """Make a self-signed CA valid from yesterday for `days` days."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def make_leaf(
    ca: Authority,
    cn: str,
    sans: list[x509.GeneralName] | None = None,
    days: tuple[int, int] = (-1, 365),
    client: bool = False,
    use_rsa: bool = False,
) -> Leaf:
    """Make an end-entity certificate.

    Args:
        ca: the issuing authority.
        cn: the subject's common name.
        sans: subject alternative names (None: no SAN extension).
        days: validity window as (start, end) offsets from now in days; ``(-30, -1)``
            makes an expired certificate, ``(10, 40)`` one not yet valid.
        client: clientAuth extended key usage instead of serverAuth.
        use_rsa: an RSA 2048 key instead of EC P-256 (DCMTK 3.6.7's default BCP 195 profile
            offers only RSA cipher suites for TLS 1.2).
    """
    key = rsa.generate_private_key(65537, 2048) if use_rsa else ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() + dt.timedelta(days=days[0]))
        .not_valid_after(_now() + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return Leaf(key, builder.sign(ca.key, hashes.SHA256()))


def write_leaf(folder: Path, stem: str, leaf: Leaf, password: bytes | None = None) -> tuple[Path, Path]:
    """Write ``stem.key`` (0600) and ``stem.pem`` into `folder`; return (key path, cert path)."""
    key_path, cert_path = folder / f"{stem}.key", folder / f"{stem}.pem"
    key_path.touch(mode=0o600)
    key_path.write_bytes(leaf.key_pem(password))
    cert_path.write_bytes(leaf.cert_pem)
    return key_path, cert_path


@dataclass(frozen=True)
class TestPki:
    """Paths of a complete test PKI (all PEM); see :func:`make_test_pki`."""

    __test__ = False  # not a pytest test class

    folder: Path
    authority: Authority
    ca: Path
    rogue_ca: Path
    server_key: Path
    server: Path
    client_key: Path
    client: Path
    client_key_encrypted: Path
    client_key_password: str
    expired_key: Path
    expired: Path
    future_key: Path
    future: Path
    othername_key: Path
    othername: Path
    rogue_client_key: Path
    rogue_client: Path
    rsa_server_key: Path
    rsa_server: Path


def make_test_pki(folder: Path, client_key_password: str = "correct horse battery") -> TestPki:
    """Make a CA, a rogue CA and the certificates the TLS tests need, in `folder`.

    Server certificates name 127.0.0.1 and localhost, except ``othername`` (``pacs.example``).
    ``expired`` ended yesterday, ``future`` starts in 10 days; ``rogue_client`` is issued by the
    rogue CA; ``client_key_encrypted`` is the client key under `client_key_password`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ca, rogue = make_ca("Courier Test CA"), make_ca("Someone Else CA")
    (folder / "ca.pem").write_bytes(ca.pem)
    (folder / "rogue_ca.pem").write_bytes(rogue.pem)
    server_key, server = write_leaf(folder, "server", make_leaf(ca, "pacs", LOCAL_SANS))
    client_leaf = make_leaf(ca, "courier", client=True)
    client_key, client = write_leaf(folder, "client", client_leaf)
    enc_key = folder / "client_encrypted.key"
    enc_key.touch(mode=0o600)
    enc_key.write_bytes(client_leaf.key_pem(client_key_password.encode()))
    expired_key, expired = write_leaf(folder, "expired", make_leaf(ca, "old-pacs", LOCAL_SANS, days=(-30, -1)))
    future_key, future = write_leaf(folder, "future", make_leaf(ca, "new-pacs", LOCAL_SANS, days=(10, 40)))
    other_key, other = write_leaf(folder, "othername", make_leaf(ca, "pacs.example", [x509.DNSName("pacs.example")]))
    rogue_ck, rogue_c = write_leaf(folder, "rogue_client", make_leaf(rogue, "intruder", client=True))
    rsa_key, rsa_cert = write_leaf(folder, "rsa_server", make_leaf(ca, "rsa-pacs", LOCAL_SANS, use_rsa=True))
    return TestPki(
        folder,
        ca,
        folder / "ca.pem",
        folder / "rogue_ca.pem",
        server_key,
        server,
        client_key,
        client,
        enc_key,
        client_key_password,
        expired_key,
        expired,
        future_key,
        future,
        other_key,
        other,
        rogue_ck,
        rogue_c,
        rsa_key,
        rsa_cert,
    )
