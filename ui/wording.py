"""Words for radiographers: plain reasons with a hint, explanations of DICOM jargon, names and dates as people write them.

:mod:`core.diagnostics` owns the words of errors (what happened and what to do, for the
log, the CLI and the failure report). This is the window's presentation layer over them:
:func:`plain_reason` turns a core message into a short sentence without protocol terms
plus the hint, :data:`GLOSSARY` explains the terms the window cannot avoid (in tooltips),
:func:`person_name_text` writes a DICOM person name as people do, and :func:`date_text` /
:func:`datetime_text` show dates one way, the locale's. Importing this module needs no Qt
(the failure report uses it on a worker); only the date functions use QtCore's locale.
:func:`journal_note` says what the send journal's events mean.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from core import events as ev

#: Plain explanations of the DICOM terms the window shows (tooltips).
GLOSSARY = {
    "ae_title": (
        "AE title (Application Entity title): the name a DICOM program goes by on the network, "
        "1-16 characters. A PACS only talks to AE titles it knows."
    ),
    "called_ae": (
        "Called AE title: the PACS's own AE title, as its administrator set it up. "
        "A wrong one makes the PACS refuse the connection."
    ),
    "calling_ae": (
        "Calling AE title: the name this computer gives itself when it connects. "
        "Many PACS accept only senders registered with this name and this computer's address."
    ),
    "association": (
        "Association: one DICOM connection to the PACS. At its start both sides agree on what may be "
        "sent over it (the presentation contexts)."
    ),
    "acse_timeout": (
        "Association (ACSE) timeout: how many seconds to wait for the PACS to accept or refuse a new connection before giving up."
    ),
    "dimse_timeout": (
        "Response (DIMSE) timeout: how many seconds to wait for the PACS's answer to each instance sent "
        "(or to a connection test)."
    ),
    "network_timeout": "Network timeout: how many seconds a connection may stay silent before it is given up.",
    "connect_timeout": "Connect timeout: how many seconds to wait for the PACS's computer to answer at all.",
    "max_pdu": (
        "Max PDU: the largest piece of data (Protocol Data Unit) this computer accepts from the PACS, in bytes. "
        "It does not limit what we send: we always send in the PACS's size. 0 means no limit."
    ),
    "presentation_context": (
        "Presentation context: one pair of a kind of object (SOP class, e.g. CT Image) and an encoding "
        "(transfer syntax) that we propose when connecting; the PACS accepts or declines each pair. "
        "Declined pairs are normal as long as each instance finds an accepted one."
    ),
    "transfer_syntax": (
        "Transfer syntax: how an instance's data is encoded (uncompressed, JPEG, JPEG 2000...). "
        "When the PACS does not take a file's own encoding it is converted, losslessly unless you allow otherwise."
    ),
    "sop_class": "SOP class: the kind of DICOM object (CT Image, MR Image, RT Plan...).",
    "c_echo": "C-ECHO: a DICOM 'ping'. The PACS answers when it accepts our connection; nothing is stored.",
    "status": "The PACS's answer to each instance: a DICOM status code and its meaning (0x0000 means stored).",
    "strategy": (
        "Transfer-syntax strategy: which encodings to offer first. When the PACS declines them, more "
        "conservative strategies follow (fallback), down to the one every PACS accepts."
    ),
    "implicit_vr_only": (
        "Implicit VR Little Endian only: send every instance in the oldest encoding, which every PACS reads. "
        "For older receivers that break off the connection on data types newer than they know (VRs such as "
        "UC, UR, SV, UV). Compressed files are decompressed first, losslessly; one that cannot be is reported as failed."
    ),
    "max_resends": (
        "Re-sends per instance: how many times one instance may be sent again when the PACS was too busy to take it "
        "or the connection broke while it was on its way. 0 = never: nothing the PACS may already hold is sent twice."
    ),
    "reconnect_attempts": (
        "Reconnect attempts: how many times to connect again while the PACS is down or busy, waiting a little longer "
        "each time (2 minutes at most in all). Connecting again never sends an instance twice."
    ),
}


@dataclass(frozen=True)
class PlainReason:
    """A core message as the window shows it.

    Attributes:
        what: what happened, in plain words (one sentence, no protocol terms where avoidable).
        hint: what to do about it ("" when core gave none).
        detail: the core message unchanged (for tooltips, the log and administrators).
    """

    what: str
    hint: str
    detail: str

    def text(self) -> str:
        """``what. hint.`` as one line."""
        return _sentence(self.what) + (" " + _sentence(self.hint) if self.hint else "")


_RJ = r"^[Aa]ssociation rejected \((permanent|transient)\) by the peer's "
_ACSE_TIMEOUT = r"^no answer to the association request from (\S+) within the ACSE timeout \(([^)]*)\)"

#: Protocol phrases of core's messages and their plain equivalents (applied in order).
_PLAIN = tuple(
    (re.compile(pattern), plain)
    for pattern, plain in (
        (r"^not sent: ", ""),
        (_RJ.replace("(permanent|transient)", "permanent") + "service user: ", "The PACS refused the connection: "),
        (_RJ.replace("(permanent|transient)", "transient") + "service user: ", "The PACS refused the connection for now: "),
        (_RJ + "ACSE service provider: ", "The PACS's DICOM software refused the connection: "),
        (_RJ + "presentation service provider: ", "The PACS is too busy to accept the connection: "),
        (r"called AE title '([^']*)' not recognised", r"it does not know the called AE title '\1'"),
        (r"calling AE title '([^']*)' not recognised", r"it does not accept this computer's calling AE title '\1'"),
        (r"^could not connect to ([^:]+:\d+): ", r"Could not reach the PACS at \1: "),
        (_ACSE_TIMEOUT, r"The PACS at \1 did not answer the connection request within \2"),
        (r"association aborted by the peer[^ ]* (\([^)]*\) )?during ", "the PACS broke off the connection during "),
        (r"association aborted during ", "the connection was closed during "),
        (r" ?\(A-ABORT, [^)]*\)", ""),
        (r"no presentation context accepted for ", "the PACS does not accept "),
        (r"^peer does not support (.+?) [\d.]+; rejected during association negotiation.*$", r"the PACS does not accept \1"),
        (r"^(0x[0-9A-Fa-f]{4} .+)$", r"the PACS refused it: \1"),
    )
)


#: Words core's messages repeat when they are put together (``stored (converted: convert A → B)``).
_REPEATS = ((re.compile(r"\bconverted: convert "), "converted: "), (re.compile(r"\b([A-Za-z][\w-]*) \1\b"), r"\1"))


def tidy(message: str) -> str:
    """`message` with a word never said twice in a row (``converted: convert``, ``C-ECHO C-ECHO``)."""
    for pattern, repl in _REPEATS:
        message = pattern.sub(repl, message)
    return message


def _sentence(text: str) -> str:
    t = text.strip().rstrip(".;:")
    return (t[:1].upper() + t[1:] + ".") if t else ""


def plain_reason(message: str) -> PlainReason:
    """A core message (``what - hint``, see :mod:`core.diagnostics`) in plain words.

    Args:
        message: e.g. ``"not sent: could not connect to 10.0.0.5:104: connection refused - nothing
            listens on port 104; check the port and that the PACS is running"``.

    Returns:
        The :class:`PlainReason`; a message core did not phrase this way comes back as it is.
    """
    what, _, hint = tidy(message).partition(" - ")
    for pattern, plain in _PLAIN:
        what = pattern.sub(plain, what)
    what = re.sub(r"\s{2,}", " ", what).strip()
    if what[:1].islower():
        what = what[:1].upper() + what[1:]
    return PlainReason(what, hint.strip(), message)


#: What to do when the send journal cannot be written.
JOURNAL_HINT = "free some disk space or make the journal's folder writable, then Retry (or resume the job later)"


def journal_note(event: ev.Event) -> str:
    """A journal event in one or two plain sentences ("" for any other event).

    :class:`core.events.JournalSetAside` (a damaged journal was replaced), :class:`core.events.JournalUnavailable`
    (this send has no journal) and :class:`core.events.JournalFailed` (the journal could not be written: the
    send stopped).
    """
    if isinstance(event, ev.JournalSetAside):
        return (
            f"The send journal was damaged ({event.reason}): it was set aside as {os.path.basename(event.set_aside_as)} "
            "and a new one started. Sends recorded before can no longer be resumed from here."
        )
    if isinstance(event, ev.JournalUnavailable):
        return f"This send has no send journal ({event.message}): if DICOM Courier stops during it, it cannot offer to resume it."
    if isinstance(event, ev.JournalFailed):
        return (
            f"The send journal {event.path} could not be written, so the send stopped before the next instance. "
            "Only instances the journal recorded are counted as stored."
        )
    return ""


def _date_format() -> str:
    """The locale's short date format with a four-digit year (``dd/MM/yy`` -> ``dd/MM/yyyy``); ISO 8601 in the C locale."""
    from PySide6.QtCore import QLocale

    loc = QLocale()
    if loc.language() == QLocale.Language.C:
        return "yyyy-MM-dd"
    fmt = loc.dateFormat(QLocale.FormatType.ShortFormat)
    return fmt if "yyyy" in fmt else fmt.replace("yy", "yyyy")


def date_text(value: str) -> str:
    """A DICOM date (``20040119``, or the old ``2004.01.19``) in the locale's short format with a 4-digit year.

    Anything that is not a date is returned as it is.
    """
    v = value.strip()
    digits = v.replace(".", "").replace("-", "")
    if len(digits) != 8 or not digits.isdigit() or len(v) not in (8, 10):
        return v
    from PySide6.QtCore import QDate, QLocale

    d = QDate(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    if not d.isValid():
        return v
    return QLocale().toString(d, _date_format())


def datetime_text(epoch_s: float) -> str:
    """Seconds since the epoch as the locale's short date (4-digit year) and time, e.g. ``19/01/2004 14:05``."""
    from PySide6.QtCore import QDateTime, QLocale

    loc = QLocale()
    dt = QDateTime.fromSecsSinceEpoch(int(epoch_s))
    time_fmt = "HH:mm" if loc.language() == QLocale.Language.C else loc.timeFormat(QLocale.FormatType.ShortFormat)
    return loc.toString(dt, f"{_date_format()} {time_fmt}")


def clock_text(epoch_s: float | None = None) -> str:
    """The time of day (``14:05:09``), for the diagnostics pane's entries."""
    return time.strftime("%H:%M:%S", time.localtime(epoch_s))


def person_name_text(value: str) -> str:
    """``Last, First Middle`` from a DICOM PN value (``Last^First^Middle^Prefix^Suffix``, PS3.5 6.2).

    Only the first (alphabetic) component group is used; empty components are dropped.
    """
    parts = [x.strip() for x in str(value).split("=")[0].split("^")[:3] if x.strip()]
    if not parts:
        return ""
    return f"{parts[0]}, {' '.join(parts[1:])}" if len(parts) > 1 else parts[0]
