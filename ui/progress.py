"""Send progress: instances that reached an outcome, bytes sent, rates over a sliding window, time left (no Qt).

Only instances that went to the PACS count for the rates and the bytes. Instances that
never left are counted apart as "not sent" and never fill the bar: those the user stopped
(cancel, close) and those the PACS could not take at all (unreachable, association refused,
judged broken: the engine's ``failed`` outcomes marked ``resumable``), counted as
:attr:`ProgressTracker.unreachable`. Once the send ends the rates freeze at the average over
the time instances were going out, and the bar, the progress line, the plot and the
summary banner all read that same average.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class ProgressTracker:
    """Counts instances by outcome and bytes sent, and estimates rates and time left.

    Rates are measured over the last `window_s` seconds while sending (so a slow start or
    a pause does not distort them for long); the time left uses the byte rate when sizes
    are known, else the instance rate.

    Attributes:
        total / total_bytes: the job's size.
        done: instances that reached an outcome (stored, failed, unknown, skipped), "not sent" aside.
        sent: instances that went out to the PACS (the rates count these).
        bytes: bytes of the instances sent.
        not_sent: instances that never left: stopped by the user, or the PACS could not be reached.
        unreachable: those of `not_sent` the PACS could not take (down, refused the association,
            judged broken); a resume sends them again.
        label: how the send ended ("" while it runs), set by :meth:`finish`.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, window_s: float = 8.0):
        self._clock = clock
        self.window_s = window_s
        self.reset(0, 0)

    def reset(self, total: int, total_bytes: int) -> None:
        """Start counting a job of `total` instances and `total_bytes` bytes."""
        self.total = total
        self.total_bytes = total_bytes
        self.done = 0
        self.sent = 0
        self.bytes = 0
        self.not_sent = 0
        self.unreachable = 0
        self.label = ""
        self.t0 = self._clock()
        self.t_last: float | None = None  # when the last instance that went out finished
        self.t_end: float | None = None
        self._samples: deque[tuple[float, int, int]] = deque([(self.t0, 0, 0)])

    @property
    def idle(self) -> bool:
        """True before the first job (nothing to show)."""
        return self.total == 0

    def add(self, n_bytes: int, went_out: bool = True) -> None:
        """One more instance reached an outcome; `went_out` when it was sent to the PACS (`n_bytes` of it)."""
        self.done += 1
        if not went_out:
            return
        self.sent += 1
        self.bytes += max(0, n_bytes)
        now = self._clock()
        self.t_last = now
        self._samples.append((now, self.sent, self.bytes))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()

    def add_not_sent(self, unreachable: bool = False) -> None:
        """One more instance ended without being sent; `unreachable` when the PACS could not take it (not the user's stop)."""
        self.not_sent += 1
        self.unreachable += int(unreachable)

    def finish(self, label: str = "") -> None:
        """Freeze the elapsed time and the rates; `label` says how the send ended (e.g. ``"Cancelled"``)."""
        if self.t_end is None:
            self.t_end = self._clock()
        self.label = label

    @property
    def elapsed_s(self) -> float:
        """Seconds since the start (until :meth:`finish`)."""
        return (self.t_end or self._clock()) - self.t0

    @property
    def sending_s(self) -> float:
        """Seconds from the start to the last instance that went out (0 when none did)."""
        return (self.t_last - self.t0) if self.t_last is not None else 0.0

    def rates(self) -> tuple[float, float]:
        """``(instances per second, bytes per second)`` sent: over the recent window, the average once finished.

        Both are 0 while nothing has been sent (and stay 0 when nothing was).
        """
        if not self.sent:
            return 0.0, 0.0
        if self.t_end is not None:
            span = max(self.sending_s, 1e-3)
            return self.sent / span, self.bytes / span
        now = self._clock()
        t, d, b = self._samples[0]
        span = now - t
        if span < 0.2:
            return 0.0, 0.0
        return (self.sent - d) / span, (self.bytes - b) / span

    def eta_s(self) -> float | None:
        """Seconds left, or None when unknown (nothing sent yet, or the send has ended)."""
        if self.t_end is not None:
            return None
        left = self.total - self.done - self.not_sent
        if left <= 0:
            return 0.0
        ips, bps = self.rates()
        if bps > 0 and self.total_bytes:
            return max(0.0, (self.total_bytes - self.bytes) / bps)
        if ips > 0:
            return left / ips
        return None

    def text(self) -> str:
        """``37 / 176 instances · 1.2 / 3.0 MB · 14.0 inst/s · 0.40 MB/s · about 9 s left``.

        Once finished: the label first, the average rates and ``took …``; ``· 3 not sent`` when
        some never left (``· 3 not sent: the PACS could not be reached`` when that is why); no
        rates when nothing was sent.
        """
        parts = [f"{self.done} / {self.total} instances"]
        if self.not_sent:
            parts.append(not_sent_text(self.not_sent, self.unreachable))
        parts.append(f"{self.bytes / 1e6:.1f} / {self.total_bytes / 1e6:.1f} MB")
        if self.sent:
            ips, bps = self.rates()
            parts += [rate_text(ips), f"{bps / 1e6:.2f} MB/s"]
        if self.t_end is not None:
            parts.append(f"took {format_duration(self.elapsed_s)}")
        else:
            eta = self.eta_s()
            parts.append(f"about {format_duration(eta)} left" if eta is not None else "estimating time left…")
        text = " · ".join(parts)
        return f"{self.label}: {text}" if self.label else text


#: Why instances the PACS could not take were not sent (the progress line, the banner).
UNREACHABLE_WHY = "the PACS could not be reached"


def not_sent_text(not_sent: int, unreachable: int) -> str:
    """``3 not sent``, ``3 not sent: the PACS could not be reached`` or ``5 not sent (3: the PACS could not be reached)``."""
    if not unreachable:
        return f"{not_sent} not sent"
    if unreachable >= not_sent:
        return f"{not_sent} not sent: {UNREACHABLE_WHY}"
    return f"{not_sent} not sent ({unreachable}: {UNREACHABLE_WHY})"


def rate_text(instances_per_s: float) -> str:
    """``14.0 inst/s`` (the one format of an instance rate: the line, the plot and the banner)."""
    return f"{instances_per_s:.1f} inst/s"


def format_duration(seconds: float | None) -> str:
    """``9 s``, ``2 min 05 s``, ``1 h 02 min``."""
    if seconds is None:
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"
