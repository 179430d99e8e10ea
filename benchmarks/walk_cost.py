"""Cost of the checks made before an instance goes out: the whole-data-set walk and verified conversions.

Prints, per corpus (pydicom's test files, pydicom-data, a generated 5 KB and 0.5 MB CT):
- the walk (``core.walk.walk_file``: open, mmap, walk) in microseconds per file;
- ``core.payload.prepare_payload`` when the file is streamed as stored (the walk plus the decision);
- ``core.roundtrip.convert_verified`` to Implicit VR LE and to RLE Lossless in milliseconds per file
  (encode, walk, read back, compare, and for RLE decode the pixels of both).

Usage: python benchmarks/walk_cost.py [repeats]
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, generate_uid
from pynetdicom.presentation import build_context

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from core import scan
from core.convert import load_dataset
from core.errors import ConversionError
from core.payload import prepare_payload
from core.roundtrip import convert_verified
from core.walk import walk_file
from helpers.data import data_dirs


def ct(path: Path, size: int) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "TEST^PATIENT", "TEST-BENCH", "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", size, size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    yy, xx = np.mgrid[0:size, 0:size]
    ds.PixelData = ((xx * 7 + yy * 3) % 4096).astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def timed(fn, repeats: int) -> float:
    best = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    return min(best)


def measure(name: str, files: list[Path], repeats: int) -> None:
    insts = [(p, scan.read_instance(str(p))) for p in files]
    insts = [(p, i) for p, i in insts if i.status == "ok" and i.data_offset]
    walks, streams, implicit, rle = [], [], [], []
    for path, inst in insts:
        syntax = inst.encoding or inst.transfer_syntax
        walks.append(timed(partial(walk_file, path, syntax, inst.data_offset), repeats))
        cx = build_context(inst.sop_class_uid, [inst.transfer_syntax])
        cx.context_id = 1
        if not inst.needs_rewrite:
            streams.append(timed(partial(prepare_payload, str(path), inst, [cx]), repeats))
        ds = load_dataset(str(path), inst)
        for target, out in ((ImplicitVRLittleEndian, implicit), (RLELossless, rle)):
            with contextlib.suppress(ConversionError):
                out.append(timed(partial(convert_verified, ds, target), 1))
    size = statistics.mean(p.stat().st_size for p, _ in insts)

    def us(v: list[float]) -> str:
        return f"{statistics.median(v) * 1e6:7.0f} µs median, {statistics.mean(v) * 1e6:7.0f} µs mean" if v else "-"

    def ms(v: list[float]) -> str:
        return f"{statistics.median(v) * 1e3:7.2f} ms median, {statistics.mean(v) * 1e3:7.2f} ms mean (n={len(v)})" if v else "-"

    print(f"{name}: {len(insts)} files, {size / 1024:.0f} KiB mean")
    print(f"  walk                          {us(walks)}")
    print(f"  prepare_payload (streamed)    {us(streams)}")
    print(f"  verified -> Implicit VR LE    {ms(implicit)}")
    print(f"  verified -> RLE Lossless      {ms(rle)}")


def main() -> None:
    warnings.simplefilter("ignore")
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    dirs = data_dirs()
    measure("pydicom test files", [p for p in sorted(dirs[0].rglob("*")) if p.is_file()], repeats)
    for d in dirs[1:]:
        measure("pydicom-data", [p for p in sorted(d.rglob("*")) if p.is_file()], repeats)
    with tempfile.TemporaryDirectory() as tmp:
        measure("generated 5 KB CT", [ct(Path(tmp) / "small.dcm", 48)], repeats * 20)
        measure("generated 0.5 MB CT", [ct(Path(tmp) / "large.dcm", 512)], repeats * 4)


if __name__ == "__main__":
    main()
