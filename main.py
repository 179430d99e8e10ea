"""DICOM Courier entry point.

No arguments: the desktop app. ``--self-test``: the packaged self-test.
``--screenshot FILE.png``: render the window offscreen for review.
Otherwise a CLI command: ``send``, ``echo``, ``scp`` ... (see ``--help``).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the GUI, the self-test or the CLI; returns the exit code (130 after Ctrl+C)."""
    try:
        return _dispatch(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:  # Ctrl+C outside a send (a send handles it and leaves a record)
        print("\ninterrupted", file=sys.stderr)
        return 130


def _dispatch(args: list[str]) -> int:
    if args[:1] == ["--self-test"]:
        from cli.selftest import run_self_test

        return run_self_test()
    if not args or args[0] in ("--screenshot", "--gui"):
        from ui.app import run_gui

        return run_gui(args)
    from cli.main import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
