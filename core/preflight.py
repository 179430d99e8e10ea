"""Pre-flight: what will happen to each instance before the first byte goes out.

* :func:`plan_instances` gives every scanned instance its planned outcome:
  ``as-stored``, ``convert`` (with the target syntax and whether it is lossless,
  a decompression of a lossy source, or lossy) or ``blocked`` (with why). It
  walks the engine's own decisions - :func:`~core.negotiation.plan_contexts`,
  the strategy :func:`~core.strategies.fallback_chain`,
  :func:`~core.negotiation.candidate_contexts` (which applies
  :func:`~core.convert.conversion_plan`) and the rules of :mod:`core.rules` (study
  partitioning, fallback, when an instance waits for a more conservative strategy) -
  against the peer's answers,
  taken from a saved :class:`~core.probe.AcceptanceMap` or, when the map does
  not cover what is needed, from a quick negotiation (associations that are
  released at once; nothing is stored).
* :func:`validate_instances` checks each instance: SOP Class, SOP Instance,
  Study and Series Instance UIDs present and well formed (PS3.5 9.1), the
  transfer syntax consistent with the encoding (PS3.10 7.1), encapsulated pixel
  data only under an encapsulated syntax (PS3.5 A.4), duplicates in the batch;
  every finding names the element tag.

Everything here is plain data (no Qt): the GUI shows ``InstancePlan.message`` in
its plan column and :func:`summarize` above it.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pydicom
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.presentation import PresentationContext

from .config import StoreConfig
from .convert import conversion_plan, syntax_label
from .errors import AssociationError, CourierError
from .events import Event
from .negotiation import open_association
from .outcomes import ContextRecord, Negotiation
from .probe import REASON_ABSTRACT, REASON_NONE, REASON_TRANSFER, REASON_USER, AcceptanceMap, quiet_no_context
from .rules import (
    abstract_refused,
    falls_back,
    partition_by_study,
    planned_contexts,
    secondary_gives_up,
    send_chain,
    usable_contexts,
    waits_for_next_strategy,
)
from .scan import ScannedInstance
from .strategies import is_lossy_syntax, parse_strategy, strategy_syntaxes

LOGGER = logging.getLogger(__name__)

__all__ = [
    "Finding",
    "InstancePlan",
    "PlanError",
    "PlanProgress",
    "plan_instances",
    "validate_instances",
    "validate_uid",
    "summarize",
    "summary_text",
    "needs_confirmation",
    "MSG_CLASS_REFUSED",
    "MSG_ONLY_LOSSY",
]

MSG_CLASS_REFUSED = "blocked: SOP class not accepted by this PACS"
MSG_ONLY_LOSSY = "blocked: only lossy targets accepted (enable lossy conversion to send)"
_REASON_RESULT = {REASON_USER: 1, REASON_NONE: 2, REASON_ABSTRACT: 3, REASON_TRANSFER: 4}
_TAG_RE = re.compile(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)")


class PlanError(CourierError):
    """No plan can be made: the peer could not be reached or refused the association."""


@dataclass(frozen=True)
class PlanProgress(Event):
    """Progress of a plan: `done` of `total` negotiations (a saved map needs none)."""

    done: int
    total: int
    strategy: str = ""


@dataclass(frozen=True)
class Finding:
    """One validation finding.

    Attributes:
        tag: the element, e.g. ``"(0020,000D)"``.
        keyword: the element's keyword, e.g. ``"StudyInstanceUID"``.
        severity: ``"error"`` (the file breaks the standard; a PACS is likely to refuse
            or mis-file it) or ``"warning"``.
        message: plain words.
    """

    tag: str
    keyword: str
    severity: str
    message: str

    def __str__(self) -> str:
        return f"{self.tag} {self.keyword}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        """Plain dict for reports."""
        return {"tag": self.tag, "keyword": self.keyword, "severity": self.severity, "message": self.message}


@dataclass
class InstancePlan:
    """The planned outcome of one instance.

    Attributes:
        index: position in the input list.
        path: the file.
        plan: ``"as-stored"``, ``"convert"``, ``"blocked"`` (or ``"skipped"`` for a file that is
            not DICOM, which a send skips too).
        kind: the conversion kind: ``as-stored``, ``lossless``, ``decompress-lossy``, ``lossy``,
            ``blocked`` or ``skipped``.
        message: e.g. ``"convert Explicit VR LE → Implicit VR LE (lossless)"``.
        stored_syntax / target_syntax: transfer syntax UIDs (target None when blocked).
        strategy: the strategy whose association would carry the instance.
        findings: validation findings (they do not change the plan: the engine sends such files).
    """

    index: int
    path: str
    sop_class_uid: str
    sop_instance_uid: str
    stored_syntax: str
    plan: str
    kind: str
    message: str
    target_syntax: str | None = None
    strategy: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def lossy(self) -> bool:
        """True when the send would lose information (lossless source compressed lossily)."""
        return self.kind == "lossy"

    def to_outcome(self) -> dict[str, Any]:
        """The report entry of a dry run (``status: "planned"``; ``plan`` beside ``message``)."""
        return {
            "index": self.index,
            "path": self.path or None,
            "status": "skipped" if self.plan == "skipped" else "planned",
            "plan": self.plan,
            "message": self.message,
            "sop_class_uid": self.sop_class_uid or None,
            "sop_instance_uid": self.sop_instance_uid or None,
            "transfer_syntax": self.target_syntax,
            "converted_from": self.stored_syntax if self.plan == "convert" else None,
            "strategy_used": self.strategy,
            "stored_syntax": self.stored_syntax or None,
            "conversion": self.kind,
            "findings": [str(f) for f in self.findings],
        }


# -- validation ----------------------------------------------------------------------------------------


def validate_uid(value: str) -> str:
    """Return why `value` is not a well-formed UID (PS3.5 9.1), or ``""`` when it is.

    Rules: 1-64 characters, digits and dots only, no empty component, no
    leading zero in a component of more than one digit.
    """
    v = value.rstrip("\0")
    if not v:
        return "empty"
    if len(v) > 64:
        return f"{len(v)} characters long (at most 64)"
    if any(not (c.isdigit() or c == ".") for c in v):
        return "contains characters other than digits and dots"
    for comp in v.split("."):
        if comp == "":
            return "has an empty component (two dots, or a dot at the start or end)"
        if len(comp) > 1 and comp[0] == "0":
            return f"component {comp!r} has a leading zero"
    return ""


_UID_ELEMENTS = (
    ("(0008,0016)", "SOPClassUID", "sop_class_uid"),
    ("(0008,0018)", "SOPInstanceUID", "sop_instance_uid"),
    ("(0020,000D)", "StudyInstanceUID", "study_instance_uid"),
    ("(0020,000E)", "SeriesInstanceUID", "series_instance_uid"),
)


def _tag_keyword(tag: str) -> str:
    try:
        from pydicom.datadict import keyword_for_tag

        m = _TAG_RE.search(tag)
        return keyword_for_tag(int(m.group(1) + m.group(2), 16)) if m else ""
    except Exception:
        return ""


def _header_findings(path: str, stored_ts: str) -> list[Finding]:
    """Read the header again and check the syntax against the encoding and the pixel data."""
    out: list[Finding] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path, force=True, defer_size=256)
    except Exception:
        return out  # the scanner has said why already
    meta = getattr(ds, "file_meta", None)
    declared = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    implicit, little = ds.original_encoding
    for w in caught:  # pydicom reads on in the other VR encoding but keeps the declared one in original_encoding
        text = str(w.message)
        if "Expected explicit VR, but found implicit VR" in text:
            implicit = True
        elif "Expected implicit VR, but found explicit VR" in text:
            implicit = False
    encoding = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    if declared and UID(declared).is_transfer_syntax:
        d = UID(declared)
        d_enc = (
            ImplicitVRLittleEndian if d.is_implicit_VR else ExplicitVRLittleEndian if d.is_little_endian else ExplicitVRBigEndian
        )
        if implicit is not None and d_enc != encoding:
            out.append(
                Finding(
                    "(0002,0010)", "TransferSyntaxUID", "error", f"says {d.name} but the data set is encoded as {encoding.name}"
                )
            )
    elif not declared:
        out.append(
            Finding(
                "(0002,0010)",
                "TransferSyntaxUID",
                "warning",
                f"missing (no File Meta Information); the encoding is {encoding.name}",
            )
        )
    ts = UID(declared) if declared and UID(declared).is_transfer_syntax else UID(stored_ts or encoding)
    try:
        elem = ds.get_item(0x7FE00010) if 0x7FE00010 in ds else None
    except Exception:
        elem = None
    if elem is not None:
        undefined = bool(getattr(elem, "is_undefined_length", False)) or getattr(elem, "length", 0) == 0xFFFFFFFF
        if undefined and not ts.is_encapsulated:
            out.append(
                Finding(
                    "(7FE0,0010)",
                    "PixelData",
                    "error",
                    f"encapsulated (undefined length) under {ts.name}, which is not a compressed syntax",
                )
            )
        elif not undefined and ts.is_encapsulated:
            out.append(
                Finding(
                    "(7FE0,0010)",
                    "PixelData",
                    "error",
                    f"native (defined length) under {ts.name}, which requires encapsulated pixel data",
                )
            )
    if meta is not None:
        for mtag, mkw, dkw, dtag in (
            ("(0002,0002)", "MediaStorageSOPClassUID", "SOPClassUID", "(0008,0016)"),
            ("(0002,0003)", "MediaStorageSOPInstanceUID", "SOPInstanceUID", "(0008,0018)"),
        ):
            mv, dv = str(meta.get(mkw, "") or ""), str(ds.get(dkw, "") or "")
            if mv and dv and mv.rstrip("\0 ") != dv.rstrip("\0 "):
                out.append(Finding(mtag, mkw, "warning", f"{mv} differs from {dkw} {dtag} {dv}"))
    return out


def validate_instances(instances: Sequence[ScannedInstance], read_headers: bool = True) -> dict[int, list[Finding]]:
    """Check each instance; return ``{index: [Finding, ...]}`` (only instances with findings).

    Args:
        instances: scanner records (``index`` identifies them).
        read_headers: also re-read each file's header to check the transfer syntax against the
            encoding and the pixel data (one header read per file, values over 256 bytes skipped).
    """
    found: dict[int, list[Finding]] = {}
    first_by_uid: dict[str, ScannedInstance] = {}
    for inst in instances:
        if inst.status == "skipped":
            continue
        out: list[Finding] = []
        if inst.status == "failure":
            m = _TAG_RE.search(inst.reason)
            tag = m.group(0).upper().replace("X", "x") if m else ""
            out.append(Finding(tag, _tag_keyword(tag), "error", inst.reason))
        for tag, keyword, attr in _UID_ELEMENTS:
            value = str(getattr(inst, attr, "") or "")
            if not value:
                # a failed read may stop before group 0020: its UIDs are unknown, not missing
                if inst.status == "ok" and not any(f.tag == tag for f in out):
                    out.append(Finding(tag, keyword, "error", "missing (Type 1: a PACS needs it to file the instance)"))
                continue
            why = validate_uid(value)
            if why and not any(f.tag == tag for f in out):
                out.append(Finding(tag, keyword, "error", f"malformed UID {value!r}: {why} (PS3.5 9.1)"))
        if inst.sop_instance_uid:
            first = first_by_uid.setdefault(inst.sop_instance_uid, inst)
            if first is not inst:
                out.append(
                    Finding(
                        "(0008,0018)",
                        "SOPInstanceUID",
                        "warning",
                        f"duplicate in this batch: the same UID as {first.path or f'input {first.index}'} "
                        "(the PACS keeps only one of them)",
                    )
                )
        if read_headers and inst.path and inst.status == "ok":
            for f in _header_findings(inst.path, inst.transfer_syntax):
                if not any(g.tag == f.tag and g.message == f.message for g in out):
                    out.append(f)
        if out:
            found[inst.index] = out
    return found


# -- the peer's answers ----------------------------------------------------------------------------------


def _make_cx(cid: int, abstract: str, ts: str) -> PresentationContext:
    cx = PresentationContext()
    cx.context_id = cid
    cx.abstract_syntax = abstract
    cx.transfer_syntax = [ts]
    cx.result = 0
    cx._as_scu = True
    cx._as_scp = False
    return cx


class _Answers:
    """Answers the question the engine asks the peer: which of these contexts do you accept?"""

    def __init__(self, cfg: StoreConfig, amap: AcceptanceMap | None, live: bool):
        self.cfg = cfg
        self.amap = amap
        self.live = live
        self.negotiations = 0
        self.offline = ""
        self.records: list[Negotiation] = []

    def __call__(
        self, contexts: list[tuple[str, str]], strategy: str, attempt: int
    ) -> tuple[list[PresentationContext], Negotiation]:
        if self.amap is not None and (self.amap.covers(contexts) or not self.live):
            return self._from_map(contexts, strategy, attempt)
        self.negotiations += 1
        try:
            with quiet_no_context():
                assoc, record = open_association(self.cfg, contexts, f"{strategy} (plan)", attempt)
        except AssociationError as exc:
            if self.amap is not None and exc.details.get("kind") == "connect":
                # the PACS is out of reach: plan from the saved map, contexts it lacks counting as refused
                LOGGER.info("Planning from the acceptance map alone: %s", exc.message)
                self.live = False
                self.offline = exc.message
                return self._from_map(contexts, strategy, attempt)
            raise
        accepted = list(assoc.accepted_contexts)
        try:
            assoc.release()
        except Exception:  # the answer is in
            LOGGER.debug("Release of a planning association failed", exc_info=True)
        record = replace(record, source="negotiation")
        self.records.append(record)
        return accepted, record

    def _from_map(
        self, contexts: list[tuple[str, str]], strategy: str, attempt: int
    ) -> tuple[list[PresentationContext], Negotiation]:
        assert self.amap is not None
        accepted: list[PresentationContext] = []
        yes: list[ContextRecord] = []
        no: list[ContextRecord] = []
        for i, (a, t) in enumerate(contexts):
            cid = 2 * i + 1
            answer = self.amap.answer(a, t) or "not probed"
            if answer == "accepted":
                accepted.append(_make_cx(cid, a, t))
                yes.append(ContextRecord(a, UID(a).name, t, cid))
            else:
                no.append(ContextRecord(a, UID(a).name, t, cid, _REASON_RESULT.get(answer, 2), answer))
        record = Negotiation(
            strategy,
            attempt,
            proposed=tuple(ContextRecord(a, UID(a).name, t) for a, t in contexts),
            accepted=tuple(yes),
            rejected=tuple(no),
            source="acceptance map",
        )
        self.records.append(record)
        if not accepted:  # pynetdicom aborts an association without an accepted context
            raise AssociationError(
                "the peer accepted none of the proposed presentation contexts (acceptance map)",
                remote_ae=self.cfg.remote_ae_title,
                details={"kind": "no-context", "transient": False, "negotiation": record.to_dict()},
            )
        return accepted, record


# -- the plan ---------------------------------------------------------------------------------------------


def _plan_from_candidate(inst: ScannedInstance, target: str, strategy: str) -> InstancePlan:
    stored = inst.transfer_syntax

    def make(plan: str, kind: str, message: str) -> InstancePlan:
        return InstancePlan(
            index=inst.index,
            path=inst.path,
            sop_class_uid=inst.sop_class_uid,
            sop_instance_uid=inst.sop_instance_uid,
            stored_syntax=stored,
            plan=plan,
            kind=kind,
            message=message,
            target_syntax=target,
            strategy=strategy,
        )

    if target == stored:
        return make("as-stored", "as-stored", "as stored")
    cp = conversion_plan(stored, target, True)  # the kind only; possibility was decided by candidate_contexts
    arrow = f"{syntax_label(stored)} → {syntax_label(target)}"
    words = {"lossless": "lossless", "decompress-lossy": "decompress lossy source", "lossy": "lossy"}
    kind = cp.kind if cp.kind in words else "lossless"
    return make("convert", kind, f"convert {arrow} ({words[kind]})")


def _blocked(inst: ScannedInstance, message: str, strategy: str | None = None) -> InstancePlan:
    return InstancePlan(
        index=inst.index,
        path=inst.path,
        sop_class_uid=inst.sop_class_uid,
        sop_instance_uid=inst.sop_instance_uid,
        stored_syntax=inst.transfer_syntax,
        plan="blocked",
        kind="blocked",
        message=message,
        strategy=strategy,
    )


def _blocked_message(
    inst: ScannedInstance, record: Negotiation | None, amap: AcceptanceMap | None, allow_lossy: bool, strategy: str
) -> str:
    """Why an instance has no usable context, in the words of issue 7."""
    sop, stored = inst.sop_class_uid, inst.transfer_syntax
    if amap is not None and sop in amap.sop_classes:
        accepted = amap.accepted(sop)
        if not accepted:
            return (
                MSG_CLASS_REFUSED
                if amap.class_refused(sop)
                else ("blocked: the PACS accepts no transfer syntax for this SOP class")
            )
    else:
        rec = record or Negotiation("", 0)
        accepted = rec.accepted_for(sop)
        if not accepted:
            if abstract_refused(sop, rec) or not any(r.abstract_syntax == sop for r in rec.rejected):
                return MSG_CLASS_REFUSED
            proposed = [str(p.transfer_syntax) for p in rec.proposed if p.abstract_syntax == sop]
            return (
                "blocked: the PACS accepts none of the transfer syntaxes proposed for this SOP class ("
                + ", ".join(syntax_label(t) for t in proposed[:6])
                + (", ..." if len(proposed) > 6 else "")
                + ")"
            )
    if any(conversion_plan(stored, t, True).possible for t in accepted):
        if not allow_lossy:
            return MSG_ONLY_LOSSY
        proposable = {str(t) for t in strategy_syntaxes(strategy)}
        if not any(t in proposable for t in accepted if is_lossy_syntax(t)):
            return (
                "blocked: only lossy targets accepted ("
                + ", ".join(syntax_label(t) for t in accepted[:4])
                + "); use the extended strategy to propose them"
            )
    reasons = {conversion_plan(stored, t, allow_lossy).reason for t in accepted}
    return (
        f"blocked: {syntax_label(stored)} cannot be converted to what the PACS accepts ("
        + ", ".join(syntax_label(t) for t in accepted[:6])
        + "): "
        + "; ".join(sorted(reasons))[:300]
    )


def plan_instances(
    instances: Sequence[ScannedInstance],
    acceptance: AcceptanceMap | dict[str, Any] | None,
    cfg: StoreConfig | dict[str, Any],
    strategy: str = "standard",
    max_retries: int = 4,
    parallel: int = 1,
    validate: bool = True,
    on_progress: Callable[[PlanProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[InstancePlan]:
    """Plan every instance the way :class:`~core.engine.SendJob` would send it.

    The engine's steps are replayed: for each strategy of the fallback chain,
    contexts are planned with ``plan_contexts``; the peer's answer comes from
    `acceptance` when it covers every proposed context, else from a real
    negotiation (released at once); each instance takes the first of
    ``candidate_contexts``; an instance with none waits for the next strategy
    unless its SOP class itself was refused; an association failure falls back, hands
    a parallel part back or stops the plan by the engine's rules (:mod:`core.rules`).

    Args:
        instances: scanner records (:func:`core.scan.scan_paths`), in send order.
        acceptance: a saved :class:`AcceptanceMap` (or its dict), or None to negotiate.
        cfg: the connection; ``allow_lossy`` decides whether lossy targets may be used.
        strategy: the first transfer-syntax strategy, as given to the send.
        max_retries: how many more conservative strategies the send may try (CLI default 4).
        parallel: associations the send will use at once (``SendJob(parallel=...)``): instances are
            split by study the way the engine splits them, and each part gets its own contexts.
        validate: add :func:`validate_instances` findings to each plan.
        on_progress: called with :class:`PlanProgress` after each group is planned.
        cancel: when set, planning stops; unplanned instances are ``blocked`` ("planning cancelled").

    Returns:
        one :class:`InstancePlan` per instance, in input order.

    Raises:
        PlanError: a negotiation was needed and the peer could not be reached, did not answer,
            refused the association (A-ASSOCIATE-RJ) in a way no other proposal can cure, or
            TLS failed; the message says why.
    """
    cfg = StoreConfig.from_dict(cfg) if not isinstance(cfg, StoreConfig) else cfg
    amap = AcceptanceMap.from_dict(acceptance) if isinstance(acceptance, dict) else acceptance
    parse_strategy(strategy)
    answers = _Answers(cfg, amap, live=True)
    plans: dict[int, InstancePlan] = {}
    ready: list[ScannedInstance] = []
    for inst in instances:
        if inst.status == "ok":
            ready.append(inst)
        elif inst.status == "skipped":
            plans[inst.index] = InstancePlan(
                inst.index,
                inst.path,
                inst.sop_class_uid,
                inst.sop_instance_uid,
                inst.transfer_syntax,
                "skipped",
                "skipped",
                f"skipped: {inst.reason}",
            )
        else:
            plans[inst.index] = _blocked(inst, f"blocked: file problem ({inst.reason})")
    chain = send_chain(strategy, max_retries, cfg)
    progress = {"done": 0}

    def one_pass(pending: list[ScannedInstance], primary: bool) -> list[ScannedInstance]:
        """Plan one set of instances as the engine sends them, strategy by strategy.

        Returns the instances a secondary association gave up (the engine sends them over the
        primary one afterwards).
        """
        last_record: dict[int, Negotiation | None] = {}
        for attempt, strat in enumerate(chain, start=1):
            if not pending or (cancel is not None and cancel.is_set()):
                break
            deferred: list[ScannedInstance] = []
            groups = planned_contexts(((i.sop_class_uid, i.transfer_syntax) for i in pending), strat, cfg)
            more = attempt < len(chain)
            for gi, group in enumerate(groups):
                members = [i for i in pending if i.sop_class_uid in group.sop_classes]
                try:
                    accepted, record = answers(group.contexts, str(strat), attempt)
                except AssociationError as exc:
                    rec = Negotiation.from_dict(exc.details["negotiation"]) if exc.details.get("negotiation") else None
                    if not primary and secondary_gives_up(exc.details):
                        return [i for i in pending if i.index not in plans]
                    if falls_back(exc.details):
                        for i in members:
                            last_record[i.index] = rec
                        if more:
                            deferred += members
                        else:
                            for i in members:
                                plans[i.index] = _blocked(i, _blocked_message(i, rec, amap, cfg.allow_lossy, strat), strat)
                        continue
                    raise PlanError(f"cannot plan: {exc.message}", remote_ae=cfg.remote_ae_title, details=exc.details) from exc
                except CourierError as exc:  # TLS set-up
                    raise PlanError(f"cannot plan: {exc.message}", remote_ae=cfg.remote_ae_title, details=exc.details) from exc
                cache: dict[tuple[str, str], list[Any]] = {}
                for i in members:
                    key = (i.sop_class_uid, i.transfer_syntax)
                    if key not in cache:
                        cache[key] = usable_contexts(accepted, *key, cfg)
                    cands = cache[key]
                    if cands:
                        plans[i.index] = _plan_from_candidate(i, str(cands[0][0].transfer_syntax[0]), str(strat))
                        continue
                    last_record[i.index] = record
                    if waits_for_next_strategy(i.sop_class_uid, record, more):
                        deferred.append(i)
                    else:
                        plans[i.index] = _blocked(i, _blocked_message(i, record, amap, cfg.allow_lossy, strat), strat)
                progress["done"] += 1
                if on_progress is not None:
                    on_progress(PlanProgress(progress["done"], progress["done"] + len(groups) - gi - 1, str(strat)))
            pending = deferred
        for i in pending:
            if cancel is not None and cancel.is_set():
                plans[i.index] = _blocked(i, "blocked: planning cancelled")
            else:
                plans[i.index] = _blocked(
                    i, _blocked_message(i, last_record.get(i.index), amap, cfg.allow_lossy, str(chain[-1])), str(chain[-1])
                )
        return []

    if parallel > 1 and len(ready) > 1:  # as the engine: each part plans its own contexts
        buckets = partition_by_study(ready, parallel, lambda i: (i.index, i.study_instance_uid, i.size))
        leftovers: list[ScannedInstance] = []
        for n, bucket in enumerate(buckets):
            leftovers += one_pass(bucket, n == 0)
        if leftovers:
            one_pass(sorted(leftovers, key=lambda i: i.index), True)
    else:
        one_pass(ready, True)
    if validate:
        for index, findings in validate_instances(instances).items():
            if index in plans:
                plans[index].findings = findings
    return [plans[inst.index] for inst in instances]


def summarize(plans: Iterable[InstancePlan]) -> dict[str, int]:
    """Counts: ``as-stored``, ``convert``, ``blocked``, ``skipped``, ``lossy``, ``findings``, ``total``."""
    counts = {"as-stored": 0, "convert": 0, "blocked": 0, "skipped": 0, "lossy": 0, "findings": 0, "total": 0}
    for p in plans:
        counts["total"] += 1
        counts[p.plan] = counts.get(p.plan, 0) + 1
        counts["lossy"] += p.lossy
        counts["findings"] += bool(p.findings)
    return counts


def summary_text(plans: Iterable[InstancePlan]) -> str:
    """E.g. ``"412 as stored, 30 converted, 3 blocked"`` (lossy and skipped counts when any)."""
    c = summarize(plans)
    text = f"{c['as-stored']} as stored, {c['convert']} converted, {c['blocked']} blocked"
    if c["lossy"]:
        text += f" ({c['lossy']} converted lossily)"
    if c["skipped"]:
        text += f", {c['skipped']} skipped (not DICOM)"
    return text


def needs_confirmation(plans: Iterable[InstancePlan]) -> bool:
    """True when anything is blocked or would be converted lossily (the GUI then asks before sending)."""
    return any(p.plan == "blocked" or p.lossy for p in plans)
