#!/usr/bin/env python3
"""Send-throughput benchmark: DCMTK ``storescu`` versus DICOM Courier's CLI, same run, same receiver.

The script

1. generates its corpora with pydicom (fixed seed, patient ``TEST^PATIENT``, unique UIDs) into a
   cache directory, reused on the next run:

   ``ct``     2,000 CT images 512x512x16 bit (about 0.5 MB each), Explicit VR Little Endian;
   ``small``  20,000 CT images 40x40x16 bit (about 4 KB each), Explicit VR Little Endian;
   ``mixed``  1,000 instances of 8 SOP classes (CT, MR, CR, DX, US RGB, Secondary Capture,
              NM multi-frame, Basic Text SR) in Explicit and Implicit VR Little Endian,
              RLE Lossless and JPEG 2000 Lossless;

   ``--scale F`` multiplies the counts (``--scale 0.05`` for a quick run);
2. starts DCMTK ``storescp`` on a free port (``TCP_NODELAY=1 storescp --fork --ignore +xa -v``),
   and, for ``--disk-pairs``, a second one that writes what it receives to disk (``-od DIR``);
3. sends each corpus with A = ``TCP_NODELAY=1 storescu +sd +r`` (one association), B = DICOM
   Courier's CLI (``--courier-cmd``) and optionally C = pynetdicom's bundled storescu
   (``--with-pynetdicom``, in the first ``--pynetdicom-pairs`` rounds only: it is slow), alternating
   A B (C) A B (C) for ``--pairs`` rounds;
4. checks that the receiver got every instance: for the ``--ignore`` receiver it counts the
   "Received Store Request" lines that storescp logged during the run (and any aborted
   association); for the disk receiver it compares the SOP Instance UIDs of the files written
   with the corpus manifest;
5. measures each run: wall time, files/s, MB/s (1 MB = 10^6 bytes of DICOM files), CPU seconds
   per file (user + system time of the sender and of the children it waited for, from
   ``os.wait4``) and peak RSS (the largest single process, not a sum; read through GNU ``time``
   when installed, because ``wait4``'s ``ru_maxrss`` of a child also counts the harness's own
   RSS, which Linux carries across ``execve``); Linux only;
6. prints, per corpus, the median of each sender over the verified runs and the ratio
   Courier / storescu (and Courier / pynetdicom) of those medians, with the issue 6 targets,
   and writes every raw run to ``--json FILE``.

Usage (from the project root)::

    python benchmarks/bench_send.py                              # full size, 3 pairs
    python benchmarks/bench_send.py --scale 0.05 --pairs 3       # quick check
    python benchmarks/bench_send.py --corpora small --scale 0.1 --with-pynetdicom --json bench-out/small.json
    # before main.py exists: pynetdicom's storescu as a stand-in Courier
    python benchmarks/bench_send.py --scale 0.05 \\
        --courier-cmd '{python} -m pynetdicom storescu -r -cx -aec {aet} {host} {port} {dir}'

``--courier-cmd`` is a template; ``{python}`` (this interpreter), ``{host}``, ``{port}``,
``{aet}`` (the receiver's AE title) and ``{dir}`` (the corpus directory) are substituted
(shell-quoted), and the command runs from ``--project-root``.

storescu needs to be told which transfer syntaxes to propose: by default it proposes only the
uncompressed ones and cannot convert RLE or JPEG 2000 files (it has no decoder for them), so for
a corpus holding compressed files the script writes a DCMTK association profile with one
presentation context per (SOP class, transfer syntax) found in the corpus and passes it with
``-xf FILE Bench``. pynetdicom's storescu gets ``-cx`` (the contexts the files need); without it,
it proposes Deflated, which ``storescp +xa`` prefers, and would zlib-compress every instance.

The exit status is 0 only if every run was verified complete and the sender exited with 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers.process import free_port, start_process, stop_process  # the tests' peer helpers

GENERATOR_VERSION = 1
AET = "BENCH"
HOST = "127.0.0.1"
MB = 1_000_000
PATIENT_NAME = "TEST^PATIENT"
DCMTK_PROFILE = "Bench"

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
UNCOMPRESSED = {EXPLICIT_LE, IMPLICIT_LE}

DEFAULT_COURIER_CMD = "{python} main.py send --host {host} --port {port} --called-ae {aet} {dir}"
PYNETDICOM_CMD = "{python} -m pynetdicom storescu -r -cx -aec {aet} {host} {port} {dir}"


# --------------------------------------------------------------------------------------------
# Corpora
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusSpec:
    """A corpus recipe: its name, instance count at scale 1, instances per study, description."""

    name: str
    count: int
    per_study: int
    description: str


CORPORA = {
    "ct": CorpusSpec("ct", 2000, 250, "CT 512x512x16 bit (~0.5 MB), Explicit VR LE"),
    "small": CorpusSpec("small", 20000, 50, "CT 40x40x16 bit (~4 KB), Explicit VR LE"),
    "mixed": CorpusSpec("mixed", 1000, 25, "8 SOP classes; Explicit/Implicit VR LE, RLE Lossless, JPEG 2000 Lossless"),
}


@dataclass(frozen=True)
class ImageKind:
    """One SOP class of the mixed corpus and the transfer syntaxes its files are written in."""

    sop_class: str
    modality: str
    rows: int
    cols: int
    bits_allocated: int
    bits_stored: int
    samples: int
    frames: int
    syntaxes: tuple[str, ...]


MIXED_KINDS = (
    ImageKind(
        "1.2.840.10008.5.1.4.1.1.2",
        "CT",
        512,
        512,
        16,
        12,
        1,
        1,
        (EXPLICIT_LE, RLE_LOSSLESS, J2K_LOSSLESS, IMPLICIT_LE),
    ),
    ImageKind(
        "1.2.840.10008.5.1.4.1.1.4",
        "MR",
        256,
        256,
        16,
        12,
        1,
        1,
        (EXPLICIT_LE, RLE_LOSSLESS, J2K_LOSSLESS, IMPLICIT_LE),
    ),
    ImageKind("1.2.840.10008.5.1.4.1.1.1", "CR", 768, 768, 16, 12, 1, 1, (J2K_LOSSLESS, EXPLICIT_LE, RLE_LOSSLESS)),
    ImageKind("1.2.840.10008.5.1.4.1.1.1.1", "DX", 640, 640, 16, 14, 1, 1, (J2K_LOSSLESS, EXPLICIT_LE, RLE_LOSSLESS)),
    ImageKind("1.2.840.10008.5.1.4.1.1.6.1", "US", 480, 640, 8, 8, 3, 1, (RLE_LOSSLESS, EXPLICIT_LE)),
    ImageKind("1.2.840.10008.5.1.4.1.1.7", "OT", 512, 512, 8, 8, 1, 1, (EXPLICIT_LE, J2K_LOSSLESS, RLE_LOSSLESS)),
    ImageKind("1.2.840.10008.5.1.4.1.1.20", "NM", 128, 128, 16, 12, 1, 8, (EXPLICIT_LE, J2K_LOSSLESS, RLE_LOSSLESS)),
    ImageKind("1.2.840.10008.5.1.4.1.1.88.11", "SR", 0, 0, 0, 0, 0, 0, (EXPLICIT_LE, IMPLICIT_LE)),
)
CT_KIND = ImageKind("1.2.840.10008.5.1.4.1.1.2", "CT", 512, 512, 16, 12, 1, 1, (EXPLICIT_LE,))
SMALL_KIND = ImageKind("1.2.840.10008.5.1.4.1.1.2", "CT", 40, 40, 16, 12, 1, 1, (EXPLICIT_LE,))
PIXEL_VARIANTS = 4  # distinct pixel payloads per (SOP class, transfer syntax)


@dataclass
class Corpus:
    """A generated corpus on disk: ``files`` holds the DICOM files, one sub-directory per study."""

    name: str
    root: Path
    manifest: dict

    @property
    def files_dir(self) -> Path:
        return self.root / "files"

    @property
    def count(self) -> int:
        return self.manifest["count"]

    @property
    def nbytes(self) -> int:
        return self.manifest["bytes"]

    @property
    def contexts(self) -> list[tuple[str, str]]:
        return [tuple(pair) for pair in self.manifest["contexts"]]


def scaled_count(spec: CorpusSpec, scale: float) -> int:
    """Number of instances of ``spec`` at ``scale`` (at least 1)."""
    return max(1, round(spec.count * scale))


def ensure_corpus(spec: CorpusSpec, cache: Path, scale: float, seed: int) -> Corpus:
    """Return the corpus from the cache, generating it first if missing or from another version."""
    count = scaled_count(spec, scale)
    root = cache / f"{spec.name}-n{count}-seed{seed}"
    manifest_path = root / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        on_disk = sum(1 for _ in (root / "files").rglob("*.dcm"))
        if manifest.get("version") == GENERATOR_VERSION and manifest.get("count") == count == on_disk:
            return Corpus(spec.name, root, manifest)
    if root.exists():
        shutil.rmtree(root)
    (root / "files").mkdir(parents=True)
    print(f"generating corpus {spec.name}: {count} files in {root} ...", flush=True)
    t0 = time.perf_counter()
    manifest = _generate(spec, root / "files", count, seed)
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest))
    tmp.replace(manifest_path)  # written last: an interrupted generation is regenerated next time
    print(f"  {count} files, {manifest['bytes'] / MB:.1f} MB in {time.perf_counter() - t0:.1f} s", flush=True)
    return Corpus(spec.name, root, manifest)


def _uid(seed: int, *keys: object) -> str:
    """A deterministic, unique UID derived from the seed and ``keys``."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["dicom-courier-bench", str(seed), *map(str, keys)])


def _pixels(rng, kind: ImageKind):
    """A smooth phantom with noise (so that lossless codecs compress it realistically)."""
    import numpy as np

    rows, cols = kind.rows, kind.cols
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy, cx = rows * rng.uniform(0.4, 0.6), cols * rng.uniform(0.4, 0.6)
    r2 = ((y - cy) / (rows * 0.4)) ** 2 + ((x - cx) / (cols * 0.35)) ** 2
    top = (1 << kind.bits_stored) - 1
    img = np.where(r2 < 1.0, 0.55, 0.05) * top + (x + y) / (rows + cols) * 0.2 * top
    frames = []
    for _ in range(kind.frames):
        noisy = img + rng.normal(0.0, top * 0.01, img.shape)
        frames.append(np.clip(noisy, 0, top))
    arr = np.stack(frames) if kind.frames > 1 else frames[0]
    dtype = np.uint8 if kind.bits_allocated == 8 else np.uint16
    arr = arr.astype(dtype)
    if kind.samples == 3:
        arr = np.stack([arr, (arr * 0.8).astype(dtype), (arr * 0.6).astype(dtype)], axis=-1)
    return arr


def _template(kind: ImageKind, syntax: str, rng, seed: int, corpus: str):
    """A dataset of ``kind`` in ``syntax`` whose per-instance attributes are set by ``_stamp``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = EXPLICIT_LE
    ds.file_meta.MediaStorageSOPClassUID = kind.sop_class
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = kind.sop_class
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20260101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.Modality = kind.modality
    ds.Manufacturer = "DICOM Courier benchmark"
    ds.ReferringPhysicianName = ""
    ds.PatientName = PATIENT_NAME
    ds.PatientID = f"BENCH-{corpus.upper()}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    if kind.modality == "SR":
        ds.ValueType = "CONTAINER"
        ds.ContinuityOfContent = "SEPARATE"
        ds.CompletionFlag = "COMPLETE"
        ds.VerificationFlag = "UNVERIFIED"
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
            "18748-4",
            "LN",
            "Diagnostic Imaging Report",
        )
        ds.ConceptNameCodeSequence = Sequence([code])
        item = Dataset()
        item.RelationshipType, item.ValueType = "CONTAINS", "TEXT"
        finding = Dataset()
        finding.CodeValue, finding.CodingSchemeDesignator, finding.CodeMeaning = "121071", "DCM", "Finding"
        item.ConceptNameCodeSequence = Sequence([finding])
        item.TextValue = "Benchmark report " + "lorem ipsum " * int(rng.integers(5, 60))
        ds.ContentSequence = Sequence([item])
    else:
        if kind.modality == "CT":
            ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
            ds.KVP = 120
            ds.SliceThickness = 1.0
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.PixelSpacing = [0.7, 0.7]
        if kind.frames > 1:
            ds.NumberOfFrames = kind.frames
        ds.SamplesPerPixel = kind.samples
        ds.PhotometricInterpretation = "RGB" if kind.samples == 3 else "MONOCHROME2"
        if kind.samples == 3:
            ds.PlanarConfiguration = 0
        ds.Rows, ds.Columns = kind.rows, kind.cols
        ds.BitsAllocated, ds.BitsStored = kind.bits_allocated, kind.bits_stored
        ds.HighBit, ds.PixelRepresentation = kind.bits_stored - 1, 0
        ds.PixelData = _pixels(rng, kind).tobytes()
        if syntax in (RLE_LOSSLESS, J2K_LOSSLESS):
            plugin = "pylibjpeg" if syntax == J2K_LOSSLESS else ""
            # generate_instance_uid defaults to True in pydicom 3; UIDs are stamped per file anyway.
            ds.compress(syntax, encoding_plugin=plugin, generate_instance_uid=False)
    ds.file_meta.TransferSyntaxUID = syntax
    return ds


def _stamp(ds, seed: int, corpus: str, index: int, study: int, series: int) -> None:
    """Set the per-instance attributes (UIDs, numbers) of a template before writing it."""
    ds.SOPInstanceUID = _uid(seed, corpus, "instance", index)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = _uid(seed, corpus, "study", study)
    ds.SeriesInstanceUID = _uid(seed, corpus, "series", study, series)
    ds.StudyID = str(study + 1)
    ds.AccessionNumber = f"B{study + 1:07d}"
    ds.SeriesNumber = series + 1
    ds.InstanceNumber = index + 1
    if "ImageOrientationPatient" in ds:
        ds.ImagePositionPatient = [-180.0, -180.0, -float(index % 1000)]
        ds.SliceLocation = -float(index % 1000)


def _generate(spec: CorpusSpec, files_dir: Path, count: int, seed: int) -> dict:
    """Write ``count`` files of ``spec`` under ``files_dir`` and return the manifest."""
    import numpy as np

    rng = np.random.default_rng(seed)
    kinds = MIXED_KINDS if spec.name == "mixed" else (CT_KIND if spec.name == "ct" else SMALL_KIND,)
    templates: dict[tuple[int, str, int], object] = {}
    sop_classes: Counter[str] = Counter()
    syntaxes: Counter[str] = Counter()
    contexts: set[tuple[str, str]] = set()
    uids: list[str] = []
    total = 0
    for index in range(count):
        kind_no = index % len(kinds)
        kind = kinds[kind_no]
        syntax = kind.syntaxes[(index // len(kinds)) % len(kind.syntaxes)]
        variant = (index // (len(kinds) * len(kind.syntaxes))) % PIXEL_VARIANTS
        key = (kind_no, syntax, variant)
        if key not in templates:
            templates[key] = _template(kind, syntax, rng, seed, spec.name)
        ds = templates[key]
        study = index // spec.per_study
        _stamp(ds, seed, spec.name, index, study, kind_no)
        study_dir = files_dir / f"study{study + 1:05d}"
        study_dir.mkdir(exist_ok=True)
        path = study_dir / f"{index + 1:06d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        total += path.stat().st_size
        uids.append(ds.SOPInstanceUID)
        sop_classes[kind.sop_class] += 1
        syntaxes[syntax] += 1
        contexts.add((kind.sop_class, syntax))
        if (index + 1) % 2000 == 0:
            print(f"  {index + 1}/{count}", flush=True)
    if len(set(uids)) != len(uids):
        raise RuntimeError("generated SOP Instance UIDs are not unique")
    return {
        "version": GENERATOR_VERSION,
        "name": spec.name,
        "description": spec.description,
        "seed": seed,
        "count": count,
        "bytes": total,
        "studies": (count + spec.per_study - 1) // spec.per_study,
        "sop_classes": dict(sop_classes),
        "transfer_syntaxes": dict(syntaxes),
        "contexts": sorted(contexts),
        "uids": uids,
    }


def warm_page_cache(corpus: Corpus) -> None:
    """Read every file once so that the first sender does not pay for a cold cache."""
    for path in corpus.files_dir.rglob("*.dcm"):
        with open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass


def write_storescu_profile(corpus: Corpus) -> Path | None:
    """Write a DCMTK association profile with one context per (SOP class, transfer syntax).

    Returns None when the corpus is all uncompressed (storescu's default proposal covers it).
    """
    if all(ts in UNCOMPRESSED for _, ts in corpus.contexts):
        return None
    syntaxes = sorted({ts for _, ts in corpus.contexts})
    lines = ["[[TransferSyntaxes]]"]
    for n, ts in enumerate(syntaxes, 1):
        lines += [f"[TS{n}]", f"TransferSyntax1 = {ts}"]
    lines += ["", "[[PresentationContexts]]", "[BenchContexts]"]
    for n, (sop, ts) in enumerate(corpus.contexts, 1):
        lines.append(f"PresentationContext{n} = {sop}\\TS{syntaxes.index(ts) + 1}")
    lines += ["", "[[Profiles]]", f"[{DCMTK_PROFILE}]", "PresentationContexts = BenchContexts", ""]
    path = corpus.root / "storescu.cfg"
    path.write_text("\n".join(lines))
    return path


# --------------------------------------------------------------------------------------------
# Receiver
# --------------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """What the receiver saw during one run."""

    received: int
    associations: int
    released: int
    aborted: int
    missing: int = 0
    unexpected: int = 0
    errors: list[str] = field(default_factory=list)


class StoreSCP:
    """A DCMTK ``storescp --fork +xa -v`` on a free port, either ``--ignore`` or writing to disk."""

    def __init__(self, logdir: Path, outdir: Path | None, pdu: int | None):
        self.disk = outdir is not None
        self.outdir = outdir
        self.log_path = logdir / ("storescp-disk.log" if self.disk else "storescp-ignore.log")
        self.port = free_port()
        argv = ["storescp", "--fork", "-v", "+xa", "-aet", AET]
        argv += ["-od", str(outdir)] if outdir else ["--ignore"]
        if pdu:
            argv += ["-pdu", str(pdu)]
        argv.append(str(self.port))
        self.argv = argv
        self.proc: subprocess.Popen | None = None

    @property
    def label(self) -> str:
        return "storescp -od DIR (disk)" if self.disk else "storescp --ignore"

    def start(self) -> None:
        """Start storescp and wait until it answers a C-ECHO."""
        if self.outdir:
            self.outdir.mkdir(parents=True, exist_ok=True)
            self.clear()
        env = dict(os.environ, TCP_NODELAY="1")
        self.proc = start_process(
            self.argv, [self.port], self.log_path, env, timeout=10, stdin=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"storescp exited with {self.proc.returncode}; see {self.log_path}")
            echo = subprocess.run(
                ["echoscu", "-aec", AET, HOST, str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if echo.returncode == 0:
                time.sleep(0.2)  # let the echo association's child log its release
                return
            time.sleep(0.1)
        raise RuntimeError(f"storescp did not answer C-ECHO on port {self.port}")

    def stop(self) -> None:
        """Stop the storescp this object started."""
        if self.proc:
            stop_process(self.proc)

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None

    def mark(self) -> int:
        """Current end of the log; pass it to ``delivery`` after the run."""
        return self.log_path.stat().st_size

    def clear(self) -> None:
        """Delete the files received so far (disk receiver)."""
        if self.outdir and self.outdir.exists():
            for entry in self.outdir.iterdir():
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()

    def _log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")

    def delivery(self, offset: int, corpus: Corpus) -> Delivery:
        """Count what arrived since ``offset``, waiting (up to 10 s) for the log to settle.

        The sender has exited, so every association is over from its side; storescp's children
        may still be logging their last lines (or writing their last file).
        """
        deadline = time.monotonic() + 10
        last, stable_since = None, time.monotonic()
        while True:
            text = self._log_since(offset)
            state = (len(text), self._count_files() if self.disk else 0)
            done = self._parse(text)
            finished = done.associations > 0 and done.released + done.aborted >= done.associations
            now = time.monotonic()
            if state != last:
                last, stable_since = state, now
            if (finished and now - stable_since > 0.05) or now - stable_since > 2 or now > deadline:
                break
            time.sleep(0.02)
        if self.disk:
            expected = set(corpus.manifest["uids"])
            got = self._received_uids()
            done.missing = len(expected - got)
            done.unexpected = len(got - expected)
            done.received = len(got)
        else:
            done.missing = max(0, corpus.count - done.received)
            done.unexpected = max(0, done.received - corpus.count)
        return done

    @staticmethod
    def _parse(text: str) -> Delivery:
        errors = [line for line in text.splitlines() if line.startswith(("E: ", "F: "))]
        return Delivery(
            received=text.count("Received Store Request"),
            associations=text.count("Association Received"),
            released=text.count("Association Release"),
            aborted=text.count("Association Aborted"),
            errors=errors[:20],
        )

    def _count_files(self) -> int:
        return sum(1 for path in self.outdir.rglob("*") if path.is_file()) if self.outdir else 0

    def _received_uids(self) -> set[str]:
        # storescp names files "<modality>.<SOP Instance UID>" (its default, -uf).
        return {p.name.split(".", 1)[1] for p in self.outdir.rglob("*") if p.is_file() and "." in p.name}


# --------------------------------------------------------------------------------------------
# Senders and runs
# --------------------------------------------------------------------------------------------


@dataclass
class Sender:
    """A command that sends a directory to the receiver."""

    key: str
    template: str | None  # None: DCMTK storescu, built in ``argv``
    cwd: Path

    def argv(self, corpus: Corpus, port: int | str) -> list[str]:
        """The command line for sending ``corpus`` to ``port``."""
        if self.template is None:
            argv = ["storescu", "+sd", "+r", "-aec", AET]
            profile = write_storescu_profile(corpus)
            if profile:
                argv += ["-xf", str(profile), DCMTK_PROFILE]
            return [*argv, HOST, str(port), str(corpus.files_dir)]
        values = {
            "python": sys.executable,
            "host": HOST,
            "port": str(port),
            "aet": AET,
            "dir": str(corpus.files_dir),
        }
        return shlex.split(self.template.format(**{k: shlex.quote(v) for k, v in values.items()}))


@dataclass
class Run:
    """One measured send (raw numbers, as written to the JSON)."""

    corpus: str
    receiver: str
    pair: int
    sender: str
    argv: list[str]
    files: int
    bytes: int
    returncode: int | None = None
    wall_s: float = 0.0
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0
    peak_rss_mb: float = 0.0
    rss_source: str = ""
    files_per_s: float = 0.0
    mb_per_s: float = 0.0
    cpu_s_per_file: float = 0.0
    received: int = 0
    associations: int = 0
    aborted: int = 0
    missing: int = 0
    unexpected: int = 0
    timed_out: bool = False
    ok: bool = False
    problem: str = ""
    log: str = ""
    receiver_errors: list[str] = field(default_factory=list)


def gnu_time() -> str | None:
    """Path of GNU ``time`` if installed (Debian package ``time``), else None.

    A child's ``ru_maxrss`` from ``wait4`` is not its own peak: Linux carries the RSS high-water
    mark of the pre-exec address space (a copy of this harness, with numpy and pydicom loaded)
    across ``execve``. GNU time is a small process, so the sender it forks reports its own peak.
    """
    path = shutil.which("time")
    if not path:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if "GNU" in out.stdout + out.stderr else None


def run_once(
    sender: Sender,
    corpus: Corpus,
    scp: StoreSCP,
    pair: int,
    logdir: Path,
    timeout: float,
    time_cmd: str | None,
) -> Run:
    """Send ``corpus`` once with ``sender`` to ``scp``, measure it and check the delivery."""
    argv = sender.argv(corpus, scp.port)
    receiver = "disk" if scp.disk else "ignore"
    run = Run(corpus.name, receiver, pair, sender.key, argv, corpus.count, corpus.nbytes)
    log_path = logdir / f"{corpus.name}-{receiver}-{pair}-{sender.key}.log"
    rss_path = log_path.with_suffix(".rss")
    run.log = str(log_path)
    wrapped = [time_cmd, "-f", "%M", "-o", str(rss_path), "--", *argv] if time_cmd else argv
    scp.clear()
    offset = scp.mark()
    env = dict(os.environ, TCP_NODELAY="1")
    with open(log_path, "wb") as log:
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(
                wrapped,
                cwd=sender.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            run.problem = f"cannot start: {exc}"
            return run
        lock, reaped, timed_out = threading.Lock(), [False], [False]

        def kill_group() -> None:
            with lock:
                if not reaped[0]:
                    timed_out[0] = True
                    os.killpg(proc.pid, signal.SIGKILL)  # the sender's own session only

        timer = threading.Timer(timeout, kill_group)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            with lock:
                reaped[0] = True
        finally:
            timer.cancel()
        run.wall_s = time.perf_counter() - t0
    proc.returncode = run.returncode = os.waitstatus_to_exitcode(status)
    run.timed_out = timed_out[0]
    # user + system time of the child and of every descendant it waited for (GNU time: the sender)
    run.cpu_user_s, run.cpu_sys_s = usage.ru_utime, usage.ru_stime
    run.peak_rss_mb = usage.ru_maxrss / 1024  # KiB on Linux; overstated without GNU time
    run.rss_source = "wait4 (includes the harness's RSS)"
    if time_cmd:
        lines = rss_path.read_text().split() if rss_path.exists() else []
        if lines and lines[-1].isdigit():
            run.peak_rss_mb, run.rss_source = int(lines[-1]) / 1024, "GNU time"
        rss_path.unlink(missing_ok=True)
    run.files_per_s = corpus.count / run.wall_s
    run.mb_per_s = corpus.nbytes / MB / run.wall_s
    run.cpu_s_per_file = (usage.ru_utime + usage.ru_stime) / corpus.count

    got = scp.delivery(offset, corpus)
    run.received, run.associations, run.aborted = got.received, got.associations, got.aborted
    run.missing, run.unexpected, run.receiver_errors = got.missing, got.unexpected, got.errors
    problems = []
    if run.timed_out:
        problems.append(f"killed after {timeout:.0f} s")
    if run.returncode != 0:
        problems.append(f"exit status {run.returncode}")
    if got.missing or got.unexpected:
        problems.append(
            f"receiver got {got.received} of {corpus.count}"
            + (f" ({got.missing} missing)" if got.missing else "")
            + (f" ({got.unexpected} unexpected)" if got.unexpected else "")
        )
    if got.aborted:
        problems.append(f"{got.aborted} association(s) aborted")
    if not scp.alive():
        problems.append("storescp died")
    run.problem = "; ".join(problems)
    run.ok = not problems
    scp.clear()
    return run


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

METRICS = (  # (Run attribute, column title, format, scale factor for display)
    ("wall_s", "wall s", "{:9.2f}", 1.0),
    ("files_per_s", "files/s", "{:9.1f}", 1.0),
    ("mb_per_s", "MB/s", "{:8.1f}", 1.0),
    ("cpu_s_per_file", "CPU ms/file", "{:12.3f}", 1000.0),
    ("peak_rss_mb", "peak RSS MB", "{:12.1f}", 1.0),
)


def medians(runs: list[Run]) -> dict[str, float] | None:
    """Median of each metric over the verified runs, or None if there are none."""
    good = [r for r in runs if r.ok]
    if not good:
        return None
    return {m: statistics.median(getattr(r, m) for r in good) for m, *_ in METRICS}


def overview(summaries: dict) -> str:
    """One line per corpus (storescp --ignore): each sender's files/s and MB/s, Courier's ratios."""
    rows = [
        f"{'corpus':<8}{'sender':<12}{'files/s':>10}{'MB/s':>9}{'CPU ms/file':>13}{'peak RSS MB':>13}{'courier/storescu':>18}"
    ]
    for name, by_receiver in summaries.items():
        summary = by_receiver.get("ignore", {})
        ratio = summary.get("ratios", {}).get("storescu")
        for key, entry in summary.items():
            if key in ("ratios", "targets") or not entry.get("median"):
                continue
            med = entry["median"]
            note = f"{ratio['files_per_s']:.2f}x" if key == "courier" and ratio else ""
            row = (
                f"{name:<8}{key:<12}{med['files_per_s']:10.1f}{med['mb_per_s']:9.1f}"
                f"{med['cpu_s_per_file'] * 1000:13.3f}{med['peak_rss_mb']:13.1f}{note:>18}"
            )
            rows.append(row.rstrip())
    return "\n".join(rows)


def table(corpus: Corpus, receiver: str, senders: list[Sender], runs: list[Run]) -> tuple[str, dict]:
    """The printed table for one corpus and receiver, and its summary for the JSON."""
    rows = [
        f"{'sender':<12}{'ok':>6}"
        + "".join(f"{title:>{len(fmt.format(0))}}" for _, title, fmt, _ in METRICS)
        + "  files/s min-max"
    ]
    summary: dict = {}
    for sender in senders:
        mine = [r for r in runs if r.sender == sender.key]
        if not mine:
            continue
        med = medians(mine)
        summary[sender.key] = {"runs": len(mine), "ok": sum(r.ok for r in mine), "median": med}
        cells = "".join(fmt.format(med[m] * factor) if med else f"{'-':>{len(fmt.format(0))}}" for m, _, fmt, factor in METRICS)
        speeds = [r.files_per_s for r in mine if r.ok]
        spread = f"  {min(speeds):.1f}-{max(speeds):.1f}" if speeds else ""
        rows.append(f"{sender.key:<12}{sum(r.ok for r in mine):>3}/{len(mine):<2}" + cells + spread)
    ratios = {}
    for other in ("storescu", "pynetdicom"):
        a, b = summary.get("courier", {}).get("median"), summary.get(other, {}).get("median")
        if a and b:
            ratios[other] = {m: a[m] / b[m] for m, *_ in METRICS if b[m]}
    summary["ratios"] = ratios
    if "storescu" in ratios:
        r = ratios["storescu"]
        rows.append(
            f"courier / storescu: files/s {r['files_per_s']:.2f}x  MB/s {r['mb_per_s']:.2f}x  "
            f"CPU/file {r['cpu_s_per_file']:.2f}x  peak RSS {r['peak_rss_mb']:.2f}x"
        )
    if "pynetdicom" in ratios:
        r = ratios["pynetdicom"]
        rows.append(f"courier / pynetdicom storescu: files/s {r['files_per_s']:.2f}x  CPU/file {r['cpu_s_per_file']:.2f}x")
    targets = check_targets(corpus.name, summary) if receiver == "ignore" else []
    if targets:
        rows.append("issue 6 targets: " + "; ".join(targets))
    summary["targets"] = targets
    failed = [r for r in runs if not r.ok]
    rows.extend(f"  FAILED {r.sender} pair {r.pair}: {r.problem} (log {r.log})" for r in failed)
    return "\n".join(rows), summary


def check_targets(corpus: str, summary: dict) -> list[str]:
    """Issue 6 item 3, from this run's medians (courier against storescu / pynetdicom)."""
    out = []
    vs_dcmtk = summary["ratios"].get("storescu")
    vs_pynd = summary["ratios"].get("pynetdicom")
    courier = summary.get("courier", {}).get("median")
    if not courier:
        return out

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    if vs_dcmtk and corpus == "ct":
        out.append(f"MB/s >= 1.0x storescu {verdict(vs_dcmtk['mb_per_s'] >= 1.0)}")
    if vs_dcmtk and corpus == "small":
        out.append(f"files/s >= 1.0x storescu {verdict(vs_dcmtk['files_per_s'] >= 1.0)}")
    if vs_pynd and corpus == "small":
        out.append(f"files/s >= 5x pynetdicom {verdict(vs_pynd['files_per_s'] >= 5.0)}")
    if vs_dcmtk:
        out.append(f"CPU/file <= 2x storescu {verdict(vs_dcmtk['cpu_s_per_file'] <= 2.0)}")
    out.append(f"peak RSS < 200 MB {verdict(courier['peak_rss_mb'] < 200)}")
    return out


def machine_info() -> dict:
    """Where the numbers come from: CPU, cores, memory, OS, tool and library versions."""
    info = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        out = subprocess.run(["storescu", "--version"], capture_output=True, text=True).stdout
        info["dcmtk"] = out.splitlines()[0].strip("$ ").strip() if out else "?"
    except OSError:
        info["dcmtk"] = "not installed"
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("pydicom", "pynetdicom"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = "not installed"
    return info


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring for details.",
    )
    p.add_argument(
        "--corpora",
        default="ct,small,mixed",
        help="comma-separated corpora to run: ct, small, mixed (default: all)",
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiply corpus sizes (e.g. 0.05)")
    p.add_argument("--pairs", type=int, default=3, help="rounds of A B (C) against storescp --ignore")
    p.add_argument(
        "--disk-pairs",
        type=int,
        default=1,
        help="rounds against a storescp writing to disk, UIDs checked (default 1; 0: none)",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=Path("bench-out/corpora"),
        help="corpus cache directory (default: bench-out/corpora)",
    )
    p.add_argument("--workdir", type=Path, default=Path("bench-out"), help="logs, received files (default: bench-out)")
    p.add_argument("--seed", type=int, default=20260101, help="generator seed")
    p.add_argument(
        "--courier-cmd",
        default=DEFAULT_COURIER_CMD,
        help=f"DICOM Courier's send command template (default: {DEFAULT_COURIER_CMD!r})",
    )
    p.add_argument(
        "--project-root",
        type=Path,
        default=here.parent,
        help="working directory of the Courier command (default: the repository root)",
    )
    p.add_argument("--no-courier", action="store_true", help="do not run the Courier command")
    p.add_argument(
        "--with-pynetdicom",
        action="store_true",
        help=f"also measure pynetdicom's bundled storescu ({PYNETDICOM_CMD!r})",
    )
    p.add_argument(
        "--pynetdicom-pairs",
        type=int,
        default=1,
        help="rounds in which pynetdicom's storescu takes part (default 1; never against the disk receiver)",
    )
    p.add_argument(
        "--scp-pdu",
        type=int,
        default=None,
        help="storescp -pdu (its max receive PDU; DCMTK's default is 16384)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="kill a sender after this many seconds (default: 60 + 0.25 s per file)",
    )
    p.add_argument("--json", type=Path, help="write all raw runs and the summary to this file")
    args = p.parse_args(argv)
    args.corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    unknown = [c for c in args.corpora if c not in CORPORA]
    if unknown:
        p.error(f"unknown corpus {', '.join(unknown)}; choose from {', '.join(CORPORA)}")
    if args.pairs < 1 or args.disk_pairs < 0 or args.scale <= 0:
        p.error("--pairs must be >= 1, --disk-pairs >= 0, --scale > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Generate, send, verify, print; returns the exit status."""
    args = parse_args(argv)
    for tool in ("storescp", "storescu", "echoscu"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: install DCMTK (e.g. apt-get install dcmtk)")
    senders = [Sender("storescu", None, args.project_root)]
    if not args.no_courier:
        senders.append(Sender("courier", args.courier_cmd, args.project_root.resolve()))
    if args.with_pynetdicom:
        senders.append(Sender("pynetdicom", PYNETDICOM_CMD, args.project_root.resolve()))

    main_py = args.project_root / "main.py"
    if not args.no_courier and args.courier_cmd == DEFAULT_COURIER_CMD and not main_py.is_file():
        print(f"warning: {main_py} not found: the courier runs will fail (see --courier-cmd, --no-courier)")
    info = machine_info()
    print(
        f"machine: {info.get('hostname')}, {info.get('cpu', '?')}, {info['cores']} cores, "
        f"{info.get('memory_gb', '?')} GB, {info['platform']}"
    )
    print(f"software: Python {info['python']}, {info['dcmtk']}, pydicom {info['pydicom']}, pynetdicom {info['pynetdicom']}")
    time_cmd = gnu_time()
    if not time_cmd:
        print("warning: GNU time not found (apt-get install time): peak RSS includes this harness's RSS")
    info["peak_rss_from"] = "GNU time" if time_cmd else "wait4"
    cache, workdir = args.cache.resolve(), args.workdir.resolve()
    corpora = [ensure_corpus(CORPORA[name], cache, args.scale, args.seed) for name in args.corpora]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logdir = workdir / "logs" / stamp
    logdir.mkdir(parents=True, exist_ok=True)

    disk_dir = workdir / f"received-{stamp}"
    receivers = [StoreSCP(logdir, None, args.scp_pdu)]
    if args.disk_pairs:
        receivers.append(StoreSCP(logdir, disk_dir, args.scp_pdu))
    for sender in senders:
        print(f"sender {sender.key}: TCP_NODELAY=1 {shlex.join(sender.argv(corpora[0], 'PORT'))}")
    runs: list[Run] = []
    summaries: dict = {}
    try:
        for scp in receivers:
            scp.start()
            print(f"receiver: TCP_NODELAY=1 {' '.join(scp.argv)}")
        for corpus in corpora:
            warm_page_cache(corpus)
            print(
                f"\n== {corpus.name}: {corpus.count} files, {corpus.nbytes / MB:.1f} MB, "
                f"{corpus.manifest['studies']} studies ({corpus.manifest['description']})",
                flush=True,
            )
            for scp in receivers:
                pairs = args.disk_pairs if scp.disk else args.pairs
                timeout = args.timeout or 60 + 0.25 * corpus.count
                mine: list[Run] = []
                for pair in range(1, pairs + 1):
                    for sender in senders:
                        if sender.key == "pynetdicom" and (scp.disk or pair > args.pynetdicom_pairs):
                            continue
                        run = run_once(sender, corpus, scp, pair, logdir, timeout, time_cmd)
                        mine.append(run)
                        print(
                            f"  {scp.label:<24} pair {pair}/{pairs} {sender.key:<11}"
                            f"{run.wall_s:8.2f} s {run.files_per_s:9.1f} files/s "
                            f"{run.mb_per_s:8.1f} MB/s  {'ok' if run.ok else 'FAILED: ' + run.problem}",
                            flush=True,
                        )
                runs += mine
                text, summary = table(corpus, "disk" if scp.disk else "ignore", senders, mine)
                summaries.setdefault(corpus.name, {})["disk" if scp.disk else "ignore"] = summary
                print(f"\n-- {corpus.name}, receiver {scp.label}, {pairs} pair(s), medians of verified runs")
                print(text, flush=True)
    finally:
        for scp in receivers:
            scp.stop()
        shutil.rmtree(disk_dir, ignore_errors=True)

    if summaries:
        print("\n== overview, receiver storescp --ignore, medians of verified runs")
        print(overview(summaries))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "machine": info,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "receivers": [scp.argv for scp in receivers],
            "corpora": {c.name: {k: v for k, v in c.manifest.items() if k != "uids"} | {"path": str(c.root)} for c in corpora},
            "summary": summaries,
            "runs": [asdict(r) for r in runs],
        }
        args.json.write_text(json.dumps(doc, indent=1))
        print(f"\nraw runs written to {args.json}")
    bad = sum(not r.ok for r in runs)
    if bad:
        print(f"\n{bad} of {len(runs)} runs FAILED (see above)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
