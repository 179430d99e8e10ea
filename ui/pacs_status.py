"""The PACS status in the window's header: what the last connection test or probe found."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from core.probe import AcceptanceMap
from core.profiles import Profile

from .controllers.echo import echo_line, format_echo
from .probe_dialog import map_summary

BLUE, GREEN, RED = "color:#2563eb;", "color:#15803d;", "color:#b91c1c;"


class PacsStatusLabel(QLabel):
    """One line beside the PACS selector: a test or probe under way (blue), its result (green or red).

    The tooltip holds the details (the accepted context and peer max PDU, the acceptance map's summary).
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def _show(self, style: str, text: str, tip: str | None = None) -> None:
        self.setStyleSheet(style)
        self.setText(text)
        if tip is not None:
            self.setToolTip(tip)

    def show_echo_started(self, p: Profile) -> None:
        """A C-ECHO to `p`'s PACS is under way."""
        self._show(BLUE, f"Testing {p.remote_ae_title}@{p.remote_host}:{p.remote_port}…")

    def show_echo_result(self, result: dict[str, Any] | None, error: str | None) -> None:
        """A C-ECHO ended: :func:`core.echo.echo`'s result, or the error."""
        if error is not None:
            self._show(RED, f"✗ {error}", error)
        elif result is not None:
            good = result.get("status") != "failure"
            self._show(GREEN if good else RED, echo_line(result), format_echo(result))

    def show_probe_started(self, p: Profile, n_classes: int) -> None:
        """A probe of `n_classes` SOP classes is under way."""
        self._show(
            BLUE,
            f"Probing {p.remote_ae_title}@{p.remote_host}:{p.remote_port}: {n_classes} SOP class(es) x every transfer syntax…",
        )

    def show_probe_progress(self, done: int, total: int) -> None:
        """`done` of the probe's `total` associations are negotiated."""
        self.setText(f"Probing… association {done} of {total}")

    def show_probe_result(self, amap: AcceptanceMap | None, error: str | None) -> None:
        """A probe ended: its acceptance map (saved with the profile), or the error."""
        if error is not None or amap is None:
            self._show(RED, f"✗ Probe failed: {error}", error or "")
            return
        accepted = sum(1 for e in amap.sop_classes.values() if e.get("accepted"))
        self._show(
            GREEN if accepted else RED,
            f"{'✓' if accepted else '✗'} Probe: {accepted} of {len(amap.sop_classes)} SOP "
            "class(es) accepted - map saved with the profile",
            map_summary(amap),
        )
