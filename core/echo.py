"""C-ECHO (Verification, PS3.4 Annex A; PS3.7 9.3.5) with timing and negotiation details."""

from __future__ import annotations

import time
from typing import Any

from .config import StoreConfig
from .diagnostics import explain_status
from .errors import DimseCommandError
from .negotiation import VERIFICATION_SOP_CLASS, open_association

__all__ = ["echo"]


def echo(config: dict[str, Any] | StoreConfig) -> dict[str, Any]:
    """Associate, send one C-ECHO-RQ, release.

    Args:
        config: a seed config dict or :class:`StoreConfig`.

    Returns:
        dict with ``status_code``, ``status`` (``success``/``warning``/``failure``),
        ``message``, ``rtt_ms`` (C-ECHO round trip in milliseconds), ``associate_ms``
        (association set-up in milliseconds) and ``negotiation`` (the record:
        accepted context, peer max PDU, implementation class UID / version name).

    Raises:
        AssociationError: the association failed (reason in words).
        TlsConfigError: TLS is enabled and cannot be set up.
        DimseCommandError: no C-ECHO response (timeout, abort).
    """
    cfg = StoreConfig.from_dict(config)
    t0 = time.perf_counter()
    assoc, record = open_association(
        cfg, [(VERIFICATION_SOP_CLASS, "1.2.840.10008.1.2"), (VERIFICATION_SOP_CLASS, "1.2.840.10008.1.2.1")], "verification"
    )
    t1 = time.perf_counter()
    try:
        rsp = assoc.send_c_echo()
        t2 = time.perf_counter()
        if not rsp or "Status" not in rsp:
            raise DimseCommandError(
                f"no C-ECHO response from {cfg.peer} within the DIMSE timeout ({cfg.dimse_timeout:g} s) or the "
                "association was aborted",
                remote_ae=cfg.remote_ae_title,
                details={"negotiation": record.to_dict()},
            )
        tls = _tls_info(assoc)
    finally:
        if assoc.is_established:
            assoc.release()
    code = int(rsp.Status)
    expl = explain_status(code)
    out = {
        "status_code": code,
        "status": expl.category,
        "message": "C-ECHO succeeded" if code == 0 else expl.message,
        "rtt_ms": round((t2 - t1) * 1000, 2),
        "associate_ms": round((t1 - t0) * 1000, 2),
        "negotiation": record.to_dict(),
    }
    if tls:
        out["tls"] = tls
    return out


def _tls_info(assoc: Any) -> dict[str, Any] | None:
    sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
    if sock is None or not hasattr(sock, "cipher"):
        return None
    try:
        from . import tls
    except ImportError:
        return None
    try:
        return tls.tls_session_info(sock)
    except Exception:  # informational only
        return None
