"""A small throughput plot for the send view: instances/s and MB/s over time, drawn with QPainter.

Fed by the window's progress timer (one point per tick, from
:meth:`ui.progress.ProgressTracker.rates`), so a slow or stalling PACS shows as a
falling line. No dependency beyond QtGui; points are kept in a bounded deque and
each repaint draws at most a few hundred line segments.
"""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from .progress import rate_text

INSTANCES_COLOUR = QColor("#2563eb")
MB_COLOUR = QColor("#15803d")


class ThroughputPlot(QWidget):
    """Two lines over time: instances per second (blue, left scale) and MB per second (green, right scale).

    Args:
        max_points: how many points are kept (older ones scroll out).
    """

    def __init__(self, parent: QWidget | None = None, max_points: int = 480):
        super().__init__(parent)
        self.points: deque[tuple[float, float, float]] = deque(maxlen=max_points)  # (t s, inst/s, MB/s)
        #: The send's average ``(inst/s, MB/s)`` once it ended (the labels then show it), else None.
        self.average: tuple[float, float] | None = None
        self.setMinimumSize(220, 48)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setToolTip("Throughput of the current send: instances per second (blue) and MB per second (green)")
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)

    def sizeHint(self) -> QSize:
        return QSize(360, 56)

    def clear(self) -> None:
        """Forget every point and the average (a new send starts, or the list was cleared)."""
        self.points.clear()
        self.average = None
        self.update()

    def set_average(self, instances_per_s: float, bytes_per_s: float) -> None:
        """The send ended: label the plot with its average rates (the progress line and the banner show the same)."""
        self.average = (max(0.0, instances_per_s), max(0.0, bytes_per_s) / 1e6)
        self.update()

    def labels(self) -> tuple[str, str]:
        """The two rate labels drawn above the lines: the latest point, or the average once the send ended."""
        if self.average is not None:
            return f"average {rate_text(self.average[0])}", f"{self.average[1]:.2f} MB/s"
        if not self.points:
            return "", ""
        last = self.points[-1]
        return rate_text(last[1]), f"{last[2]:.2f} MB/s"

    def add_point(self, t_s: float, instances_per_s: float, bytes_per_s: float) -> None:
        """Add one sample: `t_s` seconds since the start, the rates at that moment."""
        self.points.append((float(t_s), max(0.0, float(instances_per_s)), max(0.0, float(bytes_per_s)) / 1e6))
        self.update()

    def placeholder(self) -> str:
        """What the plot says while it has no line to draw."""
        if self.average is None:
            return "throughput appears here while sending"
        if self.average[0] <= 0:
            return "nothing was sent"
        return " · ".join(self.labels())

    @staticmethod
    def _nice_max(v: float) -> float:
        if v <= 0:
            return 1.0
        for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000):
            if v <= step:
                return float(step)
        return v * 1.1

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        p.setPen(QPen(pal.mid().color()))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        fm = p.fontMetrics()
        plot = QRectF(4, fm.height() + 2, self.width() - 8, self.height() - fm.height() - 6)
        pts = list(self.points)
        if len(pts) < 2:
            p.setPen(pal.placeholderText().color())
            p.drawText(self.rect(), int(Qt.AlignmentFlag.AlignCenter), self.placeholder())
            p.end()
            return
        t0, t1 = pts[0][0], pts[-1][0]
        span = max(t1 - t0, 1e-6)
        max_i = self._nice_max(max(x[1] for x in pts))
        max_mb = self._nice_max(max(x[2] for x in pts))
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for col, top, colour in ((1, max_i, INSTANCES_COLOUR), (2, max_mb, MB_COLOUR)):
            path = QPainterPath()
            for k, row in enumerate(pts):
                x = plot.left() + (row[0] - t0) / span * plot.width()
                y = plot.bottom() - min(row[col] / top, 1.0) * plot.height()
                if k == 0:
                    path.moveTo(QPointF(x, y))
                else:
                    path.lineTo(QPointF(x, y))
            p.setPen(QPen(colour, 1.6))
            p.drawPath(path)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        inst_label, mb_label = self.labels()
        left = f"{inst_label} (axis 0–{max_i:g})"
        right = f"{mb_label} (axis 0–{max_mb:g})"
        if fm.horizontalAdvance(left) + fm.horizontalAdvance(right) + 16 > self.width():
            left, right = inst_label, mb_label  # a narrow plot: the rates, without the axis tops
        p.setPen(INSTANCES_COLOUR)
        p.drawText(QPointF(4, fm.ascent() + 1), left)
        p.setPen(MB_COLOUR)
        p.drawText(QPointF(self.width() - 4 - fm.horizontalAdvance(right), fm.ascent() + 1), right)
        p.end()
