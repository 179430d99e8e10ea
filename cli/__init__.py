"""DICOM Courier's command-line front end (``python main.py <command>``, the ``dicom-courier`` script).

It parses arguments, calls :mod:`core` and prints progress and summaries; the engine's flow
lives in :mod:`core`, never here. One module per group of commands:

* :mod:`cli.send`: ``send`` (and ``send --dry-run``);
* :mod:`cli.jobs`: ``jobs``, ``resume``, ``retry`` (the send journal);
* :mod:`cli.network`: ``echo``, ``probe``, ``scp``;
* :mod:`cli.selftest`: ``--self-test``;
* :mod:`cli.main`: the parser and the dispatch; :mod:`cli.common`: what the commands share;
  :mod:`cli.exit_codes`: the exit codes.
"""
