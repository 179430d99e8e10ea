"""TLS for DICOM associations: the client SSL context, and diagnoses of failed handshakes.

DICOM's Secure Transport Connection Profiles (PS3.15 Annex B) say TLS 1.2 or later with the
BCP 195 cipher suites (RFC 9325; PS3.15 B.9 "Non-downgrading BCP 195 TLS Secure Transport
Connection Profile"), which is what DCMTK's ``storescp +tls`` uses by default.
:func:`build_ssl_context` makes the requestor's context from a :class:`~core.config.StoreConfig`:
the peer's certificate is always verified, host name checking follows ``tls_verify_hostname``,
and a client certificate is sent when one is configured (mutual TLS).

pynetdicom only logs the ``ssl`` exception when a handshake fails and reports "could not
connect". :func:`diagnose_handshake` therefore repeats the handshake on its own connection to
name the cause, and :func:`diagnose_plain_to_tls` checks whether a port that broke a plain
association speaks TLS. :func:`tls_session_info` describes an established TLS session.

No secret (key bytes, passphrase) goes into a log record, exception message or details dict.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import os
import shutil
import socket
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from core import secrets
from core.errors import TlsConfigError

if TYPE_CHECKING:
    from core.config import StoreConfig

__all__ = [
    "BCP195_CIPHERS",
    "EXPIRY_WARNING_DAYS",
    "build_ssl_context",
    "diagnose_handshake",
    "handshake_problem",
    "diagnose_plain_to_tls",
    "tls_session_info",
]

LOGGER = logging.getLogger(__name__)

#: TLS 1.2 cipher suites of BCP 195 (RFC 9325 4.2; PS3.15 B.9): AEAD with forward secrecy only.
#: DCMTK 3.6.7's default profile offers the RSA ones; TLS 1.3 suites are OpenSSL's defaults.
BCP195_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
    ]
)
#: A peer certificate expiring within this many days is flagged ``expires_soon``.
EXPIRY_WARNING_DAYS = 30
#: Seconds to wait for a TLS alert after the handshake (TLS 1.3 sends client-certificate
#: alerts only then).
POST_HANDSHAKE_WAIT_S = 1.5


# --------------------------------------------------------------------------------------------
# Loading certificates and keys
# --------------------------------------------------------------------------------------------
@dataclass
class _Material:
    """PEM bytes and where they came from (``origin`` is for messages; ``path`` for files)."""

    data: bytes = field(repr=False)  # may be a private key: never shown
    origin: str = ""
    path: str | None = None


def _fail(message: str, cfg: StoreConfig, **details: Any) -> TlsConfigError:
    return TlsConfigError(message, remote_ae=cfg.remote_ae_title, details={"kind": "config", **details})


def _read_file(path: str, label: str, cfg: StoreConfig) -> _Material:
    """Read a PEM file.

    Raises:
        TlsConfigError: the file is missing, a folder, or unreadable.
    """
    full = os.path.abspath(os.path.expanduser(path))
    try:
        with open(full, "rb") as fh:
            return _Material(fh.read(), f"file {full}", full)
    except FileNotFoundError:
        reason = "does not exist"
    except IsADirectoryError:
        reason = "is a folder, not a file"
    except PermissionError:
        reason = "cannot be read (permission denied)"
    except OSError as exc:
        reason = f"cannot be read ({exc.strerror or exc})"
    raise _fail(f"TLS {label} file {full} {reason}", cfg, item=label, path=full)


def _load_item(cfg: StoreConfig, label: str, file_key: str, secret_key: str, secret_client: Any = None) -> _Material | None:
    """Load one configured item from its file or its Secret Manager secret (or None).

    Raises:
        TlsConfigError: both sources are set, or the source cannot be read.
    """
    path, secret_name = getattr(cfg, file_key), getattr(cfg, secret_key)
    if path and secret_name:
        raise _fail(f"TLS {label}: give either {file_key} or {secret_key}, not both", cfg, item=label)
    if path:
        return _read_file(path, label, cfg)
    if secret_name:
        try:
            data = secrets.fetch_secret(secret_name, cfg.gcp_project_id, client=secret_client)
        except TlsConfigError as exc:
            exc.remote_ae = cfg.remote_ae_title
            exc.details.setdefault("item", label)
            raise
        return _Material(data, f"secret {secrets.resolve_secret_name(secret_name, cfg.gcp_project_id)}")
    return None


def _parse_certs(material: _Material, label: str, cfg: StoreConfig) -> list[x509.Certificate]:
    """Parse every PEM certificate in `material`.

    Raises:
        TlsConfigError: no PEM certificate, or a damaged one.
    """
    if b"-----BEGIN CERTIFICATE-----" not in material.data:
        raise _fail(
            f"TLS {label} ({material.origin}) is not a PEM certificate (no "
            "'-----BEGIN CERTIFICATE-----' block); convert DER with "
            "`openssl x509 -inform der -in FILE -out FILE.pem`",
            cfg,
            item=label,
        )
    try:
        return x509.load_pem_x509_certificates(material.data)
    except ValueError:
        raise _fail(f"TLS {label} ({material.origin}) holds a damaged PEM certificate", cfg, item=label) from None


def _key_load_error(material: _Material, encrypted: bool, source: str | None, cfg: StoreConfig) -> TlsConfigError:
    """The error for a private key that cryptography could not load."""
    if encrypted and source is None:
        text = (
            f"is encrypted and no passphrase is set: store it in the OS keyring (profile's TLS "
            f"section, tls_key_password_keyring) or set {secrets.PASSWORD_ENV}"
        )
    elif encrypted:
        text = f"could not be decrypted: wrong passphrase (from {source})"
    else:
        text = "is damaged or in an unsupported format (expected a PEM private key)"
    return _fail(f"TLS client private key ({material.origin}) {text}", cfg, item="client key")


def _parse_key(material: _Material, password: str | None, source: str | None, cfg: StoreConfig) -> Any:
    """Load the private key with cryptography to check it and its passphrase before OpenSSL does.

    Returns:
        The private key object (kept only to compare it with the certificate).

    Raises:
        TlsConfigError: not PEM, passphrase needed, wrong passphrase, or damaged.
    """
    if b"PRIVATE KEY-----" not in material.data:
        raise _fail(
            f"TLS client private key ({material.origin}) is not a PEM private key (no '-----BEGIN ... PRIVATE KEY-----' block)",
            cfg,
            item="client key",
        )
    encrypted = b"ENCRYPTED" in material.data
    secret = password.encode() if (password and encrypted) else None
    try:
        return serialization.load_pem_private_key(material.data, password=secret)
    except UnsupportedAlgorithm:
        raise _fail(
            f"TLS client private key ({material.origin}) uses an unsupported key type or encryption",
            cfg,
            item="client key",
        ) from None
    except (TypeError, ValueError):
        raise _key_load_error(material, encrypted, source if secret else None, cfg) from None


def _check_pair(cert: x509.Certificate, key: Any, cert_m: _Material, key_m: _Material, cfg: StoreConfig) -> None:
    """Raise TlsConfigError if `key` is not the private key of `cert`."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise _fail(
            f"TLS client private key ({key_m.origin}) does not match the client certificate "
            f"({cert_m.origin}, subject {cert.subject.rfc4514_string()}): configure the key "
            "that belongs to this certificate",
            cfg,
            item="client key",
        )


@contextlib.contextmanager
def _private_dir() -> Iterator[str]:
    """A private temporary folder (mode 0700, in RAM under /dev/shm where available), removed on exit."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    folder = tempfile.mkdtemp(prefix="courier-tls-", dir=base)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _private_file(folder: str, name: str, data: bytes) -> str:
    """Write `data` to a new file (mode 0600) in `folder` and return its path."""
    path = os.path.join(folder, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def _load_chain(ctx: ssl.SSLContext, cert_m: _Material, key_m: _Material, password: str | None, cfg: StoreConfig) -> None:
    """Give `ctx` the client certificate chain and key.

    Secret material goes through a private temporary folder removed right after loading, also
    on error; file material is loaded from its own path.

    Raises:
        TlsConfigError: OpenSSL refused the pair.
    """
    pw = (password or "").encode()
    try:
        if cert_m.path and key_m.path:
            ctx.load_cert_chain(cert_m.path, key_m.path, password=lambda: pw)
            return
        with _private_dir() as folder:
            cert_path = cert_m.path or _private_file(folder, "cert.pem", cert_m.data)
            key_path = key_m.path or _private_file(folder, "key.pem", key_m.data)
            ctx.load_cert_chain(cert_path, key_path, password=lambda: pw)
    except ssl.SSLError as exc:
        raise _fail(
            f"OpenSSL could not load the TLS client certificate ({cert_m.origin}) and key "
            f"({key_m.origin}): {exc.reason or exc.library or 'error'}",
            cfg,
            item="client certificate",
            ssl_reason=exc.reason,
        ) from None


def _load_ca(ctx: ssl.SSLContext, cfg: StoreConfig, secret_client: Any) -> str:
    """Load the trusted CA certificates into `ctx` (from memory); return their origin."""
    ca_m = _load_item(cfg, "CA certificate", "tls_ca_cert_file", "tls_ca_cert_secret_name", secret_client)
    if ca_m is None:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        LOGGER.info("No TLS CA configured for %s: the system trust store verifies the peer", cfg.peer)
        return "the system trust store"
    certs = _parse_certs(ca_m, "CA certificate", cfg)
    ctx.load_verify_locations(cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs))
    return ca_m.origin


def _load_client(ctx: ssl.SSLContext, cfg: StoreConfig, secret_client: Any) -> str | None:
    """Load the client certificate and key, if configured; return the certificate's origin.

    A certificate without a key is accepted when the certificate's PEM also holds the key.
    """
    cert_m = _load_item(cfg, "client certificate", "tls_client_cert_file", "tls_client_cert_secret_name", secret_client)
    key_m = _load_item(cfg, "client private key", "tls_client_key_file", "tls_client_key_secret_name", secret_client)
    if cert_m is None and key_m is None:
        return None
    if cert_m is None:
        raise _fail("a TLS client private key is configured but no client certificate", cfg, item="client certificate")
    if key_m is None:
        if b"PRIVATE KEY-----" not in cert_m.data:
            raise _fail(
                f"a TLS client certificate ({cert_m.origin}) is configured but no private key",
                cfg,
                item="client key",
            )
        key_m = cert_m
    certs = _parse_certs(cert_m, "client certificate", cfg)
    password, source = secrets.key_password(cfg.tls_key_password_keyring)
    key = _parse_key(key_m, password, source, cfg)
    _check_pair(certs[0], key, cert_m, key_m, cfg)
    del key
    _load_chain(ctx, cert_m, key_m, password, cfg)
    return cert_m.origin


def _new_client_context(verify_hostname: bool) -> ssl.SSLContext:
    """A requestor context: TLS 1.2+, BCP 195 ciphers, peer certificate required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(BCP195_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.check_hostname = verify_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def build_ssl_context(cfg: StoreConfig, secret_client: Any = None) -> tuple[ssl.SSLContext, str | None]:
    """Make the TLS context for associations with ``cfg``'s peer (PS3.15 B.9, BCP 195).

    The context is client-side (``PROTOCOL_TLS_CLIENT``), TLS 1.2 minimum, BCP 195 AEAD cipher
    suites for TLS 1.2 (TLS 1.3 suites are OpenSSL's), always verifies the peer's certificate
    (``CERT_REQUIRED``; against the configured CA, else the system trust store) and checks the
    host name when ``cfg.tls_verify_hostname``. Items come from a file or a Secret Manager
    secret; the CA stays in memory, a secret client certificate/key passes through a private
    temporary folder removed right after loading. An encrypted key's passphrase comes from the
    keyring entry ``cfg.tls_key_password_keyring`` or ``COURIER_TLS_KEY_PASSWORD``.

    Args:
        cfg: the validated connection configuration (``tls_enabled`` is not checked here).
        secret_client: a ``SecretManagerServiceClient`` for the ``*_secret_name`` items (None:
            one with application-default credentials, made only when a secret is named).

    Returns:
        ``(context, server_hostname)``, ready for ``ae.associate(..., tls_args=...)``;
        `server_hostname` is ``cfg.remote_host`` (SNI and the host name check).

    Raises:
        TlsConfigError: a file is missing/unreadable/not PEM, the key does not match the
            certificate, the passphrase is missing or wrong, or a secret cannot be read
            (the message names the file or secret, never its content).
    """
    ctx = _new_client_context(cfg.tls_verify_hostname)
    ca_origin = _load_ca(ctx, cfg, secret_client)
    client_origin = _load_client(ctx, cfg, secret_client)
    LOGGER.debug(
        "TLS context for %s: CA from %s, client certificate %s, host name check %s",
        cfg.peer,
        ca_origin,
        client_origin or "none",
        "on" if cfg.tls_verify_hostname else "off",
    )
    return ctx, cfg.remote_host


# --------------------------------------------------------------------------------------------
# Describing certificates and sessions
# --------------------------------------------------------------------------------------------
def _cert_names(cert: x509.Certificate) -> list[str]:
    """DNS names and IP addresses a certificate names (SAN, else its common name)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return [
            *(str(name) for name in san.get_values_for_type(x509.DNSName)),
            *(str(ip) for ip in san.get_values_for_type(x509.IPAddress)),
        ]
    except x509.ExtensionNotFound:
        return [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]


def _describe_cert(der: bytes) -> dict[str, Any]:
    """Subject, issuer, validity, names and expiry warning of a DER certificate."""
    cert = x509.load_der_x509_certificate(der)
    days_left = (cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).days
    return {
        "peer_subject": cert.subject.rfc4514_string(),
        "peer_issuer": cert.issuer.rfc4514_string(),
        "peer_not_before": cert.not_valid_before_utc.isoformat(),
        "peer_not_after": cert.not_valid_after_utc.isoformat(),
        "peer_names": _cert_names(cert),
        "days_left": days_left,
        "expires_soon": days_left < EXPIRY_WARNING_DAYS,
    }


def tls_session_info(assoc_or_sslsocket: Any) -> dict[str, Any]:
    """Describe the TLS session of an association or an ``ssl.SSLSocket`` (for *Test connection*).

    Args:
        assoc_or_sslsocket: an established ``pynetdicom.association.Association`` (ask before
            releasing it) or an ``ssl.SSLSocket`` after its handshake.

    Returns:
        ``{"tls": False}`` for a plain connection, else ``tls`` (True), ``protocol`` (e.g.
        ``"TLSv1.3"``), ``cipher``, ``cipher_bits``, ``peer_subject``, ``peer_issuer`` (RFC 4514),
        ``peer_not_before``/``peer_not_after`` (ISO 8601, UTC), ``peer_names``, ``days_left``
        (whole days until expiry) and ``expires_soon`` (fewer than 30 days left).
    """
    sock = assoc_or_sslsocket
    if not isinstance(sock, ssl.SSLSocket):
        sock = getattr(getattr(getattr(sock, "dul", None), "socket", None), "socket", None)
    if not isinstance(sock, ssl.SSLSocket):
        return {"tls": False}
    name, _, bits = sock.cipher() or (None, None, None)
    info: dict[str, Any] = {"tls": True, "protocol": sock.version(), "cipher": name, "cipher_bits": bits}
    der = sock.getpeercert(binary_form=True)
    if der:
        info.update(_describe_cert(der))
    return info


def _fetch_peer_cert(host: str, port: int, timeout: float) -> dict[str, Any] | None:
    """Fetch the peer's certificate without verifying it (only to describe it in a diagnosis)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=_sni(host)) as sock,
        ):
            der = sock.getpeercert(binary_form=True)
            return _describe_cert(der) if der else None
    except (OSError, ValueError):
        return None


def _sni(host: str) -> str | None:
    """`host` for SNI, or None for an IP address (which SNI may not carry)."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        return host


# --------------------------------------------------------------------------------------------
# Diagnosing a failed TLS association
# --------------------------------------------------------------------------------------------
@dataclass
class _Trace:
    """What the TLS layer saw on one connection (from ``SSLContext._msg_callback``)."""

    records_read: int = 0
    server_hello: bool = False
    certificate_request: bool = False
    sent_certificate: bool = False
    alerts: list[str] = field(default_factory=list)

    def __call__(self, conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any, data: bytes) -> None:
        kind = getattr(content_type, "name", str(content_type))
        mtype = getattr(msg_type, "name", str(msg_type))
        if direction == "read":
            self.records_read += kind == "HEADER"
            self.server_hello |= kind == "HANDSHAKE" and mtype == "SERVER_HELLO"
            self.certificate_request |= kind == "HANDSHAKE" and mtype == "CERTIFICATE_REQUEST"
            if kind == "ALERT":
                self.alerts.append(mtype)
        elif kind == "HANDSHAKE" and mtype == "CERTIFICATE":
            # An empty Certificate message (no client certificate) is 7 bytes in TLS 1.2, 8 in 1.3.
            self.sent_certificate |= len(data) > 8


@contextlib.contextmanager
def _traced(ctx: ssl.SSLContext) -> Iterator[_Trace]:
    """Record the handshake messages on `ctx` (a private CPython hook; a no-op where missing)."""
    trace = _Trace()
    previous = getattr(ctx, "_msg_callback", None)
    with contextlib.suppress(AttributeError, TypeError):
        ctx._msg_callback = trace  # type: ignore[attr-defined]  # CPython's debugging hook
    try:
        yield trace
    finally:
        with contextlib.suppress(AttributeError, TypeError):
            ctx._msg_callback = previous  # type: ignore[attr-defined]  # CPython's debugging hook


@dataclass(frozen=True)
class _Where:
    """The peer and the TLS mode, for messages."""

    host: str
    port: int
    mode: str

    def say(self, text: str) -> str:
        return f"TLS to {self.host}:{self.port} ({self.mode}) failed: {text}"


def _mode(cfg: StoreConfig) -> str:
    client = cfg.tls_client_cert_file or cfg.tls_client_cert_secret_name
    return ", ".join(
        [
            "TLS 1.2+",
            "host name check on" if cfg.tls_verify_hostname else "host name check off",
            "with a client certificate" if client else "no client certificate",
        ]
    )


_UNKNOWN_ISSUER = {2, 18, 19, 20, 21}  # X509_V_ERR_* meaning "not signed by a trusted CA"


def _verify_message(exc: ssl.SSLCertVerificationError, where: _Where, cfg: StoreConfig) -> str:
    """Explain a failed verification of the peer's certificate (X509_V_ERR_* codes)."""
    peer = _fetch_peer_cert(where.host, where.port, 3.0) or {}
    subject = peer.get("peer_subject", "?")
    code = exc.verify_code
    if code == 10:
        return where.say(
            f"the peer's certificate ({subject}) expired on {peer.get('peer_not_after', '?')[:10]}; the PACS must renew it"
        )
    if code == 9:
        return where.say(
            f"the peer's certificate ({subject}) is not yet valid (from "
            f"{peer.get('peer_not_before', '?')[:10]}); check both machines' clocks"
        )
    if code in _UNKNOWN_ISSUER:
        ca = cfg.tls_ca_cert_file or cfg.tls_ca_cert_secret_name or "the system trust store"
        return where.say(
            f"TLS certificate verification failed: unknown issuer - the peer's certificate "
            f"({subject}, issued by {peer.get('peer_issuer', '?')}) is not signed by a "
            f"CA trusted here ({ca}); configure the PACS's CA certificate"
        )
    if code in (62, 64):
        names = ", ".join(peer.get("peer_names", [])) or "?"
        return where.say(
            f"the peer's certificate names {names} and does not name host {where.host}; "
            "use --no-verify-hostname / the profile switch if the PACS is reached by an "
            "address its certificate does not name"
        )
    return where.say(f"TLS certificate verification failed: {exc.verify_message} (subject {subject})")


_NOT_TLS_REASONS = {
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "UNEXPECTED_EOF_WHILE_READING",
    "HTTP_REQUEST",
    "UNEXPECTED_MESSAGE",
}


def _not_tls(where: _Where, what: str) -> str:
    return where.say(
        f"the peer did not answer the TLS handshake ({what}): it does not seem to speak TLS "
        "on this port - is TLS enabled on its side? (or use the PACS's TLS port)"
    )


_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the peer requires a client certificate and none was sent: "
    "configure the client certificate and key (--tls-cert/--tls-key)",
    "TLSV1_ALERT_UNKNOWN_CA": "the peer does not trust our client certificate (unknown CA): have the PACS "
    "trust the CA that issued it",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the peer rejected our client certificate (bad certificate)",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "the peer rejected our client certificate (unsupported type)",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the peer rejected our client certificate (certificate unknown)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the peer says our client certificate has expired: renew it",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "the peer says our client certificate was revoked",
    "TLSV1_ALERT_ACCESS_DENIED": "the peer denied access to our client certificate",
    "TLSV1_ALERT_PROTOCOL_VERSION": "no TLS version in common (we offer TLS 1.2 and 1.3)",
    "UNSUPPORTED_PROTOCOL": "the peer offered a TLS version older than 1.2, which BCP 195 forbids",
}


def _alert_message(exc: ssl.SSLError, trace: _Trace, where: _Where) -> str:
    """Explain an ``ssl.SSLError`` raised during or right after the handshake."""
    reason = exc.reason or ""
    if reason in _ALERTS:
        return where.say(_ALERTS[reason])
    if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
        if trace.certificate_request and not trace.sent_certificate:
            return where.say(_ALERTS["TLSV13_ALERT_CERTIFICATE_REQUIRED"])
        return where.say(
            "the peer ended the handshake (handshake failure): no cipher suite in common "
            "(BCP 195: TLS 1.2 with AES-GCM, or TLS 1.3), or it requires a client certificate"
        )
    if reason in _NOT_TLS_REASONS or isinstance(exc, ssl.SSLEOFError):
        return _not_tls(where, "it answered with non-TLS data" if trace.records_read else "it closed the connection")
    return where.say(f"TLS handshake failed: {reason or exc}")


def _after_handshake(sock: ssl.SSLSocket, trace: _Trace, where: _Where, timeout: float) -> tuple[bool, str]:
    """Wait briefly for an alert (TLS 1.3 reports client-certificate problems after the handshake).

    Returns:
        ``(tls_ok, message)``.
    """
    sock.settimeout(min(timeout, POST_HANDSHAKE_WAIT_S))
    try:
        data = sock.recv(1)
    except ssl.SSLError as exc:
        return False, _alert_message(exc, trace, where)
    except TimeoutError:
        data = None
    except OSError as exc:
        return False, where.say(f"the peer closed the connection right after the TLS handshake ({exc})")
    if data == b"":
        return False, where.say(
            "the peer closed the connection right after the TLS handshake; it may not accept our client certificate (see its log)"
        )
    info = tls_session_info(sock)
    return True, (
        f"TLS to {where.host}:{where.port} ({where.mode}) works: {info['protocol']}, "
        f"{info['cipher']}, peer certificate {info.get('peer_subject', '?')} accepted; "
        "the failure is not in TLS"
    )


def _connect_message(where: _Where, exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        text = "connection refused - nothing listens on this port; check the host, the port and that the PACS runs"
    elif isinstance(exc, TimeoutError):
        text = "no answer to the TCP connection (timed out) - check the host, the port and firewalls"
    elif isinstance(exc, socket.gaierror):
        text = f"the host name cannot be resolved ({exc.strerror})"
    else:
        text = f"cannot connect ({exc.strerror or exc})"
    return f"TLS to {where.host}:{where.port} ({where.mode}) not tried: {text}"


def _handshake(
    ctx: ssl.SSLContext, server_hostname: str | None, where: _Where, cfg: StoreConfig, timeout: float
) -> tuple[bool, str]:
    """Connect, shake hands with `ctx` and explain the outcome as ``(tls_ok, message)``."""
    try:
        raw = socket.create_connection((where.host, where.port), timeout)
    except OSError as exc:
        return False, _connect_message(where, exc)
    with _traced(ctx) as trace, raw:
        try:
            sock = ctx.wrap_socket(raw, server_hostname=server_hostname)
        except ssl.SSLCertVerificationError as exc:
            return False, _verify_message(exc, where, cfg)
        except ssl.SSLError as exc:
            return False, _alert_message(exc, trace, where)
        except TimeoutError:
            return False, _not_tls(where, f"no reply within {timeout:g} s")
        except OSError as exc:
            return False, _not_tls(where, f"it reset the connection: {exc.strerror or exc}")
        with sock:
            return _after_handshake(sock, trace, where, timeout)


def _diagnose(cfg: StoreConfig, timeout: float, tls_args: tuple[ssl.SSLContext, str | None] | None) -> tuple[bool, str]:
    where = _Where(cfg.remote_host, cfg.remote_port, _mode(cfg))
    try:
        ctx, server_hostname = tls_args or build_ssl_context(cfg)
    except TlsConfigError as exc:
        return False, exc.message
    ok, message = _handshake(ctx, server_hostname, where, cfg, timeout)
    LOGGER.info("TLS diagnosis for %s: %s", cfg.peer, message)
    return ok, message


def diagnose_handshake(cfg: StoreConfig, timeout: float = 5.0, tls_args: tuple[ssl.SSLContext, str | None] | None = None) -> str:
    """Find out why a TLS association with ``cfg``'s peer failed, in words.

    Call it after ``ae.associate(..., tls_args=...)`` failed to establish an association while
    TLS was on and no A-ASSOCIATE-RJ arrived: pynetdicom only logs the ``ssl`` error. This opens
    its own TCP connection and repeats the handshake with the same context, then waits up to
    1.5 s for a TLS alert (a TLS 1.3 peer reports a missing or refused client certificate only
    after the handshake, so pynetdicom sees an established connection that then breaks).

    Args:
        cfg: the connection configuration the association used.
        timeout: seconds for the TCP connection and the handshake.
        tls_args: the ``(context, server_hostname)`` the association used; None builds them
            from `cfg` with :func:`build_ssl_context`.

    Returns:
        One message naming ``host:port``, "TLS" and the mode: the peer's certificate expired /
        is not yet valid / has an unknown issuer / does not name the host; the peer requires a
        client certificate or does not trust ours; the peer does not speak TLS on this port;
        connection refused; or, when the handshake works, that the failure is not in TLS (use
        :func:`handshake_problem` to tell these apart). A configuration error returns the
        :class:`TlsConfigError` message instead of raising.
    """
    return _diagnose(cfg, timeout, tls_args)[1]


def handshake_problem(
    cfg: StoreConfig, timeout: float = 5.0, tls_args: tuple[ssl.SSLContext, str | None] | None = None
) -> str | None:
    """Like :func:`diagnose_handshake`, but None when the TLS handshake works.

    Returns:
        The diagnosis when TLS is the problem (raise ``TlsConfigError`` with it), else None
        (explain the association failure the usual way).
    """
    ok, message = _diagnose(cfg, timeout, tls_args)
    return None if ok else message


def _lenient_context() -> ssl.SSLContext:
    """A context that accepts any TLS server certificate, only to detect whether a port speaks TLS.

    A peer limited to older TLS versions still answers with a TLS alert, which counts as TLS.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


def diagnose_plain_to_tls(host: str, port: int, timeout: float = 5.0) -> str | None:
    """Check whether a port that broke a *plain* association speaks TLS.

    Call it when a plain (non-TLS) association failed because the peer closed the connection,
    aborted or sent non-DICOM data during negotiation. Sends a TLS ClientHello (without
    verifying anything; nothing is sent after the handshake) and looks for a TLS reply.

    Args:
        host: the peer's host name or IP address.
        port: the peer's TCP port.
        timeout: seconds for the connection and the handshake.

    Returns:
        A message saying the peer may require TLS and how to enable it, or None when the port
        does not answer in TLS (or cannot be reached).
    """
    ctx = _lenient_context()
    try:
        raw = socket.create_connection((host, port), timeout)
    except OSError:
        return None
    with _traced(ctx) as trace, raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=_sni(host)) as sock:
                answer = f"it completed a TLS handshake ({sock.version()})"
        except ssl.SSLError as exc:
            if not (trace.alerts or trace.server_hello) or exc.reason in _NOT_TLS_REASONS:
                return None
            answer = f"it answered our TLS ClientHello ({exc.reason})"
        except OSError:
            return None
    message = (
        f"plain DICOM to {host}:{port} failed and the port speaks TLS ({answer}): the peer may "
        "require TLS: enable TLS in the profile (--tls)"
    )
    LOGGER.info("%s", message)
    return message
