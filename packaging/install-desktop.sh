#!/usr/bin/env bash
# Linux desktop integration for a built (or unpacked) DICOM Courier folder: the menu entry and
# the icon in every size, for the current user (default) or system-wide.
#
#   bash packaging/install-desktop.sh [APP_DIR] [--system] [--uninstall]
#
# APP_DIR is the folder that holds the dicom-courier executable (default: dist/dicom-courier).
# Per user it writes under ${XDG_DATA_HOME:-~/.local/share}; with --system under /usr/local/share.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP_DIR="$ROOT/dist/dicom-courier"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
UNINSTALL=0
for arg in "$@"; do
    case "$arg" in
        --system) DATA=/usr/local/share ;;
        --uninstall) UNINSTALL=1 ;;
        -h|--help) sed -n '2,9p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) APP_DIR="$(cd "$arg" && pwd)" ;;
    esac
done

SIZES=(16 32 48 64 128 256 512)
if [[ $UNINSTALL -eq 1 ]]; then
    rm -f "$DATA/applications/dicom-courier.desktop" "$DATA/icons/hicolor/scalable/apps/dicom-courier.svg"
    for s in "${SIZES[@]}"; do rm -f "$DATA/icons/hicolor/${s}x${s}/apps/dicom-courier.png"; done
    echo "removed the DICOM Courier menu entry and icons from $DATA"
    exit 0
fi

EXE="$APP_DIR/dicom-courier"
[[ -x "$EXE" ]] || { echo "install-desktop.sh: no executable at $EXE (build it: bash packaging/build.sh)" >&2; exit 1; }
# Resources sit in _internal/ in a PyInstaller 6 folder, at the top in a source checkout.
RES="$APP_DIR/_internal/resources"
[[ -d "$RES" ]] || RES="$ROOT/resources"

install -Dm644 "$RES/icons/dicom-courier.svg" "$DATA/icons/hicolor/scalable/apps/dicom-courier.svg"
for s in "${SIZES[@]}"; do
    install -Dm644 "$RES/icons/dicom-courier-$s.png" "$DATA/icons/hicolor/${s}x${s}/apps/dicom-courier.png"
done
mkdir -p "$DATA/applications"
# The menu entry runs this folder's executable (quoted for the Exec key, spec section "The Exec key").
sed -e "s|^Exec=.*|Exec=\"$EXE\"|" -e "s|^TryExec=.*|TryExec=$EXE|" \
    "$RES/dicom-courier.desktop" > "$DATA/applications/dicom-courier.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$DATA/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" || true
echo "installed the DICOM Courier menu entry ($DATA/applications/dicom-courier.desktop) for $EXE"
