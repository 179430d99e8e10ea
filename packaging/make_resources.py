"""Regenerate the committed files in ``resources/`` from their sources.

Run from the project root with the project's environment (needs PySide6)::

    QT_QPA_PLATFORM=offscreen python packaging/make_resources.py [icons] [jpeg] [licenses]

With no argument it does all three:

icons
    ``resources/icons/dicom-courier-<N>.png`` (N = 16 ... 512) rendered from
    ``resources/icons/dicom-courier.svg`` with Qt's SVG renderer.
jpeg
    ``resources/selftest/jpeg_baseline.dcm``: a 64x64 8-bit MONOCHROME2 Secondary
    Capture instance in JPEG Baseline (1.2.840.10008.1.2.4.50). pydicom 3 has no JPEG
    Baseline encoder, so Qt's JPEG writer makes the codestream; the self-test sends
    it and checks it decodes identically on arrival.
licenses
    ``resources/licenses.json``: every Python distribution the app depends on at run
    time (walked from ``pyproject.toml``'s dependencies through installed metadata),
    with version, licence and home page as its metadata states, plus the native
    libraries that are bundled inside some of them, whose licences metadata cannot show.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RES = ROOT / "resources"
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def make_icons() -> None:
    """Render the SVG icon to PNGs of every size in ICON_SIZES."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])  # Qt needs one for fonts
    svg = RES / "icons" / "dicom-courier.svg"
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    for size in ICON_SIZES:
        img = QImage(size, size, QImage.Format.Format_ARGB32)
        img.fill(Qt.GlobalColor.transparent)
        painter = QPainter(img)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter)
        painter.end()
        out = RES / "icons" / f"dicom-courier-{size}.png"
        if not img.save(str(out), "PNG"):
            raise SystemExit(f"could not write {out}")
        print(f"wrote {out.relative_to(ROOT)}")
    _write_ico()
    _write_icns()


def _png(size: int) -> bytes:
    return (RES / "icons" / f"dicom-courier-{size}.png").read_bytes()


def _write_ico() -> None:
    """Windows icon: an ICO container of PNG images (Vista+), 16 to 256 px."""
    import struct

    sizes = [s for s in ICON_SIZES if s <= 256]
    pngs = [_png(s) for s in sizes]
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    entries = b""
    for size, data in zip(sizes, pngs, strict=True):
        dim = 0 if size == 256 else size  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    out = RES / "icons" / "dicom-courier.ico"
    out.write_bytes(header + entries + b"".join(pngs))
    print(f"wrote {out.relative_to(ROOT)}")


def _write_icns() -> None:
    """macOS icon: an ICNS container of PNG images (OS X 10.7+)."""
    import struct

    types = [
        (b"icp4", 16),
        (b"icp5", 32),
        (b"icp6", 64),
        (b"ic07", 128),
        (b"ic08", 256),
        (b"ic09", 512),
        (b"ic11", 32),
        (b"ic12", 64),
        (b"ic13", 256),
        (b"ic14", 512),
    ]
    body = b"".join(kind + struct.pack(">I", 8 + len(_png(size))) + _png(size) for kind, size in types)
    out = RES / "icons" / "dicom-courier.icns"
    out.write_bytes(b"icns" + struct.pack(">I", 8 + len(body)) + body)
    print(f"wrote {out.relative_to(ROOT)}")


def make_jpeg() -> None:
    """Write the JPEG Baseline self-test instance."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QImage

    rows = cols = 64
    y, x = np.mgrid[0:rows, 0:cols]
    arr = ((x * 3 + y * 2) % 256).astype(np.uint8)
    disc = (x - 32) ** 2 + (y - 28) ** 2 < 18**2
    arr[disc] = 255 - arr[disc]
    arr = np.ascontiguousarray(arr)
    img = QImage(arr.tobytes(), cols, rows, cols, QImage.Format.Format_Grayscale8).copy()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not img.save(buf, "JPEG", 90):
        raise SystemExit("Qt could not encode JPEG (is the qjpeg image format plugin present?)")
    buf.close()
    jpeg = bytes(data.data())
    if not jpeg.startswith(b"\xff\xd8") or b"\xff\xc0" not in jpeg:
        raise SystemExit("Qt did not write a baseline (SOF0) JPEG")

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "SELFTEST^COURIER"
    ds.PatientID = "SELFTEST"
    ds.Modality = "OT"
    ds.ConversionType = "SYN"
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.LossyImageCompressionRatio = f"{rows * cols / len(jpeg):.2f}"
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"
    out = RES / "selftest" / "jpeg_baseline.dcm"
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out, enforce_file_format=True)
    decoded = ds.pixel_array
    err = np.abs(decoded.astype(int) - arr.astype(int)).max()
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes, JPEG {len(jpeg)} bytes, max error {err})")


# Native code bundled inside some wheels, whose licence the wheel's metadata does not state.
_NATIVE = [
    {
        "name": "Qt",
        "in": "PySide6-Essentials",
        "license": "LGPL-3.0-only",
        "url": "https://www.qt.io/licensing/open-source-lgpl-obligations",
        "note": "Qt 6 libraries and plugins, dynamically linked and replaceable in the app folder.",
    },
    {
        "name": "libjpeg (Thomas Richter)",
        "in": "pylibjpeg-libjpeg",
        "license": "GPL-3.0-only",
        "url": "https://github.com/thorfdbg/libjpeg",
        "note": "JPEG, JPEG-LS and JPEG lossless decoder. GPL-3.0: distributing the app with this plugin "
        "means offering its source under the GPL; leave pylibjpeg-libjpeg out of the build to avoid that.",
    },
    {
        "name": "OpenJPEG",
        "in": "pylibjpeg-openjpeg",
        "license": "BSD-2-Clause",
        "url": "https://github.com/uclouvain/openjpeg",
        "note": "JPEG 2000 and HTJ2K codec.",
    },
    {
        "name": "CharLS",
        "in": "pyjpegls",
        "license": "BSD-3-Clause",
        "url": "https://github.com/team-charls/charls",
        "note": "JPEG-LS codec.",
    },
    {
        "name": "Python",
        "in": "(interpreter)",
        "license": "PSF-2.0",
        "url": "https://docs.python.org/3/license.html",
        "note": "CPython runtime and standard library.",
    },
    {
        "name": "OpenSSL",
        "in": "(interpreter)",
        "license": "Apache-2.0",
        "url": "https://www.openssl.org/source/license.html",
        "note": "TLS, via Python's ssl module.",
    },
]

# Test-only or build-only distributions that never reach the app.
_NOT_BUNDLED = {"pyinstaller", "pyinstaller-hooks-contrib", "setuptools", "pip"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _license_of(meta: md.PackageMetadata) -> str:
    expr = meta.get("License-Expression")
    if expr:
        return expr
    lic = (meta.get("License") or "").strip()
    if lic and len(lic) < 80 and "\n" not in lic:
        return lic
    classifiers = [c.split("::")[-1].strip() for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")]
    return " / ".join(classifiers) or "see licence file"


def _home_of(meta: md.PackageMetadata) -> str:
    if meta.get("Home-page"):
        return meta["Home-page"]
    urls = dict(u.split(", ", 1) for u in (meta.get_all("Project-URL") or []) if ", " in u)
    for key in ("Homepage", "homepage", "Source", "Repository", "source", "Documentation", "documentation"):
        if key in urls:
            return urls[key]
    return next(iter(urls.values()), "")


def _runtime_closure(roots: list[str]) -> dict[str, md.Distribution]:
    """Walk `roots` and their non-extra requirements through installed metadata."""
    from packaging.requirements import Requirement

    seen: dict[str, md.Distribution] = {}
    todo = list(roots)
    while todo:
        req = Requirement(todo.pop())
        key = _norm(req.name)
        if key in seen or key in _NOT_BUNDLED:
            continue
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        seen[key] = dist
        todo.extend(dist.requires or [])
    return seen


def make_licenses() -> None:
    """Write resources/licenses.json from the installed distributions' metadata."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dists = _runtime_closure(list(project["dependencies"]))
    packages = []
    for key in sorted(dists):
        meta = dists[key].metadata
        packages.append({"name": meta["Name"], "version": meta["Version"], "license": _license_of(meta), "url": _home_of(meta)})
    data = {
        "application": {
            "name": project["name"],
            "license": project.get("license", {}).get("text", ""),
            "summary": project.get("description", ""),
        },
        "generated_by": "packaging/make_resources.py licenses (from installed package metadata)",
        "python_packages": packages,
        "native_libraries": _NATIVE,
    }
    out = RES / "licenses.json"
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)} ({len(packages)} packages, {len(_NATIVE)} native libraries)")
    for p in packages:
        print(f"  {p['name']:32} {p['version']:18} {p['license']}")


def main(argv: list[str]) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tasks = argv or ["icons", "jpeg", "licenses"]
    for task in tasks:
        {"icons": make_icons, "jpeg": make_jpeg, "licenses": make_licenses}[task]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
