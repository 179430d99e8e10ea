"""Secret material for TLS: Google Cloud Secret Manager and the OS keyring.

Certificates and private keys may be named by a Google Cloud Secret Manager secret ID
(the seed's ``tls_*_secret_name`` keys) and are read with application-default credentials.
The private key's passphrase lives in the OS keyring under the service :data:`KEYRING_SERVICE`,
keyed by profile, or in the :data:`PASSWORD_ENV` environment variable; never in a settings
file or on a command line. A keyring backend that would keep it in plain text or under a weak
fixed encryption (``keyrings.alt``), or no usable backend, is refused when saving
(:class:`InsecureKeyringError`); reading falls back to the environment variable.

Nothing here logs or puts into an exception the secret bytes or the passphrase: messages name
only the secret's resource name, the keyring entry or the environment variable.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from core.errors import TlsConfigError

__all__ = [
    "KEYRING_SERVICE",
    "PASSWORD_ENV",
    "InsecureKeyringError",
    "keyring_problem",
    "resolve_secret_name",
    "fetch_secret",
    "get_key_password",
    "set_key_password",
    "delete_key_password",
    "key_password",
]

LOGGER = logging.getLogger(__name__)

#: Keyring service name under which passphrases are stored (the "username" is the profile key).
KEYRING_SERVICE = "dicom-courier"
#: Environment variable that may hold the client private key's passphrase.
PASSWORD_ENV = "COURIER_TLS_KEY_PASSWORD"
#: Seconds to wait for Secret Manager (per call, retries included).
SECRET_TIMEOUT_S = 30.0

_ID = r"[A-Za-z0-9_-]{1,255}"
_FULL = re.compile(
    rf"^projects/(?P<project>[^/]+)(?:/locations/(?P<location>[^/]+))?/secrets/(?P<secret>{_ID})"
    r"(?:/versions/(?P<version>[^/]+))?$"
)
_SHORT = re.compile(rf"^{_ID}$")


def resolve_secret_name(name: str, project_id: str | None = None) -> str:
    """Turn a secret ID as users write it into a secret *version* resource name.

    Accepted forms: ``projects/P/secrets/S/versions/V`` (as is), ``projects/P/secrets/S``
    (version ``latest``), the same with ``/locations/L`` (regional secrets), or a short
    name ``S`` resolved with `project_id`, else with the ``GOOGLE_CLOUD_PROJECT`` environment
    variable.

    Args:
        name: the secret ID from the profile or config.
        project_id: the Google Cloud project for short names.

    Returns:
        ``projects/P/[locations/L/]secrets/S/versions/V``.

    Raises:
        TlsConfigError: the name is malformed, or short and no project ID is known.
    """
    name = (name or "").strip()
    match = _FULL.match(name)
    if match:
        return name if match["version"] else f"{name}/versions/latest"
    if _SHORT.match(name):
        project = project_id or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            raise TlsConfigError(
                f"Secret Manager secret {name!r} is a short name and no Google Cloud project ID is set: "
                "set gcp_project_id (--gcp-project) or give the full name projects/P/secrets/S",
                details={"kind": "secret", "secret": name},
            )
        return f"projects/{project}/secrets/{name}/versions/latest"
    raise TlsConfigError(
        f"{name!r} is not a Secret Manager secret ID: use projects/P/secrets/S[/versions/V] or a short "
        "name of letters, digits, '-' and '_'",
        details={"kind": "secret", "secret": name},
    )


def _crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`, as Secret Manager reports in ``data_crc32c``."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _default_client(resource: str) -> Any:
    """Make a ``SecretManagerServiceClient`` with application-default credentials.

    Regional secrets (``projects/P/locations/L/...``) use the regional endpoint.
    """
    from google.cloud import secretmanager

    location = _FULL.match(resource)["location"]  # type: ignore[index]  # resolve_secret_name matched it
    options = {"api_endpoint": f"secretmanager.{location}.rep.googleapis.com"} if location else None
    return secretmanager.SecretManagerServiceClient(client_options=options)


def _secret_error(resource: str, exc: Exception) -> TlsConfigError:
    """Map a Google API or auth exception to a TlsConfigError naming `resource`."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    details = {"kind": "secret", "secret": resource, "error": type(exc).__name__}
    if isinstance(exc, auth_exc.DefaultCredentialsError):
        text = (
            "no Google Cloud credentials were found: run `gcloud auth application-default login` "
            "or set GOOGLE_APPLICATION_CREDENTIALS"
        )
    elif isinstance(exc, auth_exc.GoogleAuthError):
        text = f"the Google Cloud credentials were refused ({exc}): log in again"
    elif isinstance(exc, gexc.NotFound):
        text = "it does not exist (check the secret ID, the version and the project)"
    elif isinstance(exc, gexc.PermissionDenied | gexc.Unauthenticated):
        text = (
            "permission denied: the account needs the role Secret Manager Secret Accessor "
            "(roles/secretmanager.secretAccessor) on this secret"
        )
    elif isinstance(exc, gexc.FailedPrecondition):
        text = "this secret version is disabled or destroyed: enable it or name another version"
    elif isinstance(exc, gexc.RetryError | gexc.DeadlineExceeded | gexc.ServiceUnavailable):
        text = "Secret Manager did not answer in time: check the network and retry"
    else:
        text = f"Secret Manager returned an error: {getattr(exc, 'message', None) or exc}"
    return TlsConfigError(f"cannot read Secret Manager secret {resource}: {text}", details=details)


def fetch_secret(name: str, project_id: str | None = None, client: Any = None, timeout: float = SECRET_TIMEOUT_S) -> bytes:
    """Read one secret version's payload from Google Cloud Secret Manager.

    Args:
        name: secret ID in any form :func:`resolve_secret_name` accepts.
        project_id: Google Cloud project for short names.
        client: a ``SecretManagerServiceClient`` (tests inject one built on their own
            transport); None makes one with application-default credentials.
        timeout: seconds for the call, retries included.

    Returns:
        The payload bytes (e.g. a PEM certificate or key). Kept in memory only.

    Raises:
        TlsConfigError: malformed name, no credentials, secret or version not found,
            permission denied, payload checksum mismatch, or another API error; the
            message names the secret's resource name, never its content.
    """
    resource = resolve_secret_name(name, project_id)
    LOGGER.debug("Reading Secret Manager secret %s", resource)
    try:
        if client is None:
            client = _default_client(resource)
        response = client.access_secret_version(name=resource, timeout=timeout)
    except Exception as exc:  # every API/auth failure becomes a TlsConfigError
        if isinstance(exc, TlsConfigError):
            raise
        raise _secret_error(resource, exc) from None
    data = bytes(response.payload.data)
    if "data_crc32c" in response.payload and _crc32c(data) != response.payload.data_crc32c:
        raise TlsConfigError(
            f"Secret Manager secret {resource} arrived corrupted (CRC32C mismatch): retry",
            details={"kind": "secret", "secret": resource},
        )
    LOGGER.debug("Read Secret Manager secret %s (%d bytes)", response.name or resource, len(data))
    return data


def _keyring() -> Any:
    import keyring

    return keyring


class InsecureKeyringError(TlsConfigError):
    """The OS keyring would keep the passphrase in plain text, or there is no usable keyring: nothing was stored.

    The message says what to install or to use :data:`PASSWORD_ENV`; front ends show it as is.
    ``details["backend"]`` names the keyring backend.
    """


#: What to do instead, in every refusal.
_INSTALL_HINT = (
    "Install a keyring that encrypts: on Linux a Secret Service such as GNOME Keyring (gnome-keyring) or KWallet "
    "(macOS and Windows have one built in); or give the passphrase in the environment variable "
    f"{PASSWORD_ENV} instead of saving it"
)


def _keyring_error(action: str, profile_key: str, exc: Exception) -> TlsConfigError:
    return TlsConfigError(
        f"the OS keyring could not {action} the TLS key passphrase for {profile_key!r} "
        f"({type(exc).__name__}); set {PASSWORD_ENV} instead or fix the keyring",
        details={"kind": "keyring", "entry": profile_key, "error": type(exc).__name__},
    )


def _backend_name(backend: Any) -> str:
    return f"{type(backend).__module__}.{type(backend).__name__}"


def keyring_problem(backend: Any = None) -> str | None:
    """Why a keyring backend must not hold a secret, or None when it may.

    Refused: every ``keyrings.alt`` backend (a file in plain text, base64 or a weak fixed
    encryption), keyring's ``fail`` and ``null`` backends (no usable keyring), and a chainer
    whose first backend is one of those (the chainer writes to its first backend).

    Args:
        backend: a ``keyring.backend.KeyringBackend``; None checks the process's current one.

    Returns:
        The reason in words, to follow "the OS keyring here" (e.g. "has no usable backend"), or None.
    """
    if backend is None:
        backend = _keyring().get_keyring()
    from keyring.backends import chainer, fail, null

    if isinstance(backend, chainer.ChainerBackend):
        chained = list(backend.backends)
        return keyring_problem(chained[0]) if chained else "has no usable backend"
    if isinstance(backend, fail.Keyring):
        return "has no usable backend"
    if isinstance(backend, null.Keyring):
        return "is disabled (null backend)"
    name = _backend_name(backend)
    if name.startswith("keyrings.alt."):
        how = "in plain text" if "Plaintext" in name else "under a weak or fixed encryption"
        return f"would keep it {how} in a file ({name}, a fallback backend not meant for secrets)"
    return None


def get_key_password(profile_key: str) -> str | None:
    """Return the private-key passphrase stored in the OS keyring for `profile_key`.

    Args:
        profile_key: keyring entry (usually the profile name), service :data:`KEYRING_SERVICE`.

    Returns:
        The passphrase, or None when no entry exists.

    Raises:
        TlsConfigError: the keyring backend failed (no backend, locked, ...).
    """
    keyring = _keyring()
    try:
        return keyring.get_password(KEYRING_SERVICE, profile_key)
    except keyring.errors.KeyringError as exc:
        raise _keyring_error("read", profile_key, exc) from None


def set_key_password(profile_key: str, password: str) -> None:
    """Store `password` in the OS keyring for `profile_key` (replacing any old one).

    Raises:
        InsecureKeyringError: the keyring backend would keep it in plain text, or there is no
            usable backend (:func:`keyring_problem`); nothing was stored.
        TlsConfigError: the keyring backend failed.
    """
    keyring = _keyring()
    backend = keyring.get_keyring()
    problem = keyring_problem(backend)
    if problem:
        raise InsecureKeyringError(
            f"The TLS key passphrase was not saved: the OS keyring here {problem}. {_INSTALL_HINT}.",
            details={"kind": "keyring", "entry": profile_key, "backend": _backend_name(backend)},
        )
    try:
        keyring.set_password(KEYRING_SERVICE, profile_key, password)
    except keyring.errors.KeyringError as exc:
        raise _keyring_error("store", profile_key, exc) from None
    LOGGER.info("Stored the TLS key passphrase for %r in the OS keyring", profile_key)


def delete_key_password(profile_key: str) -> bool:
    """Remove the passphrase for `profile_key` from the OS keyring.

    Returns:
        True if an entry was removed, False if there was none.

    Raises:
        TlsConfigError: the keyring backend failed otherwise.
    """
    keyring = _keyring()
    try:
        keyring.delete_password(KEYRING_SERVICE, profile_key)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as exc:
        raise _keyring_error("delete", profile_key, exc) from None
    return True


def key_password(profile_key: str | None) -> tuple[str | None, str | None]:
    """Find the private-key passphrase: the keyring entry first, then :data:`PASSWORD_ENV`.

    Args:
        profile_key: keyring entry name, or None to use only the environment.

    Returns:
        ``(passphrase, source)``; `source` says where it came from, for messages
        (``"keyring entry 'X'"`` or the variable's name); ``(None, None)`` if none is set.

    Raises:
        TlsConfigError: the keyring backend failed and :data:`PASSWORD_ENV` is not set.
    """
    env = os.environ.get(PASSWORD_ENV)
    if profile_key:
        try:
            password = get_key_password(profile_key)
        except TlsConfigError as exc:
            if not env:
                raise
            LOGGER.info("Keyring unusable (%s); using %s", exc.details.get("error"), PASSWORD_ENV)
            password = None
        if password is not None:
            return password, f"keyring entry {profile_key!r}"
    if env:
        return env, PASSWORD_ENV
    return None, None
