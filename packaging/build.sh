#!/usr/bin/env bash
# Build the one-folder DICOM Courier app: dist/dicom-courier/dicom-courier.
#
# Usage (from anywhere):  bash packaging/build.sh
#
# Which Python builds it (first match wins); it needs the app's dependencies and PyInstaller:
#   1. $DICOM_COURIER_PYTHON, if set;
#   2. the project's .venv/ (PyInstaller is added to it if missing);
#   3. the active virtualenv ($VIRTUAL_ENV), if it has everything;
#   4. the Python that started this script (e.g. a CI or acceptance runner), if it has everything;
#   5. otherwise a fresh build/venv, made with python3 (3.11+), with the dependencies and the
#      [package] extra of pyproject.toml installed by pip.
# Output: dist/dicom-courier/; the build time and the folder's size are the last lines.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

has_deps() {
    [[ -x "$1" ]] && "$1" - <<'PY' >/dev/null 2>&1
import sys
assert sys.version_info >= (3, 11)
import PyInstaller, pynetdicom, pydicom, numpy, pylibjpeg, libjpeg, openjpeg, rle, jpeg_ls, PySide6.QtWidgets
PY
}

# Print the requirements of pyproject.toml: the dependencies plus the given extras.
requirements() {
    "$1" - "${@:2}" <<'PY'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs = list(project["dependencies"])
for extra in sys.argv[1:]:
    reqs += project.get("optional-dependencies", {}).get(extra, [])
print("\n".join(reqs))
PY
}

# The Python that started this script, as it was invoked (argv[0] keeps a venv's bin/python,
# which /proc/PID/exe would resolve to the base interpreter); empty unless it has everything.
parent_python() {
    local argv0 exe
    [[ -r "/proc/$PPID/cmdline" ]] || return 0
    argv0="$(tr '\0' '\n' < "/proc/$PPID/cmdline" | head -n 1)"
    if [[ "$argv0" != /* && "$argv0" == */* ]]; then
        argv0="$(cd "$(readlink -f "/proc/$PPID/cwd")" && pwd)/$argv0"
    elif [[ "$argv0" != /* ]]; then
        argv0="$(command -v "$argv0" || true)"
    fi
    for exe in "$argv0" "$(readlink -f "/proc/$PPID/exe" 2>/dev/null)"; do
        if [[ "$(basename "$exe")" == python* ]] && has_deps "$exe"; then
            echo "$exe"
            return 0
        fi
    done
}

PY=""
if [[ -n "${DICOM_COURIER_PYTHON:-}" ]]; then
    PY="$DICOM_COURIER_PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then
    PY="$ROOT/.venv/bin/python"
    if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
        echo "build.sh: adding PyInstaller to .venv"
        "$PY" -m pip install --quiet $(requirements "$PY" package | grep -i '^pyinstaller')
    fi
elif [[ -n "${VIRTUAL_ENV:-}" ]] && has_deps "$VIRTUAL_ENV/bin/python"; then
    PY="$VIRTUAL_ENV/bin/python"
elif parent="$(parent_python)" && [[ -n "$parent" ]]; then
    PY="$parent"
else
    PY="$ROOT/build/venv/bin/python"
    if ! has_deps "$PY"; then
        echo "build.sh: creating build/venv and installing the dependencies and the [package] extra"
        python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            || { echo "build.sh: python3 is older than 3.11" >&2; exit 1; }
        python3 -m venv "$ROOT/build/venv"
        "$PY" -m pip install --quiet --upgrade pip
        requirements "$PY" package > "$ROOT/build/requirements.txt"
        "$PY" -m pip install --quiet -r "$ROOT/build/requirements.txt"
    fi
fi
echo "build.sh: using $PY (Python $("$PY" -c 'import sys; print(sys.version.split()[0])'))"

if [[ ! -f "$ROOT/main.py" ]]; then
    echo "build.sh: main.py not found in $ROOT" >&2
    exit 1
fi

start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" \
    "$ROOT/packaging/dicom-courier.spec"
end=$(date +%s)

APP="$ROOT/dist/dicom-courier"
if [[ ! -x "$APP/dicom-courier" ]]; then
    echo "build.sh: $APP/dicom-courier was not produced" >&2
    exit 1
fi
echo "build.sh: built $APP/dicom-courier in $((end - start)) s"
echo "build.sh: app folder size $(du -sm "$APP" | cut -f1) MiB ($(find "$APP" -type f | wc -l) files)"
