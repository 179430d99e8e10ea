"""What a send, resume or retry prints: the progress bar, each failure as it happens, and the end.

During the send :class:`Progress` draws one line (instances, MB, rate) and prints each instance
the peer refused. Instances that were never sent, the strategies that were refused before
another worked, duplicates and warnings are kept for the end, where :func:`print_end` says each
thing once:

* ``not sent (N): reason`` per reason (an association failure is one reason, not N lines);
* ``the PACS refused strategy X (...); sent with Y`` for each fallback step of a send that went on;
* ``--stop-on-error: ...`` when the option stopped the send;
* the warnings (the peer's warning statuses, the scanner's findings), grouped by text;
* the duplicates (one SOP Instance UID in several files);
* last, the summary: ``Stored N of M (...) over K association(s): X MB in S s (Y MB/s)``
  (the stored instances' megabytes, 10^6 bytes, over the whole command's time).

File names that are not valid UTF-8 are shown with ``\\xNN`` escapes (:func:`shown`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from core import events as ev
from core.errors import CourierError
from core.outcomes import InstanceOutcome, InstanceState, Status

__all__ = ["Progress", "print_end", "print_summary", "shown", "with_hint", "config_problem", "MAX_NAMES"]

#: File names listed per group before "and N more".
MAX_NAMES = 3
#: Groups listed per section before "and N more".
MAX_GROUPS = 10

#: ``TlsConfigError`` kinds (``details["kind"]``) that are the user's settings, found before any connection (exit 2, not 3).
_CONFIG_KINDS = frozenset({"config", "secret", "keyring"})


def shown(path: str | os.PathLike[str] | None) -> str:
    """`path` as text that any terminal can print: bytes that are not UTF-8 become ``\\xNN``."""
    if path is None:
        return ""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def with_hint(message: str) -> str:
    """Add what to do to an A-ABORT message that does not say it already."""
    low = message.lower()
    if "a-abort" not in low and "association aborted" not in low:
        return message
    if any(w in low for w in ("hint:", "check ", "probably")):
        return message
    if "negotiation" in low:
        return (
            f"{message}; hint: the PACS ended the association before accepting it: its log says why (often an unknown "
            "calling AE title (--calling-ae), too many associations, or a proposal it cannot parse)"
        )
    return (
        f"{message}; hint: the PACS gave up without a status: its log says why; it often means it could not read or store "
        "this data set (try another --strategy, or send the file on its own to confirm)"
    )


def config_problem(exc: BaseException | None) -> str | None:
    """The message of a configuration error (a TLS file, key, passphrase or secret), else None.

    Such errors (a :class:`~core.errors.TlsConfigError`, or a probe's error wrapping one) are found
    before any connection is made; the CLI exits 2 for them, not 3.
    """
    if isinstance(exc, CourierError) and exc.details.get("kind") in _CONFIG_KINDS:
        return exc.message
    return None


@dataclass(frozen=True)
class _Step:
    strategy: str
    message: str | None  # None: the association was established


class Progress:
    """Draws a one-line progress bar on `stream` and prints each refused instance; keeps the rest for the end.

    Attributes:
        bytes: bytes of the instances finished so far (the events' ``bytes_sent``).
        stored_bytes: bytes of the instances stored so far.
        steps: each association's strategy and, when it failed, why (in order).
    """

    def __init__(self, stream: TextIO, enabled: bool = True):
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.total = self.done = 0
        self.total_bytes = self.bytes = self.stored_bytes = 0
        self.t0 = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()
        self.steps: list[_Step] = []

    def __call__(self, event: ev.Event) -> None:
        """The engine's event callback (any thread)."""
        with self._lock:
            self._on_event(event)

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.JobStarted):
            self.total, self.total_bytes, self.t0 = event.total, event.total_bytes, time.monotonic()
        elif isinstance(event, ev.InstanceFinished):
            self.done += 1
            self.bytes += event.bytes_sent
            o = event.outcome
            if o.stored:
                self.stored_bytes += event.bytes_sent
            if o.status == Status.FAILURE and not _never_sent(o):  # the peer refused it, or no answer
                self.say(f"FAILED  {shown(o.path) or o.sop_instance_uid}: {with_hint(o.message)}")
            self._draw()
        elif isinstance(event, ev.AssociationFailed):
            self.steps.append(_Step(event.negotiation.strategy, event.message))
        elif isinstance(event, ev.AssociationNegotiated):
            self.steps.append(_Step(event.negotiation.strategy, None))
        elif isinstance(event, ev.JobFinished):
            self._draw(force=True)
            if self.enabled:
                print(file=self.stream)

    def say(self, line: str) -> None:
        """Print `line` above the progress bar."""
        self._clear()
        print(line, file=self.stream, flush=True)

    def fallback_steps(self) -> list[str]:
        """``the PACS refused strategy X (...); sent with Y``, once per refusal that another association followed."""
        out: list[str] = []
        then: str | None = None  # the strategy of the next association that was established
        for step in reversed(self.steps):
            if step.message is None:
                then = step.strategy
                continue
            if then is None:
                continue  # never resolved: the instances' "not sent" says it
            if then != step.strategy:
                line = f"the PACS refused strategy {step.strategy} ({step.message}); sent with {then}"
            else:
                line = f"an association with strategy {step.strategy} failed ({step.message}); the next one worked"
            if line not in out:
                out.append(line)
        return out[::-1]

    def _clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 0.2):
            return
        self._last = now
        el = max(now - self.t0, 1e-6)
        mb = self.bytes / 1e6
        line = (
            f"\r{self.done}/{self.total} instances  {mb:.1f}/{self.total_bytes / 1e6:.1f} MB  "
            f"{self.done / el:.0f} inst/s  {mb / el:.1f} MB/s"
        )
        self.stream.write(line)
        self.stream.flush()


def print_summary(summary: dict[str, Any], elapsed: float, stream: TextIO, stored_bytes: int | None = None) -> None:
    """Print ``Stored N of M (...) over K association(s): X MB in S s (Y MB/s)``.

    Args:
        summary: :meth:`core.engine.JobResult.summary`.
        elapsed: seconds, scan and report included.
        stream: where to print.
        stored_bytes: bytes of the stored instances' files; None leaves out the MB and MB/s (1 MB = 10^6 bytes).
    """
    not_sent = summary.get("not_sent", 0)
    parts = [f"{summary['warning']} with warnings", f"{summary['failure'] - not_sent} failed"]
    if not_sent:
        parts.append(f"{not_sent} not sent" + (" (cancelled)" if summary.get("cancelled") else ""))
    parts.append(f"{summary['skipped']} skipped")
    if summary.get("converted"):
        parts.append(f"{summary['converted']} converted")
    if stored_bytes is None:
        how_much = f" in {elapsed:.1f} s"
    else:
        mb = stored_bytes / 1e6
        how_much = f": {_mb(mb)} MB in {elapsed:.1f} s ({_mb(mb / max(elapsed, 1e-6))} MB/s)"
    print(
        f"Stored {summary['success'] + summary['warning']} of {summary['total']} ({', '.join(parts)}) "
        f"over {summary['associations']} association(s){how_much}",
        file=stream,
    )


def _mb(value: float) -> str:
    """Megabytes with two decimals below 10 (a small send is not "0.0 MB"), else one."""
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _names(paths: Sequence[str]) -> str:
    head = ", ".join(paths[:MAX_NAMES])
    return head + (f" and {len(paths) - MAX_NAMES} more" if len(paths) > MAX_NAMES else "")


def _grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """``(text, name)`` pairs as ``{text: [names]}``, in first-seen order."""
    out: dict[str, list[str]] = {}
    for text, name in pairs:
        out.setdefault(text, []).append(name)
    return out


def _print_groups(title: str, groups: dict[str, list[str]], stream: TextIO) -> None:
    if not groups:
        return
    print(title, file=stream)
    for text, names in list(groups.items())[:MAX_GROUPS]:
        if len(names) == 1:
            print(f"  {names[0]}: {text}", file=stream)
        else:
            print(f"  {text} ({len(names)} instances: {_names(names)})", file=stream)
    if len(groups) > MAX_GROUPS:
        print(f"  ... and {len(groups) - MAX_GROUPS} more (see the report)", file=stream)


def _name(o: InstanceOutcome) -> str:
    return shown(o.path) or o.sop_instance_uid or f"#{o.index}"


def _never_sent(o: InstanceOutcome) -> bool:
    """Not sent at all: stopped by the user, or failed before any C-STORE (no association, no context, the file)."""
    if o.state == InstanceState.NOT_SENT:
        return True
    return o.state == InstanceState.FAILED and o.tries == 0 and o.message.startswith("not sent: ")


def not_sent_groups(outcomes: Sequence[InstanceOutcome]) -> dict[str, list[str]]:
    """The instances never sent (the user's cancel aside), by reason, without the ``not sent:`` prefix."""
    return _grouped(
        (with_hint(o.message.removeprefix("not sent: ")), _name(o))
        for o in outcomes
        if o.status == Status.FAILURE and _never_sent(o) and not o.message.endswith("the send was cancelled")
    )


def warnings_of(outcomes: Sequence[InstanceOutcome]) -> dict[str, list[str]]:
    """The peer's warning statuses and the findings noted on stored instances, by text."""
    pairs: list[tuple[str, str]] = []
    for o in outcomes:
        if o.status == Status.WARNING:
            pairs.append((o.message, _name(o)))
        if o.status in (Status.SUCCESS, Status.WARNING):
            # a conversion's description is not a warning (the summary counts conversions); duplicates have their list
            pairs += [(n, _name(o)) for n in o.notes if f"converted: {n}" not in o.message and not _is_duplicate_note(n)]
    return _grouped(pairs)


def _is_duplicate_note(note: str) -> bool:
    return note.lower().startswith("duplicate sop instance uid")


def duplicates_of(outcomes: Sequence[InstanceOutcome]) -> dict[str, list[str]]:
    """SOP Instance UIDs found in more than one file: ``{uid: [files]}``."""
    by_uid = _grouped((o.sop_instance_uid, _name(o)) for o in outcomes if o.sop_instance_uid)
    return {uid: names for uid, names in by_uid.items() if len(names) > 1}


def print_end(outcomes: Sequence[InstanceOutcome], progress: Progress, stream: TextIO, skip: Iterable[str] = ()) -> None:
    """Print what the send kept for the end: not sent, fallback steps, stop-on-error, warnings, duplicates.

    Args:
        outcomes: the run's outcomes.
        progress: the run's :class:`Progress` (its fallback steps, what it said already).
        stream: where to print.
        skip: not-sent reasons already printed by the caller (e.g. the reason no association was made).
    """
    skipped_reasons = set(skip)
    groups = {k: v for k, v in not_sent_groups(outcomes).items() if k not in skipped_reasons}
    for reason, names in groups.items():
        if len(names) == 1:
            print(f"not sent: {names[0]}: {reason}", file=stream)
        else:
            print(f"not sent ({len(names)} instances): {reason}\n  {_names(names)}", file=stream)
    for step in progress.fallback_steps():
        print(f"step: {step}", file=stream)
    stopped = [o for o in outcomes if o.status == Status.SKIPPED and o.state == InstanceState.NOT_SENT]
    if stopped:  # only --stop-on-error (a rerun: the job's saved setting) skips instances this way
        print(
            f"--stop-on-error: an instance failed, so the send stopped there; {len(stopped)} instance(s) skipped, not sent",
            file=stream,
        )
    _print_groups("Warnings:", warnings_of(outcomes), stream)
    dups = duplicates_of(outcomes)
    _print_groups(
        "Duplicates (one SOP Instance UID in several files; the PACS keeps one instance per UID):",
        {f"SOP Instance UID {uid}": names for uid, names in dups.items()},
        stream,
    )


def say_job_event(event: ev.Event, stream: TextIO) -> bool:
    """Print what a send or a rerun says about its journal and report; False when `event` is not one of those."""
    if isinstance(event, ev.JournalUnavailable):
        print(f"warning: no journal for this send ({event.message})", file=stream)
    elif isinstance(event, ev.JournalSetAside):
        print(
            f"warning: the journal {shown(event.path)} was damaged ({event.reason}); it was kept as "
            f"{shown(event.set_aside_as)} and a new one started",
            file=stream,
        )
    elif isinstance(event, ev.JournalFailed):
        print(f"the send stops: cannot write the journal {shown(event.path)}: {event.message}", file=stream)
    elif isinstance(event, ev.ReportFailed):
        print(f"cannot write the report {shown(event.path)}: {event.message}", file=stream)
    else:
        return False
    return True
