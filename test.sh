#!/usr/bin/env bash
# Set up ./.venv with the test extras, install DCMTK and Orthanc when possible, run the tests.
#   bash test.sh [pytest arguments]
#   bash test.sh --setup-only      (set up only: CI then runs ruff and mypy from .venv before the tests)
# Interop tests need Debian's dcmtk and orthanc packages; as root (or with sudo) this script
# installs them with apt-get. Without them those tests are skipped with a message, unless
# COURIER_REQUIRE_INTEROP=1 (as in CI), which turns such a skip into a failure.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
need_apt=()
command -v storescp >/dev/null || need_apt+=(dcmtk)
command -v Orthanc >/dev/null || need_apt+=(orthanc)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
    if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
        echo "Installing ${need_apt[*]} with apt-get..." >&2
        $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null \
            || echo "warning: could not install ${need_apt[*]}; interop tests will be skipped" >&2
    else
        echo "note: ${need_apt[*]} missing (apt-get install -y dcmtk orthanc); interop tests will be skipped" >&2
    fi
fi
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import pytest, pytestqt, pynetdicom, PySide6, data_store" 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test]"
    touch .venv/.installed
fi
if [ "${1:-}" = "--setup-only" ]; then
    exit 0
fi
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"
