"""The seed API: ``store_dataset``, ``store_datasets_batch``, ``manage_association_with_fallback``.

Semantics are those of the product seed and ``SEED_API.md``; the GUI and the CLI
use the same :class:`core.engine.SendJob` underneath.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import Association

from . import events as ev
from .config import StoreConfig
from .engine import SendJob, items_from_inputs
from .errors import AssociationError, DimseCommandError, TlsConfigError
from .negotiation import open_association
from .outcomes import AttemptResult, InstanceOutcome, InstanceState
from .rules import refused_whatever_we_propose
from .strategies import fallback_chain, strategy_syntaxes

LOGGER = logging.getLogger(__name__)

__all__ = ["store_dataset", "store_datasets_batch", "manage_association_with_fallback"]

DatasetLike = Dataset | str | os.PathLike[str]


def store_dataset(
    config: dict[str, Any],
    dataset: DatasetLike,
    transfer_syntax_strategy: str = "conservative",
    max_retries: int = 3,
) -> dict[str, Any]:
    """Store one data set with automatic transfer-syntax fallback (seed: Basic C-STORE Operation).

    Args:
        config: seed config dict (``remote_host``, ``remote_port``, ``remote_ae_title``,
            ``local_ae_title``...; see :mod:`core.config`).
        dataset: a ``pydicom.Dataset`` or a path to a DICOM file (streamed without
            decoding when the peer accepts its stored transfer syntax).
        transfer_syntax_strategy: the first strategy; more conservative ones follow.
        max_retries: how many further strategies may be tried.

    Returns:
        dict with ``status`` (``success``/``warning``/``failure``), ``message``,
        ``status_code``, ``strategy_used``, ``transfer_syntax``, ``sop_class_uid``,
        ``sop_instance_uid``, ``converted_from``, ``attempts`` (one negotiation
        record per association attempt), ``notes``. A peer's failure status is a
        ``failure`` result, not an exception.

    Raises:
        ValueError: bad config or strategy.
        AssociationError: no association could be established with any strategy.
        DimseCommandError: the C-STORE exchange broke (no response, abort) and a
            new association did not recover it.
        TlsConfigError: TLS was asked for and cannot be set up.
    """
    job = SendJob(config, transfer_syntax_strategy, max_retries)
    items = items_from_inputs([dataset])
    result = job.run(items)
    attempts = [a.to_dict() for a in result.associations]
    out = result.outcomes[0].to_dict()
    out["attempts"] = attempts
    if result.no_association and result.first_exception is not None:
        _raise_with_attempts(result.first_exception, attempts)
    if _exchange_broke(result.outcomes[0]):
        raise DimseCommandError(out["message"], remote_ae=job.cfg.remote_ae_title, details={"attempts": attempts, "result": out})
    return out


def _exchange_broke(outcome: InstanceOutcome) -> bool:
    """True when the instance's C-STOREs ended without a response (abort, timeout, closed connection)."""
    if outcome.state == InstanceState.UNKNOWN:
        return True
    last = outcome.attempts_detail[-1] if outcome.attempts_detail else None
    return (
        outcome.state == InstanceState.FAILED
        and last is not None
        and last.result in (AttemptResult.UNKNOWN, AttemptResult.NOT_RECEIVED)
    )


def _raise_with_attempts(exc: Exception, attempts: list[dict[str, Any]]) -> None:
    if isinstance(exc, AssociationError | TlsConfigError | DimseCommandError):
        exc.details.setdefault("attempts", attempts)
    raise exc


def store_datasets_batch(
    config: dict[str, Any],
    datasets: Sequence[DatasetLike],
    transfer_syntax_strategy: str = "standard",
    continue_on_error: bool = True,
    max_retries: int = 3,
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Store many data sets over as few associations as possible (seed: Batch C-STORE Operation).

    Args:
        config: seed config dict.
        datasets: ``pydicom.Dataset`` objects and/or file paths, mixed freely.
        transfer_syntax_strategy: the first strategy.
        continue_on_error: False stops at the first failure; the rest are ``skipped``.
        max_retries: how many further strategies may be tried.
        on_event: optional callback for :mod:`core.events` progress records.
        cancel: optional ``threading.Event``; when set the job stops between C-STOREs.

    Returns:
        dict with ``total``, ``successful``, ``warnings``, ``failed``, ``skipped``,
        ``details`` (one dict per input, in input order, with ``dataset_index``,
        ``status``, ``message``, ``status_code``, ``transfer_syntax``,
        ``strategy_used``, ``path`` for path inputs...), ``associations`` (how many
        were established) and ``association_details`` (the negotiation records).
        More SOP classes than fit in 128 presentation contexts go over several
        associations.

    Raises:
        ValueError: bad config or strategy.
        AssociationError / TlsConfigError: no association could be established at all.
    """
    job = SendJob(config, transfer_syntax_strategy, max_retries, continue_on_error, on_event, cancel)
    result = job.run(items_from_inputs(list(datasets)))
    attempts = [a.to_dict() for a in result.associations]
    if result.no_association and result.first_exception is not None:
        _raise_with_attempts(result.first_exception, attempts)
    details = []
    for o in result.outcomes:
        d = o.to_dict()
        d["dataset_index"] = d.pop("index")
        details.append(d)
    s = result.summary()
    return {
        "total": s["total"],
        "successful": s["success"],
        "warnings": s["warning"],
        "failed": s["failure"],
        "skipped": s["skipped"],
        "details": details,
        "associations": result.established,
        "association_details": attempts,
        "cancelled": result.cancelled,
    }


@contextlib.contextmanager
def manage_association_with_fallback(
    remote_host: str,
    remote_port: int,
    remote_ae_title: str,
    sop_class_uid: str,
    transfer_syntax_strategy: str = "conservative",
    local_ae_title: str = "AXIOM_SCU",
    max_retries: int = 3,
    transfer_syntaxes: Sequence[str] = (),
    **config: Any,
) -> Iterator[tuple[Association, dict[str, Any]]]:
    """Open an association for one SOP class, falling back strategy by strategy (seed: Advanced).

    One presentation context per transfer syntax: `transfer_syntaxes` (e.g. a
    data set's own syntax) first, then the strategy's. The association is
    released on exit (aborted if the block raised). The association's reactor
    never takes DIMSE responses meant for the caller, so ``assoc.send_c_store``
    is safe to use.

    Args:
        remote_host: the peer's host name or IP address.
        remote_port: the peer's TCP port.
        remote_ae_title: the peer's AE title (called AE title).
        sop_class_uid: the abstract syntax to negotiate.
        transfer_syntax_strategy: the first strategy.
        local_ae_title: calling AE title.
        max_retries: further strategies to try after the first.
        transfer_syntaxes: extra syntaxes to propose first.
        **config: further config keys (timeouts, TLS...), see :mod:`core.config`.

    Yields:
        ``(assoc, metadata)``: the established pynetdicom ``Association`` and a dict
        with ``strategy_used``, ``attempts`` (negotiation records) and ``accepted``.

    Raises:
        AssociationError: no strategy gave an association with a context for the SOP class.
        TlsConfigError: TLS was asked for and cannot be set up.
    """
    cfg = StoreConfig.from_dict(
        {
            "remote_host": remote_host,
            "remote_port": remote_port,
            "remote_ae_title": remote_ae_title,
            "local_ae_title": local_ae_title,
            **config,
        }
    )
    attempts: list[dict[str, Any]] = []
    last: AssociationError | None = None
    for n, strategy in enumerate(fallback_chain(transfer_syntax_strategy, max_retries), start=1):
        syntaxes = list(dict.fromkeys([*map(str, transfer_syntaxes), *map(str, strategy_syntaxes(strategy))]))
        try:
            assoc, record = open_association(cfg, [(sop_class_uid, ts) for ts in syntaxes], strategy, n)
        except AssociationError as exc:
            attempts.append(exc.details.get("negotiation", {"strategy": strategy, "outcome": exc.message}))
            last = exc
            if exc.details.get("kind") in ("connect", "tls") or refused_whatever_we_propose(exc.details):
                break
            continue
        rec = record.to_dict()
        attempts.append(rec)
        meta = {"strategy_used": str(strategy), "attempts": attempts, "accepted": rec["accepted"], "negotiation": rec}
        try:
            yield assoc, meta
        except BaseException:
            if assoc.is_established:
                assoc.abort()
            raise
        else:
            if assoc.is_established:
                assoc.release()
        return
    assert last is not None
    last.details["attempts"] = attempts
    raise last
