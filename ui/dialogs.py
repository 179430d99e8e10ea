"""The main window's dialogs: export the failure report, confirm a send the plan blocks, a file's details, About."""

from __future__ import annotations

import html
import os
import time
from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.preflight import InstancePlan, summary_text

from . import states as st
from .models import LEAF_KINDS, Col, Node


def retry_text(failed: int, not_sent: int) -> str:
    """The *Retry* button's text: it counts failures as failures and unsent instances as unsent."""
    if failed and not_sent:
        return f"Retry failed ({failed}) and not sent ({not_sent})"
    if not_sent:
        return f"Send the not sent ({not_sent})"
    return f"Retry failed ({failed})" if failed else "Retry failed"


class ExportDialog(QDialog):
    """Asks where to write the failure report, in which format, which sends it covers and whether to leave patient data out.

    Args:
        default_dir: the folder offered.
        parent: the window.
        profile_name: the PACS the report is about.
        n_jobs: how many sends went to it in this session.
    """

    def __init__(self, default_dir: str, parent: QWidget | None = None, profile_name: str = "", n_jobs: int = 1):
        super().__init__(parent)
        self.setWindowTitle("Export failure report")
        self.fmt = QComboBox(self)
        for label, ext in (
            ("HTML page (opens in any browser)", "html"),
            ("CSV (spreadsheet)", "csv"),
            ("JSON (for scripts)", "json"),
        ):
            self.fmt.addItem(label, ext)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = QLineEdit(os.path.join(default_dir, f"courier-failures-{stamp}.html"), self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        self.fmt.currentIndexChanged.connect(self._on_fmt_changed)
        self.omit = QCheckBox("Leave patient data out (names, IDs, and folder names from file paths)", self)
        self.scope = QComboBox(self)
        self.scope.addItem(f"Every send to {profile_name or 'this PACS'} since DICOM Courier started ({n_jobs})", "all")
        self.scope.addItem("Only the last send", "last")
        self.scope.setEnabled(n_jobs > 1)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format", self.fmt)
        form.addRow("File", row)
        form.addRow("Covers", self.scope)
        form.addRow("", self.omit)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(
            QLabel(
                "Lists every failed, warned, not sent or skipped instance and every unreadable file with the reason,\n"
                "the PACS's comment, the hint, the transfer syntax tried and the fallback steps,\n"
                "plus the profile and the negotiation.",
                self,
            )
        )
        lay.addLayout(form)
        lay.addWidget(bb)
        self.resize(640, 200)

    def last_only(self) -> bool:
        """True when the report should cover only the last send."""
        return self.scope.currentData() == "last"

    def _on_fmt_changed(self, _i: int) -> None:
        base, _ext = os.path.splitext(self.path.text())
        self.path.setText(f"{base}.{self.fmt.currentData()}")

    def _browse(self) -> None:
        ext = self.fmt.currentData()
        path, _ = QFileDialog.getSaveFileName(self, "Export failure report", self.path.text(), f"{ext.upper()} (*.{ext})")
        if path:
            self.path.setText(path)


def confirmation_box(
    parent: QWidget, plans: Sequence[InstancePlan], profile_name: str
) -> tuple[QMessageBox, QAbstractButton, QAbstractButton]:
    """A (not yet shown) question before a send whose plan blocks instances or converts them lossily.

    Returns:
        ``(box, "Send anyway" button, Cancel button)``; Cancel is the default.
    """
    reasons: dict[str, int] = {}
    for pl in plans:
        if pl.plan == "blocked" or pl.lossy:
            reasons[pl.message] = reasons.get(pl.message, 0) + 1
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Send with blocked or lossy instances?")
    box.setText(f"<b>Plan</b> for {len(plans)} instance(s) to {html.escape(profile_name)}: {html.escape(summary_text(plans))}.")
    box.setInformativeText(
        "\n".join(f"• {n} × {msg}" for msg, n in sorted(reasons.items(), key=lambda x: -x[1])[:6])
        + "\n\nBlocked instances will be reported as not sent. Send the rest?"
    )
    send = box.addButton("Send anyway", QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    return box, send, cancel


def details_box(parent: QWidget, index: QModelIndex) -> QMessageBox | None:
    """Everything known about the file at `index` of the tree model (the reason, status, conversion, notes).

    Returns:
        The (not yet shown) box, or None when `index` is not a file.
    """
    if not index.isValid():
        return None
    node: Node = index.internalPointer()
    if node.kind not in LEAF_KINDS or node.inst is None:
        return None
    box = QMessageBox(parent)
    box.setWindowTitle(os.path.basename(node.inst.path))
    box.setIcon(QMessageBox.Icon.Critical if node.state in st.PROBLEM_STATES else QMessageBox.Icon.Information)
    box.setText(f"<b>{st.LABELS.get(node.state, node.state)}</b>")
    box.setInformativeText(index.model().index(index.row(), Col.ITEM, index.parent()).data(Qt.ItemDataRole.ToolTipRole))
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return box


def show_about(parent: QWidget) -> None:
    """Name, version, purpose and the licences of the bundled libraries (modal)."""
    from core.appinfo import app_info, licences

    escape = html.escape
    info = app_info()
    rows = "".join(
        f"<tr><td>{escape(str(x.get('name', '')))}</td><td>{escape(str(x.get('version', '')))}</td>"
        f"<td>{escape(str(x.get('license', '')))}</td></tr>"
        for x in licences()
    )
    QMessageBox.about(
        parent,
        "About DICOM Courier",
        f"<h3>{escape(info['name'])} {escape(info['version'])}</h3><p>{escape(info['description'])}</p>"
        "<p>MIT licence. The standalone app bundles the libraries below under their own "
        "licences (pylibjpeg-libjpeg is GPL-3.0).</p>"
        f"<table cellspacing='4'><tr><th align='left'>Library</th><th align='left'>Version</th>"
        f"<th align='left'>Licence</th></tr>{rows}</table>",
    )


class QuestionBox(QMessageBox):
    """A non-modal question whose answers are named: open it, connect ``finished``, read :meth:`answer`.

    Args:
        parent: the window it belongs to.
        title / text / informative: what is asked (the text may be rich text).
        choices: ``(key, button label, role)`` in order; the first is the default unless `default` says.
        default: the key of the default button.

    Attributes:
        choices: ``key -> button`` (tests click them).
    """

    def __init__(
        self,
        parent: QWidget,
        title: str,
        text: str,
        informative: str,
        choices: Sequence[tuple[str, str, QMessageBox.ButtonRole]],
        default: str | None = None,
        icon: QMessageBox.Icon = QMessageBox.Icon.Question,
    ):
        super().__init__(parent)
        self.setIcon(icon)
        self.setWindowTitle(title)
        self.setText(text)
        self.setInformativeText(informative)
        self.choices: dict[str, QAbstractButton] = {}
        for key, label, role in choices:
            self.choices[key] = self.addButton(label, role)
        self.setDefaultButton(self.choices[default or choices[0][0]])  # type: ignore[arg-type]

    def answer(self) -> str:
        """The key of the button clicked ("" when the box was closed another way)."""
        clicked = self.clickedButton()
        return next((k for k, b in self.choices.items() if b is clicked), "")
