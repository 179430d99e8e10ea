#!/usr/bin/env python3
"""GUI responsiveness benchmark (issue 6): does the window's event loop keep up during a large send?

The script

1. generates ``--n`` (10,000) small CT instances with pydicom (16x16 pixels, about 1 KB each,
   invented patient ``TEST^PATIENT``, unique UIDs, 20 studies of 5 series) into a temporary folder;
2. starts the Storage SCP in a separate process (``python main.py scp --port P``), so the
   receiver does not compete with the window for the GIL;
3. opens the main window offscreen (private config and data folders), adds the folder and waits
   for the tree to fill;
4. presses *Send all* (the pre-flight plan, then the send) while a QTimer fires every
   ``--interval-ms`` (5) milliseconds and records the time between ticks;
5. prints the longest gap and the median gap between ticks during the send (and during the
   load), checks that every instance was stored, and exits 0 when the longest gap is under
   100 ms and the median under 20 ms (1 otherwise, 2 when the send itself failed).

Usage (from the project root)::

    python benchmarks/bench_gui.py              # 10,000 instances
    python benchmarks/bench_gui.py --n 2000     # quicker
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from helpers.process import CourierSCPProcess  # noqa: E402  (the tests' peer helpers)

LONGEST_MS, MEDIAN_MS = 100.0, 20.0


def generate(folder: Path, n: int) -> int:
    """Write `n` small CT instances into `folder`; returns the total size in bytes."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    studies = [generate_uid() for _ in range(20)]
    series = {s: [generate_uid() for _ in range(5)] for s in studies}
    pixels = (np.arange(16 * 16, dtype=np.uint16) % 4096).tobytes()
    total = 0
    for i in range(n):
        study = studies[i % len(studies)]
        ser = series[study][(i // len(studies)) % 5]
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        uid = generate_uid()
        meta.MediaStorageSOPInstanceUID = uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = uid
        ds.PatientName = "TEST^PATIENT"
        ds.PatientID = "TEST-0001"
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = ser
        ds.StudyDescription = f"Bench study {studies.index(study) + 1}"
        ds.SeriesDescription = f"Series {series[study].index(ser) + 1}"
        ds.SeriesNumber = series[study].index(ser) + 1
        ds.InstanceNumber = i + 1
        ds.Modality = "CT"
        ds.StudyDate = "20240101"
        ds.Rows = ds.Columns = 16
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.PixelData = pixels
        path = folder / f"{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        total += path.stat().st_size
    return total


class GapMeter:
    """Records the time between the ticks of a fast QTimer (the event loop's responsiveness)."""

    def __init__(self, interval_ms: int):
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self._last = 0.0
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.gaps = []
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        self._tick()
        return self.gaps

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000.0)
        self._last = now


def wait_for(signal: object, timeout_s: float) -> list:
    """Run the event loop until `signal` fires (or the timeout); returns its arguments (None on timeout)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    got: list = []

    def on(*args: object) -> None:
        got.append(list(args))
        loop.quit()

    signal.connect(on)  # type: ignore[attr-defined]
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(on)  # type: ignore[attr-defined]
    return got[0] if got else None  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10000, help="instances to send (default 10000)")
    ap.add_argument("--interval-ms", type=int, default=5, help="timer interval measuring the event loop (default 5)")
    ap.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds of sending")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args(argv)

    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    work = Path(tempfile.mkdtemp(prefix="courier-bench-gui-"))
    os.environ["DICOM_COURIER_CONFIG_DIR"] = str(work / "config")
    os.environ["DICOM_COURIER_DATA_DIR"] = str(work / "data")
    t0 = time.monotonic()
    size = generate(work / "files", args.n)
    print(f"generated {args.n} instances ({size / 1e6:.1f} MB) in {time.monotonic() - t0:.1f} s", flush=True)
    peer = CourierSCPProcess(ae_title="BENCH", bind=None)  # counts what it receives, keeps nothing
    port = peer.port
    try:
        from PySide6.QtWidgets import QApplication

        from core.profiles import Profile
        from ui import states as st
        from ui.app import build_window
        from ui.logpane import LogBuffer

        app = QApplication.instance() or QApplication([sys.argv[0]])
        QApplication.setStyle("Fusion")
        window = build_window(LogBuffer(), str(work / "config"), str(work / "data"))
        window.resize(1500, 900)
        window.show()
        meter = GapMeter(args.interval_ms)

        t0 = time.monotonic()
        meter.start()
        window.add_paths([str(work / "files")])
        if wait_for(window.scan_controller.scan_finished, 300) is None:
            print("the scan did not finish", file=sys.stderr)
            return 2
        load_gaps = meter.stop()
        load_s = time.monotonic() - t0
        window.view.expandToDepth(1)

        window.profiles.insert(
            window.profiles.rowCount(),
            Profile(name="bench", remote_host="127.0.0.1", remote_port=port, remote_ae_title="BENCH", strategy="standard"),
        )
        window._select_profile("bench")
        asked: list = []
        window.confirmation_requested.connect(asked.append)
        t0 = time.monotonic()
        meter.start()
        window.send_button.click()
        got = wait_for(window.send_controller.send_finished, args.timeout)
        send_gaps = meter.stop()
        send_s = time.monotonic() - t0
        window.shutdown()
        window.close()
        app.processEvents()
        if got is None:
            print(f"the send did not finish within {args.timeout:.0f} s", file=sys.stderr)
            return 2
        counts = window.model.counts()
        stored = counts.get(st.STORED, 0)
        plot_points = len(window.plot.points)
    finally:
        peer.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def line(name: str, gaps: list[float], seconds: float) -> str:
        return (
            f"{name:<5} {seconds:6.1f} s  ticks {len(gaps):6d}  longest stall {max(gaps):6.1f} ms  "
            f"median {statistics.median(gaps):5.1f} ms  p99 {sorted(gaps)[int(len(gaps) * 0.99)]:6.1f} ms"
        )

    print(line("load", load_gaps, load_s))
    print(
        line("send", send_gaps, send_s) + f"  ({stored}/{args.n} stored, {args.n / send_s:.0f} inst/s, "
        f"{plot_points} plot points{', asked for confirmation' if asked else ''})"
    )
    longest, median = max(send_gaps), statistics.median(send_gaps)
    ok = longest < LONGEST_MS and median < MEDIAN_MS and stored == args.n
    print(
        f"bench_gui: longest stall {longest:.1f} ms (target < {LONGEST_MS:.0f}), median {median:.1f} ms "
        f"(target < {MEDIAN_MS:.0f}), {stored}/{args.n} stored: {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
