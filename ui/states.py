"""Per-instance states shown in the window: labels, colours and small painted icons.

The engine's final states (:class:`core.outcomes.InstanceState`) plus the window's own
``ready``, ``queued``, ``sending``, and the scanner's ``unreadable`` / ``not-dicom``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

from core.outcomes import InstanceState

READY, QUEUED, SENDING = "ready", "queued", "sending"
STORED, WARNING, FAILED = InstanceState.STORED, InstanceState.STORED_WARNING, InstanceState.FAILED
NOT_SENT, UNKNOWN, SKIPPED = InstanceState.NOT_SENT, InstanceState.UNKNOWN, InstanceState.SKIPPED
UNREADABLE, NOT_DICOM = "unreadable", "not-dicom"
INDEX = "index"  # a DICOMDIR: the index of a CD, whose referenced files are listed under their patients

#: States that count as a problem ("failed only" filter, Retry failed).
PROBLEM_STATES = frozenset({FAILED, NOT_SENT, UNKNOWN, UNREADABLE})
#: States that Retry failed sends again (unreadable files cannot be sent).
RETRY_STATES = frozenset({FAILED, NOT_SENT, UNKNOWN})
#: States that end an instance's part in a job.
FINAL_STATES = frozenset({STORED, WARNING, FAILED, NOT_SENT, UNKNOWN, SKIPPED})

LABELS = {
    READY: "ready",
    QUEUED: "queued",
    SENDING: "sending…",
    STORED: "stored",
    WARNING: "stored with warning",
    FAILED: "failed",
    NOT_SENT: "not sent",
    UNKNOWN: "outcome unknown",
    SKIPPED: "skipped",
    UNREADABLE: "unreadable",
    NOT_DICOM: "not DICOM",
    INDEX: "DICOMDIR index",
}

COLOURS = {
    READY: "#6b7280",
    QUEUED: "#6b7280",
    SENDING: "#2563eb",
    STORED: "#15803d",
    WARNING: "#b45309",
    FAILED: "#b91c1c",
    NOT_SENT: "#b91c1c",
    UNKNOWN: "#7c3aed",
    SKIPPED: "#6b7280",
    UNREADABLE: "#b91c1c",
    NOT_DICOM: "#6b7280",
    INDEX: "#1d4ed8",
}


def never_reached(state: str, outcome: Mapping[str, Any] | None) -> bool:
    """True for a failure that never reached the PACS because of the PACS (down, association refused, judged broken).

    The engine records it ``failed`` with the reason and ``resumable`` (a resume sends it
    again); the window counts it apart, as not sent, never as progress. A refused SOP class
    is a plain failure (sending it again would not help).
    """
    return state == FAILED and bool(outcome and outcome.get("resumable"))


#: Order in which parent rows summarise their children's states.
SUMMARY_ORDER = (STORED, WARNING, FAILED, NOT_SENT, UNKNOWN, SENDING, QUEUED, SKIPPED, UNREADABLE, NOT_DICOM, INDEX, READY)


def colour(state: str) -> QColor:
    """The text colour for `state`."""
    return QColor(COLOURS.get(state, "#374151"))


@cache
def icon(state: str) -> QIcon:
    """A 16 px painted icon for `state` (check, cross, warning, arrow, dot)."""
    size = 32
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    c = colour(state)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(c)
    white = QPen(QColor("white"), 4.5, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
    if state == WARNING:
        path = QPainterPath()
        path.moveTo(16, 2)
        path.lineTo(30, 29)
        path.lineTo(2, 29)
        path.closeSubpath()
        p.drawPath(path)
        p.setPen(white)
        p.drawLine(QPointF(16, 11), QPointF(16, 19))
        p.drawPoint(QPointF(16, 24.5))
    elif state == INDEX:  # a page with lines: an index
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(c, 3.0))
        p.drawRoundedRect(QRectF(7, 3, 18, 26), 3, 3)
        for y in (11, 16, 21):
            p.drawLine(QPointF(11, y), QPointF(21, y))
    elif state in (READY, QUEUED, SKIPPED, NOT_DICOM):
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(c, 3.5))
        p.drawEllipse(QRectF(6, 6, 20, 20))
        if state in (SKIPPED, NOT_DICOM):
            p.drawLine(QPointF(10, 22), QPointF(22, 10))
    else:
        p.drawEllipse(QRectF(2, 2, 28, 28))
        p.setPen(white)
        if state == STORED:
            p.drawPolyline([QPointF(9, 16.5), QPointF(14, 21.5), QPointF(23, 11)])
        elif state in (FAILED, UNREADABLE):
            p.drawLine(QPointF(10.5, 10.5), QPointF(21.5, 21.5))
            p.drawLine(QPointF(21.5, 10.5), QPointF(10.5, 21.5))
        elif state == NOT_SENT:
            p.drawLine(QPointF(9, 16), QPointF(23, 16))
        elif state == SENDING:
            p.drawLine(QPointF(9, 16), QPointF(22, 16))
            p.drawPolyline([QPointF(17, 10.5), QPointF(22.5, 16), QPointF(17, 21.5)])
        elif state == UNKNOWN:
            p.drawLine(QPointF(16, 9), QPointF(16, 18))
            p.drawPoint(QPointF(16, 23.5))
    p.end()
    return QIcon(pm)
