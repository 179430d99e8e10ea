"""The diagnostics pane: per job and per association, what was proposed, accepted and rejected, and why.

The content lives in a :class:`QStandardItemModel` (two columns: what, details)
fed from the engine's association events and from *Test connection* results;
the view is a plain tree. Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QBrush, QFont, QIcon, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QLabel, QPushButton, QTreeView, QVBoxLayout, QWidget

from core import events as ev
from core.convert import syntax_label

from . import states as st
from .controllers.echo import echo_message
from .wording import GLOSSARY


def _item(text: str, tip: str = "") -> QStandardItem:
    it = QStandardItem(text)
    it.setEditable(False)
    it.setToolTip(tip or text)
    return it


def _by_class(rows: Iterable[dict[str, Any]], with_reason: bool = False) -> list[tuple[str, str, str]]:
    """Group context rows by SOP class: ``[(class name, syntaxes, reason)]``."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        name = r.get("abstract_syntax_name") or r.get("abstract_syntax") or "?"
        reason = str(r.get("reason", "")) if with_reason else ""
        groups.setdefault((name, reason), [])
        label = syntax_label(r.get("transfer_syntax"))
        if label not in groups[(name, reason)]:
            groups[(name, reason)].append(label)
    return [(name, ", ".join(sy), reason) for (name, reason), sy in sorted(groups.items())]


def _pdu(value: Any) -> str:
    if value is None:
        return "?"
    return "unlimited" if int(value) == 0 else f"{int(value)} bytes"


def negotiation_summary(record: dict[str, Any]) -> str:
    """One line: strategy, accepted/proposed counts, peer max PDU and implementation."""
    acc, prop = len(record.get("accepted", [])), len(record.get("proposed", []))
    parts = [f"strategy {record.get('strategy') or '-'}", f"{acc} of {prop} contexts accepted"]
    if record.get("peer_max_pdu") is not None:
        parts.append(f"peer max PDU {_pdu(record['peer_max_pdu'])}")
    impl = " ".join(x for x in (record.get("peer_implementation_version_name"), record.get("peer_implementation_class_uid")) if x)
    if impl:
        parts.append(f"implementation {impl}")
    return ", ".join(parts)


class DiagnosticsModel(QStandardItemModel):
    """Jobs › associations › contexts, built from engine events."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.setHorizontalHeaderLabels(["What", "Details"])
        self._job: QStandardItem | None = None
        self._assoc: QStandardItem | None = None
        self._assoc_by_index: dict[int, QStandardItem] = {}
        self._assoc_n = 0
        self._last_strategy: str | None = None
        self._rejected: list[QStandardItem] = []  # this job's rejected-context rows (red until the job succeeds)
        self._n_rejected = 0
        self._bold = QFont()
        self._bold.setBold(True)

    def _append(
        self, parent: QStandardItem | None, what: str, details: str = "", state: str | None = None, tip: str = ""
    ) -> QStandardItem:
        a, b = _item(what, tip or f"{what}: {details}" if details else what), _item(details, tip or details)
        if state is not None:
            a.setIcon(st.icon(state))
            if state in (st.FAILED, st.WARNING, st.NOT_SENT):
                b.setForeground(QBrush(st.colour(state)))
        (parent or self.invisibleRootItem()).appendRow([a, b])
        return a

    # -- jobs ------------------------------------------------------------------------------------------

    def begin_job(self, title: str, details: str) -> QStandardItem:
        """Start a new job section; later association events go below it."""
        self._job = self._append(None, title, details)
        self._job.setFont(self._bold)
        self._assoc = None
        self._assoc_by_index = {}
        self._assoc_n = 0
        self._last_strategy = None
        self._rejected = []
        self._n_rejected = 0
        return self._job

    def end_job(self, event: ev.JobFinished) -> None:
        """Add the job's summary line."""
        s = event.summary or {}
        if event.error and not s:
            self._append(self._job, "Job failed", event.error, st.FAILED)
            return
        text = (
            f"{s.get('success', 0)} stored ({s.get('converted', 0)} converted), {s.get('warning', 0)} with "
            f"warnings, {s.get('failure', 0) - s.get('not_sent', 0)} failed, {s.get('not_sent', 0)} not sent, "
            f"{s.get('skipped', 0)} skipped"
        )
        state = st.FAILED if s.get("failure") else st.STORED
        if event.cancelled:
            text += " - cancelled"
            state = st.WARNING
        self._append(self._job, "Finished", text + (f" - {event.error}" if event.error else ""), state)
        if self._n_rejected and not s.get("failure") and not event.cancelled and s.get("total"):
            # a successful send whose PACS declined some combinations: normal, not an error
            self._neutralise_rejections()
            self._append(
                self._job,
                "Note",
                f"the PACS declined {self._n_rejected} combination(s) of SOP class and transfer syntax; "
                "all instances went through another",
                tip=GLOSSARY["presentation_context"],
            )

    def _neutralise_rejections(self) -> None:
        for item in self._rejected:
            item.setIcon(QIcon())
            row_parent = item.parent() or self.invisibleRootItem()
            other = row_parent.child(item.row(), 1)
            if other is not None:
                other.setForeground(QBrush())

    # -- associations ----------------------------------------------------------------------------------

    def association_requested(self, event: ev.AssociationRequested) -> None:
        """Note a fallback when the strategy changes between requests."""
        if self._last_strategy is not None and event.strategy != self._last_strategy:
            self._append(
                self._job,
                "Fallback",
                f"{self._last_strategy} → {event.strategy} (attempt {event.attempt}): instances without a "
                "usable context are retried with a more conservative strategy",
                st.WARNING,
            )
        self._last_strategy = event.strategy

    def association_negotiated(
        self, record: dict[str, Any], parent: QStandardItem | None = None, title: str | None = None
    ) -> QStandardItem:
        """Add an established association with its contexts."""
        self._assoc_n += 1
        node = self._append(
            parent or self._job,
            title or f"Association {self._assoc_n}",
            f"established - {negotiation_summary(record)}",
            st.STORED,
        )
        self._fill(node, record)
        self._assoc = node
        if isinstance(record.get("index"), int) and parent is None:
            self._assoc_by_index[record["index"]] = node
        return node

    def association_failed(
        self, message: str, record: dict[str, Any], parent: QStandardItem | None = None, title: str | None = None
    ) -> QStandardItem:
        """Add a failed association attempt with its reason."""
        self._assoc_n += 1
        node = self._append(
            parent or self._job,
            title or f"Association {self._assoc_n}",
            f"failed (strategy {record.get('strategy') or '-'}): {message}",
            st.FAILED,
            tip=message,
        )
        self._fill(node, record)
        self._assoc = None
        return node

    def association_released(self, event: ev.AssociationReleased) -> None:
        """Record how an association ended, under that association.

        With parallel associations several are open at once: the event's ``index`` (the
        negotiation record's) names the one that ended; without it, the latest one.
        """
        node = self._assoc_by_index.get(event.index) if event.index is not None and self._assoc_by_index else self._assoc
        if node is None:
            return
        self._append(
            node, "Ended", f"{event.how} after {event.stored} stored", st.STORED if event.how == "released" else st.WARNING
        )

    def _fill(self, node: QStandardItem, record: dict[str, Any]) -> None:
        if record.get("peer"):
            self._append(node, "Peer", str(record["peer"]))
        if record.get("peer_max_pdu") is not None:
            self._append(
                node,
                "Peer max PDU",
                _pdu(record["peer_max_pdu"]) + f" (ours {_pdu(record.get('our_max_pdu'))})",
                tip=GLOSSARY["max_pdu"],
            )
        if record.get("peer_implementation_class_uid"):
            self._append(
                node,
                "Peer implementation",
                f"{record.get('peer_implementation_version_name') or '-'} ({record['peer_implementation_class_uid']})",
            )
        acc = record.get("accepted", [])
        rej = record.get("rejected", [])
        prop = record.get("proposed", [])
        tip = GLOSSARY["presentation_context"]
        a = self._append(node, f"Accepted ({len(acc)})", "SOP class: transfer syntax", st.STORED if acc else None, tip=tip)
        a.setData(len(_by_class(acc)) <= 8, Qt.ItemDataRole.UserRole + 1)
        for name, syntaxes, _ in _by_class(acc):
            self._append(a, name, syntaxes)
        # a declined combination is a problem only for a SOP class with no accepted one on this association
        usable = {r.get("abstract_syntax_name") or r.get("abstract_syntax") for r in acc}
        groups = _by_class(rej, with_reason=True)
        blocked = any(name not in usable for name, _, _ in groups)
        r = self._append(node, f"Rejected ({len(rej)})", "SOP class: reason: transfer syntaxes", tip=tip)
        r.setData(blocked, Qt.ItemDataRole.UserRole + 1)  # the pane unfolds only a list with a problem in it
        if blocked:
            r.setIcon(st.icon(st.FAILED))
            self._rejected.append(r)
        for name, syntaxes, reason in groups:
            text = f"{reason}: {syntaxes}" if reason else syntaxes
            if name in usable:
                self._append(r, name, f"{text} (another one was accepted)")
            else:
                self._rejected.append(self._append(r, name, text, st.FAILED))
        self._n_rejected += len(rej) if acc else 0
        p = self._append(node, f"Proposed ({len(prop)})", "SOP class: transfer syntaxes in order of preference", tip=tip)
        for name, syntaxes, _ in _by_class(prop):
            self._append(p, name, syntaxes)
        if record.get("outcome") and not acc:
            self._append(node, "Why", str(record["outcome"]), st.FAILED)

    # -- test connection ------------------------------------------------------------------------------

    def echo_result(self, profile: str, result: dict[str, Any] | None, error: str | None) -> QStandardItem:
        """Add a *Test connection* entry (success with timings, or the analysed error)."""
        when = time.strftime("%H:%M:%S")
        if error is not None:
            top = self._append(None, f"Test connection {when}", f"{profile}: failed - {error}", st.FAILED, tip=error)
            top.setFont(self._bold)
            return top
        assert result is not None
        ok = result.get("status") != "failure"
        top = self._append(
            None,
            f"Test connection {when}",
            f"{profile}: {echo_message(result)}, round trip {result.get('rtt_ms', 0):.1f} "
            f"ms, association {result.get('associate_ms', 0):.1f} ms",
            st.STORED if ok else st.FAILED,
        )
        top.setFont(self._bold)
        self._fill(top, result.get("negotiation") or {})
        info = result.get("tls") or {}
        if info.get("tls"):
            self._append(
                top, "TLS", f"{info.get('protocol', '?')}, {info.get('cipher', '?')} ({info.get('cipher_bits', '?')} bits)"
            )
            if info.get("peer_subject"):
                self._append(
                    top,
                    "Peer certificate",
                    f"{info['peer_subject']}, issued by {info.get('peer_issuer', '?')}, valid until "
                    f"{info.get('peer_not_after', '?')} ({info.get('days_left', '?')} days left)",
                    st.WARNING if info.get("expires_soon") else None,
                )
        return top


class DiagnosticsPane(QWidget):
    """The view of a :class:`DiagnosticsModel` with a title and a clear button."""

    def __init__(self, model: DiagnosticsModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.view = QTreeView(self)
        self.view.setModel(model)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.header().setStretchLastSection(True)
        self.view.setColumnWidth(0, 300)
        clear = QPushButton("Clear", self)
        clear.setToolTip("Remove all diagnostics entries")
        clear.clicked.connect(lambda: model.removeRows(0, model.rowCount()))
        expand = QPushButton("Expand all", self)
        expand.clicked.connect(self.view.expandAll)
        top = QHBoxLayout()
        top.addWidget(QLabel("<b>Diagnostics</b> - associations, contexts and fallback", self))
        top.addStretch(1)
        top.addWidget(expand)
        top.addWidget(clear)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.view)
        model.rowsInserted.connect(self._on_model_rows_inserted)

    def _on_model_rows_inserted(self, parent: Any, first: int, last: int) -> None:
        # keep the newest job, its associations and their accepted/rejected lists open
        if not parent.isValid():
            idx = self.model.index(last, 0, parent)
            self.view.scrollTo(idx, QAbstractItemView.ScrollHint.PositionAtTop)
            return
        text = str(parent.data(Qt.ItemDataRole.DisplayRole) or "")
        if text.startswith(("Accepted", "Rejected")) and not parent.data(Qt.ItemDataRole.UserRole + 1):
            return  # a long accepted list, or rejections that harmed nothing, stay folded
        if not parent.parent().isValid() or text.startswith(("Association", "Test connection", "Accepted", "Rejected")):
            self.view.expand(parent)
