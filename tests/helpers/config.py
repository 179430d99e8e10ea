"""Seed-style config dicts that reach a loopback peer, with short timeouts (SEED_API.md)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from .process import HOST

SHORT_TIMEOUTS = {"acse_timeout": 5, "dimse_timeout": 5, "network_timeout": 5, "connect_timeout": 5}


def engine_config_keys() -> set[str]:
    """The config keys the engine knows (its StoreConfig fields and old aliases), or an empty set."""
    try:
        from core.config import StoreConfig
    except ImportError:
        return set()
    known = getattr(StoreConfig, "known_keys", None)
    return set(known()) if known is not None else {f.name for f in fields(StoreConfig)}


def engine_extras(**wanted: Any) -> dict[str, Any]:
    """The subset of engine-specific config extensions (e.g. retry_backoff_s) that the engine knows,
    so tests stay fast without breaking if an extension is renamed."""
    known = engine_config_keys()
    return {k: v for k, v in wanted.items() if k in known}


def make_config(port: int, called_ae: str, calling_ae: str = "TEST_SCU", **extra: Any) -> dict[str, Any]:
    """A seed-style config dict for a loopback peer, with short timeouts and short retry back-off."""
    cfg: dict[str, Any] = {
        "remote_host": HOST,
        "remote_port": port,
        "remote_ae_title": called_ae,
        "local_ae_title": calling_ae,
        **SHORT_TIMEOUTS,
        **engine_extras(retry_backoff_s=0.05),
    }
    cfg.update(extra)
    return cfg
