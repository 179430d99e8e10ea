"""C-ECHO (Verification, PS3.4 Annex A; PS3.7 9.3.5) with timing and negotiation details.

The C-ECHO goes over the same :class:`~core.fastpath.DirectChannel` as a C-STORE, so its
response is bounded as one: the DIMSE timeout counts the whole response, not the gaps
between its bytes, and a response PDU above our maximum ends the association at once.
"""

from __future__ import annotations

import time
from typing import Any

from .config import StoreConfig
from .diagnostics import explain_abort, explain_status
from .errors import DimseCommandError
from .fastpath import ChannelBrokenError, DirectChannel, StoreResponse
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
    rsp, broken = _echo_on(assoc)
    t2 = time.perf_counter()
    tls = _tls_info(assoc) if broken is None else None
    if assoc.is_established:
        if broken is None:
            assoc.release()
        else:
            assoc.abort()
    if rsp is None:
        raise DimseCommandError(
            str(broken),
            remote_ae=cfg.remote_ae_title,
            details={"negotiation": record.to_dict()},
        )
    code = rsp.Status if rsp.Status is not None else 0xFFFF  # a response without a status is never returned
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


def _echo_on(assoc: Any) -> tuple[StoreResponse | None, str | None]:
    """Send the C-ECHO-RQ on the established `assoc`; ``(response, None)`` or ``(None, what went wrong)``."""
    cx_id = next(cx.context_id for cx in assoc.accepted_contexts if str(cx.abstract_syntax) == VERIFICATION_SOP_CLASS)
    channel = DirectChannel(assoc, assoc.dimse_timeout, assoc.network_timeout)
    try:
        return channel.echo(cx_id, channel.next_message_id()), None
    except ChannelBrokenError as exc:
        if exc.abort_source is not None:
            return None, explain_abort(exc.abort_source, exc.abort_reason, "the C-ECHO")
        return None, exc.message
    finally:
        channel.close()


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
