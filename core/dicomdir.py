"""DICOMDIR: a media index, never sent itself; the files it references are found and scanned.

A DICOMDIR (Media Storage Directory Storage, 1.2.840.10008.1.3.10) is not a storage SOP class
(PS3.10 8.2, PS3.3 F.5): each Directory Record may name a file by its Referenced File ID
(0004,1500), path components relative to the DICOMDIR's folder. Media in the field are mounted
with other letter cases (a CD on Linux shows lowercase names) and exports add a ".dcm" extension,
so each ID is resolved exactly, then case-insensitively per path component, then with a ".dcm"
extension, and the way each file was found is stated.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import pydicom

LOGGER = logging.getLogger(__name__)

__all__ = ["Reference", "read_references", "resolve_file_id", "summary"]

#: How a Referenced File ID was found on disk.
EXACT, CASE, DCM, CASE_DCM, MISSING = "exact", "case-insensitive", "with .dcm", "case-insensitive, with .dcm", "missing"


@dataclass(frozen=True)
class Reference:
    """One file a DICOMDIR references.

    Attributes:
        file_id: the Referenced File ID as written, components joined with a backslash.
        path: the file found on disk, or None when missing.
        how: ``"exact"``, ``"case-insensitive"``, ``"with .dcm"``, ``"case-insensitive, with .dcm"``
            or ``"missing"``.
        sop_instance_uid: Referenced SOP Instance UID in File (0004,1511) of the record ("" if absent).
    """

    file_id: str
    path: str | None
    how: str
    sop_instance_uid: str = ""

    @property
    def note(self) -> str:
        """A note for the found file's record ("" when found exactly as listed)."""
        if self.how in (EXACT, MISSING):
            return ""
        return f"found through a DICOMDIR as {self.file_id} ({self.how} match)"


def _match(folder: str, name: str) -> tuple[str | None, bool]:
    """`name` in `folder`: exactly, else case-insensitively; returns ``(path, by_case)``."""
    exact = os.path.join(folder, name)
    if os.path.lexists(exact):
        return exact, False
    try:
        entries = os.listdir(folder)
    except OSError:
        return None, False
    folded = name.casefold()
    hits = sorted(e for e in entries if e.casefold() == folded)
    return (os.path.join(folder, hits[0]), True) if hits else (None, False)


def resolve_file_id(base: str, components: list[str]) -> tuple[str | None, str]:
    """Find the file a Referenced File ID names (PS3.10 8.2), as media in the field store it.

    Tries, in order: the exact path; each component case-insensitively; the last component with a
    ".dcm" extension (exactly, then case-insensitively).

    Args:
        base: the DICOMDIR's folder.
        components: the Referenced File ID's components (e.g. ``["PT000000", "ST000000", "IM000001"]``).

    Returns:
        ``(path, how)``; ``(None, "missing")`` when nothing matches.
    """
    folder, by_case = base, False
    for comp in components[:-1]:
        found, ci = _match(folder, comp)
        if found is None or not os.path.isdir(found):
            return None, MISSING
        folder, by_case = found, by_case or ci
    name = components[-1] if components else ""
    for candidate, dcm in ((name, False), (name + ".dcm", True)):
        found, ci = _match(folder, candidate)
        if found is not None and os.path.isfile(found):
            ci = ci or by_case
            return found, {(False, False): EXACT, (True, False): CASE, (False, True): DCM, (True, True): CASE_DCM}[(ci, dcm)]
    return None, MISSING


def read_references(path: str) -> list[Reference]:
    """The files a DICOMDIR references, resolved on disk (PS3.3 F.5, Referenced File ID).

    The caller walks the DICOMDIR first (:mod:`core.walk`: nesting bounded) so that pydicom's
    recursive reader never meets a hostile nesting.

    Returns:
        One :class:`Reference` per record with a Referenced File ID, in record order, each ID once.

    Raises:
        Exception: whatever pydicom raises for a DICOMDIR it cannot read (the caller reports it).
    """
    ds = pydicom.dcmread(path, force=True)
    base = os.path.dirname(path)
    out: list[Reference] = []
    seen: set[str] = set()
    for rec in ds.get("DirectoryRecordSequence", []):
        ref = rec.get("ReferencedFileID")
        if not ref:
            continue
        parts = [str(p) for p in ([ref] if isinstance(ref, str) else list(ref)) if str(p)]
        file_id = "\\".join(parts)
        if not parts or file_id in seen:
            continue
        seen.add(file_id)
        found, how = resolve_file_id(base, parts)
        uid = str(rec.get("ReferencedSOPInstanceUIDInFile", "") or "").rstrip("\0 ")
        out.append(Reference(file_id, found, how, uid))
    return out


def summary(refs: list[Reference]) -> str:
    """E.g. ``"4 referenced, 4 found (all by case-insensitive match, 2 of them with a .dcm extension)"``."""
    found = [r for r in refs if r.path is not None]
    text = f"{len(refs)} referenced, {len(found)} found"
    by_case = sum(r.how in (CASE, CASE_DCM) for r in found)
    dcm = sum(r.how in (DCM, CASE_DCM) for r in found)
    parts = []
    if by_case:
        parts.append(f"{'all' if by_case == len(found) else by_case} by case-insensitive match")
    if dcm:
        parts.append(f"{dcm} {'of them ' if by_case else ''}with a .dcm extension")
    if parts:
        text += f" ({', '.join(parts)})"
    missing = len(refs) - len(found)
    if missing:
        text += f"; {missing} missing"
    return text
