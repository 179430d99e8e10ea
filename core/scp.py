"""The embedded Storage SCP ("local test PACS") on pynetdicom.

It accepts every storage SOP class pynetdicom knows plus Verification, with a
chosen set of transfer syntaxes (a strategy name, ``"uncompressed"``,
``"everything"``, or a list of UIDs), so a user can rehearse fallback
(PS3.4 Annex B, PS3.8 9.3.3). Received instances are written to ``store_dir``
as ``<SOP Instance UID>.dcm`` (with File Meta) or kept only as counts.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, evt
from pynetdicom.sop_class import _STORAGE_CLASSES  # the storage SOP classes pynetdicom knows

from .strategies import STRATEGY_ORDER, UNCOMPRESSED_SYNTAXES, strategy_syntaxes

LOGGER = logging.getLogger(__name__)

__all__ = ["EmbeddedSCP", "accepted_syntaxes", "ACCEPT_CHOICES"]

#: Named choices the GUI offers.
ACCEPT_CHOICES = {
    "everything": "every transfer syntax",
    "implicit": "Implicit VR Little Endian only",
    "uncompressed": "uncompressed syntaxes only",
}


def accepted_syntaxes(accept: str | Sequence[str] | None) -> list[str]:
    """Resolve an ``--accept`` value into transfer syntax UIDs.

    Args:
        accept: ``None``/``"everything"``, ``"implicit"``, ``"uncompressed"``, a strategy
            name, a comma-separated list of UIDs, or a sequence of UIDs.

    Raises:
        ValueError: an unknown name or a UID that is not a transfer syntax.
    """
    if accept is None or accept == "everything":
        return [str(u) for u in AllTransferSyntaxes]
    if isinstance(accept, str):
        key = accept.strip().lower()
        if key == "implicit":
            return ["1.2.840.10008.1.2"]
        if key == "uncompressed":
            return sorted(UNCOMPRESSED_SYNTAXES)
        if key in {s.value for s in STRATEGY_ORDER}:
            return [str(u) for u in strategy_syntaxes(key)]
        accept = [a.strip() for a in accept.split(",") if a.strip()]
    known = {str(u) for u in AllTransferSyntaxes}
    bad = [a for a in accept if a not in known]
    if bad:
        raise ValueError(
            f"not a transfer syntax UID or accept choice: {', '.join(bad)} "
            f"(use everything, implicit, uncompressed, a strategy name or UIDs)"
        )
    return list(accept)


class EmbeddedSCP:
    """A Storage SCP on a loopback (or given) address.

    Args:
        port: TCP port (0 picks a free one; see :attr:`port` after :meth:`start`).
        ae_title: our AE title; requests to another called AE title are rejected.
        store_dir: where to write received instances; None keeps only counts.
        accept: see :func:`accepted_syntaxes`.
        bind: the address to listen on (loopback by default).
        on_store: called with ``(sop_instance_uid, path_or_None)`` for each stored instance.
    """

    def __init__(
        self,
        port: int = 11112,
        ae_title: str = "COURIER",
        store_dir: str | None = None,
        accept: str | Sequence[str] | None = None,
        bind: str = "127.0.0.1",
        on_store: Callable[[str, str | None], None] | None = None,
    ):
        self.ae_title = ae_title
        self.store_dir = store_dir
        self.syntaxes = accepted_syntaxes(accept)
        self.bind = bind
        self._port = port
        self.on_store = on_store
        self.received: list[str] = []
        self._lock = threading.Lock()
        self._server: Any = None

    @property
    def port(self) -> int:
        """The listening port."""
        return self._server.server_address[1] if self._server else self._port

    @property
    def running(self) -> bool:
        """True while the server listens."""
        return self._server is not None

    def start(self) -> EmbeddedSCP:
        """Start listening in background threads; returns self.

        Raises:
            OSError: the port is in use or cannot be bound.
        """
        ae = AE(ae_title=self.ae_title)
        ae.require_called_aet = True
        ae.maximum_pdu_size = 0
        ae.network_timeout = ae.dimse_timeout = ae.acse_timeout = 60
        for uid in _STORAGE_CLASSES.values():
            ae.add_supported_context(uid, self.syntaxes)
        ae.add_supported_context("1.2.840.10008.1.1", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"])
        ae.maximum_associations = 32
        if self.store_dir:
            os.makedirs(self.store_dir, exist_ok=True)
        self._server = ae.start_server((self.bind, self._port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on_c_store)])
        LOGGER.info("Embedded Storage SCP %s listening on %s:%d", self.ae_title, self.bind, self.port)
        return self

    def stop(self) -> None:
        """Stop listening and close open associations."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
            LOGGER.info("Embedded Storage SCP stopped")

    def __enter__(self) -> EmbeddedSCP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_c_store(self, event: Any) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        path = None
        if self.store_dir:
            safe = "".join(c for c in uid if c.isdigit() or c == ".") or "instance"
            path = os.path.join(self.store_dir, f"{safe}.dcm")
            try:
                with open(path, "wb") as f:
                    f.write(event.encoded_dataset())
            except OSError as exc:
                LOGGER.error("Cannot write %s: %s", path, exc)
                return 0xA700
        with self._lock:
            self.received.append(uid)
        if self.on_store is not None:
            self.on_store(uid, path)
        return 0x0000
