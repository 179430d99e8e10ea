"""The file tree: Patient › Study › Series › Instance, plus a group for files that cannot be sent.

:class:`InstanceTreeModel` holds every scanned file as a leaf node, grouped by
patient, study and series UIDs. Rows are inserted in batches (one
``rowsInserted`` per parent per batch); state changes mark rows dirty and a
timer emits one ``dataChanged`` per parent range every :data:`REPAINT_MS`
milliseconds, so a send of 10,000 instances repaints a few times a second, not
10,000 times. :class:`ProblemFilterProxy` gives "show failed only". The rows
(:class:`Node`), columns and cell texts are in :mod:`ui.tree_nodes`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QFont

from core.scan import MEDIA_STORAGE_DIRECTORY, ScannedInstance

from . import states as st
from .qtcompat import emit, fill_role_data
from .tree_nodes import (  # noqa: F401  (re-exported: the views import the tree's types from here)
    BAD,
    BAD_GROUP_KEY,
    DICOMDIR,
    FIRST_CHANGING_COL,
    GROUP,
    HEADER_TIPS,
    HEADERS,
    INDEX_GROUP_KEY,
    INSTANCE,
    LEAF_KINDS,
    PATIENT,
    SERIES,
    STUDY,
    Col,
    Node,
    Role,
    cell_text,
    human_size,
    reason_line,
    summary_state,
    tooltip_text,
)

#: The invalid index (the root), as the default parent argument of Qt overrides.
_ROOT = QModelIndex()

#: Milliseconds between batched repaints of changed rows.
REPAINT_MS = 250


#: Roles a state change touches (an explicit list, so views need not re-measure rows).
_CHANGED_ROLES = [
    int(Qt.ItemDataRole.DisplayRole),
    int(Qt.ItemDataRole.DecorationRole),
    int(Qt.ItemDataRole.ForegroundRole),
    int(Qt.ItemDataRole.ToolTipRole),
    int(Role.STATE),
]

#: Roles the item delegate asks for when painting (cached per cell).
_PAINT_ROLES = (
    int(Qt.ItemDataRole.DisplayRole),
    int(Qt.ItemDataRole.DecorationRole),
    int(Qt.ItemDataRole.ForegroundRole),
    int(Qt.ItemDataRole.FontRole),
    int(Qt.ItemDataRole.TextAlignmentRole),
    int(Qt.ItemDataRole.BackgroundRole),
    int(Qt.ItemDataRole.CheckStateRole),
)


class InstanceTreeModel(QAbstractItemModel):
    """Patients › studies › series › instances, then "DICOMDIR" (CD indexes) and "Not DICOM or unreadable".

    Signals:
        contents_changed(): files were added or removed (for counts and buttons).
    """

    contents_changed = Signal()

    #: Held while flushing (the window sets its :class:`ui.workers.GuiGate`, so a send steps aside).
    gate: Any = contextlib.nullcontext()

    def __init__(self, parent: QObject | None = None, repaint_ms: int = REPAINT_MS):
        super().__init__(parent)
        self._root = Node("root", None)
        self._group: Node | None = None
        self._indexes: Node | None = None
        self._leaves: list[Node] = []
        self._paths: set[str] = set()
        self._dirty: set[Node] = set()
        self._bold = QFont()
        self._bold.setBold(True)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(repaint_ms)
        self._timer.timeout.connect(self.flush)

    # -- Qt model interface ---------------------------------------------------------------------------

    def index(self, row: int, column: int, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> QModelIndex:
        if column < 0 or column >= len(Col) or row < 0:
            return QModelIndex()
        node = self._node(parent)
        if row >= len(node.children):
            return QModelIndex()
        return self.createIndex(row, column, node.children[row])

    def parent(self, child: QModelIndex | QPersistentModelIndex = _ROOT) -> QModelIndex:  # type: ignore[override]
        if not child.isValid():
            return QModelIndex()
        node: Node = child.internalPointer()
        par = node.parent
        if par is None or par is self._root:
            return QModelIndex()
        return self.createIndex(par.row, 0, par)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._node(parent).children)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return len(Col)

    def hasChildren(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> bool:
        return self.rowCount(parent) > 0

    # flags(): the base class's (enabled, selectable) is what we want, without a Python call per cell

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(Col):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[Col(section)]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(Col(section))
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        return self._role_data(index.internalPointer(), index.column(), role)

    def multiData(self, index: QModelIndex | QPersistentModelIndex, roleDataSpan: Any) -> None:
        # One Python call per painted cell instead of one per role (the delegate asks ~7), served
        # from a per-node cache: while the engine works, every call from the GUI thread into
        # Python waits for the GIL, so painting must enter Python as little as possible.
        if not index.isValid():
            fill_role_data(roleDataSpan, lambda role: None)
            return
        node: Node = index.internalPointer()
        col = index.column()
        cache = node.cache
        if cache is None:
            cache = node.cache = {}
        values = cache.get(col)
        if values is None:
            values = cache[col] = {r: self._role_data(node, col, r) for r in _PAINT_ROLES}
        fill_role_data(roleDataSpan, lambda role: values[role] if role in values else self._role_data(node, col, role))

    def _role_data(self, node: Node, col: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(node, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip_text(node)
        if role == Qt.ItemDataRole.DecorationRole and col == Col.STATE and node.kind in LEAF_KINDS:
            return st.icon(node.state)
        if role == Qt.ItemDataRole.ForegroundRole and col in (Col.STATE, Col.STATUS, Col.DETAILS):
            return QBrush(st.colour(summary_state(node)))
        if role == Qt.ItemDataRole.FontRole and node.kind in (PATIENT, GROUP):
            return self._bold
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (Col.COUNT, Col.SIZE):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Role.KIND:
            return node.kind
        if role == Role.STATE:
            return node.state
        if role == Role.NODE:
            return node
        if role == Role.UID:
            return node.uid
        return None

    def _node(self, index: QModelIndex | QPersistentModelIndex) -> Node:
        return index.internalPointer() if index.isValid() else self._root

    def index_of(self, node: Node, column: int = 0) -> QModelIndex:
        """The index of `node` (invalid for the root)."""
        if node is self._root or node.parent is None:
            return QModelIndex()
        return self.createIndex(node.row, column, node)

    # -- adding ----------------------------------------------------------------------------------------

    def add_instances(self, instances: Sequence[ScannedInstance]) -> int:
        """Add scanned files (one batch); files already listed are ignored. Returns how many were added."""
        pending: dict[int, tuple[Node, list[Node]]] = {}
        added = 0
        for inst in instances:
            key = os.path.normpath(os.path.abspath(inst.path)) if inst.path else f"#{len(self._leaves)}"
            if key in self._paths:
                continue
            self._paths.add(key)
            if inst.status == "ok":
                parent = self._series_for(inst)
                leaf = Node(INSTANCE, parent, key, inst)
                leaf.state = st.READY
            elif inst.sop_class_uid == MEDIA_STORAGE_DIRECTORY:  # a DICOMDIR: an index, its files come in too
                parent = self._index_group()
                leaf = Node(DICOMDIR, parent, key, inst)
                leaf.state = st.INDEX
            else:
                parent = self._bad_group()
                leaf = Node(BAD, parent, key, inst)
                leaf.state = st.UNREADABLE if inst.status == "failure" else st.NOT_DICOM
            leaf.size = inst.size
            leaf.uid = len(self._leaves)
            self._leaves.append(leaf)
            pending.setdefault(id(parent), (parent, []))[1].append(leaf)
            added += 1
        for parent, leaves in pending.values():
            first = len(parent.children)
            self.beginInsertRows(self.index_of(parent), first, first + len(leaves) - 1)
            for i, leaf in enumerate(leaves):
                leaf.row = first + i
                parent.children.append(leaf)
            self.endInsertRows()
            for leaf in leaves:
                self._account(leaf, leaf.state, +1, leaf.size)
            self._mark_ancestors(parent)
        if added:
            emit(self.contents_changed)
        return added

    def _insert_child(self, parent: Node, node: Node, row: int | None = None) -> Node:
        row = len(parent.children) if row is None else row
        self.beginInsertRows(self.index_of(parent), row, row)
        parent.children.insert(row, node)
        for i in range(row, len(parent.children)):
            parent.children[i].row = i
        parent.index_map[node.key] = node
        parent.cache = None
        self.endInsertRows()
        return node

    def _series_for(self, inst: ScannedInstance) -> Node:
        pkey = f"{inst.patient_id}\0{inst.patient_name}"
        patient = self._root.index_map.get(pkey)
        if patient is None:
            row = len(self._root.children) - (self._group is not None) - (self._indexes is not None)
            patient = self._insert_child(self._root, Node(PATIENT, self._root, pkey, inst), row)
        skey = inst.study_instance_uid or "(no study UID)"
        study = patient.index_map.get(skey)
        if study is None:
            study = self._insert_child(patient, Node(STUDY, patient, skey, inst))
        sekey = inst.series_instance_uid or "(no series UID)"
        series = study.index_map.get(sekey)
        if series is None:
            series = self._insert_child(study, Node(SERIES, study, sekey, inst))
        return series

    def _bad_group(self) -> Node:
        if self._group is None:
            self._group = self._insert_child(self._root, Node(GROUP, self._root, BAD_GROUP_KEY))
        return self._group

    def _index_group(self) -> Node:
        """The group of DICOMDIR files, after the patients and before the bad files."""
        if self._indexes is None:
            row = len(self._root.children) - (1 if self._group is not None else 0)
            self._indexes = self._insert_child(self._root, Node(GROUP, self._root, INDEX_GROUP_KEY), row)
        return self._indexes

    def _account(self, leaf: Node, state: str, delta: int, size: int = 0) -> None:
        node = leaf.parent
        while node is not None and node is not self._root:
            node.counts[state] = node.counts.get(state, 0) + delta
            if node.counts[state] <= 0:
                del node.counts[state]
            node.size += size
            node = node.parent

    # -- removing ------------------------------------------------------------------------------------

    def remove(self, indexes: Iterable[QModelIndex]) -> int:
        """Remove the rows at `indexes` (source-model indexes, any level) with everything below; returns files removed."""
        nodes = {self._node(i) for i in indexes if i.isValid()}
        top = [n for n in nodes if not any(a in nodes for a in self._ancestors(n))]
        removed = 0
        for node in sorted(top, key=lambda n: -self._depth(n)):
            removed += self._remove_node(node)
        if removed:
            self._renumber_leaves()
            emit(self.contents_changed)
        return removed

    def _ancestors(self, node: Node) -> Iterable[Node]:
        p = node.parent
        while p is not None and p is not self._root:
            yield p
            p = p.parent

    @staticmethod
    def _depth(node: Node) -> int:
        d = 0
        while node.parent is not None:
            d += 1
            node = node.parent
        return d

    def _remove_node(self, node: Node) -> int:
        parent = node.parent
        if parent is None:
            return 0
        leaves = list(node.leaves())
        self.beginRemoveRows(self.index_of(parent), node.row, node.row)
        del parent.children[node.row]
        for i in range(node.row, len(parent.children)):
            parent.children[i].row = i
        parent.index_map.pop(node.key, None)
        self.endRemoveRows()
        for leaf in leaves:
            self._dirty.discard(leaf)
            self._paths.discard(leaf.key)
        # update the counts of the remaining ancestors
        for leaf in leaves:
            p: Node | None = parent
            while p is not None and p is not self._root:
                p.counts[leaf.state] = p.counts.get(leaf.state, 0) - 1
                if p.counts[leaf.state] <= 0:
                    del p.counts[leaf.state]
                p.size -= leaf.size
                p = p.parent
        if node is self._group:
            self._group = None
        if node is self._indexes:
            self._indexes = None
        self._dirty.discard(node)
        if parent is not self._root and not parent.children:
            self._remove_node(parent)
        else:
            self._mark_ancestors(parent)
        return len([n for n in leaves if n.kind in LEAF_KINDS])

    def _renumber_leaves(self) -> None:
        self._leaves = [n for n in self._root.leaves() if n.kind in LEAF_KINDS]
        for i, n in enumerate(self._leaves):
            n.uid = i

    def clear(self) -> None:
        """Remove every file."""
        self.beginResetModel()
        self._root = Node("root", None)
        self._group = None
        self._indexes = None
        self._leaves = []
        self._paths = set()
        self._dirty = set()
        self.endResetModel()
        emit(self.contents_changed)

    # -- queries -------------------------------------------------------------------------------------

    def leaves(self) -> list[Node]:
        """Every file's node, in the order added."""
        return list(self._leaves)

    def sendable_under(self, indexes: Iterable[QModelIndex] | None = None) -> list[Node]:
        """DICOM instances under `indexes` (source-model indexes), or all when None/empty; in added order."""
        idx = [i for i in (indexes or []) if i.isValid()]
        if not idx:
            return [n for n in self._leaves if n.kind == INSTANCE]
        chosen: set[int] = set()
        for i in idx:
            for leaf in self._node(i).leaves():
                if leaf.kind == INSTANCE:
                    chosen.add(leaf.uid)
        return [self._leaves[u] for u in sorted(chosen)]

    def counts(self) -> dict[str, int]:
        """Files per state over the whole tree."""
        out: dict[str, int] = {}
        for n in self._leaves:
            out[n.state] = out.get(n.state, 0) + 1
        return out

    def stats(self) -> dict[str, int]:
        """``files``, ``instances``, ``bad``, ``indexes`` (DICOMDIRs), ``patients``, ``studies``, ``series``, ``bytes``."""
        patients = [n for n in self._root.children if n.kind == PATIENT]
        studies = [s for p in patients for s in p.children]
        return {
            "files": len(self._leaves),
            "instances": sum(1 for n in self._leaves if n.kind == INSTANCE),
            "bad": len(self._group.children) if self._group else 0,
            "indexes": len(self._indexes.children) if self._indexes else 0,
            "patients": len(patients),
            "studies": len(studies),
            "series": sum(len(s.children) for s in studies),
            "bytes": sum(n.size for n in self._leaves),
        }

    # -- live states ----------------------------------------------------------------------------------

    def set_state(
        self,
        node: Node,
        state: str,
        outcome: dict[str, Any] | None = None,
        keep_outcome: bool = False,
        sending_as: tuple[str | None, str | None] | None = None,
    ) -> None:
        """Change a leaf's state (and outcome); the repaint comes with the next batched flush."""
        if node.state != state:
            self._account(node, node.state, -1)
            self._account(node, state, +1)
            node.state = state
        if outcome is not None or not keep_outcome:
            node.outcome = outcome
        if sending_as is not None:
            node.sending_as = sending_as
        node.cache = None
        self._dirty.add(node)
        self._mark_ancestors(node.parent)

    def set_states(self, nodes: Iterable[Node], state: str) -> None:
        """Set many leaves to `state` and clear their outcomes at once (e.g. "queued" for a send of 10,000).

        The same as calling :meth:`set_state` for each, with the parents' counts updated once per
        parent instead of once per leaf.
        """
        deltas: dict[int, tuple[Node, dict[str, int]]] = {}
        dirty = self._dirty
        for node in nodes:
            old = node.state
            if old != state:
                d = deltas.setdefault(id(node.parent), (node.parent, {}))[1]  # type: ignore[arg-type]
                d[old] = d.get(old, 0) - 1
                d[state] = d.get(state, 0) + 1
                node.state = state
            node.outcome = None
            node.cache = None
            dirty.add(node)
        for parent, d in deltas.values():
            n: Node | None = parent
            while n is not None and n is not self._root:
                for s, k in d.items():
                    v = n.counts.get(s, 0) + k
                    if v > 0:
                        n.counts[s] = v
                    else:
                        n.counts.pop(s, None)
                n.cache = None
                dirty.add(n)
                n = n.parent
        self._schedule()

    def set_plans(self, pairs: Iterable[tuple[Node, str]]) -> None:
        """Set the Plan column of many leaves at once."""
        dirty = self._dirty
        for node, text in pairs:
            node.plan = text
            node.cache = None
            dirty.add(node)
        self._schedule()

    def set_plan(self, node: Node, text: str) -> None:
        """Set the Plan column of a leaf (for pre-flight plans)."""
        node.plan = text
        node.cache = None
        self._dirty.add(node)
        self._schedule()

    def _mark_ancestors(self, node: Node | None) -> None:
        while node is not None and node is not self._root:
            node.cache = None
            self._dirty.add(node)
            node = node.parent
        self._schedule()

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        """Emit one ``dataChanged`` per parent for the rows changed since the last flush."""
        self._timer.stop()
        if not self._dirty:
            return
        with self.gate:
            self._flush()

    def _flush(self) -> None:
        by_parent: dict[int, tuple[Node, int, int]] = {}
        for n in self._dirty:
            if n.parent is None:
                continue
            key = id(n.parent)
            cur = by_parent.get(key)
            by_parent[key] = (n.parent, n.row, n.row) if cur is None else (n.parent, min(cur[1], n.row), max(cur[2], n.row))
        self._dirty.clear()
        last = len(Col) - 1
        # Only the columns from State on change after insertion (state, status, sent as, plan,
        # verified, details); leaving the rest out of the range lets the view repaint just those
        # cells, and leaving out column 0 spares QTreeView a hasChildren() call per changed row.
        for parent, lo, hi in by_parent.values():
            if hi >= len(parent.children):
                continue
            emit(
                self.dataChanged,
                self.createIndex(lo, FIRST_CHANGING_COL, parent.children[lo]),
                self.createIndex(hi, last, parent.children[hi]),
                _CHANGED_ROLES,
            )

    @property
    def pending_repaints(self) -> int:
        """How many rows wait for the next flush (for tests)."""
        return len(self._dirty)


class ProblemFilterProxy(QSortFilterProxyModel):
    """Shows only files in a problem state (failed, not sent, unknown, unreadable) when enabled."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._only_problems = False
        self.setRecursiveFilteringEnabled(True)
        # re-filtering on every batched dataChanged costs a Python call per changed row;
        # only needed while the filter is on
        self.setDynamicSortFilter(False)

    @property
    def only_problems(self) -> bool:
        """True while the filter is on."""
        return self._only_problems

    def set_only_problems(self, on: bool) -> None:
        """Turn the filter on or off."""
        if on != self._only_problems:
            self.beginFilterChange()
            self._only_problems = on
            self.setDynamicSortFilter(on)
            self.endFilterChange()

    def multiData(self, index: QModelIndex | QPersistentModelIndex, roleDataSpan: Any) -> None:
        # QSortFilterProxyModel asks the source role by role; forward the whole span instead
        source = self.sourceModel()
        if source is None or not index.isValid():
            fill_role_data(roleDataSpan, lambda role: None)
            return
        source.multiData(self.mapToSource(index), roleDataSpan)

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        if not self._only_problems:
            return True
        idx = self.sourceModel().index(source_row, 0, source_parent)
        if idx.data(Role.KIND) not in LEAF_KINDS:
            return False
        return idx.data(Role.STATE) in st.PROBLEM_STATES
