"""The seed API's ``config`` dict, validated into a typed :class:`StoreConfig`.

Keys (seed): ``remote_host``, ``remote_port``, ``remote_ae_title`` (required);
``local_ae_title`` (default ``"AXIOM_SCU"``), ``tls_enabled`` (False),
``tls_ca_cert_secret_name``, ``tls_client_cert_secret_name``,
``tls_client_key_secret_name``.
Extensions: ``tls_ca_cert_file``, ``tls_client_cert_file``, ``tls_client_key_file``,
``tls_verify_hostname`` (True), ``tls_key_password_keyring`` (keyring entry name),
``gcp_project_id``, ``acse_timeout``, ``dimse_timeout``, ``network_timeout``,
``connect_timeout`` (seconds), ``max_pdu`` (bytes, 0 = unlimited),
``allow_lossy`` (False), ``implicit_vr_only`` (False), ``max_resends`` (3),
``reconnect_attempts`` (5), ``retry_total_s`` (120), ``retry_backoff_s`` (1.0).

Which setting re-sends an instance: only ``max_resends``. It is how many times the same
instance may be sent again after the peer answered "out of resources" (0xA7xx, 0x0213) or
broke the association while receiving it (that case at most once, alone, after the others);
``0`` never sends an instance twice, so nothing the PACS may already hold is sent again.
``reconnect_attempts`` and ``retry_total_s`` only open associations again while the peer is
down or busy; they never re-send an instance. The old key ``retry_attempts`` is still read
and sets both (see :data:`CONFIG_ALIASES`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["StoreConfig", "validate_ae_title", "DEFAULT_CALLING_AE", "CONFIG_ALIASES"]

DEFAULT_CALLING_AE = "AXIOM_SCU"

#: Old config keys still read (saved jobs, seed-style dicts) -> the keys they set when those are not given.
CONFIG_ALIASES: dict[str, tuple[str, ...]] = {"retry_attempts": ("max_resends", "reconnect_attempts")}


def validate_ae_title(value: Any, what: str = "AE title") -> tuple[bool, str]:
    """Check an AE title against PS3.5 Table 6.2-1 (VR AE).

    Args:
        value: the title to check.
        what: how to name it in the reason, e.g. ``"calling AE title"``.

    Returns:
        ``(ok, reason)``; `reason` is empty when ok.
    """
    if not isinstance(value, str):
        return False, f"{what} must be text"
    if value.strip() == "":
        return False, f"{what} is empty (AE titles are 1 to 16 characters, not all spaces)"
    if len(value) > 16:
        return False, f"{what} {value!r} is {len(value)} characters long; at most 16 are allowed"
    if "\\" in value:
        return False, f"{what} {value!r} contains a backslash, which AE titles may not contain"
    if any(ord(c) < 0x20 or ord(c) > 0x7E for c in value):
        return False, f"{what} {value!r} contains control or non-ASCII characters"
    return True, ""


@dataclass(frozen=True)
class StoreConfig:
    """A validated connection configuration (units in the field names' docs).

    Attributes:
        remote_host: peer host name or IP address.
        remote_port: peer TCP port, 1-65535.
        remote_ae_title: called AE title (the peer's own).
        local_ae_title: calling AE title (ours).
        acse_timeout: seconds to wait for A-ASSOCIATE-AC/RJ and A-RELEASE-RP.
        dimse_timeout: seconds to wait for a DIMSE response (e.g. C-STORE-RSP).
        network_timeout: seconds of network inactivity before the association is aborted.
        connect_timeout: seconds to wait for the TCP connection.
        max_pdu: our Maximum Length Received in bytes (0 = unlimited), PS3.8 D.1.
        allow_lossy: allow lossless-to-lossy conversion.
        implicit_vr_only: propose only Implicit VR Little Endian (PS3.5 A.1) for every instance,
            for receivers that cannot parse explicit VRs they do not know (UC, UR, SV, UV...);
            compressed files are then decoded (said on each instance) or fail.
        max_resends: how many times one instance may be sent again (>= 0): after a transient
            refusal (0xA7xx, 0x0213; PS3.4 B.2.3) with back-off, or once, alone and after the
            others, after the association broke while it was in flight. 0 = never re-send.
        reconnect_attempts: how many times to open an association again while the peer is down
            or busy (with back-off, within `retry_total_s`); never re-sends an instance.
        retry_total_s: the longest outage waited out, seconds.
        retry_backoff_s: the first back-off delay, seconds (doubled each time, with jitter).
    """

    remote_host: str
    remote_port: int
    remote_ae_title: str
    local_ae_title: str = DEFAULT_CALLING_AE
    tls_enabled: bool = False
    tls_ca_cert_secret_name: str | None = None
    tls_client_cert_secret_name: str | None = None
    tls_client_key_secret_name: str | None = None
    tls_ca_cert_file: str | None = None
    tls_client_cert_file: str | None = None
    tls_client_key_file: str | None = None
    tls_verify_hostname: bool = True
    tls_key_password_keyring: str | None = None
    gcp_project_id: str | None = None
    acse_timeout: float = 30.0
    dimse_timeout: float = 60.0
    network_timeout: float = 60.0
    connect_timeout: float = 10.0
    max_pdu: int = 262144
    allow_lossy: bool = False
    implicit_vr_only: bool = False
    max_resends: int = 3
    reconnect_attempts: int = 5
    retry_total_s: float = 120.0
    retry_backoff_s: float = 1.0

    @classmethod
    def from_dict(cls, config: dict[str, Any] | StoreConfig) -> StoreConfig:
        """Validate a seed-style config dict.

        Raises:
            ValueError: a required key is missing, a key is unknown, or a value is bad;
                the message names the key.
        """
        if isinstance(config, StoreConfig):
            return config
        if not isinstance(config, dict):
            raise ValueError("config must be a dict")
        config = cls._resolve_aliases(config)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        for key in ("remote_host", "remote_port", "remote_ae_title"):
            if config.get(key) in (None, ""):
                raise ValueError(f"config key '{key}' is required")
        values = {k: v for k, v in config.items() if v is not None or k.startswith("tls_") or k == "gcp_project_id"}
        cfg = cls(**values)
        cfg.validate()
        return cfg

    @classmethod
    def known_keys(cls) -> frozenset[str]:
        """Every key :meth:`from_dict` accepts (the fields and the old aliases)."""
        return frozenset({f.name for f in fields(cls)} | set(CONFIG_ALIASES))

    @staticmethod
    def _resolve_aliases(config: dict[str, Any]) -> dict[str, Any]:
        """`config` with each old key replaced by the new keys it sets (a new key given wins)."""
        if not any(k in config for k in CONFIG_ALIASES):
            return config
        out = {k: v for k, v in config.items() if k not in CONFIG_ALIASES}
        for old, new_keys in CONFIG_ALIASES.items():
            if config.get(old) is not None:
                for key in new_keys:
                    out.setdefault(key, config[old])
        return out

    def validate(self) -> None:
        """Raise ValueError naming the first bad value."""
        if not isinstance(self.remote_host, str) or not self.remote_host.strip():
            raise ValueError("config key 'remote_host' must be a host name or IP address")
        try:
            port = int(self.remote_port)
        except (TypeError, ValueError):
            raise ValueError(f"config key 'remote_port' must be an integer, not {self.remote_port!r}") from None
        if not 1 <= port <= 65535 or isinstance(self.remote_port, bool):
            raise ValueError(f"config key 'remote_port' must be 1-65535, not {self.remote_port!r}")
        object.__setattr__(self, "remote_port", port)
        for key, what in (("remote_ae_title", "called AE title"), ("local_ae_title", "calling AE title")):
            ok, reason = validate_ae_title(getattr(self, key), what)
            if not ok:
                raise ValueError(f"config key '{key}': {reason}")
        for key in ("acse_timeout", "dimse_timeout", "network_timeout", "connect_timeout", "retry_total_s", "retry_backoff_s"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"config key '{key}' must be a positive number of seconds, not {value!r}")
        if (
            isinstance(self.max_pdu, bool)
            or not isinstance(self.max_pdu, int)
            or not (self.max_pdu == 0 or 4096 <= self.max_pdu <= 2**32 - 1)
        ):
            raise ValueError(f"config key 'max_pdu' must be 0 (unlimited) or 4096..4294967295 bytes, not {self.max_pdu!r}")
        for key in ("max_resends", "reconnect_attempts"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"config key '{key}' must be a whole number >= 0, not {value!r}")
        for key in ("tls_enabled", "tls_verify_hostname", "allow_lossy", "implicit_vr_only"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"config key '{key}' must be true or false")

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a plain dict (holds no secret material, only names)."""
        return asdict(self)

    @property
    def peer(self) -> str:
        """``AE@host:port`` for messages."""
        return f"{self.remote_ae_title}@{self.remote_host}:{self.remote_port}"
