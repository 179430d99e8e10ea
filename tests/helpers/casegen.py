"""Synthetic DICOM inputs for the tests: one generator per fault kind, plus plain CT series.

Everything here is invented (patients are called TEST^PATIENT) and built from scratch with pydicom
and numpy. Each ``cNN_*`` function writes files into `folder` and returns their paths, in the
order a user would drop them. The fault kinds follow the field cases the product must handle:
lossy JPEG 2000, byte-swap-sensitive MR, JPEG Lossless, data sets without File Meta, missing SOP
Class UID, compressed files a PACS accepts as they are, DS values over 64 KiB, more SOP classes
than one association can carry, partial refusals, a rejected AE title, large data sets for PDU
limits, and odd-length native Pixel Data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom import dcmread, dcmwrite
from pydicom._uid_dict import UID_dictionary
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    JPEG2000,
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLossless,
    JPEGLosslessSV1,
    MRImageStorage,
    RLELossless,
    RTDoseStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)

__all__ = [
    "uid_for",
    "base_dataset",
    "ct_dataset",
    "make_ct",
    "encode_jpeg_lossless",
    "storage_sop_classes",
    "c01_lossy_j2k_ct",
    "c03_mr_swap_visible",
    "c04_jpeg_lossless_ct",
    "c06_bare_rtdose_and_notes",
    "c08_missing_sop_class",
    "c11_j2k_lossless_and_rle",
    "c12_rtdose_big_dvh",
    "c13_many_sop_classes",
    "c14_six_ct",
    "c16_two_ct",
    "c17_large_ct",
    "c18_odd_length_sc",
    "c18_odd_length_private_ob",
    "c12_rtstruct_big_contour",
    "C14_PEER_STATUS",
    "C12_DVH_VALUES",
]


def uid_for(*parts: object) -> str:
    """A UID that is the same for the same parts (tests stay reproducible)."""
    return generate_uid(entropy_srcs=["dicom-courier-tests", *map(str, parts)])


def base_dataset(
    sop_class: str,
    key: str,
    index: int = 0,
    modality: str = "OT",
    transfer_syntax: str = ExplicitVRLittleEndian,
    patient_id: str = "TEST-0001",
) -> Dataset:
    """A data set with File Meta, patient/study/series and SOP common attributes, no image."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = uid_for(key, "instance", index)
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyDate = "20260101"
    ds.StudyTime = "080000"
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = "TEST"
    ds.ReferringPhysicianName = ""
    ds.PatientName = "TEST^PATIENT"
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = uid_for(key, "study")
    ds.SeriesInstanceUID = uid_for(key, "series")
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    return ds


def _image_plane(ds: Dataset, rows: int, cols: int, z: float) -> None:
    ds.FrameOfReferenceUID = uid_for(str(ds.StudyInstanceUID), "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [0.0, 0.0, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1.0, 1.0]
    ds.SliceThickness = 1.0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols


def ct_dataset(
    key: str,
    index: int = 0,
    rows: int = 16,
    cols: int = 16,
    pixels: np.ndarray | None = None,
    patient_id: str = "TEST-CT",
) -> Dataset:
    """One CT slice, Explicit VR Little Endian, 16 bits allocated / 12 stored, unsigned."""
    ds = base_dataset(CTImageStorage, key, index, "CT", patient_id=patient_id)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    _image_plane(ds, rows, cols, float(index))
    ds.KVP = 120
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if pixels is None:
        yy, xx = np.mgrid[0:rows, 0:cols]
        pixels = (xx * 13 + yy * 29 + index * 101) % 4096
    ds.PixelData = np.asarray(pixels, dtype=np.uint16).tobytes()
    return ds


def make_ct(
    folder: Path,
    n: int,
    rows: int = 16,
    cols: int = 16,
    key: str = "ct",
    transfer_syntax: str | None = None,
    mutate: Callable[[Dataset, int], None] | None = None,
) -> list[Path]:
    """Write `n` CT slices of one series into `folder` (created) and return their paths.

    Args:
        folder: output folder.
        n: number of slices.
        rows, cols: image size.
        key: seed for the UIDs (same key, same UIDs).
        transfer_syntax: re-encode to this syntax (compressed syntaxes via ``Dataset.compress``).
        mutate: called as ``mutate(ds, index)`` before writing.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        ds = ct_dataset(key, i, rows, cols)
        if transfer_syntax == ImplicitVRLittleEndian:
            ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        elif transfer_syntax == RLELossless:
            ds.compress(RLELossless)
        elif transfer_syntax in (JPEG2000Lossless, JPEG2000):
            ds.compress(transfer_syntax, encoding_plugin="pylibjpeg")
        elif transfer_syntax not in (None, ExplicitVRLittleEndian):
            raise ValueError(f"make_ct cannot write {transfer_syntax}")
        if mutate:
            mutate(ds, i)
        path = folder / f"{key}_{i + 1:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- JPEG Lossless


# Code lengths for the 17 difference categories (SSSS 0..16): short codes for small differences.
# Counts per length 1..16 (the DHT "BITS" list); Kraft sum 0.898 < 1, so no code is all ones.
_LL_BITS = [0, 1, 2, 3, 4, 4, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]
_LL_VALS = list(range(17))


def _canonical_codes(bits: list[int], vals: list[int]) -> dict[int, tuple[int, int]]:
    """ITU T.81 Annex C: symbol -> (code, length) for a canonical Huffman table."""
    table, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            table[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return table


def _predict(a: np.ndarray, predictor: int, precision: int) -> np.ndarray:
    """Prediction for every sample (ITU T.81 H.1.2.1), first row Ra, first column Rb."""
    pred = np.zeros_like(a)
    ra = np.zeros_like(a)
    rb = np.zeros_like(a)
    rc = np.zeros_like(a)
    ra[:, 1:] = a[:, :-1]
    rb[1:, :] = a[:-1, :]
    rc[1:, 1:] = a[:-1, :-1]
    formulas = {
        1: ra,
        2: rb,
        3: rc,
        4: ra + rb - rc,
        5: ra + ((rb - rc) >> 1),
        6: rb + ((ra - rc) >> 1),
        7: (ra + rb) >> 1,
    }
    pred[:] = formulas[predictor]
    pred[0, 1:] = a[0, :-1]  # first line: Ra
    pred[1:, 0] = a[:-1, 0]  # first column: Rb
    pred[0, 0] = 1 << (precision - 1)
    return pred


def encode_jpeg_lossless(arr: np.ndarray, precision: int, predictor: int = 1) -> bytes:
    """Encode one grey image as a lossless JPEG codestream (T.81 process 14, SOF3, Huffman).

    Args:
        arr: 2-D unsigned image whose values fit in `precision` bits.
        precision: sample precision P in bits (2..16).
        predictor: selection value 1..7 (1 gives the "SV1" transfer syntax).

    Returns:
        the codestream from SOI to EOI.
    """
    a = np.asarray(arr, dtype=np.int64)
    rows, cols = a.shape
    diff = (a - _predict(a, predictor, precision)) & 0xFFFF
    diff = np.where(diff >= 0x8000, diff - 0x10000, diff)  # signed range -32768..32767
    codes = _canonical_codes(_LL_BITS, _LL_VALS)

    out = bytearray()
    bitbuf, nbits = 0, 0
    for d in diff.ravel().tolist():
        ssss = 16 if d == -32768 else abs(d).bit_length()
        code, length = codes[ssss]
        bitbuf = (bitbuf << length) | code
        nbits += length
        if 0 < ssss < 16:
            extra = d if d > 0 else d + (1 << ssss) - 1
            bitbuf = (bitbuf << ssss) | extra
            nbits += ssss
        while nbits >= 8:
            nbits -= 8
            byte = (bitbuf >> nbits) & 0xFF
            out.append(byte)
            if byte == 0xFF:
                out.append(0x00)
        bitbuf &= (1 << nbits) - 1
    if nbits:
        pad = 8 - nbits
        byte = ((bitbuf << pad) | ((1 << pad) - 1)) & 0xFF
        out.append(byte)
        if byte == 0xFF:
            out.append(0x00)

    def marker(code: int, body: bytes) -> bytes:
        return struct.pack(">HH", code, len(body) + 2) + body

    dht = bytes([0x00, *_LL_BITS, *_LL_VALS])
    sof3 = struct.pack(">BHHB", precision, rows, cols, 1) + bytes([1, 0x11, 0])
    sos = bytes([1, 1, 0x00, predictor, 0, 0])
    return b"\xff\xd8" + marker(0xFFC4, dht) + marker(0xFFC3, sof3) + marker(0xFFDA, sos) + bytes(out) + b"\xff\xd9"


# --------------------------------------------------------------------------- cases


def c01_lossy_j2k_ct(folder: Path, n: int = 3) -> list[Path]:
    """CT slices in lossy JPEG 2000 (1.2.840.10008.1.2.4.91), 64x64, with Lossy Image Compression set."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        yy, xx = np.mgrid[0:64, 0:64]
        ds = ct_dataset("c01", i, 64, 64, (xx * 37 + yy * 11 + i * 211) % 4096, patient_id="TEST-C01")
        ds.compress(JPEG2000, j2k_cr=[12], encoding_plugin="pylibjpeg")
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = [12]
        ds.LossyImageCompressionMethod = ["ISO_15444_1"]
        path = folder / f"c01_j2k_lossy_{i + 1}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


C03_SHAPE = (24, 20)


def c03_mr_pixels() -> np.ndarray:
    """Every value has a high byte different from its low byte, so a missed swap always shows."""
    rows, cols = C03_SHAPE
    yy, xx = np.mgrid[0:rows, 0:cols]
    arr = ((yy + 3) << 8 | (xx + 0x40)).astype(np.uint16)
    assert not np.any((arr >> 8) == (arr & 0xFF))
    return arr


def c03_mr_swap_visible(folder: Path) -> list[Path]:
    """One MR image (Explicit VR LE) with FD Diffusion b-value and US Largest Image Pixel Value."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ds = base_dataset(MRImageStorage, "c03", 0, "MR", patient_id="TEST-C03")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
    rows, cols = C03_SHAPE
    _image_plane(ds, rows, cols, 0.0)
    ds.ScanningSequence = "EP"
    ds.SequenceVariant = "SK"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.EchoTime = 90
    ds.RepetitionTime = 3500
    ds.EchoTrainLength = 1
    ds.DiffusionBValue = 1000.0
    item = Dataset()
    item.DiffusionBValue = 500.0  # FD inside a sequence item must be swapped too
    item.DiffusionDirectionality = "ISOTROPIC"
    ds.MRDiffusionSequence = [item]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    arr = c03_mr_pixels()
    ds.SmallestImagePixelValue = int(arr.min())
    ds["SmallestImagePixelValue"].VR = "US"
    ds.LargestImagePixelValue = int(arr.max())
    ds["LargestImagePixelValue"].VR = "US"
    ds.PixelData = arr.tobytes()
    path = folder / "c03_mr_explicit_le.dcm"
    ds.save_as(path, enforce_file_format=True)
    return [path]


def c04_source_pixels(index: int) -> np.ndarray:
    """A noisy disc, 64x64, 12-bit values."""
    rng = np.random.default_rng(400 + index)
    yy, xx = np.mgrid[0:64, 0:64]
    disc = (xx - 31) ** 2 + (yy - 33) ** 2 < 27**2
    arr = np.where(disc, 1100, 30) + rng.integers(-25, 26, size=(64, 64))
    return np.clip(arr, 0, 4095).astype(np.uint16)


def c04_jpeg_lossless_ct(folder: Path, with_process14: bool = True) -> list[Path]:
    """Two CT slices in JPEG Lossless SV1 (1.2.840.10008.1.2.4.70) and, optionally, one in
    JPEG Lossless Process 14 with predictor 6 (1.2.840.10008.1.2.4.57). Each is checked to
    decode bit-exact with pydicom's decoders."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plan = [(JPEGLosslessSV1, 1), (JPEGLosslessSV1, 1)]
    if with_process14:
        plan.append((JPEGLossless, 6))
    paths = []
    for i, (syntax, predictor) in enumerate(plan):
        arr = c04_source_pixels(i)
        ds = ct_dataset("c04", i, 64, 64, arr, patient_id="TEST-C04")
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate([encode_jpeg_lossless(arr, 12, predictor)])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        path = folder / f"c04_ct_jpeg_lossless_p{predictor}_{i + 1}.dcm"
        ds.save_as(path, enforce_file_format=True)
        decoded = dcmread(path).pixel_array
        assert np.array_equal(decoded, arr), f"lossless JPEG self-check failed for {path.name}"
        paths.append(path)
    return paths


def c06_dose_grid() -> np.ndarray:
    zz, yy, xx = np.mgrid[0:3, 0:16, 0:16]
    return (150000 * np.exp(-((xx - 7) ** 2 + (yy - 9) ** 2 + (zz - 1) ** 2) / 25.0)).astype(np.uint32)


def c06_bare_rtdose_and_notes(folder: Path, implicit: bool = True) -> list[Path]:
    """An RT Dose written as a bare data set (no preamble, no DICM, no group 2), Implicit VR LE by
    default or Explicit VR LE, and a plain-text notes.txt beside it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ds = base_dataset(RTDoseStorage, "c06", 0, "RTDOSE", patient_id="TEST-C06")
    del ds.file_meta
    ds.Manufacturer = "TEST TPS"
    _image_plane(ds, 16, 16, -10.0)
    ds.PixelSpacing = [2.5, 2.5]
    del ds.SliceThickness
    ds.NumberOfFrames = 3
    ds.FrameIncrementPointer = 0x3004000C
    ds.BitsAllocated = 32
    ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = "PLAN"
    ds.GridFrameOffsetVector = [0, 5, 10]
    ds.DoseGridScaling = 1e-5
    ds.PixelData = c06_dose_grid().tobytes()
    dose = folder / "c06_rtdose_no_meta.dcm"
    dcmwrite(dose, ds, implicit_vr=implicit, little_endian=True)
    raw = dose.read_bytes()
    assert raw[:4] == b"\x08\x00\x05\x00" and raw[128:132] != b"DICM"
    assert (raw[4:6] == b"CS") != implicit
    notes = folder / "notes.txt"
    notes.write_text("Planning export of TEST^PATIENT. This is a text file, not DICOM.\n")
    return [dose, notes]


def c08_missing_sop_class(folder: Path) -> list[Path]:
    """Four CT slices: 1-2 complete; 3 lacks (0008,0016) but File Meta has (0002,0002);
    4 lacks both."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(4):
        ds = ct_dataset("c08", i, patient_id="TEST-C08")
        path = folder / f"c08_ct_{i + 1}.dcm"
        if i >= 2:
            del ds.SOPClassUID
        if i < 3:
            ds.save_as(path, enforce_file_format=True)
        else:
            meta = FileMetaDataset()
            meta.FileMetaInformationVersion = b"\x00\x01"
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
            fp = DicomBytesIO()
            fp.write(b"\x00" * 128 + b"DICM")
            write_file_meta_info(fp, meta, enforce_standard=False)
            fp.is_little_endian, fp.is_implicit_VR = True, False
            body = Dataset()
            body.update(ds)
            write_dataset(fp, body)
            path.write_bytes(fp.getvalue())
        paths.append(path)
    check3 = dcmread(paths[2])
    assert "SOPClassUID" not in check3 and check3.file_meta.MediaStorageSOPClassUID == CTImageStorage
    check4 = dcmread(paths[3])
    assert "SOPClassUID" not in check4 and "MediaStorageSOPClassUID" not in check4.file_meta
    return paths


def c11_pixels(index: int, size: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    r2 = (xx - size / 2) ** 2 + (yy - size / 2) ** 2
    arr = np.where(r2 < (size * 0.42) ** 2, 1040, 20)
    return np.where(r2 < (size * 0.12 + 3 * index) ** 2, 1500, arr).astype(np.uint16)


def c11_j2k_lossless_and_rle(folder: Path, size: int = 128) -> list[Path]:
    """CT 1-2 in JPEG 2000 Lossless (.4.90), CT 3 in RLE Lossless (.5); each far smaller than native."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, syntax in enumerate((JPEG2000Lossless, JPEG2000Lossless, RLELossless)):
        ds = ct_dataset("c11", i, size, size, c11_pixels(i, size), patient_id="TEST-C11")
        if syntax == RLELossless:
            ds.compress(syntax)
        else:
            ds.compress(syntax, encoding_plugin="pylibjpeg")
        tag = "rle" if syntax == RLELossless else "j2k"
        path = folder / f"c11_ct_{tag}_{i + 1}.dcm"
        ds.save_as(path, enforce_file_format=True)
        assert path.stat().st_size < size * size * 2
        paths.append(path)
    return paths


C12_DVH_VALUES = 8000


def c12_rtdose_big_dvh(folder: Path) -> list[Path]:
    """RT Dose in Implicit VR LE whose DVH Data (3004,0058) DS value is over 64 KiB."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ds = base_dataset(RTDoseStorage, "c12", 0, "RTDOSE", ImplicitVRLittleEndian, patient_id="TEST-C12")
    _image_plane(ds, 8, 8, 0.0)
    del ds.SliceThickness
    ds.NumberOfFrames = 2
    ds.FrameIncrementPointer = 0x3004000C
    ds.GridFrameOffsetVector = [0, 3]
    ds.BitsAllocated = 32
    ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = "PLAN"
    ds.DoseGridScaling = 1e-4
    ds.PixelData = (np.arange(128, dtype=np.uint32) * 777).tobytes()
    item = Dataset()
    item.DVHType = "CUMULATIVE"
    item.DoseUnits = "GY"
    item.DoseType = "PHYSICAL"
    item.DVHDoseScaling = 1.0
    item.DVHVolumeUnits = "CM3"
    item.DVHNumberOfBins = C12_DVH_VALUES // 2
    values = []
    for i in range(C12_DVH_VALUES // 2):
        values += ["0.0125000", f"{250.0 * (1 - i / (C12_DVH_VALUES / 2)):.9f}"[:16]]
    item.DVHData = values
    roi = Dataset()
    roi.DVHROIContributionType = "INCLUDED"
    roi.ReferencedROINumber = 1
    item.DVHReferencedROISequence = [roi]
    ds.DVHSequence = [item]
    assert len("\\".join(values)) > 0xFFFE
    path = folder / "c12_rtdose_big_dvh_implicit.dcm"
    ds.save_as(path, enforce_file_format=True)
    return [path]


def storage_sop_classes() -> list[str]:
    """Non-retired storage SOP classes under 1.2.840.10008.5.1.4.1.1, in numeric UID order."""
    found = [
        uid
        for uid, (name, kind, _info, retired, _kw) in UID_dictionary.items()
        if kind == "SOP Class" and name.endswith("Storage") and not retired and uid.startswith("1.2.840.10008.5.1.4.1.1.")
    ]
    return sorted(found, key=lambda u: tuple(int(p) for p in u.split(".")))


def c13_many_sop_classes(folder: Path, count: int = 130) -> list[Path]:
    """`count` tiny Explicit VR LE files, each of a different storage SOP class, no pixel data."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    classes = storage_sop_classes()[:count]
    assert len(classes) == count, f"only {len(classes)} storage SOP classes known"
    paths = []
    for i, sop_class in enumerate(classes):
        ds = base_dataset(sop_class, "c13", i, "OT", patient_id="TEST-C13")
        ds.SeriesInstanceUID = uid_for("c13", "series", i)
        ds.SeriesNumber = i + 1
        path = folder / f"c13_{i + 1:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


C14_PEER_STATUS = {1: 0x0000, 2: 0xA700, 3: 0x0000, 4: 0x0000, 5: 0xA700, 6: 0x0000}


def c14_six_ct(folder: Path) -> list[Path]:
    """Six CT slices, InstanceNumber 1..6; Image Comments says which status the peer should give."""

    def note(ds: Dataset, i: int) -> None:
        ds.ImageComments = f"peer status 0x{C14_PEER_STATUS[i + 1]:04X}"
        ds.PatientID = "TEST-C14"

    return make_ct(folder, 6, 32, 32, key="c14", mutate=note)


def c16_two_ct(folder: Path) -> list[Path]:
    """Two ordinary CT slices (the fault is in the association, not the data)."""
    return make_ct(folder, 2, key="c16")


def c17_large_ct(folder: Path, size: int = 512) -> list[Path]:
    """One 512x512 16-bit CT (about 512 KiB), so many P-DATA-TF PDUs are needed."""
    rng = np.random.default_rng(1717)
    pixels = rng.integers(0, 4096, size=(size, size), dtype=np.uint16)
    return _write_one(folder, ct_dataset("c17", 0, size, size, pixels, patient_id="TEST-C17"), "c17_ct_512.dcm")


def _write_one(folder: Path, ds: Dataset, name: str) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return [path]


def c18_pixels(rows: int, cols: int) -> np.ndarray:
    yy, xx = np.mgrid[0:rows, 0:cols]
    return ((xx * 5 + yy * 9 + 1) % 256).astype(np.uint8)


def _sc(index: int, rows: int, cols: int) -> Dataset:
    ds = base_dataset(SecondaryCaptureImageStorage, "c18", index, "OT", patient_id="TEST-C18")
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ConversionType = "WSD"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = c18_pixels(rows, cols).tobytes()
    return ds


def c18_odd_length_sc(folder: Path, implicit: bool = False) -> list[Path]:
    """An 8-bit Secondary Capture whose Pixel Data is 31x33 = 1023 bytes, stored with an odd
    element length and no pad byte (patched on disk), then a conformant 32x32 one.
    Explicit VR LE by default, Implicit VR LE with `implicit`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    odd = folder / "c18_1_sc_odd_pixeldata.dcm"
    ds = _sc(0, 31, 33)
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(odd, enforce_file_format=True)
    data = bytearray(odd.read_bytes())
    if implicit:
        header = b"\xe0\x7f\x10\x00" + struct.pack("<I", 1024)
        length_at = 4
    else:
        header = b"\xe0\x7f\x10\x00OB\x00\x00" + struct.pack("<I", 1024)
        length_at = 8
    at = data.rfind(header)
    assert at > 0 and at + len(header) + 1024 == len(data) and data[-1] == 0, "Pixel Data must be last"
    data[at + length_at : at + length_at + 4] = struct.pack("<I", 1023)
    del data[-1]
    odd.write_bytes(bytes(data))
    assert odd.stat().st_size % 2 == 1
    normal = folder / "c18_2_sc_normal.dcm"
    _sc(1, 32, 32).save_as(normal, enforce_file_format=True)
    return [odd, normal]


C18_PRIVATE_VALUE = b"\x01\x02\x03\x04\x05"


def c18_odd_length_private_ob(folder: Path) -> list[Path]:
    """A Secondary Capture with a private OB element (0029,1010) of odd length 5 (patched on disk),
    before a normal even-length Pixel Data."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ds = _sc(5, 8, 8)
    block = ds.private_block(0x0029, "COURIER TEST", create=True)
    block.add_new(0x10, "OB", C18_PRIVATE_VALUE + b"\x00")
    path = folder / "c18_private_ob_odd.dcm"
    ds.save_as(path, enforce_file_format=True)
    data = bytearray(path.read_bytes())
    header = b"\x29\x00\x10\x10OB\x00\x00" + struct.pack("<I", 6)
    at = data.find(header)
    assert at > 0 and data[at + 12 : at + 18] == C18_PRIVATE_VALUE + b"\x00"
    data[at + 8 : at + 12] = struct.pack("<I", 5)
    del data[at + 12 + 5]
    path.write_bytes(bytes(data))
    check = dcmread(path)
    assert check[0x00291010].value == C18_PRIVATE_VALUE
    assert np.array_equal(check.pixel_array, c18_pixels(8, 8))
    return [path]


def c12_rtstruct_big_contour(folder: Path, points: int = 6000) -> list[Path]:
    """An RT Structure Set in Implicit VR LE whose Contour Data (3006,0050) DS holds 3 x `points`
    values, far above what a 2-byte explicit length can carry."""
    from pydicom.uid import RTStructureSetStorage

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ds = base_dataset(RTStructureSetStorage, "c12-rtss", 0, "RTSTRUCT", ImplicitVRLittleEndian, "TEST-C12")
    ds.StructureSetLabel = "TEST"
    ds.StructureSetDate = "20260101"
    ds.StructureSetTime = "080000"
    roi = Dataset()
    roi.ROINumber = 1
    roi.ReferencedFrameOfReferenceUID = uid_for("c12-rtss", "for")
    roi.ROIName = "BODY"
    roi.ROIGenerationAlgorithm = "MANUAL"
    ds.StructureSetROISequence = [roi]
    contour = Dataset()
    contour.ContourGeometricType = "CLOSED_PLANAR"
    contour.NumberOfContourPoints = points
    angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
    xyz = np.stack([120.5 * np.cos(angles), 98.25 * np.sin(angles), np.full(points, -12.5)], axis=1)
    values = [f"{v:.6f}" for v in xyz.ravel()]
    contour.ContourData = values
    item = Dataset()
    item.ReferencedROINumber = 1
    item.ROIDisplayColor = [255, 0, 0]
    item.ContourSequence = [contour]
    ds.ROIContourSequence = [item]
    assert len("\\".join(values)) > 0xFFFE
    path = folder / "c12_rtss_big_contour_implicit.dcm"
    ds.save_as(path, enforce_file_format=True)
    return [path]
