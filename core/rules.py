"""The send's decisions, each written once.

The engine (:mod:`core.engine`), the dry-run planner (:mod:`core.preflight`) and the seed
API (:mod:`core.api`) call these functions, so a plan and a send cannot disagree:

* :func:`partition_by_study`: how instances are spread over parallel associations.
* :func:`refused_whatever_we_propose`, :func:`falls_back`, :func:`secondary_gives_up`:
  what an association failure means for the instances waiting for it.
* :func:`association_retryable` and :func:`is_transient_status`: what counts as transient.
* :func:`abstract_refused` and :func:`waits_for_next_strategy`: what happens to an instance
  whose SOP class got no usable presentation context (the usable ones are ranked by
  :func:`core.negotiation.candidate_contexts`).
* :func:`send_chain`, :func:`planned_contexts` and :func:`usable_contexts`: the strategies and
  presentation contexts a destination's settings allow (``implicit_vr_only``).
* :func:`resends_after_break` and :func:`peer_judged_broken`: what a broken association means
  for the instance in flight and for the peer (issue 12: no instance can sink a batch).

The ``details`` arguments are the ``details`` dict of an
:class:`~core.errors.AssociationError` (``kind``, ``transient``, ``result``, ``source``, ``reason``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydicom.uid import ImplicitVRLittleEndian

from .config import StoreConfig
from .negotiation import ContextGroup, candidate_contexts, plan_contexts
from .outcomes import Negotiation
from .strategies import UNIVERSAL, TransferSyntaxStrategy, fallback_chain

__all__ = [
    "partition_by_study",
    "refused_whatever_we_propose",
    "falls_back",
    "secondary_gives_up",
    "association_retryable",
    "is_transient_status",
    "abstract_refused",
    "waits_for_next_strategy",
    "send_chain",
    "planned_contexts",
    "usable_contexts",
    "resends_after_break",
    "peer_judged_broken",
    "BROKEN_PEER_BREAKS",
]

T = TypeVar("T")

#: A-ASSOCIATE-RJ reasons from the service user (source 1) that no proposal can cure
#: (PS3.8 Table 9-21): 2 application context name not supported, 3 calling AE title not
#: recognized, 7 called AE title not recognized.
_USER_REASONS_NOT_ABOUT_CONTEXTS = (2, 3, 7)

#: Context results meaning "this SOP class is refused", not "this transfer syntax is"
#: (PS3.8 9.3.3.2): 1 user rejection, 3 abstract syntax not supported.
_CLASS_REFUSED_RESULTS = (1, 3)

#: Context results that judge the proposed context on its own (PS3.8 9.3.3.2): 3 abstract
#: syntax not supported, 4 transfer syntax not supported. A smaller proposal gets the same answer.
_JUDGED_ON_ITS_OWN = (3, 4)

#: Instances in a row that may each break the association, with none answered in between,
#: before the peer is judged broken and the rest of the batch is not offered to it.
BROKEN_PEER_BREAKS = 6


def partition_by_study(members: Sequence[T], n: int, key: Callable[[T], tuple[int, str, int]]) -> list[list[T]]:
    """Split `members` into at most `n` lists of similar size in bytes, keeping each study whole.

    Args:
        members: the instances to send (engine items, or scanner records for a plan).
        n: how many associations will be used at once (>= 1).
        key: ``key(member)`` gives ``(input index, Study Instance UID, size in bytes)``; a member
            without a Study Instance UID is a study of its own.

    Returns:
        the non-empty parts, each in input order; the largest studies are placed first, each on
        the part with the fewest bytes so far.
    """
    studies: dict[str, list[T]] = {}
    for m in members:
        index, study, _size = key(m)
        studies.setdefault(study or f"#{index}", []).append(m)
    buckets: list[list[T]] = [[] for _ in range(min(n, len(studies)))]
    sizes = [0] * len(buckets)

    def weight(group: list[T]) -> int:
        return sum(key(m)[2] + 1 for m in group)

    for group in sorted(studies.values(), key=lambda g: -weight(g)):
        k = sizes.index(min(sizes))
        buckets[k].extend(group)
        sizes[k] += weight(group)
    return [sorted(b, key=lambda m: key(m)[0]) for b in buckets if b]


def refused_whatever_we_propose(details: Mapping[str, Any]) -> bool:
    """True for a permanent A-ASSOCIATE-RJ whose reason no proposal can cure (PS3.8 Table 9-21).

    The service user refused the application context or does not know the calling or called
    AE title: a more conservative transfer-syntax strategy would be refused the same way.
    """
    return (
        details.get("kind") == "rejected"
        and not details.get("transient")
        and details.get("source") == 1
        and details.get("reason") in _USER_REASONS_NOT_ABOUT_CONTEXTS
    )


def falls_back(details: Mapping[str, Any]) -> bool:
    """True when an association that failed during negotiation should be retried with the next strategy.

    An abort during negotiation, no accepted context, or a permanent rejection that may be
    about the proposal (see :func:`refused_whatever_we_propose`). Not a transient rejection
    or a timeout: those are about the peer, not about what was proposed.
    """
    kind = details.get("kind")
    if kind in ("aborted", "no-context"):
        return True
    return kind == "rejected" and not details.get("transient") and not refused_whatever_we_propose(details)


def secondary_gives_up(details: Mapping[str, Any]) -> bool:
    """True when a parallel association (not the first) that could not be opened hands its instances back.

    A peer that limits associations per sender rejects, aborts or ignores the extra ones; their
    instances then go over the associations that work (PS3.8 allows several, the peer decides).
    """
    return details.get("kind") in ("rejected", "aborted", "timeout")


def association_retryable(details: Mapping[str, Any], peer_has_worked: bool) -> bool:
    """True when opening an association should be retried after a back-off.

    Args:
        details: the failure's details.
        peer_has_worked: an association with this peer was established earlier in the job.

    Returns:
        True for a transient failure of a peer that says "busy" (A-ASSOCIATE-RJ result 2,
        PS3.8 9.3.4) or that has worked in this job (so it went down and may come back).
    """
    return bool(details.get("transient")) and (details.get("kind") == "rejected" or peer_has_worked)


def is_transient_status(code: int) -> bool:
    """True for C-STORE failures worth retrying later: 0xA7xx (out of resources), 0x0213 (resource limitation).

    Sources: PS3.4 B.2.3 (Storage statuses), PS3.7 C.5.9 (Resource Limitation).
    """
    return 0xA700 <= code <= 0xA7FF or code == 0x0213


def abstract_refused(sop_class_uid: str, negotiation: Negotiation) -> bool:
    """True when the peer refused every context of `sop_class_uid` for the SOP class itself.

    Every rejected context of the class has result 1 (user rejection) or 3 (abstract syntax
    not supported), and none was accepted (PS3.8 9.3.3.2): no other transfer syntax will help.
    """
    mine = [r for r in negotiation.rejected if r.abstract_syntax == sop_class_uid]
    return (
        bool(mine)
        and all(r.result in _CLASS_REFUSED_RESULTS for r in mine)
        and not any(a.abstract_syntax == sop_class_uid for a in negotiation.accepted)
    )


def waits_for_next_strategy(sop_class_uid: str, negotiation: Negotiation, more_strategies: bool) -> bool:
    """True when an instance with no usable context waits for the next strategy instead of failing.

    A more conservative strategy proposes a subset of the same contexts for the instance. That
    can only help when the peer's answer depended on the whole proposal: some context of the
    class was rejected with result 1 (user rejection) or 2 (no reason given), as by peers that
    accept one context per SOP class or only so many. When the class itself was refused, or
    every rejection judged the context on its own (3, 4) and nothing accepted could carry the
    instance, the next association would get the same answer: the instance fails now and opens
    no other association (PS3.8 9.3.3.2).

    Args:
        sop_class_uid: the instance's SOP class.
        negotiation: the association that offered no usable context.
        more_strategies: a further strategy of the fallback chain remains.
    """
    if not more_strategies or abstract_refused(sop_class_uid, negotiation):
        return False
    mine = [r for r in negotiation.rejected if r.abstract_syntax == sop_class_uid]
    return any(r.result not in _JUDGED_ON_ITS_OWN for r in mine)


def send_chain(strategy: str | TransferSyntaxStrategy, max_retries: int, cfg: StoreConfig) -> list[TransferSyntaxStrategy]:
    """The strategies a send walks: :func:`core.strategies.fallback_chain`, or only ``universal``.

    With ``implicit_vr_only`` every strategy would propose the same single context per class.
    """
    return [UNIVERSAL] if cfg.implicit_vr_only else fallback_chain(strategy, max_retries)


def planned_contexts(pairs: Iterable[tuple[str, str]], strategy: str, cfg: StoreConfig) -> list[ContextGroup]:
    """:func:`core.negotiation.plan_contexts` under the destination's settings.

    With ``implicit_vr_only`` each SOP class gets one context, Implicit VR Little Endian
    (PS3.5 A.1), whatever the files' own syntaxes: a file that cannot be converted to it then
    fails with that reason instead of going out in another syntax.
    """
    only = ImplicitVRLittleEndian if cfg.implicit_vr_only else None
    return plan_contexts(pairs, strategy, cfg.allow_lossy, only=only)


def usable_contexts(accepted: Iterable[Any], sop_class_uid: str, stored_ts: str, cfg: StoreConfig) -> list[tuple[Any, str]]:
    """:func:`core.negotiation.candidate_contexts` under the destination's settings (best first)."""
    cands = candidate_contexts(accepted, sop_class_uid, stored_ts, cfg.allow_lossy)
    if cfg.implicit_vr_only:
        cands = [(cx, why) for cx, why in cands if str(cx.transfer_syntax[0]) == ImplicitVRLittleEndian]
    return cands


def resends_after_break(attempts: int, broke_before: bool, max_resends: int) -> bool:
    """True when an instance in flight when its association broke is sent once more, alone.

    Args:
        attempts: C-STORE attempts of the instance so far (the broken one included).
        broke_before: an association already broke while it was in flight.
        max_resends: the ``max_resends`` setting (0: never re-send an instance).

    Returns:
        True at most once per instance (it then goes alone on a fresh association after the
        others, so it cannot take them down with it), and only within `max_resends`.
    """
    return not broke_before and attempts <= max_resends


def peer_judged_broken(breaks_in_a_row: int, seconds_without_answer: float, outage_limit_s: float) -> bool:
    """True when a peer that keeps breaking associations should get nothing more in this run.

    One instance breaking the association says something about that instance (a peer that
    cannot parse it aborts); :data:`BROKEN_PEER_BREAKS` different instances in a row with no
    C-STORE answered in between, or at least two over more than the outage limit, say the
    peer cannot take instances now. This bounds the associations a broken peer costs.

    Args:
        breaks_in_a_row: instances whose first attempt broke the association since the last answer.
        seconds_without_answer: seconds since the last C-STORE response (or the start).
        outage_limit_s: ``retry_total_s``.
    """
    return breaks_in_a_row >= BROKEN_PEER_BREAKS or (breaks_in_a_row >= 2 and seconds_without_answer > outage_limit_s)
