"""The log pane: a logging handler feeding a bounded, locked buffer, and a view that pulls on a timer.

Records arrive from any thread (the engine logs from its worker); the view reads
the new ones every :data:`PULL_MS` milliseconds on the GUI thread, so a busy send
costs one text append per tick, not one per log line.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections import deque

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtGui import QFont, QFontDatabase, QTextCursor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

PULL_MS = 300
#: ``path:line: Category: message``, the first line of a warning routed through ``logging.captureWarnings``.
_WARNING_LINE = re.compile(r"^.*?:\d+: (\w+): (.*)$")
LEVELS = (("Debug", logging.DEBUG), ("Info", logging.INFO), ("Warning", logging.WARNING), ("Error", logging.ERROR))


class LogBuffer(logging.Handler):
    """Keeps the last `capacity` formatted records; thread-safe. Tracebacks become separate Debug entries.

    Records are ``(sequence, levelno, text)``; :meth:`since` returns those newer
    than a sequence number.
    """

    def __init__(self, capacity: int = 5000):
        super().__init__(logging.DEBUG)
        self._records: deque[tuple[int, int, str]] = deque(maxlen=capacity)
        self._seq = 0
        self._mutex = threading.Lock()
        self._recent: deque[str] = deque(maxlen=20)  # the latest messages, to spot a warning said twice
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))

    def _from_warnings(self, record: logging.LogRecord) -> logging.LogRecord:
        """A ``py.warnings`` record as one line ``Category: message``; Debug when a logger just said the same."""
        text = record.getMessage()
        m = _WARNING_LINE.match(text.splitlines()[0] if text else "")
        if m is None:
            return record
        category, message = m.group(1), m.group(2)
        level = logging.DEBUG if message in self._recent else record.levelno
        source = text.partition("\n")[2].strip()
        return logging.makeLogRecord(
            {
                **record.__dict__,
                "msg": f"{category}: {message}",
                "args": None,
                "levelno": level,
                "levelname": logging.getLevelName(level),
                "stack_info": f"{text.splitlines()[0]}\n{source}" if source else None,
            }
        )

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "py.warnings":
            record = self._from_warnings(record)
        else:
            with contextlib.suppress(Exception):
                self._recent.append(record.getMessage())
        # A traceback is for whoever debugs: it is kept as a separate Debug entry, so the pane at
        # Info (what a radiographer sees) shows the message line only.
        trace = ""
        if record.exc_info or record.exc_text or record.stack_info:
            fmt = self.formatter or logging.Formatter()
            if record.exc_info and not record.exc_text:
                record.exc_text = fmt.formatException(record.exc_info)
            trace = "\n".join(x for x in (record.exc_text, record.stack_info and fmt.formatStack(record.stack_info)) if x)
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None})
        try:
            text = self.format(record)
        except Exception:  # a bad format argument must not break the sender
            text = f"{record.levelname} {record.name}: {record.msg!r}"
        with self._mutex:
            self._seq += 1
            self._records.append((self._seq, record.levelno, text))
            if trace:
                self._seq += 1
                self._records.append((self._seq, logging.DEBUG, "    " + trace.replace("\n", "\n    ")))

    def since(self, seq: int) -> list[tuple[int, int, str]]:
        """Records with a sequence number above `seq`, oldest first."""
        with self._mutex:
            if not self._records or self._records[-1][0] <= seq:
                return []
            return [r for r in self._records if r[0] > seq]

    def all(self) -> list[tuple[int, int, str]]:
        """Every kept record."""
        with self._mutex:
            return list(self._records)


class LogPane(QWidget):
    """A read-only view of a :class:`LogBuffer` with a level filter and a clear button."""

    def __init__(self, buffer: LogBuffer, parent: QObject | None = None, level: int = logging.INFO):
        super().__init__(parent)  # type: ignore[arg-type]
        self.buffer = buffer
        self._seq = 0
        self._level = level
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(5000)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPointSizeF(max(8.0, QFont().pointSizeF() - 1))
        self.text.setFont(mono)
        self.level_box = QComboBox(self)
        for label, value in LEVELS:
            self.level_box.addItem(label, value)
        self.level_box.setCurrentIndex([v for _, v in LEVELS].index(level))
        self.level_box.setToolTip("Show messages at this level and above")
        self.level_box.currentIndexChanged.connect(self._on_level_box_changed)
        clear = QPushButton("Clear", self)
        clear.setToolTip("Clear the log view")
        clear.clicked.connect(self._on_clear_clicked)
        top = QHBoxLayout()
        title = QLabel("<b>Log</b>", self)
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(QLabel("Level:", self))
        top.addWidget(self.level_box)
        top.addWidget(clear)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.text)
        self.timer = QTimer(self)
        self.timer.setInterval(PULL_MS)
        self.timer.timeout.connect(self.pull)
        self.timer.start()

    @property
    def level(self) -> int:
        """The lowest level shown."""
        return self._level

    def set_level(self, level: int) -> None:
        """Show records at `level` and above (re-renders the kept records)."""
        self.level_box.setCurrentIndex([v for _, v in LEVELS].index(level))

    @Slot(int)
    def _on_level_box_changed(self, _i: int) -> None:
        self._level = int(self.level_box.currentData())
        if self._level < logging.INFO:
            for name in ("", "core", "ui", "pynetdicom"):
                logger = logging.getLogger(name)
                if logger.getEffectiveLevel() > self._level:
                    logger.setLevel(self._level)
        self.text.clear()
        self._seq = 0
        self.pull()

    @Slot()
    def _on_clear_clicked(self) -> None:
        self.text.clear()

    @Slot()
    def pull(self) -> None:
        """Append the records logged since the last pull."""
        new = self.buffer.since(self._seq)
        if not new:
            return
        self._seq = new[-1][0]
        lines = [text for _, levelno, text in new if levelno >= self._level]
        if not lines:
            return
        bar = self.text.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        self.text.appendPlainText("\n".join(lines))
        if at_end:
            self.text.moveCursor(QTextCursor.MoveOperation.End)
            self.text.moveCursor(QTextCursor.MoveOperation.StartOfLine)
            bar.setValue(bar.maximum())
            self.text.horizontalScrollBar().setValue(0)

    def plain_text(self) -> str:
        """What the view shows (for tests)."""
        return self.text.toPlainText()
