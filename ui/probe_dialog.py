"""The acceptance map of a probe as a grid: SOP classes x transfer syntaxes, accepted or rejected and why.

:class:`AcceptanceGridModel` is a table model over a :class:`core.probe.AcceptanceMap`
(rows: SOP classes, columns: transfer syntaxes; the rejection reason is the cell's
tooltip). :class:`ProbeDialog` shows it with the peer's details and exports the
map as JSON or CSV (``AcceptanceMap.write_json`` / ``write_csv``).
"""

from __future__ import annotations

import logging
import os
from enum import IntEnum
from typing import Any

from pydicom.uid import UID
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.convert import syntax_label
from core.probe import AcceptanceMap

LOGGER = logging.getLogger(__name__)

_ROOT = QModelIndex()
ACCEPTED, REJECTED, UNKNOWN = "accepted", "rejected", "not probed"
_BG = {ACCEPTED: QColor("#dcfce7"), REJECTED: QColor("#fee2e2"), UNKNOWN: QColor("#f3f4f6")}
_FG = {ACCEPTED: QColor("#15803d"), REJECTED: QColor("#b91c1c"), UNKNOWN: QColor("#6b7280")}


class GridRole(IntEnum):
    """Custom data roles of the grid."""

    RESULT = Qt.ItemDataRole.UserRole + 1  # "accepted", "rejected" or "not probed"
    REASON = Qt.ItemDataRole.UserRole + 2  # the rejection reason ("" when accepted)
    UID = Qt.ItemDataRole.UserRole + 3  # (SOP Class UID, Transfer Syntax UID)


def _class_name(uid: str) -> str:
    name = UID(uid).name
    return name if name and name != uid else uid


class AcceptanceGridModel(QAbstractTableModel):
    """SOP classes (rows) x transfer syntaxes (columns) of an acceptance map.

    Classes that accept something come first; columns are the probed syntaxes in
    probe order, syntaxes nobody accepted last.
    """

    def __init__(self, amap: AcceptanceMap | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.amap = AcceptanceMap()
        self.classes: list[str] = []
        self.syntaxes: list[str] = []
        if amap is not None:
            self.set_map(amap)

    def set_map(self, amap: AcceptanceMap) -> None:
        """Show `amap`."""
        self.beginResetModel()
        self.amap = amap
        entries = amap.sop_classes
        self.classes = sorted(entries, key=lambda u: (not entries[u].get("accepted"), _class_name(u)))
        used = {t for e in entries.values() for t in e.get("accepted", [])}
        order = amap.syntaxes
        self.syntaxes = [t for t in order if t in used] + [t for t in order if t not in used]
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.classes)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.syntaxes)

    def result(self, row: int, col: int) -> tuple[str, str]:
        """``(result, reason)`` of one cell."""
        answer = self.amap.answer(self.classes[row], self.syntaxes[col])
        if answer is None:
            return UNKNOWN, ""
        if answer == "accepted":
            return ACCEPTED, ""
        return REJECTED, answer

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        result, reason = self.result(row, col)
        if role == Qt.ItemDataRole.DisplayRole:
            return {ACCEPTED: "✓", REJECTED: "✗", UNKNOWN: "·"}[result]
        if role == Qt.ItemDataRole.ToolTipRole:
            head = f"{_class_name(self.classes[row])}\n{syntax_label(self.syntaxes[col])} ({self.syntaxes[col]})\n"
            return head + ("accepted" if result == ACCEPTED else f"rejected: {reason}" if result == REJECTED else "not probed")
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(_BG[result])
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(_FG[result])
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == GridRole.RESULT:
            return result
        if role == GridRole.REASON:
            return reason
        if role == GridRole.UID:
            return self.classes[row], self.syntaxes[col]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.syntaxes):
            uid = self.syntaxes[section]
            if role == Qt.ItemDataRole.DisplayRole:
                return syntax_label(uid)
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"{UID(uid).name} ({uid})"
        if orientation == Qt.Orientation.Vertical and 0 <= section < len(self.classes):
            uid = self.classes[section]
            if role == Qt.ItemDataRole.DisplayRole:
                return _class_name(uid)
            if role == Qt.ItemDataRole.ToolTipRole:
                entry = self.amap.sop_classes.get(uid, {})
                return (
                    f"{_class_name(uid)} ({uid})\n{len(entry.get('accepted', []))} accepted, "
                    f"{len(entry.get('rejected', {}))} rejected"
                )
        return None


def map_summary(amap: AcceptanceMap) -> str:
    """One line: peer, date, classes accepted, associations."""
    peer = amap.peer
    accepted = sum(1 for e in amap.sop_classes.values() if e.get("accepted"))
    who = f"{peer.get('called_ae', '?')}@{peer.get('host', '?')}:{peer.get('port', '?')}"
    impl = peer.get("implementation_version_name") or peer.get("implementation_class_uid") or ""
    text = (
        f"{who}{' (' + impl + ')' if impl else ''} - probed {peer.get('probed_at', '?')}: {accepted} of "
        f"{len(amap.sop_classes)} SOP classes accepted, {len(peer.get('syntaxes', []))} transfer syntaxes "
        f"proposed over {peer.get('associations', '?')} association(s)"
    )
    if peer.get("cancelled"):
        text += " - cancelled, incomplete"
    return text


class ProbeDialog(QDialog):
    """Shows an acceptance map as a grid and exports it (non-modal)."""

    def __init__(self, amap: AcceptanceMap, profile_name: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"What {profile_name or 'the PACS'} accepts")
        self.amap = amap
        self.model = AcceptanceGridModel(amap, self)
        self.view = QTableView(self)
        self.view.setModel(self.model)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.summary = QLabel(map_summary(amap), self)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        legend = QLabel("✓ accepted · ✗ rejected (hover a cell for the reason) · · not probed", self)
        legend.setStyleSheet("color:#4b5563;")
        errors = QLabel("\n".join(f"⚠ {e}" for e in amap.errors), self)
        errors.setStyleSheet("color:#b45309;")
        errors.setVisible(bool(amap.errors))
        self.json_button = QPushButton("Export JSON…", self)
        self.csv_button = QPushButton("Export CSV…", self)
        close = QPushButton("Close", self)
        self.json_button.clicked.connect(lambda: self._choose("json"))
        self.csv_button.clicked.connect(lambda: self._choose("csv"))
        close.clicked.connect(self.close)
        row = QHBoxLayout()
        row.addWidget(legend, 1)
        row.addWidget(self.json_button)
        row.addWidget(self.csv_button)
        row.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addWidget(errors)
        lay.addWidget(self.view, 1)
        lay.addLayout(row)
        self.resize(1100, 560)

    def export(self, path: str) -> str:
        """Write the map to `path` (JSON or CSV by the extension); returns "" or the error."""
        try:
            if path.lower().endswith(".csv"):
                self.amap.write_csv(path)
            else:
                self.amap.write_json(path)
        except OSError as exc:
            LOGGER.error("Cannot write the acceptance map %s: %s", path, exc.strerror or exc)
            return str(exc.strerror or exc)
        LOGGER.info("Acceptance map written to %s", path)
        return ""

    def _choose(self, ext: str) -> None:
        default = os.path.join(os.path.expanduser("~"), f"acceptance-map.{ext}")
        path, _ = QFileDialog.getSaveFileName(self, "Export the acceptance map", default, f"{ext.upper()} (*.{ext})")
        if path:
            error = self.export(path)
            if error:
                QMessageBox.warning(self, "Export", f"Cannot write {path}: {error}")
