"""The banners under the progress row: a send's or a plan's outcome, and the offer to resume an interrupted send."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from core.journal import JobRecord
from core.preflight import InstancePlan, needs_confirmation, summary_text

from .controllers.send import SendRecord
from .progress import UNREACHABLE_WHY, format_duration, rate_text
from .wording import JOURNAL_HINT, datetime_text, plain_reason

RED, AMBER, GREEN, BLUE = "#fee2e2", "#fef3c7", "#dcfce7", "#dbeafe"


def _headline(job: SendRecord) -> tuple[str, str]:
    """``(background colour, headline)`` of a send's summary: how it ended, at a glance."""
    stored, warn, failed, not_sent, unreachable, unknown = job.counts
    if job.journal_error:
        return RED, "The send stopped: the send journal could not be written"
    if job.cancelled:
        return AMBER, "Cancelled"
    if not stored and not warn:
        return RED, "Nothing was sent" if not job.sent else "Nothing was stored"
    if failed or not_sent or unreachable or unknown:
        return RED, "Some instances were not stored"
    if warn:
        return AMBER, "All stored, some with warnings"
    return GREEN, "All stored"


def _arrival_text(arrival: dict[str, Any]) -> str:
    """The arrival check's line of a send's summary ("" when there was none)."""
    counts = arrival.get("counts") or {}
    if counts:
        bad, unsure = counts.get("not found", 0), counts.get("not checked", 0)
        return (
            "<br>Arrival check: "
            + ", ".join(f"<b>{n}</b> {k}" for k, n in sorted(counts.items()))
            + (
                " - <b style='color:#b91c1c'>the PACS does not hold every instance it acknowledged</b>"
                if bad
                else " - <b style='color:#b45309'>could not confirm every instance</b> (see the log)"
                if unsure
                else ""
            )
        )
    if arrival.get("messages"):
        return "<br>Arrival check: " + html.escape("; ".join(arrival["messages"])[:300])
    return ""


def _text(message: str) -> str:
    """`message` escaped for rich text, with a path breakable after each "/" (a long path never widens the banner)."""
    return html.escape(message).replace("/", "/\u200b")


def _why_text(job: SendRecord, reason: str) -> str:
    """Why nothing (or not everything) reached the PACS, in plain words, and what to do (details: the diagnostics pane)."""
    if not reason:
        return ""
    plain = plain_reason(reason)
    return f"<br><span style='color:#991b1b'><b>Why:</b> {_text(plain.what)}.</span>" + (
        f" <b>What to do:</b> {_text(plain.hint)}." if plain.hint else ""
    )


#: How many reasons the banner gives for failures (the rest: the tree, the report), and how long each may be.
MAX_REASONS, MAX_REASON_CHARS = 3, 90


def _short(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """`text` cut at a word before `limit` characters, with an ellipsis (the whole reason is in the Details column)."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"


def _failed_text(job: SendRecord) -> str:
    """The commonest reasons of the failures, in plain words, with how many each (e.g. a refused SOP class)."""
    reasons: dict[str, int] = {}
    for o in job.outcomes.values():
        if o.get("state") == "failed" and not o.get("resumable") and o.get("message"):
            what = _short(plain_reason(str(o["message"])).what)
            reasons[what] = reasons.get(what, 0) + 1
    if not reasons:
        return ""
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:MAX_REASONS]
    more = len(reasons) - len(top)
    return (
        "<br><b>Failed:</b> "
        + "; ".join(f"{_text(what)} ({n})" for what, n in top)
        + (f"; {more} other reason(s) (see the Details column)" if more else "")
        + "."
    )


def _journal_text(job: SendRecord) -> str:
    """The send stopped because its journal could not be written: why, what that means for the counts, what to do."""
    unrecorded = sum(
        1 for o in job.outcomes.values() if o.get("state") == "unknown" and str(o.get("message", "")).startswith("outcome not")
    )
    return (
        f"<br><span style='color:#991b1b'><b>Why:</b> {_text(job.journal_error)}.</span>"
        "<br>Nothing the journal did not record is called stored"
        + (
            f": <b>{unrecorded}</b> instance(s) the PACS acknowledged are shown as outcome unknown and are sent again."
            if unrecorded
            else "."
        )
        + f" <b>What to do:</b> {html.escape(JOURNAL_HINT)}."
    )


def send_summary(job: SendRecord) -> tuple[str, str]:
    """``(background colour, rich text)`` summing up a finished send: counts, why, arrival check, plan, error.

    The time and rate are the progress tracker's (the progress line and the plot show the same).
    """
    s = job.summary
    stored, warn, failed, not_sent, unreachable, unknown = job.counts
    skipped, conv = s.get("skipped", 0), s.get("converted", 0)
    colour, head = _headline(job)
    parts = [
        f"<b>{stored}</b> stored" + (f" ({conv} converted)" if conv else ""),
        f"<b>{warn}</b> with warnings",
        f"<b style='color:#b91c1c'>{failed}</b> failed",
    ]
    if unknown:
        parts.append(f"<b style='color:#7c3aed'>{unknown}</b> outcome unknown")
    # "not sent" only when something was: the user stopped the send, or the PACS could not be reached
    if not_sent:
        parts.append(f"<b>{not_sent}</b> not sent" + (" (cancelled)" if job.cancelled else ""))
    if unreachable:
        parts.append(f"<b>{unreachable}</b> not sent: {UNREACHABLE_WHY}")
    if skipped:
        parts.append(f"{skipped} skipped")
    took = f"{format_duration(job.elapsed_s)}" + (f", {rate_text(job.rates[0])}" if job.sent else "")
    text = f"<b>{head}</b> - {html.escape(job.profile.name)}: " + " · ".join(parts) + f" - {took}"
    if job.journal_error:
        text += _journal_text(job)
    elif not stored and not warn and not job.cancelled:
        text += _why_text(job, job.why_nothing_sent())
    elif unreachable:  # some went out, then the PACS could not take the rest
        text += _why_text(job, job.why_unreachable())
    if failed and not job.journal_error:
        text += _failed_text(job)
    text += _arrival_text(job.arrival)
    if job.plan_summary:
        text += f"<br>Plan before sending: {html.escape(job.plan_summary)}."
    if job.resumed:
        text += f"<br>Resumed job {html.escape(job.job_id)}: only instances left unsent or in doubt were sent."
    if (job.cancelled and not_sent) or unreachable:
        text += "<br>The instances not sent stay in the send journal: <i>Retry</i> sends them now, or resume them later."
    if job.error and job.error != job.journal_error and job.error not in job.why_nothing_sent():
        text += f"<br><span style='color:#b91c1c'>{_text(job.error)}</span>"
    for note in job.journal_notes:
        text += f"<br><i>{_text(note)}</i>"
    return colour, text


class SummaryBanner(QFrame):
    """The outcome of the last send or plan, coloured by how it went; hidden until there is one.

    Widgets put with :meth:`add_widget` (Show failed only, Retry failed, Export) sit on its right.

    Attributes:
        label: the rich text (links open in the browser).
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        #: What it shows: ``"send"``, ``"plan"`` or ``""`` (hidden).
        self.kind = ""
        self.setObjectName("banner")
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(10, 4, 10, 4)
        self.label = QLabel(self)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(True)
        self.label.setOpenExternalLinks(True)
        # the text takes the room the buttons leave (it wraps); a long text never squeezes a button's words
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._row.addWidget(self.label, 1)
        self.hide()

    def add_widget(self, widget: QWidget) -> None:
        """Put `widget` on the banner's right, after those already there."""
        self._row.addWidget(widget)

    def _show(self, colour: str, text: str, kind: str = "send") -> None:
        self.kind = kind
        self.setStyleSheet(f"#banner{{background:{colour};border-radius:4px;}}")
        self.label.setText(text)
        self.show()

    def hide(self) -> None:
        """Hide it (it shows nothing any more)."""
        self.kind = ""
        super().hide()

    def show_send(self, job: SendRecord) -> None:
        """Sum up a finished send."""
        self._show(*send_summary(job))

    def show_plan(self, plans: Sequence[InstancePlan]) -> None:
        """Sum up a dry-run plan (amber when something is blocked or lossy)."""
        warn = needs_confirmation(plans)
        self._show(
            AMBER if warn else BLUE,
            f"<b>Plan</b> for {len(plans)} instance(s): {html.escape(summary_text(plans))}"
            + (" - check the blocked or lossy rows before sending" if warn else "")
            + ". Nothing was sent.",
            "plan",
        )

    def show_notice(self, text: str, error: bool = False) -> None:
        """Say something about the app's own state (e.g. the send journal) until the next send or plan."""
        self._show(RED if error else AMBER, _text(text), "notice")

    def show_plan_error(self, error: str) -> None:
        """Say why there is no plan (in plain words, with the hint)."""
        plain = plain_reason(error)
        self._show(
            RED,
            f"<b>No plan</b>: {html.escape(plain.what)}."
            + (f" <b>What to do:</b> {html.escape(plain.hint)}." if plain.hint else ""),
            "plan",
        )

    def add_report_link(self, path: str) -> None:
        """Add (or replace) the link to the failure report just written."""
        url = QUrl.fromLocalFile(os.path.abspath(path)).toString()
        self.label.setText(
            self.label.text().split("<br><i>")[0]
            + f"<br><i>Report written: <a href='{html.escape(url)}'>{html.escape(path)}</a></i>"
        )


class ResumeBanner(QFrame):
    """Offers to resume a send the journal shows as interrupted (non-modal); hidden until there is one.

    Attributes:
        label: what was interrupted and what is left.
        resume_button: sends what is left.
        dismiss_button: stops offering it.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("resumeBanner")
        self.setStyleSheet("#resumeBanner{background:#ede9fe;border-radius:4px;}")
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 4, 10, 4)
        self.label = QLabel(self)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(True)
        row.addWidget(self.label, 1)
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setToolTip(
            "Send again what the interrupted job left unsent or in doubt (instances the PACS confirmed are not sent again)"
        )
        self.dismiss_button = QPushButton("Dismiss", self)
        self.dismiss_button.setToolTip("Hide this; the job stays in the journal (main.py resume can still send it)")
        row.addWidget(self.resume_button)
        row.addWidget(self.dismiss_button)
        self.hide()

    def show_jobs(self, jobs: Sequence[JobRecord]) -> None:
        """Offer the first of `jobs` (hide when there is none)."""
        if not jobs:
            self.hide()
            return
        j = jobs[0]
        c = j.counts
        when = datetime_text(j.started)
        stored = c.get("stored", 0) + c.get("stored-warning", 0)
        doubt = c.get("in-flight", 0) + c.get("unknown", 0)
        more = f" ({len(jobs) - 1} more unfinished send(s) in the journal)" if len(jobs) > 1 else ""
        head = {
            "interrupted": "A send was interrupted",
            "cancelled": "A send was stopped before the end",
        }.get(j.state, "A send left instances unsent")
        self.label.setText(
            f"<b>{head}</b>: job {html.escape(j.id)} to {html.escape(j.profile or j.peer or '?')}, "
            f"started {html.escape(when)}: <b>{stored}</b> of {c.get('total', 0)} stored, <b>{j.resumable}</b> not sent"
            + (f" ({doubt} in doubt)" if doubt else "")
            + f". <i>Resume</i> sends only those.{more}"
        )
        self.show()

    def show_error(self, message: str) -> None:
        """Add why the resume failed under the offer."""
        self.label.setText(self.label.text().split("<br>")[0] + f"<br><span style='color:#b91c1c'>{html.escape(message)}</span>")
