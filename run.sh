#!/usr/bin/env bash
# Set up DICOM Courier in ./.venv (first run only) and launch it.
#   bash run.sh                 the desktop app
#   bash run.sh send --help     the command line (any main.py arguments)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import pynetdicom, pydicom, PySide6, pylibjpeg" 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
    echo "Installing DICOM Courier into .venv (first run takes a minute)..." >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e .  # the app only: the test extra (keyrings.alt, pytest...) is for test.sh
    touch .venv/.installed
fi
exec .venv/bin/python main.py "$@"
