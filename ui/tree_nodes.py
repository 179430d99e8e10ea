"""The file tree's rows and columns: :class:`Col`, :class:`Role`, the headers, :class:`Node` and the cell texts.

Plain data and text helpers shared by :class:`ui.models.InstanceTreeModel` (which owns the
nodes) and the views that read them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from PySide6.QtCore import Qt

from core.convert import syntax_label
from core.scan import ScannedInstance

from . import states as st
from .wording import GLOSSARY, date_text, person_name_text, tidy


class Col(IntEnum):
    """Columns of the tree."""

    ITEM = 0
    PATIENT_ID = 1
    DATE = 2
    MODALITY = 3
    COUNT = 4
    SOP_CLASS = 5
    SYNTAX = 6
    SIZE = 7
    STATE = 8
    STATUS = 9
    SENT_AS = 10
    PLAN = 11
    VERIFIED = 12
    DETAILS = 13


#: The first column whose cells change after a row is inserted (states, plans, outcomes).
FIRST_CHANGING_COL = Col.STATE

HEADERS = {
    Col.ITEM: "Patient / Study / Series / File",
    Col.PATIENT_ID: "Patient ID",
    Col.DATE: "Study date",
    Col.MODALITY: "Mod.",
    Col.COUNT: "Files",
    Col.SOP_CLASS: "SOP class",
    Col.SYNTAX: "Transfer syntax",
    Col.SIZE: "Size",
    Col.STATE: "State",
    Col.STATUS: "Status",
    Col.SENT_AS: "Sent as",
    Col.PLAN: "Plan",
    Col.VERIFIED: "Verified",
    Col.DETAILS: "Details",
}

HEADER_TIPS = {
    Col.COUNT: "Number of files under this row",
    Col.SOP_CLASS: GLOSSARY["sop_class"],
    Col.SYNTAX: "The encoding the file is stored in. " + GLOSSARY["transfer_syntax"],
    Col.STATE: "Where each instance stands: ready, queued, sending, stored, failed, not sent…",
    Col.STATUS: GLOSSARY["status"] + " (C-STORE status, PS3.4 B.2.3)",
    Col.SENT_AS: "Transfer syntax actually sent, with any conversion",
    Col.PLAN: "What a pre-flight plan expects for this instance",
    Col.VERIFIED: "Arrival check after the send: committed (storage commitment), found (C-FIND) or not found",
    Col.DETAILS: "The reason, the PACS's comment and what to do (the current row's is also shown under the list)",
}


class Role(IntEnum):
    """Custom data roles."""

    KIND = Qt.ItemDataRole.UserRole + 1  # "patient", "study", "series", "instance", "group", "bad", "dicomdir"
    STATE = Qt.ItemDataRole.UserRole + 2  # instance state (see ui.states)
    NODE = Qt.ItemDataRole.UserRole + 3  # the Node object
    UID = Qt.ItemDataRole.UserRole + 4  # the instance's model-wide id


PATIENT, STUDY, SERIES, INSTANCE, GROUP, BAD = "patient", "study", "series", "instance", "group", "bad"
DICOMDIR = "dicomdir"  # a DICOMDIR file: an index, not an instance and not a bad file
#: Kinds of the rows that are files (the tree's leaves).
LEAF_KINDS = (INSTANCE, BAD, DICOMDIR)
#: Keys of the two group rows at the end of the tree.
BAD_GROUP_KEY, INDEX_GROUP_KEY = "\0group", "\0dicomdir"


class Node:
    """One row of the tree (plain Python; the model owns every node)."""

    __slots__ = (
        "kind",
        "parent",
        "children",
        "row",
        "key",
        "inst",
        "uid",
        "state",
        "outcome",
        "counts",
        "size",
        "sending_as",
        "plan",
        "index_map",
        "cache",
    )

    def __init__(self, kind: str, parent: Node | None, key: str = "", inst: ScannedInstance | None = None):
        self.kind = kind
        self.parent = parent
        self.children: list[Node] = []
        self.row = 0
        self.key = key
        self.inst = inst
        self.uid = -1
        self.state = st.READY
        self.outcome: dict[str, Any] | None = None
        self.counts: dict[str, int] = {}
        self.size = 0
        self.sending_as: tuple[str | None, str | None] = (None, None)
        self.plan = ""
        self.index_map: dict[str, Node] = {}
        self.cache: dict[int, dict[int, Any]] | None = None  # column -> role -> value, for painting

    def n_files(self) -> int:
        """Number of leaves below (1 for a leaf)."""
        return sum(self.counts.values()) if self.children or self.kind not in LEAF_KINDS else 1

    def leaves(self) -> Iterable[Node]:
        """Every leaf below this node (itself when it is one), in order."""
        if self.kind in LEAF_KINDS:
            yield self
            return
        for c in self.children:
            yield from c.leaves()


def human_size(n: int) -> str:
    """``1.2 MB`` style size (decimal units)."""
    if n < 1000:
        return f"{n} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000.0  # type: ignore[assignment]
        if n < 1000:
            return f"{n:.1f} {unit}"
    return f"{n:.1f} PB"


def status_text(outcome: dict[str, Any] | None) -> str:
    """``0xA700 Out of Resources`` from an outcome dict, or ``""``."""
    if not outcome or outcome.get("status_code") is None:
        return ""
    code = int(outcome["status_code"])
    meaning = outcome.get("status_meaning") or ""
    return f"0x{code:04X} {meaning}".strip()


def sent_as_text(ts: str | None, converted_from: str | None) -> str:
    """``JPEG 2000 Lossless → Implicit VR LE`` or ``Explicit VR LE (as stored)``."""
    if not ts:
        return ""
    if converted_from and converted_from != ts:
        return f"{syntax_label(converted_from)} → {syntax_label(ts)}"
    return f"{syntax_label(ts)} (as stored)"


def cell_text(node: Node, col: int) -> str:
    """The text of `node`'s cell in column `col` (the DisplayRole)."""
    inst = node.inst
    kind = node.kind
    if col == Col.ITEM:
        if kind == PATIENT:
            return person_name_text(inst.patient_name) if inst and inst.patient_name else "(no patient name)"
        if kind == STUDY:
            return (inst.study_description if inst else "") or "(no study description)"
        if kind == SERIES:
            num = f"#{inst.series_number} " if inst and inst.series_number else ""
            return f"{num}{(inst.series_description if inst else '') or '(no series description)'}"
        if kind == GROUP:
            return "DICOMDIR (index of a CD or DVD)" if node.key == INDEX_GROUP_KEY else "Not DICOM or unreadable"
        return os.path.basename(inst.path) if inst else ""
    if col == Col.PATIENT_ID:
        return (inst.patient_id if inst else "") if kind == PATIENT else ""
    if col == Col.DATE:
        return date_text(inst.study_date) if inst and kind == STUDY else ""
    if col == Col.MODALITY:
        if kind in (SERIES, INSTANCE) and inst:
            return inst.modality
        if kind == STUDY:
            return "/".join(sorted({c.inst.modality for c in node.children if c.inst and c.inst.modality}))
        return ""
    if col == Col.COUNT:
        return str(node.n_files()) if kind not in LEAF_KINDS else ""
    if col == Col.SOP_CLASS:
        if kind == INSTANCE and inst:
            return inst.sop_class_name
        if kind == SERIES and node.children:
            names = {c.inst.sop_class_name for c in node.children[:50] if c.inst}
            return names.pop() if len(names) == 1 else "(mixed)"
        return ""
    if col == Col.SYNTAX:
        if kind == INSTANCE and inst:
            return syntax_label(inst.transfer_syntax)
        return ""
    if col == Col.SIZE:
        return human_size(node.size)
    if col == Col.STATE:
        if kind in LEAF_KINDS:
            return st.LABELS.get(node.state, node.state)
        return summary_text(node)
    if col == Col.STATUS:
        return status_text(node.outcome)
    if col == Col.SENT_AS:
        if node.outcome is not None:
            return sent_as_text(node.outcome.get("transfer_syntax"), node.outcome.get("converted_from"))
        if node.state == st.SENDING:
            return sent_as_text(*node.sending_as)
        return ""
    if col == Col.PLAN:
        return node.plan
    if col == Col.VERIFIED:
        return str((node.outcome or {}).get("verified") or "") if kind == INSTANCE else ""
    if col == Col.DETAILS:
        return details_text(node)
    return ""


def details_text(node: Node) -> str:
    """The Details column: a bad file's reason, an outcome's message, or the scanner's notes."""
    if node.kind == DICOMDIR and node.inst:
        return dicomdir_text(node.inst.reason)
    if node.kind == BAD and node.inst:
        return node.inst.reason
    if node.kind != INSTANCE:
        return ""
    if node.outcome is not None:
        return _without_state(tidy(str(node.outcome.get("message") or "")), node.state)
    if node.inst and node.inst.notes:
        return "; ".join(node.inst.notes)
    return ""


_STORED_HOW = re.compile(r"^stored \((.*?)\)(.*)$", re.S)


def _without_state(message: str, state: str) -> str:
    """`message` without the words the State column beside it already says (``not sent: …``, ``stored (…)``)."""
    if state in (st.NOT_SENT, st.FAILED):  # core says "not sent: <why>" also for one it could not convert
        return message.removeprefix("not sent: ")
    if state in (st.STORED, st.WARNING):
        m = _STORED_HOW.match(message)
        if m:
            return m.group(1) + m.group(2)
    return message


def tooltip_text(node: Node) -> str:
    """Everything known about a file (path, state, status, conversion, plan, notes), or a group's counts."""
    inst = node.inst
    if node.kind in LEAF_KINDS and inst:
        lines = [inst.path, f"State: {st.LABELS.get(node.state, node.state)}"]
        o = node.outcome
        if o:
            if status_text(o):
                lines.append(f"Status: {status_text(o)}")
            sent = sent_as_text(o.get("transfer_syntax"), o.get("converted_from"))
            if sent:
                lines.append(f"Sent as: {sent}")
            if o.get("strategy_used"):
                lines.append(f"Strategy: {o['strategy_used']}")
            if o.get("error_comment"):
                lines.append(f"PACS comment: {o['error_comment']}")
            if o.get("message"):
                lines.append(f"Details: {o['message']}")
        elif inst.reason:
            lines.append(f"Reason: {inst.reason}")
        if inst.sop_class_uid:
            lines.append(f"SOP class: {inst.sop_class_name} ({inst.sop_class_uid})")
        if inst.transfer_syntax:
            lines.append(f"Stored as: {inst.transfer_syntax_name}")
        if node.plan:
            lines.append(f"Plan: {node.plan}")
        if o and o.get("verified"):
            lines.append(f"Arrival check: {o['verified']}")
        lines += [f"Note: {n}" for n in (o.get("notes") if o else inst.notes) or []]
        return "\n".join(lines)
    if node.kind == GROUP and node.key == INDEX_GROUP_KEY:
        return "DICOMDIR files: the index of a CD or DVD. The files they list are added under their patients."
    if node.kind == GROUP:
        return "Files that are not DICOM or cannot be read; hover a file for its reason"
    n = node.n_files()
    summary = summary_text(node)
    base = f"{n} file(s), {human_size(node.size)}"
    if node.kind == STUDY and inst:
        base = f"Study {inst.study_instance_uid}\n{base}"
    elif node.kind == SERIES and inst:
        base = f"Series {inst.series_instance_uid}\n{base}"
    return f"{base}\n{summary}" if summary else base


def summary_text(node: Node) -> str:
    """``3 stored · 1 failed`` for a patient, study or series ("" while all are ready)."""
    if not node.counts:
        return ""
    if set(node.counts) <= {st.READY}:
        return ""
    parts = [f"{node.counts[s]} {st.LABELS[s]}" for s in st.SUMMARY_ORDER if node.counts.get(s)]
    return " · ".join(parts)


def summary_state(node: Node) -> str:
    """The state that colours a row: its own, or the most pressing one below it."""
    if node.kind in LEAF_KINDS:
        return node.state
    for s in (st.FAILED, st.NOT_SENT, st.UNKNOWN, st.UNREADABLE, st.SENDING, st.WARNING, st.QUEUED):
        if node.counts.get(s):
            return s
    return st.STORED if node.counts.get(st.STORED) else st.READY


def dicomdir_text(reason: str) -> str:
    """A DICOMDIR's Details: what it is and how many files it lists (from the scanner's reason)."""
    m = re.search(r"(\d+) referenced, (\d+) found", reason)  # core.dicomdir.summary()
    n = f"{m.group(1)} file(s)" if m else "its files"
    missing = f"; {int(m.group(1)) - int(m.group(2))} of them missing" if m and m.group(1) != m.group(2) else ""
    return f"index of a CD or DVD: lists {n}, added to the list under their patients{missing} (the index itself is not sent)"


def reason_line(node: Node) -> str:
    """One line for the strip under the tree: the file, its state and its reason ("" for a group without one)."""
    if node.kind not in LEAF_KINDS or node.inst is None:
        return ""
    reason = details_text(node)
    head = f"{os.path.basename(node.inst.path)}: {st.LABELS.get(node.state, node.state)}"
    status = status_text(node.outcome)
    return head + (f" ({status})" if status else "") + (f" - {reason}" if reason else "")
