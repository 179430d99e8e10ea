"""The main window's concerns as QObjects that own no widgets.

Each controller holds the state of one concern, runs its blocking work on the
:class:`ui.workers.ThreadPool` and reports through the signals its docstring lists;
the window (or the profile editor) turns those signals into text and widget states.
Everything a controller needs is passed to its constructor.

- :mod:`.scan`: files and folders into the file tree.
- :mod:`.send`: a send job: the plan before it, its progress, its results, cancel and retry.
- :mod:`.plan`: the dry-run plan (*Plan*): what would happen to each instance.
- :mod:`.probe`: the acceptance map of a PACS (*Probe*), saved with its profile.
- :mod:`.resume`: sends the send journal shows as interrupted.
- :mod:`.local_pacs`: the built-in Storage SCP on loopback.
- :mod:`.echo`: the connection test (C-ECHO), shared by the window and the profile editor.
- :mod:`.report`: the failure report of the last send.
"""
