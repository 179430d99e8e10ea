"""PACS profiles: typed, validated connection settings and their versioned file (no Qt here).

A :class:`Profile` is what an administrator sets up once per PACS: host, port,
called and calling AE titles, transfer-syntax strategy, retries, timeouts (units
in the field names), max PDU, lossy permission and TLS *references* (file paths
or Google Cloud Secret Manager secret IDs, a keyring entry name). It never holds
secret material: passwords and keys stay in the keyring or Secret Manager.

:class:`ProfileStore` keeps the profiles in ``profiles.json`` under the
platform's config directory (``DICOM_COURIER_CONFIG_DIR`` overrides it, for
tests and portable installs). The file carries a ``version``; an older file is
backed up before it is migrated; every write is atomic (temp file +
``os.replace``).

Validators return ``(ok, reason)`` so an editor can show the reason beside the
field (AE titles per PS3.5 Table 6.2-1, ports 1-65535, PDU per PS3.8 D.1).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .config import DEFAULT_CALLING_AE, StoreConfig, validate_ae_title
from .strategies import STRATEGY_ORDER

LOGGER = logging.getLogger(__name__)

__all__ = [
    "STORE_CONFIG_FIELDS",
    "COUNT_LIMITS",
    "Profile",
    "ProfileStore",
    "ProfileFileError",
    "FILE_VERSION",
    "LOCAL_TEST_PROFILE_NAME",
    "LOCAL_TEST_AE",
    "LOCAL_TEST_PORT",
    "local_test_profile",
    "check_field",
    "coerce_field",
    "config_dir",
    "data_dir",
    "profiles_from_json",
]

#: Version of the profiles file written by this code.
FILE_VERSION = 1
LOCAL_TEST_PROFILE_NAME = "Local test PACS"
LOCAL_TEST_AE = "COURIER"
LOCAL_TEST_PORT = 11112
APP_NAME = "dicom-courier"

#: Keys that would hold secret material; dropped on load and import, never written.
_SECRET_KEYS = frozenset(
    {
        "password",
        "passphrase",
        "tls_key_password",
        "tls_password",
        "private_key",
        "tls_client_key_pem",
        "key_pem",
        "secret",
        "token",
        "api_key",
    }
)

#: Profile field -> :class:`core.config.StoreConfig` field: every connection setting a profile
#: holds, mapped in this one place (profile names carry units, the engine keeps the seed's keys).
#: The engine's outage budget (``retry_total_s``, ``retry_backoff_s``) is not per profile.
STORE_CONFIG_FIELDS = {
    "remote_host": "remote_host",
    "remote_port": "remote_port",
    "remote_ae_title": "remote_ae_title",
    "local_ae_title": "local_ae_title",
    "acse_timeout_s": "acse_timeout",
    "dimse_timeout_s": "dimse_timeout",
    "network_timeout_s": "network_timeout",
    "connect_timeout_s": "connect_timeout",
    "max_pdu_bytes": "max_pdu",
    "allow_lossy": "allow_lossy",
    "implicit_vr_only": "implicit_vr_only",
    "max_resends": "max_resends",
    "reconnect_attempts": "reconnect_attempts",
    "tls_enabled": "tls_enabled",
    "tls_verify_hostname": "tls_verify_hostname",
    "tls_ca_cert_file": "tls_ca_cert_file",
    "tls_client_cert_file": "tls_client_cert_file",
    "tls_client_key_file": "tls_client_key_file",
    "tls_ca_cert_secret_name": "tls_ca_cert_secret_name",
    "tls_client_cert_secret_name": "tls_client_cert_secret_name",
    "tls_client_key_secret_name": "tls_client_key_secret_name",
    "tls_key_password_keyring": "tls_key_password_keyring",
    "gcp_project_id": "gcp_project_id",
}

#: Seed/StoreConfig key -> profile field (for importing seed-style config dicts).
_CONFIG_ALIASES = {key: name for name, key in STORE_CONFIG_FIELDS.items() if key != name} | {
    "transfer_syntax_strategy": "strategy"
}


def config_dir() -> str:
    """The directory holding ``profiles.json``.

    ``$DICOM_COURIER_CONFIG_DIR`` when set, else platformdirs' user config dir.
    """
    env = os.environ.get("DICOM_COURIER_CONFIG_DIR")
    if env:
        return env
    import platformdirs

    return platformdirs.user_config_dir(APP_NAME, appauthor=False)


def data_dir() -> str:
    """The directory for application data (``$DICOM_COURIER_DATA_DIR`` or platformdirs' user data dir)."""
    env = os.environ.get("DICOM_COURIER_DATA_DIR")
    if env:
        return env
    import platformdirs

    return platformdirs.user_data_dir(APP_NAME, appauthor=False)


@dataclass
class Profile:
    """One PACS: how to reach it and how to send to it.

    Attributes:
        name: shown in the selector; unique within a store.
        remote_host: PACS host name or IP address.
        remote_port: PACS TCP port, 1-65535.
        remote_ae_title: called AE title (the PACS's own), PS3.5 VR AE.
        local_ae_title: calling AE title (ours), default ``AXIOM_SCU``.
        strategy: first transfer-syntax strategy (``universal`` ... ``extended``).
        max_retries: how many more conservative strategies to try after the first (0-4).
        parallel_associations: how many associations to send over at once (1-16); each
            study stays on one association.
        acse_timeout_s / dimse_timeout_s / network_timeout_s / connect_timeout_s: seconds.
        max_pdu_bytes: our maximum PDU length in bytes, 0 (unlimited) or 4096-4294967295.
        allow_lossy: allow lossless-to-lossy conversion.
        implicit_vr_only: send everything to this PACS as Implicit VR Little Endian (for older
            receivers that abort on VRs they do not know, such as UC, UR, SV, UV).
        max_resends: how many times one instance may be sent again after the PACS was busy or the
            association broke while it was in flight (0-10; 0 = never; see :class:`core.config.StoreConfig`).
        reconnect_attempts: how many times to open an association again while the PACS is down
            or busy (0-50); never re-sends an instance.
        tls_enabled: use DICOM TLS (PS3.15 B.1).
        tls_ca_cert_file / tls_client_cert_file / tls_client_key_file: PEM file paths.
        tls_ca_cert_secret_name / tls_client_cert_secret_name / tls_client_key_secret_name:
            Google Cloud Secret Manager secret IDs (full resource names, or names resolved
            with `gcp_project_id`).
        tls_verify_hostname: check the peer certificate's host name.
        tls_key_password_keyring: the keyring entry holding the key passphrase (a name only).
        gcp_project_id: project for short secret names.
        is_local_test: this profile points at the built-in local test PACS.
        verify_arrival: after a send, ask the PACS whether it holds what it acknowledged
            (storage commitment, else C-FIND; see :mod:`core.verify`).
        acceptance_map: the last probe's :meth:`core.probe.AcceptanceMap.to_dict` (its
            ``peer["probed_at"]`` is the date), or empty; plans use it instead of negotiating.
    """

    name: str = "New PACS"
    remote_host: str = ""
    remote_port: int = 104
    remote_ae_title: str = ""
    local_ae_title: str = DEFAULT_CALLING_AE
    strategy: str = "standard"
    max_retries: int = 4
    parallel_associations: int = 1
    acse_timeout_s: float = 30.0
    dimse_timeout_s: float = 60.0
    network_timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    max_pdu_bytes: int = 262144
    allow_lossy: bool = False
    implicit_vr_only: bool = False
    max_resends: int = 3
    reconnect_attempts: int = 5
    tls_enabled: bool = False
    tls_ca_cert_file: str = ""
    tls_client_cert_file: str = ""
    tls_client_key_file: str = ""
    tls_ca_cert_secret_name: str = ""
    tls_client_cert_secret_name: str = ""
    tls_client_key_secret_name: str = ""
    tls_verify_hostname: bool = True
    tls_key_password_keyring: str = ""
    gcp_project_id: str = ""
    is_local_test: bool = False
    verify_arrival: bool = False
    acceptance_map: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # -- validation -------------------------------------------------------------------------------

    def errors(self) -> dict[str, str]:
        """Return ``{field: reason}`` for every invalid field (empty when the profile is valid)."""
        out: dict[str, str] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            ok, reason = check_field(f.name, getattr(self, f.name))
            if not ok:
                out[f.name] = reason
        if self.tls_client_key_file and not self.tls_client_cert_file:
            out.setdefault("tls_client_cert_file", "a client key needs its client certificate")
        if self.tls_client_key_secret_name and not self.tls_client_cert_secret_name:
            out.setdefault("tls_client_cert_secret_name", "a client key needs its client certificate")
        short = [
            k
            for k in ("tls_ca_cert_secret_name", "tls_client_cert_secret_name", "tls_client_key_secret_name")
            if _SECRET_SHORT.match(str(getattr(self, k)).strip())
        ]
        if short and not str(self.gcp_project_id).strip() and not os.environ.get("GOOGLE_CLOUD_PROJECT"):
            out.setdefault("gcp_project_id", "short secret names need the Google Cloud project (or give projects/P/secrets/S)")
        return out

    def is_valid(self) -> bool:
        """True when :meth:`errors` is empty."""
        return not self.errors()

    # -- conversion -------------------------------------------------------------------------------

    def to_config_dict(self) -> dict[str, Any]:
        """The seed-style config dict for the engine (no secret material, only references).

        Built from :data:`STORE_CONFIG_FIELDS`; empty optional references are left out.

        Raises:
            ValueError: a number field holds text that is not a number.
        """
        d: dict[str, Any] = {}
        for name, key in STORE_CONFIG_FIELDS.items():
            value = coerce_field(name, getattr(self, name))
            if name in _TEXT or name == "remote_host":
                value = value.strip()
                if not value and name in _TEXT:
                    continue
            d[key] = value
        return d

    def to_store_config(self) -> StoreConfig:
        """A validated :class:`core.config.StoreConfig`.

        Raises:
            ValueError: a value is bad (the message names the key).
        """
        return StoreConfig.from_dict(self.to_config_dict())

    def to_json(self) -> dict[str, Any]:
        """The profile as written to the file (no secrets: there are none to write)."""
        d = asdict(self)
        d.pop("extra", None)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        """Build a profile from a file entry or a seed-style config dict.

        Unknown keys are kept in :attr:`extra` (and written back) so a newer file is not
        damaged by an older app; keys that would hold secrets are dropped with a warning.
        Values are coerced (``"104"`` → 104); invalid values are kept as given so the
        editor can show why they are wrong.
        """
        if not isinstance(data, dict):
            raise ValueError("a profile must be a JSON object")
        known = {f.name for f in fields(cls)} - {"extra"}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            key = _CONFIG_ALIASES.get(key, key)
            if key.lower() in _SECRET_KEYS:
                LOGGER.warning("Profile key %r would hold a secret; it was dropped (use the keyring)", key)
                continue
            if key in known:
                if value is None:
                    continue
                try:
                    values[key] = coerce_field(key, value)
                except ValueError:
                    values[key] = value
            else:
                extra[key] = value
        if "name" not in values:
            host = values.get("remote_host", "")
            values["name"] = f"{values.get('remote_ae_title', 'PACS')}@{host}" if host else "Imported PACS"
        return cls(**values, extra=extra)


def local_test_profile(port: int = LOCAL_TEST_PORT) -> Profile:
    """The ready-made profile pointing at the built-in local test PACS on loopback."""
    return Profile(
        name=LOCAL_TEST_PROFILE_NAME,
        remote_host="127.0.0.1",
        remote_port=port,
        remote_ae_title=LOCAL_TEST_AE,
        strategy="compression",
        max_retries=4,
        acse_timeout_s=10.0,
        dimse_timeout_s=30.0,
        network_timeout_s=30.0,
        connect_timeout_s=5.0,
        is_local_test=True,
    )


# -- field checks -------------------------------------------------------------------------------------

# Secret Manager secret IDs, as core.secrets.resolve_secret_name accepts them.
_SECRET_FULL = re.compile(r"^projects/[^/]+(?:/locations/[^/]+)?/secrets/[A-Za-z0-9_-]{1,255}(?:/versions/[^/]+)?$")
_SECRET_SHORT = re.compile(r"^[A-Za-z0-9_-]{1,255}$")

#: Whole-number settings counted from 0, and their upper limits (the editor's spin boxes use them).
COUNT_LIMITS = {"max_resends": 10, "reconnect_attempts": 50}
_SECONDS = ("acse_timeout_s", "dimse_timeout_s", "network_timeout_s", "connect_timeout_s")
_BOOLS = ("allow_lossy", "implicit_vr_only", "tls_enabled", "tls_verify_hostname", "is_local_test", "verify_arrival")
_TEXT = (
    "tls_ca_cert_file",
    "tls_client_cert_file",
    "tls_client_key_file",
    "tls_ca_cert_secret_name",
    "tls_client_cert_secret_name",
    "tls_client_key_secret_name",
    "tls_key_password_keyring",
    "gcp_project_id",
)


def coerce_field(name: str, value: Any) -> Any:
    """Turn `value` (text from an editor, or a JSON value) into the field's type.

    Raises:
        ValueError: the value cannot be read as that type; the message says why.
    """
    if name in ("remote_port", "max_retries", "max_pdu_bytes", "parallel_associations", "max_resends", "reconnect_attempts"):
        if isinstance(value, bool):
            raise ValueError("must be a whole number")
        if isinstance(value, int):
            return value
        text = str(value).strip().replace("_", "")
        if not text:
            raise ValueError("is empty")
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if name in _SECONDS:
        if isinstance(value, bool):
            raise ValueError("must be a number of seconds")
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().removesuffix("s").strip()
        if not text:
            raise ValueError("is empty")
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number of seconds") from None
    if name in _BOOLS:
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).strip().lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{value!r} is not true or false")
    if name == "strategy":
        return str(value).strip().lower()
    if name == "acceptance_map":
        if not value:
            return {}
        if not isinstance(value, dict) or not isinstance(value.get("sop_classes"), dict):
            raise ValueError("not an acceptance map (a probe result)")
        return dict(value)
    return "" if value is None else str(value)


def check_field(name: str, value: Any) -> tuple[bool, str]:
    """Validate one profile field.

    Args:
        name: the :class:`Profile` field name.
        value: a typed value or editor text.

    Returns:
        ``(ok, reason)``; `reason` is empty when ok and otherwise a phrase to show
        beside the field.
    """
    try:
        v = coerce_field(name, value)
    except ValueError as exc:
        return False, str(exc)
    if name == "name":
        if not v.strip():
            return False, "a profile needs a name"
        if len(v) > 80:
            return False, "at most 80 characters"
        return True, ""
    if name == "remote_host":
        if not v.strip():
            return False, "enter the PACS's host name or IP address"
        if any(c.isspace() for c in v.strip()) or len(v.strip()) > 253:
            return False, f"{v.strip()!r} is not a host name or IP address"
        return True, ""
    if name == "remote_port":
        return (True, "") if 1 <= v <= 65535 else (False, f"port {v} is outside 1-65535")
    if name == "remote_ae_title":
        return validate_ae_title(v, "called AE title")
    if name == "local_ae_title":
        return validate_ae_title(v, "calling AE title")
    if name == "strategy":
        names = [s.value for s in STRATEGY_ORDER]
        return (True, "") if v in names else (False, f"unknown strategy {v!r}: use one of {', '.join(names)}")
    if name == "max_retries":
        return (
            (True, "")
            if 0 <= v <= len(STRATEGY_ORDER) - 1
            else (False, f"{v} is outside 0-{len(STRATEGY_ORDER) - 1} (one retry per more conservative strategy)")
        )
    if name == "parallel_associations":
        return (True, "") if 1 <= v <= 16 else (False, f"{v} is outside 1-16")
    if name in COUNT_LIMITS:
        top = COUNT_LIMITS[name]
        return (True, "") if 0 <= v <= top else (False, f"{v} is outside 0-{top}")
    if name in _SECONDS:
        if not v > 0:
            return False, "must be more than 0 seconds"
        if v > 86400:
            return False, "more than a day; enter seconds"
        return True, ""
    if name == "max_pdu_bytes":
        if v == 0 or 4096 <= v <= 2**32 - 1:
            return True, ""
        return False, f"{v} bytes: use 0 (unlimited) or 4096-4294967295 (PS3.8 D.1)"
    if name in ("tls_ca_cert_file", "tls_client_cert_file", "tls_client_key_file"):
        if v and "\n" in v:
            return False, "a file path, not the certificate itself"
        if v and "-----BEGIN" in v:
            return False, "enter the file's path; certificate or key text is never stored in a profile"
        return True, ""
    if name in ("tls_ca_cert_secret_name", "tls_client_cert_secret_name", "tls_client_key_secret_name"):
        if v and ("-----BEGIN" in v or any(c.isspace() for c in v)):
            return False, "a Secret Manager secret ID (e.g. projects/p/secrets/ca-cert), not the secret itself"
        if v and not (_SECRET_FULL.match(v.strip()) or _SECRET_SHORT.match(v.strip())):
            return False, "use projects/P/secrets/S[/versions/V] or a short name of letters, digits, '-' and '_'"
        return True, ""
    if name == "tls_key_password_keyring":
        if v and (len(v) > 200 or any(ord(c) < 0x20 for c in v)):
            return False, "the name of a keyring entry (the passphrase itself is never stored here)"
        return True, ""
    return True, ""


# -- the file -------------------------------------------------------------------------------------------


class ProfileFileError(Exception):
    """The profiles file or an import file cannot be read; the message says why."""


#: Migrations: version N -> a function turning a version-N document into version N+1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _migrate(doc: dict[str, Any]) -> dict[str, Any]:
    version = int(doc.get("version", 0))
    if version == 0:  # a bare list or a pre-release file: same entries, no version stamp
        doc = {"version": 1, "profiles": doc.get("profiles", [])}
        version = 1
    while version < FILE_VERSION:
        doc = MIGRATIONS[version](doc)
        version += 1
        doc["version"] = version
    return doc


def profiles_from_json(data: Any) -> list[Profile]:
    """Read profiles from a parsed JSON document.

    Accepts our file format (``{"version": n, "profiles": [...]}``), a list of profile
    objects, a single profile object or a seed-style config dict.

    Raises:
        ProfileFileError: the document holds no profiles or a bad entry.
    """
    if isinstance(data, list):
        entries = data
    elif isinstance(data, dict) and "profiles" in data:
        if int(data.get("version", 0)) > FILE_VERSION:
            raise ProfileFileError(
                f"the file was written by a newer DICOM Courier (version {data['version']}); "
                f"this one reads up to version {FILE_VERSION}"
            )
        entries = _migrate(dict(data)).get("profiles", [])
    elif isinstance(data, dict):
        entries = [data]
    else:
        raise ProfileFileError("expected a JSON object or list of profiles")
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(Profile.from_json(entry))
        except (ValueError, TypeError) as exc:
            raise ProfileFileError(f"profile {i + 1}: {exc}") from None
    return out


def _atomic_write_json(path: str, doc: Any) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".profiles-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ProfileStore:
    """The list of profiles and its file.

    Args:
        path: the JSON file; default ``<config_dir()>/profiles.json``.

    The local test PACS profile is always present (added on first load).
    """

    def __init__(self, path: str | None = None):
        self.path = path or os.path.join(config_dir(), "profiles.json")
        self.profiles: list[Profile] = []
        self.last_used: str = ""
        self.read_only_reason: str = ""

    # -- load / save ------------------------------------------------------------------------------

    def load(self) -> list[Profile]:
        """Read the file (migrating an older version after a backup); returns the profiles.

        A missing file gives just the local test PACS profile. A file that cannot be read
        is kept untouched (copied to ``.broken``) and the store starts with defaults.
        """
        self.profiles = []
        self.read_only_reason = ""
        if os.path.exists(self.path):
            try:
                with open(self.path, encoding="utf-8") as f:
                    doc = json.load(f)
                if isinstance(doc, dict) and int(doc.get("version", 0)) > FILE_VERSION:
                    self.read_only_reason = (
                        f"{self.path} was written by a newer DICOM Courier (version {doc['version']}); changes will not be saved"
                    )
                    doc = {**doc, "version": FILE_VERSION}
                elif isinstance(doc, dict) and int(doc.get("version", 0)) < FILE_VERSION:
                    backup = f"{self.path}.v{int(doc.get('version', 0))}.bak"
                    shutil.copy2(self.path, backup)
                    LOGGER.info(
                        "Profiles file %s is version %s; backed up to %s before migrating",
                        self.path,
                        doc.get("version", 0),
                        backup,
                    )
                self.profiles = profiles_from_json(doc)
                self.last_used = str(doc.get("last_used", "")) if isinstance(doc, dict) else ""
            except (OSError, ValueError, ProfileFileError) as exc:
                broken = f"{self.path}.broken"
                with contextlib.suppress(OSError):
                    shutil.copy2(self.path, broken)
                LOGGER.error("Cannot read the profiles file %s (%s); kept a copy at %s", self.path, exc, broken)
                self.profiles = []
        if not any(p.is_local_test for p in self.profiles):
            self.profiles.insert(0, local_test_profile())
        return self.profiles

    def save(self) -> None:
        """Write the file atomically.

        Raises:
            OSError: the file cannot be written.
            ProfileFileError: the file was written by a newer version (not overwritten).
        """
        if self.read_only_reason:
            raise ProfileFileError(self.read_only_reason)
        _atomic_write_json(self.path, self.document(self.profiles, last_used=self.last_used))

    @staticmethod
    def document(profiles: Iterable[Profile], last_used: str = "") -> dict[str, Any]:
        """The file's JSON document for `profiles`."""
        doc: dict[str, Any] = {
            "version": FILE_VERSION,
            "app": APP_NAME,
            "profiles": [{**p.extra, **p.to_json()} for p in profiles],
        }
        if last_used:
            doc["last_used"] = last_used
        return doc

    # -- import / export -------------------------------------------------------------------------

    def export_json(self, path: str, profiles: Iterable[Profile] | None = None) -> int:
        """Write `profiles` (default all) to `path` atomically; returns how many were written."""
        chosen = list(self.profiles if profiles is None else profiles)
        _atomic_write_json(path, self.document(chosen))
        return len(chosen)

    def import_json(self, path: str) -> list[Profile]:
        """Add the profiles found in `path` (renaming on a name clash); returns the added profiles.

        Raises:
            ProfileFileError: the file cannot be read or holds no usable profile.
        """
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except OSError as exc:
            raise ProfileFileError(f"cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ProfileFileError(f"{path} is not valid JSON: {exc}") from None
        added = []
        for p in profiles_from_json(doc):
            p = replace(p, name=self.unique_name(p.name), is_local_test=False)
            self.profiles.append(p)
            added.append(p)
        if not added:
            raise ProfileFileError(f"{path} holds no profiles")
        return added

    # -- list helpers ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Profile names in order."""
        return [p.name for p in self.profiles]

    def get(self, name: str) -> Profile | None:
        """The profile called `name`, or None."""
        return next((p for p in self.profiles if p.name == name), None)

    def unique_name(self, base: str) -> str:
        """`base`, or `base (2)`, `base (3)`... whichever is free."""
        taken = set(self.names())
        if base not in taken:
            return base
        n = 2
        while f"{base} ({n})" in taken:
            n += 1
        return f"{base} ({n})"

    def local_test(self) -> Profile:
        """The local test PACS profile (created when missing)."""
        for p in self.profiles:
            if p.is_local_test:
                return p
        p = local_test_profile()
        self.profiles.insert(0, p)
        return p
