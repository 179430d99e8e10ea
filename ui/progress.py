"""Send progress: instances and bytes done, rates over a sliding window, time left (no Qt)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class ProgressTracker:
    """Counts finished instances and bytes and estimates rates and time left.

    Rates are measured over the last `window_s` seconds (so a slow start or a
    pause does not distort them for long); the time left uses the byte rate when
    sizes are known, else the instance rate.
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
        self.bytes = 0
        self.t0 = self._clock()
        self.t_end: float | None = None
        self._samples: deque[tuple[float, int, int]] = deque([(self.t0, 0, 0)])

    def add(self, n_bytes: int) -> None:
        """One more instance finished, `n_bytes` of it sent."""
        self.done += 1
        self.bytes += max(0, n_bytes)
        now = self._clock()
        self._samples.append((now, self.done, self.bytes))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window_s:
            self._samples.popleft()

    def finish(self) -> None:
        """Freeze the elapsed time."""
        self.t_end = self._clock()

    @property
    def elapsed_s(self) -> float:
        """Seconds since the start (until :meth:`finish`)."""
        return (self.t_end or self._clock()) - self.t0

    def rates(self) -> tuple[float, float]:
        """``(instances per second, bytes per second)`` over the recent window (whole job once finished)."""
        if self.t_end is not None:
            el = max(self.elapsed_s, 1e-6)
            return self.done / el, self.bytes / el
        now = self._clock()
        t, d, b = self._samples[0]
        span = now - t
        if span < 0.2:
            return 0.0, 0.0
        return (self.done - d) / span, (self.bytes - b) / span

    def eta_s(self) -> float | None:
        """Seconds left, or None when unknown."""
        ips, bps = self.rates()
        if self.done >= self.total:
            return 0.0
        if bps > 0 and self.total_bytes:
            return max(0.0, (self.total_bytes - self.bytes) / bps)
        if ips > 0:
            return (self.total - self.done) / ips
        return None

    def text(self) -> str:
        """``37 / 176 instances · 1.2 / 3.0 MB · 14 inst/s · 0.4 MB/s · about 9 s left``."""
        ips, bps = self.rates()
        parts = [
            f"{self.done} / {self.total} instances",
            f"{self.bytes / 1e6:.1f} / {self.total_bytes / 1e6:.1f} MB",
            f"{ips:.1f} inst/s",
            f"{bps / 1e6:.2f} MB/s",
        ]
        if self.t_end is not None:
            parts.append(f"took {format_duration(self.elapsed_s)}")
        else:
            eta = self.eta_s()
            parts.append(f"about {format_duration(eta)} left" if eta is not None else "estimating time left…")
        return " · ".join(parts)


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
