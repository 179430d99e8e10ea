"""The one step before an instance goes out: choose the context, walk, convert, verify.

:func:`prepare_payload` is what the engine calls for each instance once the association is up
(and what the dry-run planner calls, through :func:`plan_payload`, with the contexts the peer
would accept), so that the plan and the send take the same decision on every instance:

1. a file is walked as stored (:func:`core.walk.walk_file`) under the syntax it is really in,
   with the SOP Class/Instance UIDs the C-STORE command will carry: a structural fault fails the
   instance naming the element and the problem, before any byte goes out (PS3.5 7.1, 7.5, A.4);
2. when the stored syntax is accepted and nothing needs a rewrite (no File Meta fix, no
   odd-length value or fragment, no SOP Class UID taken from (0002,0002), no mislabelled
   encoding), the file is streamed as stored from the data set's offset;
3. otherwise the data set is loaded (with its real encoding, the scanner's safe fixes and the
   walk's repairs, on a copy in memory) and each accepted candidate is tried in order: encoded,
   walked, read back and compared, pixels decoded and compared for a conversion
   (:func:`core.roundtrip.convert_verified`); the first that verifies is used;
4. when none verifies, :class:`PayloadError` names each candidate's reason.

Nothing here sends or prints; the user's file is never modified.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from .convert import load_dataset, syntax_label
from .errors import ConversionError
from .roundtrip import SourcePixels, convert_verified
from .scan import ScannedInstance
from .walk import Fault, FaultKind, walk_file

LOGGER = logging.getLogger(__name__)

_META_READ = 4 << 20  # bytes read to find the end of the File Meta

__all__ = ["Payload", "PayloadError", "prepare_payload", "plan_payload", "data_offset"]


@dataclass(frozen=True)
class Payload:
    """What goes out for one instance, and what was done to it.

    Attributes:
        context: the accepted presentation context to send it on.
        transfer_syntax: that context's transfer syntax UID.
        data: the encoded data set (no File Meta), or None when streamed from `path` (or planned).
        path: the file to stream from `offset` when ``streamed``, else None.
        offset: where the data set starts in `path` (bytes).
        streamed: True when the file's bytes go out as stored.
        converted_from: the stored syntax when converted to another one, else None.
        kind: ``"as-stored"``, ``"lossless"``, ``"decompress-lossy"`` or ``"lossy"``.
        rewritten: True when the data set was re-encoded (a fix, a repair or a conversion).
        notes: what was done (the conversion first), for the report.
        warnings: what the conversion necessarily loses, for the report.
        repairs: the safe repairs made on the copy (odd values and fragments padded inside their item).
        tried: candidates refused before this one, as ``(transfer syntax UID, reason)``.
        size: bytes of the data set that go out.
    """

    context: Any
    transfer_syntax: str
    data: bytes | None
    path: str | None
    offset: int
    streamed: bool
    converted_from: str | None
    kind: str
    rewritten: bool
    notes: tuple[str, ...]
    warnings: tuple[str, ...]
    repairs: tuple[str, ...]
    tried: tuple[tuple[str, str], ...]
    size: int

    @property
    def lossless(self) -> bool:
        """True when the pixels and values that go out are exactly the source's."""
        return self.kind in ("as-stored", "lossless")


class PayloadError(ConversionError):
    """The instance cannot go out on any accepted context; the message says why, in words.

    Attributes:
        fault: the walk's fault when the data set itself is malformed (element and problem), else None.
        tried: the candidates refused, as ``(transfer syntax UID, reason)``.
    """

    def __init__(self, message: str, fault: Fault | None = None, tried: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.fault = fault
        self.tried = tuple(tried)


def _context_syntax(cx: Any) -> str:
    ts = cx.transfer_syntax
    return str(ts[0] if isinstance(ts, list | tuple) else ts)


def _contexts(candidates: Sequence[Any]) -> list[Any]:
    """Accept ``[context]`` or ``[(context, plan reason)]`` (as ``candidate_contexts`` returns)."""
    return [c[0] if isinstance(c, tuple) else c for c in candidates]


def data_offset(path: str) -> int:
    """Where a file's data set starts: after the preamble and File Meta, or 0 for a bare data set (bytes).

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        fp = BytesIO(f.read(_META_READ))  # a hostile length in the File Meta reads at most this
    try:
        if pydicom.filereader.read_preamble(fp, True) is None:
            fp.seek(0)
        pydicom.filereader._read_file_meta_info(fp)  # group 0002 only: flat, never recursive
        return fp.tell()
    except Exception:
        return 0


def prepare_payload(
    source: str | os.PathLike[str] | Dataset,
    inst: ScannedInstance,
    candidates: Sequence[Any],
    allow_lossy: bool = False,
    *,
    keep_data: bool = True,
) -> Payload:
    """Choose the context for one instance and produce what goes out (see the module docstring).

    Args:
        source: the file's path, or a data set given in memory.
        inst: the scanner's record (UIDs for the command, ``needs_rewrite``, ``pad_tags``,
            ``fix_sop_class``, ``encoding``, ``data_offset``).
        candidates: the accepted presentation contexts usable for it, best first (the stored
            syntax first), as contexts or ``(context, reason)`` pairs.
        allow_lossy: allow lossless-to-lossy compression.
        keep_data: False for a plan: the same decision, without keeping the encoded bytes.

    Returns:
        The :class:`Payload`.

    Raises:
        PayloadError: the data set is malformed (the fault names the element and the problem), the
            file is gone or changed since it was scanned, or no candidate verifies (each reason
            given). PS3.4 B.2.3, PS3.5 7.1/A.4.
    """
    contexts = _contexts(candidates)
    if not contexts:
        raise PayloadError("no accepted presentation context can carry it")
    stored = inst.transfer_syntax
    repairs: tuple[str, ...] = ()
    if not isinstance(source, Dataset):
        path = os.fspath(source)
        offset, size, repairs = _walk_as_stored(path, inst)
        if not inst.needs_rewrite and not repairs and (size - offset) % 2 == 0:
            for cx in contexts:
                if _context_syntax(cx) == stored:
                    return Payload(cx, stored, None, path, offset, True, None, "as-stored", False, (), (), (), (), size - offset)
        ds = _load(path, inst)
    else:
        ds = load_dataset(source, inst)
    return _convert(ds, inst, contexts, allow_lossy, repairs, keep_data)


def plan_payload(
    source: str | os.PathLike[str] | Dataset, inst: ScannedInstance, candidates: Sequence[Any], allow_lossy: bool = False
) -> Payload:
    """The decision :func:`prepare_payload` takes, for a dry run: same checks, no bytes kept.

    Raises:
        PayloadError: as :func:`prepare_payload` (the plan then calls the instance blocked).
    """
    return prepare_payload(source, inst, candidates, allow_lossy, keep_data=False)


def _walk_as_stored(path: str, inst: ScannedInstance) -> tuple[int, int, tuple[str, ...]]:
    """Walk the file's data set as stored; return ``(offset, file size, repairs)``.

    Raises:
        PayloadError: the file is gone, or its data set has a fault.
    """
    try:
        size = os.path.getsize(path)
        offset = inst.data_offset or data_offset(path)
        syntax = inst.encoding if inst.encoding is not None else inst.transfer_syntax
        result = walk_file(
            path,
            syntax,
            offset,
            encapsulated=UID(inst.transfer_syntax).is_encapsulated,
            expect_sop_class=None if inst.fix_sop_class else inst.sop_class_uid,
            expect_sop_instance=inst.sop_instance_uid,
        )
    except FileNotFoundError:
        raise PayloadError(f"{path} no longer exists") from None
    except (OSError, ValueError) as exc:
        raise PayloadError(f"cannot read {path}: {exc}") from exc
    if result.fault is not None:
        fault = result.fault
        if fault.kind is FaultKind.UID:
            raise PayloadError(f"the file changed since it was scanned or contradicts its header: {fault}", fault)
        raise PayloadError(f"the data set is malformed: {fault}", fault)
    return offset, size, tuple(str(r) for r in result.repairs)


def _load(path: str, inst: ScannedInstance) -> Dataset:
    try:
        return load_dataset(path, inst)
    except RecursionError:  # the walk bounds the nesting; this is the last guard
        raise PayloadError("sequences nested too deeply to read") from None


def _convert(
    ds: Dataset, inst: ScannedInstance, contexts: list[Any], allow_lossy: bool, repairs: tuple[str, ...], keep_data: bool
) -> Payload:
    """Try each context in order; the first verified conversion (or re-encoding) wins."""
    tried: list[tuple[str, str]] = []
    pixels = SourcePixels()
    for cx in contexts:
        ts = _context_syntax(cx)
        try:
            conv = convert_verified(
                ds,
                ts,
                allow_lossy,
                source_pixels=pixels,
                sop_class_uid=inst.sop_class_uid or None,
                sop_instance_uid=inst.sop_instance_uid or None,
            )
        except ConversionError as exc:
            LOGGER.debug("Instance %s: %s refused: %s", inst.sop_instance_uid, ts, exc.message)
            tried.append((ts, exc.message))
            continue
        except RecursionError:
            tried.append((ts, "sequences nested too deeply to encode"))
            continue
        except Exception as exc:  # the last guard: one instance's data never stops a batch
            LOGGER.debug("Instance %s: %s failed", inst.sop_instance_uid, ts, exc_info=True)
            tried.append((ts, f"cannot be encoded: {type(exc).__name__}: {exc}"))
            continue
        notes = conv.notes + tuple(f"repaired: {r}" for r in repairs)
        return Payload(
            cx,
            ts,
            conv.data if keep_data else None,
            None,
            0,
            False,
            conv.converted_from,
            conv.kind,
            True,
            notes,
            conv.warnings,
            repairs,
            tuple(tried),
            len(conv.data),
        )
    reasons = "; ".join(f"{syntax_label(ts)}: {why}" for ts, why in tried)
    raise PayloadError(f"no accepted transfer syntax can carry it ({reasons})", tried=tried)
