"""The PACS status panel under the header: what the last connection test or probe found, in plain words.

A row of its own that wraps long messages (never the header, whose buttons must stay on
screen), with a *Cancel test* button and the seconds left while a test runs. The full
core message (for administrators) is the tooltip.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from core.probe import AcceptanceMap
from core.profiles import Profile

from .controllers.echo import echo_line, format_echo
from .probe_dialog import map_summary
from .wording import GLOSSARY, plain_reason

BLUE, GREEN, RED, GREY = "color:#1d4ed8;", "color:#15803d;", "color:#b91c1c;", "color:#4b5563;"


class PacsStatusPanel(QFrame):
    """One wrapped message about the chosen PACS: a test or probe under way (blue), its result (green or red).

    Hidden until there is something to say.

    Attributes:
        label: the message (its tooltip holds the details: the accepted context and peer max PDU,
            the acceptance map's summary, or the full error).
        cancel_button: stops waiting for a running test (shown only then).
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("pacsStatus")
        self._target = "the PACS"
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 0, 2, 0)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.cancel_button = QPushButton("Cancel test", self)
        self.cancel_button.setToolTip("Stop waiting for the PACS's answer")
        self.cancel_button.hide()
        self.close_button = QPushButton("×", self)
        self.close_button.setFlat(True)
        self.close_button.setFixedWidth(24)
        self.close_button.setToolTip("Hide this message")
        self.close_button.clicked.connect(self.clear)
        row.addWidget(self.label, 1)
        row.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def clear(self) -> None:
        """Hide the message."""
        self.label.clear()
        self.cancel_button.hide()
        self.hide()

    def _show(self, style: str, text: str, tip: str | None = None) -> None:
        self.label.setStyleSheet(style)
        self.label.setText(text)
        if tip is not None:
            self.label.setToolTip(tip)
        self.show()

    def show_echo_started(self, p: Profile, seconds_left: int = 0) -> None:
        """A C-ECHO to `p`'s PACS is under way; at most `seconds_left` seconds to go."""
        self._target = f"{p.remote_ae_title}@{p.remote_host}:{p.remote_port}"
        self.cancel_button.show()
        self._show(BLUE, self._testing_text(seconds_left), GLOSSARY["c_echo"])

    def _testing_text(self, seconds_left: int) -> str:
        left = f" - at most {seconds_left} s left" if seconds_left > 0 else ""
        return f"Testing the connection to {self._target} (C-ECHO){left}…"

    def show_echo_tick(self, seconds_left: int) -> None:
        """The running test has at most `seconds_left` seconds to go."""
        if self.cancel_button.isVisible() or self.isVisible():
            self.label.setText(self._testing_text(seconds_left))

    def show_echo_cancelled(self) -> None:
        """The user stopped waiting for the test."""
        self.cancel_button.hide()
        self._show(GREY, "Connection test cancelled: no answer had come yet.", "")

    def show_echo_result(self, result: dict[str, Any] | None, error: str | None) -> None:
        """A C-ECHO ended: :func:`core.echo.echo`'s result, or the error (in plain words, the details as tooltip)."""
        self.cancel_button.hide()
        if error is not None:
            self._show(RED, f"✗ {plain_reason(error).text()}", error)
        elif result is not None:
            good = result.get("status") != "failure"
            self._show(GREEN if good else RED, echo_line(result), format_echo(result))

    def show_probe_started(self, p: Profile, n_classes: int) -> None:
        """A probe of `n_classes` SOP classes is under way."""
        self.cancel_button.hide()
        self._show(
            BLUE,
            f"Probing {p.remote_ae_title}@{p.remote_host}:{p.remote_port}: {n_classes} SOP class(es) x every transfer syntax…",
            GLOSSARY["presentation_context"],
        )

    def show_probe_progress(self, done: int, total: int) -> None:
        """`done` of the probe's `total` associations are negotiated."""
        self._show(BLUE, f"Probing… association {done} of {total}")

    def show_probe_result(self, amap: AcceptanceMap | None, error: str | None) -> None:
        """A probe ended: its acceptance map (saved with the profile), or the error."""
        if error is not None or amap is None:
            self._show(RED, f"✗ Probe failed: {plain_reason(error or '').text()}", error or "")
            return
        accepted = sum(1 for e in amap.sop_classes.values() if e.get("accepted"))
        self._show(
            GREEN if accepted else RED,
            f"{'✓' if accepted else '✗'} Probe: {accepted} of {len(amap.sop_classes)} SOP "
            "class(es) accepted - map saved with the profile",
            html.unescape(map_summary(amap)),
        )
