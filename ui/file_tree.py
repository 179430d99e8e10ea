"""The file tree view: the instance model (or its failed-only filter), its columns and their menu."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QMouseEvent, QPainter
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTreeView, QWidget

from .models import HEADERS, Col, InstanceTreeModel, Node, ProblemFilterProxy
from .qtcompat import emit
from .workers import GuiGate

#: Column widths (pixels) before the user changes them.
DEFAULT_WIDTHS = {
    Col.ITEM: 235,
    Col.PATIENT_ID: 75,
    Col.DATE: 80,
    Col.MODALITY: 50,
    Col.COUNT: 40,
    Col.SOP_CLASS: 145,
    Col.SYNTAX: 110,
    Col.SIZE: 70,
    Col.STATE: 130,
    Col.STATUS: 110,
    Col.SENT_AS: 215,
    Col.PLAN: 260,
    Col.VERIFIED: 80,
    Col.DETAILS: 320,
}
#: The reason comes right after the state (on screen; the model keeps its column order), so it is
#: never past the right edge, whatever columns are shown.
REASON_AFTER = Col.STATE
#: Columns hidden until they have something to show (a plan, an arrival check).
DEFAULT_HIDDEN = frozenset({Col.PLAN, Col.VERIFIED})


class FileTreeView(QTreeView):
    """The file tree; when empty it says what to do.

    It shows the tree model directly, and its filter proxy only while "failed only" is on
    (every proxied cell costs extra Python calls while painting, see :meth:`set_failed_only`).
    Column widths and hidden columns survive the switch and are saved with the window's layout
    (:attr:`column_widths`, :attr:`hidden_columns`).

    Args:
        tree_model: the instance tree.
        proxy: the failed-only filter over `tree_model`.
        gate: held while painting, so a running send steps aside (see :class:`ui.workers.GuiGate`).
        parent: the owning widget.

    A double-click shows a file's details and leaves the selection as it was before the click,
    so it never changes what *Send* sends.

    Signals:
        selection_changed(): the selected rows changed (also when the shown model changes).
        current_changed(QModelIndex): the current row changed; its index in the tree model.
        details_requested(QModelIndex): a file was double-clicked, or *Details…* chosen from its
            context menu; its index in the tree model.
    """

    selection_changed = Signal()
    current_changed = Signal(QModelIndex)
    details_requested = Signal(QModelIndex)

    HINT = "Drop DICOM files, folders or a DICOMDIR here\n(or use Add files… / Add folder…)"
    PACS_HINT = "No PACS yet? Choose “Local test PACS” and press Send:\nthe built-in test PACS starts by itself."

    def __init__(self, tree_model: InstanceTreeModel, proxy: ProblemFilterProxy, gate: GuiGate, parent: QWidget | None = None):
        super().__init__(parent)
        self.tree_model = tree_model
        self.proxy = proxy
        self.gate = gate
        self.column_widths: dict[Col, int] = dict(DEFAULT_WIDTHS)
        self.hidden_columns: set[Col] = set(DEFAULT_HIDDEN)
        self.setModel(tree_model)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setAllColumnsShowFocus(True)
        self.setIconSize(QSize(16, 16))
        hdr = self.header()
        hdr.setStretchLastSection(True)
        hdr.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        hdr.customContextMenuRequested.connect(self._on_header_menu_requested)
        self.apply_columns()
        hdr.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._on_view_context_menu_requested)
        self.doubleClicked.connect(self._on_view_double_clicked)
        self._menu_actions: Sequence[QAction | None] = ()
        self._selection_before_click: QItemSelection | None = None
        #: Show the "No PACS yet?" hint in the empty list (only while no PACS profile of one's own exists).
        self.show_pacs_hint = True
        self.setToolTip("")

    # -- painting --------------------------------------------------------------------------------------

    def dataChanged(
        self,
        topLeft: QModelIndex | QPersistentModelIndex,
        bottomRight: QModelIndex | QPersistentModelIndex,
        roles: Any = (),
    ) -> None:
        # A changed range repaints the whole viewport; while a send runs most changes are to rows
        # that are scrolled out of view or folded away, and each repaint calls into Python per cell.
        if topLeft.isValid() and bottomRight.isValid() and topLeft.parent() == bottomRight.parent():
            first, last = self.visualRect(topLeft), self.visualRect(bottomRight)
            if first.isEmpty() and last.isEmpty() and not self.isExpanded(topLeft.parent()) and topLeft.parent().isValid():
                return  # folded away
            if not last.isEmpty() and last.bottom() < 0:
                return  # above the viewport
            if not first.isEmpty() and first.top() > self.viewport().height():
                return  # below the viewport
            if topLeft != bottomRight and not first.isEmpty() and not last.isEmpty():
                # QAbstractItemView repaints the whole viewport for any range; repaint only the
                # changed cells (rows and columns), so a paint during a send enters Python for
                # far fewer cells (there are no editors to refresh)
                self.viewport().update(first.united(last))
                return
        super().dataChanged(topLeft, bottomRight, roles)

    def paintEvent(self, event: Any) -> None:
        with self.gate:
            super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0:
            p = QPainter(self.viewport())
            p.setPen(self.palette().placeholderText().color())
            f = p.font()
            f.setPointSizeF(f.pointSizeF() * 1.25)
            p.setFont(f)
            p.drawText(self.viewport().rect(), int(Qt.AlignmentFlag.AlignCenter), self.hint_text())
            p.end()

    def hint_text(self) -> str:
        """What the empty list says."""
        return self.HINT + ("\n\n" + self.PACS_HINT if self.show_pacs_hint else "")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        # remembered so that a double-click (details) can put the selection back
        self._selection_before_click = QItemSelection(self.selectionModel().selection())
        super().mousePressEvent(event)

    # -- model and selection ---------------------------------------------------------------------------

    def setModel(self, model: QAbstractItemModel | None) -> None:
        super().setModel(model)
        self.selectionModel().selectionChanged.connect(self.selection_changed)
        self.selectionModel().currentChanged.connect(self._on_selection_model_current_changed)

    @Slot(QModelIndex, QModelIndex)
    def _on_selection_model_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        emit(self.current_changed, self.to_source(current))

    def set_menu_actions(self, actions: Sequence[QAction | None]) -> None:
        """The context menu's actions after *Details…* (None: a separator)."""
        self._menu_actions = tuple(actions)

    @Slot(object)
    def _on_view_context_menu_requested(self, pos: Any) -> None:
        menu = QMenu(self)
        index = self.indexAt(pos)
        if index.isValid():
            details = menu.addAction("Details…")
            details.triggered.connect(lambda: emit(self.details_requested, self.to_source(index)))
            menu.addSeparator()
        for a in self._menu_actions:
            menu.addSeparator() if a is None else menu.addAction(a)
        menu.exec(self.viewport().mapToGlobal(pos))

    @Slot(QModelIndex)
    def _on_view_double_clicked(self, index: QModelIndex) -> None:
        before = self._selection_before_click
        if before is not None:  # a double-click looks at a file; it does not choose what to send
            self.selectionModel().select(before, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        emit(self.details_requested, self.to_source(index))

    def set_failed_only(self, on: bool) -> bool:
        """Show only problem rows (and their parents); False when that was already so.

        The filter proxy sits between the model and the view only while the filter is on:
        each proxied cell costs two more Python calls per paint, and Python calls made from
        the GUI thread wait for the GIL while the engine works.
        """
        if on == (self.model() is self.proxy):
            return False
        self.remember_columns()
        self.proxy.set_only_problems(on)
        self.setModel(self.proxy if on else self.tree_model)
        self.apply_columns()
        if on:
            self.expandAll()
        else:
            self.expandToDepth(0 if self.tree_model.rowCount() > 3 else 1)
        return True

    def to_source(self, index: QModelIndex) -> QModelIndex:
        """A view index as an index of the tree model."""
        return self.proxy.mapToSource(index) if index.model() is self.proxy else index

    def to_view(self, index: QModelIndex) -> QModelIndex:
        """A tree-model index as an index of whatever the view shows."""
        return self.proxy.mapFromSource(index) if self.model() is self.proxy else index

    def selected_source_indexes(self) -> list[QModelIndex]:
        """Selected rows as indexes of the tree model."""
        return [self.to_source(i) for i in self.selectionModel().selectedRows(0)]

    def selected_tsv(self) -> tuple[int, str]:
        """The selected files (or every file under selected rows) as tab-separated text: ``(files, text)``.

        One header line, then per file its path, state, status, sent-as and details.
        """
        chosen: dict[int, Node] = {}
        for idx in self.selected_source_indexes():
            for leaf in idx.internalPointer().leaves():
                chosen[leaf.uid] = leaf
        cols = (Col.STATE, Col.STATUS, Col.SENT_AS, Col.DETAILS)
        model = self.tree_model
        lines = ["\t".join(["file"] + [HEADERS[c] for c in cols])]
        for _uid, leaf in sorted(chosen.items()):
            i = model.index_of(leaf)
            cells = [str(model.index(i.row(), c, i.parent()).data() or "") for c in cols]
            lines.append("\t".join([leaf.inst.path if leaf.inst else "", *cells]))
        return len(chosen), "\n".join(lines) + "\n"

    # -- columns ---------------------------------------------------------------------------------------

    def show_column(self, col: Col, width: int) -> None:
        """Unhide `col` (at least `width` pixels wide when it was narrow)."""
        if self.isColumnHidden(col):
            self.hidden_columns.discard(col)
            self.setColumnHidden(col, False)
            if self.columnWidth(col) < width // 2:
                self.setColumnWidth(col, width)

    def hide_column(self, col: Col) -> None:
        """Hide `col` (e.g. the Plan column once its plan no longer holds)."""
        self.hidden_columns.add(col)
        self.setColumnHidden(col, True)

    def remember_columns(self) -> None:
        """Copy the shown columns' widths and hidden state into :attr:`column_widths` and :attr:`hidden_columns`."""
        for col in Col:
            if self.isColumnHidden(col):
                self.hidden_columns.add(col)
            else:
                self.hidden_columns.discard(col)
                if self.header().visualIndex(col) != self.header().count() - 1:  # the last one stretches
                    self.column_widths[col] = self.columnWidth(col)

    def apply_columns(self) -> None:
        """Show the columns as :attr:`column_widths` and :attr:`hidden_columns` say, the reason after the state."""
        hdr = self.header()
        hdr.moveSection(hdr.visualIndex(Col.DETAILS), hdr.visualIndex(REASON_AFTER) + 1)
        for col in Col:
            self.setColumnHidden(col, col in self.hidden_columns)
            if col in self.column_widths:
                self.setColumnWidth(col, self.column_widths[col])

    @Slot(object)
    def _on_header_menu_requested(self, pos: Any) -> None:
        menu = QMenu(self)
        for col in Col:
            if col == Col.ITEM:
                continue
            a = menu.addAction(self.tree_model.headerData(col, Qt.Orientation.Horizontal))
            a.setCheckable(True)
            a.setChecked(not self.isColumnHidden(col))
            a.toggled.connect(lambda on, c=col: self.setColumnHidden(c, not on))
        menu.exec(self.header().mapToGlobal(pos))
