"""Socket-level helpers for timeouts that measure inactivity, not total time.

pynetdicom leaves a connected socket blocking without a timeout, so a peer that
stops reading would block a writer (and a later A-ABORT) forever (fo-dicom
#1359, dcm4che #1129, #532); and the kernel buffers megabytes, so a request can
look "sent" long before the peer has read it.

* :func:`bound_writes` gives a socket a timeout (the network timeout).
* :func:`unsent_bytes` tells how many written bytes the peer has not acknowledged
  (Linux ``SIOCOUTQ``): while that number moves the transfer is alive; while it
  is stuck the peer has stopped reading; and bytes never acknowledged cannot
  have reached the peer (so the instance was "not received", not "unknown").
* :func:`drop_connection` shuts a socket down so a blocked write returns at once.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
from typing import Any

try:
    import fcntl
    import termios

    _SIOCOUTQ: int | None = termios.TIOCOUTQ  # same value as SIOCOUTQ on Linux
except (ImportError, AttributeError):  # Windows
    _SIOCOUTQ = None

LOGGER = logging.getLogger(__name__)

__all__ = ["bound_writes", "drop_connection", "unsent_bytes"]


def bound_writes(sock: Any, network_timeout: float | None) -> None:
    """Give a connected socket a send/receive timeout of `network_timeout` seconds.

    pynetdicom clears the socket timeout after connecting, so a peer that stops
    reading would block the writer forever. The DUL reads only what ``select``
    reports ready, so the timeout bounds stalled writes and half-received PDUs.
    """
    if network_timeout is None or sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.settimeout(float(network_timeout))


def drop_connection(assoc: Any) -> None:
    """Shut the association's socket down so a blocked write returns at once."""
    try:
        sock = assoc.dul.socket.socket
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):
        pass


def unsent_bytes(sock: Any) -> int | None:
    """Bytes written to `sock` that the peer has not acknowledged yet, or None if unknown.

    Linux ``SIOCOUTQ``; the kernel buffers megabytes, so without it a request
    would look "sent" long before the peer has read it.
    """
    if _SIOCOUTQ is None or sock is None:
        return None
    try:
        buf = fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0\0\0\0")
        return int.from_bytes(buf, sys.byteorder, signed=True)
    except (OSError, ValueError, AttributeError):
        return None
