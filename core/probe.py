"""Probe a PACS: which storage SOP classes and transfer syntaxes does it accept?

:func:`probe` proposes SOP classes x transfer syntaxes, one transfer syntax per
presentation context (PS3.8 9.3.2.2), spread over as many associations as the
128-context limit requires, and reads the peer's answer for every context
(PS3.8 9.3.3.2, Table 9-18): accepted, or rejected with a reason. Nothing is
stored: each association is released as soon as it is negotiated.

The result, an :class:`AcceptanceMap`, serialises to the JSON form of issue 7::

    {"peer": {...},
     "sop_classes": {"<SOP Class UID>": {"accepted": ["<TS UID>", ...],
                                         "rejected": {"<TS UID>": "<reason>", ...}}}}

and to CSV (one row per SOP class x transfer syntax). It is plain data (no Qt):
the GUI saves ``to_dict()`` with the profile and reloads it with
:meth:`AcceptanceMap.from_dict`.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydicom.uid import UID, AllTransferSyntaxes

from .config import StoreConfig
from .errors import AssociationError, CourierError
from .events import Event

if TYPE_CHECKING:
    from .profiles import Profile
from .negotiation import MAX_CONTEXTS, open_association

LOGGER = logging.getLogger(__name__)

__all__ = [
    "AcceptanceMap",
    "ProbeProgress",
    "ProbeError",
    "probe",
    "storage_sop_classes",
    "probe_syntaxes",
    "resolve_sop_classes",
    "REASON_ABSTRACT",
    "REASON_TRANSFER",
    "REASON_NONE",
    "REASON_USER",
]

#: Rejection reasons in the map (PS3.8 Table 9-18, result/reason 1-4).
REASON_USER = "user rejection"
REASON_NONE = "no reason"
REASON_ABSTRACT = "abstract syntax not supported"
REASON_TRANSFER = "transfer syntaxes not supported"
_RESULT_REASON = {1: REASON_USER, 2: REASON_NONE, 3: REASON_ABSTRACT, 4: REASON_TRANSFER}

#: The syntaxes a probe proposes by default, most common first (the rest of pydicom's list follows).
_COMMON_FIRST = (
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
)


class ProbeError(CourierError):
    """The probe could not negotiate with the peer at all (unreachable, A-ASSOCIATE-RJ, TLS)."""


@dataclass(frozen=True)
class ProbeProgress(Event):
    """Progress of a probe: `done` of `total` associations negotiated so far.

    Attributes:
        done: associations negotiated (or failed) so far.
        total: associations the probe needs.
        sop_classes: SOP Class UIDs covered by the association just finished.
    """

    done: int
    total: int
    sop_classes: tuple[str, ...] = ()


def storage_sop_classes() -> list[str]:
    """Every storage SOP Class UID pynetdicom knows (about 170), in its order."""
    try:
        from pynetdicom.sop_class import _STORAGE_CLASSES  # the full table; the public list stops at 120

        return [str(uid) for uid in _STORAGE_CLASSES.values()]
    except ImportError:  # pragma: no cover - a future pynetdicom
        from pynetdicom.presentation import StoragePresentationContexts

        return [str(cx.abstract_syntax) for cx in StoragePresentationContexts]


def probe_syntaxes(which: str | Sequence[str] = "all") -> list[str]:
    """The transfer syntaxes to propose.

    Args:
        which: ``"all"`` (every syntax pydicom knows, 39 with pydicom 3.0; the
            common ones first), ``"common"`` (the 13 syntaxes PACS commonly
            support: uncompressed, RLE, JPEG, JPEG-LS, JPEG 2000), or UIDs.

    Raises:
        ValueError: a UID is not a transfer syntax pydicom knows.
    """
    if isinstance(which, str) and which.strip().lower() == "all":
        rest = [str(u) for u in AllTransferSyntaxes if str(u) not in _COMMON_FIRST]
        return list(_COMMON_FIRST) + rest
    if isinstance(which, str) and which.strip().lower() == "common":
        return list(_COMMON_FIRST)
    uids = [u.strip() for u in which.split(",")] if isinstance(which, str) else [str(u) for u in which]
    out: list[str] = []
    for u in uids:
        if not u:
            continue
        if not UID(u).is_transfer_syntax:
            raise ValueError(f"{u!r} is not a transfer syntax UID pydicom knows")
        if u not in out:
            out.append(u)
    return out


def resolve_sop_classes(which: str, used: Iterable[str] = ()) -> list[str]:
    """Turn ``--sop-classes`` into a list of SOP Class UIDs.

    Args:
        which: ``"all"``, ``"used"`` or comma-separated UIDs.
        used: the SOP classes of the loaded files (for ``"used"``), in order.

    Raises:
        ValueError: ``"used"`` with no files, or a value that is not a UID.
    """
    key = which.strip().lower()
    if key == "all":
        return storage_sop_classes()
    if key == "used":
        out = list(dict.fromkeys(str(u) for u in used if u))
        if not out:
            raise ValueError("--sop-classes used needs DICOM files: none of the given paths holds a readable instance")
        return out
    out = []
    for u in which.split(","):
        u = u.strip()
        if not u:
            continue
        if not all(c.isdigit() or c == "." for c in u) or len(u) > 64:
            raise ValueError(f"{u!r} is not a SOP Class UID")
        if u not in out:
            out.append(u)
    if not out:
        raise ValueError("no SOP class given")
    return out


def saved_map_for(profile: Profile) -> dict[str, Any] | None:
    """The acceptance map saved with `profile`, if it was probed from the profile's current peer.

    A map answers for one peer: the host, port, called AE title and calling AE title it was
    probed with (the peer may accept different contexts from another calling AE title). Editing
    any of these makes the saved map stale, and a stale map must not plan a send.

    Args:
        profile: a PACS profile (:class:`core.profiles.Profile`) whose ``acceptance_map`` holds
            an :meth:`AcceptanceMap.to_dict` (or nothing).

    Returns:
        The saved map as a dict (the form :meth:`AcceptanceMap.from_dict` reads), or None when
        there is none, it is malformed, or it was made for another peer.
    """
    m = profile.acceptance_map
    if not m or not isinstance(m.get("sop_classes"), dict):
        return None
    peer = m.get("peer") or {}
    same = (
        str(peer.get("host", "")).strip() == profile.remote_host.strip()
        and str(peer.get("port")) == str(profile.remote_port)
        and str(peer.get("called_ae", "")).strip() == profile.remote_ae_title.strip()
        and str(peer.get("calling_ae", "")).strip() == profile.local_ae_title.strip()
    )
    return m if same else None


@dataclass
class AcceptanceMap:
    """What a peer accepts, per SOP class and transfer syntax.

    Attributes:
        peer: ``host``, ``port``, ``called_ae``, ``calling_ae``, ``implementation_class_uid``,
            ``implementation_version_name``, ``max_pdu`` (bytes, 0 = unlimited), ``probed_at``
            (ISO 8601, UTC), ``associations``, ``elapsed_s``, ``syntaxes`` (the proposed syntaxes).
        sop_classes: ``{SOP Class UID: {"accepted": [TS UID, ...], "rejected": {TS UID: reason}}}``.
        errors: association attempts that failed, in words (the classes they covered are missing).
    """

    peer: dict[str, Any] = field(default_factory=dict)
    sop_classes: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    # -- queries --------------------------------------------------------------------------------------

    def accepted(self, sop_class: str) -> list[str]:
        """Accepted transfer syntaxes for `sop_class` (empty when none or not probed)."""
        return list(self.sop_classes.get(str(sop_class), {}).get("accepted", []))

    def answer(self, sop_class: str, ts: str) -> str | None:
        """``"accepted"``, a rejection reason, or None when the pair was not probed."""
        entry = self.sop_classes.get(str(sop_class))
        if entry is None:
            return None
        if str(ts) in entry.get("accepted", []):
            return "accepted"
        return entry.get("rejected", {}).get(str(ts))

    def covers(self, pairs: Iterable[tuple[str, str]]) -> bool:
        """True when every ``(SOP class, transfer syntax)`` pair has an answer in the map."""
        return all(self.answer(a, t) is not None for a, t in pairs)

    def class_refused(self, sop_class: str) -> bool:
        """True when the peer refused the SOP class itself (abstract syntax not supported)."""
        entry = self.sop_classes.get(str(sop_class))
        if not entry or entry.get("accepted"):
            return False
        reasons = set(entry.get("rejected", {}).values())
        return bool(reasons) and reasons <= {REASON_ABSTRACT, REASON_USER}

    @property
    def syntaxes(self) -> list[str]:
        """Every transfer syntax that appears in the map, in probe order."""
        seen: dict[str, None] = dict.fromkeys(self.peer.get("syntaxes", []))
        for entry in self.sop_classes.values():
            seen.update(dict.fromkeys(entry.get("accepted", [])))
            seen.update(dict.fromkeys(entry.get("rejected", {})))
        return list(seen)

    # -- (de)serialisation ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see the module doc); ``errors`` only when there were any."""
        d: dict[str, Any] = {
            "peer": dict(self.peer),
            "sop_classes": {
                k: {"accepted": list(v.get("accepted", [])), "rejected": dict(v.get("rejected", {}))}
                for k, v in self.sop_classes.items()
            },
        }
        if self.errors:
            d["errors"] = list(self.errors)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcceptanceMap:
        """Rebuild a map saved with :meth:`to_dict`.

        Raises:
            ValueError: `data` does not have the map's shape.
        """
        if not isinstance(data, dict) or not isinstance(data.get("sop_classes"), dict):
            raise ValueError("not an acceptance map: a 'sop_classes' object is missing")
        classes = {}
        for uid, entry in data["sop_classes"].items():
            if not isinstance(entry, dict):
                raise ValueError(f"not an acceptance map: the entry for {uid} is not an object")
            classes[str(uid)] = {
                "accepted": [str(t) for t in entry.get("accepted", [])],
                "rejected": {str(t): str(r) for t, r in dict(entry.get("rejected", {})).items()},
            }
        return cls(dict(data.get("peer", {})), classes, list(data.get("errors", [])))

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON form to `path` atomically. Raises OSError."""
        _atomic_write(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def csv_text(self) -> str:
        """CSV: ``sop_class_uid, sop_class_name, transfer_syntax_uid, transfer_syntax_name, result, reason``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["sop_class_uid", "sop_class_name", "transfer_syntax_uid", "transfer_syntax_name", "result", "reason"])
        for uid, entry in self.sop_classes.items():
            for ts in entry.get("accepted", []):
                w.writerow([uid, UID(uid).name, ts, UID(ts).name, "accepted", ""])
            for ts, reason in entry.get("rejected", {}).items():
                w.writerow([uid, UID(uid).name, ts, UID(ts).name, "rejected", reason])
        return buf.getvalue()

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """Write the CSV form to `path` atomically. Raises OSError."""
        _atomic_write(path, self.csv_text())

    def table(self, short: bool = True) -> str:
        """A readable text table: one line per SOP class with what it accepts and why the rest is refused."""
        from .convert import syntax_label

        lines = []
        width = max((len(UID(u).name) for u in self.sop_classes), default=10)
        width = min(width, 48)
        for uid, entry in self.sop_classes.items():
            name = UID(uid).name
            name = name if len(name) <= width else name[: width - 1] + "~"
            acc = entry.get("accepted", [])
            if acc:
                shown = ", ".join(syntax_label(t) for t in acc[:6]) + (f" (+{len(acc) - 6} more)" if len(acc) > 6 else "")
                rej = len(entry.get("rejected", {}))
                lines.append(f"  {name:<{width}}  accepts {shown}" + (f"  ({rej} refused)" if rej and short else ""))
            else:
                reasons = sorted(set(entry.get("rejected", {}).values())) or ["not answered"]
                lines.append(f"  {name:<{width}}  REFUSED ({'; '.join(reasons)})")
        return "\n".join(lines)


def _atomic_write(path: str | os.PathLike[str], text: str) -> None:
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".probe-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _chunks(sop_classes: Sequence[str], syntaxes: Sequence[str], per_assoc: int) -> list[list[tuple[str, str]]]:
    """Group the pairs into associations, keeping a SOP class's syntaxes together when they fit."""
    groups: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for sop in sop_classes:
        pairs = [(sop, ts) for ts in syntaxes]
        if current and len(current) + len(pairs) > per_assoc and len(pairs) <= per_assoc:
            groups.append(current)
            current = []
        for pair in pairs:
            if len(current) == per_assoc:
                groups.append(current)
                current = []
            current.append(pair)
    if current:
        groups.append(current)
    return groups


def probe(
    cfg: StoreConfig | dict[str, Any],
    sop_classes: Sequence[str],
    syntaxes: Sequence[str] | str = "all",
    on_progress: Callable[[ProbeProgress], None] | None = None,
    cancel: threading.Event | None = None,
    per_association: int = MAX_CONTEXTS,
) -> AcceptanceMap:
    """Ask the peer which of `sop_classes` x `syntaxes` it accepts, without storing anything.

    Each presentation context carries one transfer syntax (PS3.8 9.3.2.2);
    contexts are spread over associations of at most `per_association` (128),
    each released right after negotiation. A context the peer rejects gets the
    reason of PS3.8 Table 9-18 in words.

    Args:
        cfg: the connection (host, port, AE titles, timeouts, TLS).
        sop_classes: SOP Class UIDs to probe (see :func:`resolve_sop_classes`).
        syntaxes: transfer syntax UIDs, or ``"all"`` / ``"common"`` (see :func:`probe_syntaxes`).
        on_progress: called with a :class:`ProbeProgress` after each association (any thread).
        cancel: when set, the probe stops after the current association; the map holds what
            was probed so far and ``peer["cancelled"]`` is True.
        per_association: contexts per association, 1..128.

    Returns:
        the :class:`AcceptanceMap`. Associations that fail after the first one
        succeeded are listed in ``errors``; their SOP classes are missing from the map.

    Raises:
        ProbeError: the first association could not be negotiated at all (peer
            unreachable, A-ASSOCIATE-RJ, abort, TLS): nothing is known.
        ValueError: bad configuration or syntaxes.
    """
    cfg = StoreConfig.from_dict(cfg) if not isinstance(cfg, StoreConfig) else cfg
    ts_list = probe_syntaxes(syntaxes) if isinstance(syntaxes, str) else probe_syntaxes(list(syntaxes))
    per_association = max(1, min(MAX_CONTEXTS, int(per_association)))
    groups = _chunks(list(dict.fromkeys(str(s) for s in sop_classes)), ts_list, per_association)
    amap = AcceptanceMap(
        peer={
            "host": cfg.remote_host,
            "port": cfg.remote_port,
            "called_ae": cfg.remote_ae_title,
            "calling_ae": cfg.local_ae_title,
            "tls": cfg.tls_enabled,
            "probed_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "syntaxes": ts_list,
        }
    )
    for sop in dict.fromkeys(str(s) for s in sop_classes):
        amap.sop_classes[sop] = {"accepted": [], "rejected": {}}
    t0 = time.monotonic()
    answered = 0
    LOGGER.info(
        "Probing %s: %d SOP classes x %d transfer syntaxes over %d association(s)",
        cfg.peer,
        len(amap.sop_classes),
        len(ts_list),
        len(groups),
    )
    for n, contexts in enumerate(groups, start=1):
        if cancel is not None and cancel.is_set():
            amap.peer["cancelled"] = True
            break
        record = _negotiate(cfg, contexts, n, amap, answered == 0)
        if record is not None:
            answered += 1
            _merge(amap, contexts, record)
            if "implementation_class_uid" not in amap.peer and record.get("peer_implementation_class_uid"):
                amap.peer["implementation_class_uid"] = record.get("peer_implementation_class_uid")
                amap.peer["implementation_version_name"] = record.get("peer_implementation_version_name")
                amap.peer["max_pdu"] = record.get("peer_max_pdu")
        if on_progress is not None:
            on_progress(ProbeProgress(n, len(groups), tuple(dict.fromkeys(a for a, _ in contexts))))
    amap.peer["associations"] = len(groups)
    amap.peer["elapsed_s"] = round(time.monotonic() - t0, 3)
    if amap.errors:  # classes of failed associations are unknown: leave them out rather than guess
        known = {a for a, t in _answered_pairs(amap)}
        amap.sop_classes = {k: v for k, v in amap.sop_classes.items() if k in known}
    return amap


def _answered_pairs(amap: AcceptanceMap) -> Iterable[tuple[str, str]]:
    for a, entry in amap.sop_classes.items():
        for t in entry["accepted"]:
            yield a, t
        for t in entry["rejected"]:
            yield a, t


class _NoContextFilter(logging.Filter):
    """Drops pynetdicom's "No accepted presentation contexts" error: for a probe it is an answer."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No accepted presentation contexts" not in record.getMessage()


@contextlib.contextmanager
def quiet_no_context() -> Iterator[None]:
    """While active, pynetdicom does not log an all-rejected association as an error."""
    log = logging.getLogger("pynetdicom.acse")
    filt = _NoContextFilter()
    log.addFilter(filt)
    try:
        yield
    finally:
        log.removeFilter(filt)


def _negotiate(
    cfg: StoreConfig, contexts: list[tuple[str, str]], n: int, amap: AcceptanceMap, first: bool
) -> dict[str, Any] | None:
    """One probe association: negotiate, release, return the negotiation record (None on failure)."""
    try:
        with quiet_no_context():
            assoc, negotiation = open_association(cfg, contexts, "probe", n)
    except AssociationError as exc:
        record: dict[str, Any] = exc.details.get("negotiation") or {}
        if exc.details.get("kind") == "no-context":  # everything rejected: still an answer per context
            return record
        if first and not amap.errors:
            raise ProbeError(exc.message, remote_ae=cfg.remote_ae_title, details=exc.details) from exc
        amap.errors.append(f"association {n}: {exc.message}")
        LOGGER.warning("Probe association %d with %s failed: %s", n, cfg.peer, exc.message)
        return None
    except CourierError as exc:  # TLS set-up
        raise ProbeError(exc.message, remote_ae=cfg.remote_ae_title, details=exc.details) from exc
    try:
        assoc.release()
    except Exception:  # the answer is in; a failed release changes nothing
        LOGGER.debug("Release of probe association %d failed", n, exc_info=True)
    return negotiation.to_dict()


def _merge(amap: AcceptanceMap, contexts: list[tuple[str, str]], record: dict[str, Any]) -> None:
    """Fold one negotiation record into the map.

    The proposed pair is looked up by presentation context ID (1, 3, 5... in proposal
    order, PS3.8 9.3.2.2): in an A-ASSOCIATE-AC the transfer syntax sub-item of a rejected
    context is not significant (PS3.8 9.3.3.2), so the record's syntax cannot be trusted there.
    """

    def pair_of(cx: dict[str, Any]) -> tuple[str, str]:
        cid = cx.get("id")
        if isinstance(cid, int) and cid % 2 == 1 and (cid - 1) // 2 < len(contexts):
            return contexts[(cid - 1) // 2]
        return cx["abstract_syntax"], cx.get("transfer_syntax") or ""

    answered: set[tuple[str, str]] = set()
    for cx in record.get("accepted", []):
        a, t = pair_of(cx)
        entry = amap.sop_classes.setdefault(a, {"accepted": [], "rejected": {}})
        if t not in entry["accepted"]:
            entry["accepted"].append(t)
        entry["rejected"].pop(t, None)
        answered.add((a, t))
    for cx in record.get("rejected", []):
        a, t = pair_of(cx)
        entry = amap.sop_classes.setdefault(a, {"accepted": [], "rejected": {}})
        if t and t not in entry["accepted"]:
            entry["rejected"][t] = _RESULT_REASON.get(cx.get("result"), cx.get("reason") or REASON_NONE)
            answered.add((a, t))
    for a, t in contexts:  # a context the peer left out of its answer counts as rejected without reason
        if (a, t) not in answered and t not in amap.sop_classes[a]["accepted"]:
            amap.sop_classes[a]["rejected"].setdefault(t, REASON_NONE)
