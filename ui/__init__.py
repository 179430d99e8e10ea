"""DICOM Courier's desktop app (PySide6): the window, its models and the QThread workers that drive ``core``.

``app`` starts it (``run_gui``); ``main_window`` is the window; ``models`` holds the file tree and
the failed-only proxy; ``workers`` runs scanning, sending (the engine-event adapter), C-ECHO and
file writing off the GUI thread; ``diagnostics`` and ``logpane`` are the bottom panes;
``profiles_ui`` edits PACS profiles; ``failure_report`` and ``progress`` are Qt-free helpers.
"""
