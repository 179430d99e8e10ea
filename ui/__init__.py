"""DICOM Courier's desktop app (PySide6): the window, its controllers, models and the QThread workers that drive ``core``.

``app`` starts it (``run_gui``). ``main_window`` is the window (wiring, drops, dialogs) on top of
``main_window_layout`` (its widgets, actions, menus and saved layout). ``controllers`` holds one
QObject per concern (scan, send, plan, probe, resume, local test PACS, connection test, report),
which own no widgets. ``models`` and ``tree_nodes`` are the file tree (``file_tree`` its view);
``banners``, ``pacs_status``, ``dialogs``, ``diagnostics``, ``logpane``, ``throughput`` and
``probe_dialog`` are the other views; ``workers`` runs scanning, sending (the engine-event adapter),
C-ECHO and file writing off the GUI thread; ``profiles_ui`` edits PACS profiles;
``failure_report`` and ``progress`` are Qt-free helpers.
"""
