"""core.roundtrip: every conversion is verified (encoded, walked, read back, compared, pixels decoded)
or refused with a named reason; big-endian sources and every bits-allocated value keep their pixels;
compression keeps the photometric meaning (c28 kind)."""

from __future__ import annotations

import copy
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import pixel_array
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from core import scan
from core.convert import encapsulated_items, load_dataset
from core.errors import ConversionError
from core.roundtrip import SourcePixels, _check_j2k_codestream, convert_verified, implicit_vr_losses
from helpers.data import TEST_FILES, data_dirs
from helpers.strict import Encoding as StrictEncoding
from helpers.strict import compare_datasets as strict_compare
from helpers.strict import parse_strict

TARGETS = [
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    RLELossless,
    JPEG2000Lossless,
    JPEGLSLossless,
    DeflatedExplicitVRLittleEndian,
]
NATIVE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")


def corpus() -> list[Path]:
    """All of pydicom's test files, and pydicom-data's native (uncompressed) files."""
    dirs = data_dirs()
    out = [p for p in sorted(dirs[0].rglob("*")) if p.is_file()]
    for d in dirs[1:]:
        for p in sorted(d.rglob("*")):
            if p.is_file():
                inst = scan.read_instance(str(p))
                if inst.status == "ok" and inst.transfer_syntax in NATIVE:
                    out.append(p)
    return out


def independent_check(source: Dataset, data: bytes, target: str, pixels_compared: bool) -> list[str]:
    """The strict receiver's own reading (helpers.strict, a second implementation) of what would go out."""
    got = parse_strict(data, target, str(source.SOPClassUID), str(source.SOPInstanceUID))
    got.file_meta = FileMetaDataset()
    got.file_meta.TransferSyntaxUID = target
    src_ts = source.file_meta.TransferSyntaxUID
    diffs = strict_compare(
        source,
        got,
        vr_agnostic=StrictEncoding.of(target).implicit or src_ts.is_implicit_VR,
        source_little=src_ts.is_little_endian,
        received_little=StrictEncoding.of(target).little,
    )
    if any(d.startswith("Pixel Data could not be decoded") for d in diffs):
        try:
            pixel_array(source)
        except Exception:  # the source itself cannot be decoded: then the bytes must be the same
            assert source.file_meta.TransferSyntaxUID.is_little_endian and StrictEncoding.of(target).little
            assert bytes(got.PixelData).rstrip(b"\0") == bytes(source.PixelData).rstrip(b"\0")
            diffs = [d for d in diffs if not d.startswith("Pixel Data could not be decoded")]
    # 8-bit pixels of an icon written OB in Big Endian (PS3.5 A.3 allows OB or OW): same bytes, checked here
    for d in [d for d in diffs if d.endswith("(7FE0,0010) PixelData: VR OW became OB")]:
        seq = d.split(" ")[1].split("[")[0]  # "(0088,0200) IconImageSequence[0] > ..."
        src_icon, got_icon = source[seq][0], got[seq][0]
        assert src_icon.BitsAllocated == 8 and bytes(src_icon.PixelData) == bytes(got_icon.PixelData)
        diffs.remove(d)
    return diffs


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name.split()[0] + t.name.split()[-1])
def test_corpus_conversions_are_verified_or_refused_with_a_reason(target):
    warnings.simplefilter("ignore")
    verified, refused, reasons = 0, 0, {}
    for path in corpus():
        inst = scan.read_instance(str(path))
        if inst.status != "ok":
            continue
        ds = load_dataset(str(path), inst)
        try:
            conv = convert_verified(ds, target, source_pixels=SourcePixels())
        except ConversionError as exc:
            assert exc.message.strip(), path.name
            refused += 1
            reasons[path.name] = exc.message
            continue
        verified += 1
        diffs = independent_check(ds, conv.data, target, conv.pixels_compared)
        assert not diffs, f"{path.name} -> {target.name}: {diffs[:3]}"
    assert verified + refused > 150
    assert verified > {RLELossless: 100, JPEG2000Lossless: 80, JPEGLSLossless: 100}.get(target, 190), reasons


# -- big endian at the root ------------------------------------------------------------------------------


BE_TWINS = [
    ("OBXXXX1A_expb.dcm", "OBXXXX1A.dcm"),
    ("OBXXXX1A_expb_2frame.dcm", "OBXXXX1A_2frame.dcm"),
    ("MR_small_bigendian.dcm", "MR_small.dcm"),
    ("SC_rgb_expb.dcm", "SC_rgb.dcm"),
    ("SC_rgb_expb_16bit_2frame.dcm", "SC_rgb_16bit_2frame.dcm"),
    ("SC_rgb_expb_32bit.dcm", "SC_rgb_32bit.dcm"),
    ("rtdose_expb.dcm", "rtdose.dcm"),
    ("emri_small_big_endian.dcm", "emri_small.dcm"),
    ("liver_expb.dcm", "liver.dcm"),
    ("gdcm-US-ALOKA-16_big.dcm", "gdcm-US-ALOKA-16.dcm"),
]


def find(name: str) -> Path | None:
    for d in data_dirs():
        hits = list(d.rglob(name))
        if hits:
            return hits[0]
    return None


@pytest.mark.parametrize(("be_name", "le_name"), BE_TWINS)
def test_big_endian_sources_keep_their_pixels_in_every_target(be_name, le_name):
    """The truth is the little-endian twin's pixels, not pydicom's reading of the big-endian file."""
    be, le = find(be_name), find(le_name)
    if be is None or le is None:
        pytest.skip("pydicom-data is not installed")
    truth = pixel_array(dcmread(le))
    inst = scan.read_instance(str(be))
    ds = load_dataset(str(be), inst)
    for target in TARGETS:
        try:
            conv = convert_verified(ds, target)
        except ConversionError as exc:
            assert "cannot encode" in exc.message or "OpenJPEG" in exc.message, (be_name, target.name, exc.message)
            continue
        out = parse_strict(conv.data, target)
        out.file_meta = FileMetaDataset()
        out.file_meta.TransferSyntaxUID = target
        got = pixel_array(out)
        assert got.shape == truth.shape and np.array_equal(got, truth), (be_name, target.name)


def image(bits: int, samples: int = 1, signed: bool = False, frames: int = 2, float_kind: str = "") -> tuple[Dataset, np.ndarray]:
    """An SC image with known pixels for a given Bits Allocated (float pixel data when float_kind)."""
    rng = np.random.default_rng(bits * 7 + samples)
    rows, cols = 33, 35
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "TEST^PATIENT", "TEST-BITS", "OT"
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = rows, cols, frames, samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    shape = (frames, rows, cols) + ((samples,) if samples == 3 else ())
    if float_kind:
        dtype = np.float32 if float_kind == "FloatPixelData" else np.float64
        arr = rng.normal(size=shape).astype(dtype)
        ds.BitsAllocated = 32 if dtype == np.float32 else 64
        setattr(ds, float_kind, arr.tobytes())
        return ds, arr
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = int(signed)
    if bits == 1:
        arr = rng.integers(0, 2, size=shape, dtype=np.uint8)
        ds.PixelData = np.packbits(arr.ravel(), bitorder="little").tobytes()
        return ds, arr
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}")
    info = np.iinfo(dtype)
    arr = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    ds.PixelData = arr.astype(dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OB" if bits <= 8 else "OW"
    return ds, arr


def big_endian_file(tmp_path: Path, ds: Dataset, name: str) -> Path:
    """`ds` written as Explicit VR Big Endian by our converter, checked against pydicom's own reading."""
    conv = convert_verified(ds, ExplicitVRBigEndian)
    out = Dataset()
    out.file_meta = FileMetaDataset()
    out.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    out.file_meta.MediaStorageSOPClassUID, out.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    path = tmp_path / name
    from pydicom.filewriter import write_file_meta_info

    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(f, out.file_meta)
        f.write(conv.data)
    return path


@pytest.mark.parametrize(
    ("bits", "samples", "signed", "float_kind"),
    [
        (1, 1, False, ""),
        (8, 1, False, ""),
        (8, 3, False, ""),
        (16, 1, True, ""),
        (16, 3, False, ""),
        (32, 1, False, ""),
        (32, 1, True, ""),
        (64, 1, False, "DoubleFloatPixelData"),
        (32, 1, False, "FloatPixelData"),
    ],
)
def test_every_bits_allocated_value_through_big_endian(tmp_path, bits, samples, signed, float_kind):
    ds, truth = image(bits, samples, signed, float_kind=float_kind)
    path = big_endian_file(tmp_path, ds, f"be_{bits}_{samples}_{float_kind}.dcm")
    be_read = dcmread(path)
    assert be_read.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    if bits != 1:  # pydicom reads the big-endian file independently of our converter
        assert np.array_equal(pixel_array(be_read), truth)
    inst = scan.read_instance(str(path))
    assert inst.status == "ok", inst.reason
    src = load_dataset(str(path), inst)
    for target in TARGETS:
        try:
            conv = convert_verified(src, target)
        except ConversionError as exc:
            assert exc.message, target
            assert target.is_encapsulated, (target.name, exc.message)  # native targets always work
            continue
        out = parse_strict(conv.data, target)
        out.file_meta = FileMetaDataset()
        out.file_meta.TransferSyntaxUID = target
        assert np.array_equal(pixel_array(out), truth), target.name


def test_obxxxx1a_expb_to_implicit_equals_the_little_endian_file():
    """pydicom-data OBXXXX1A_expb.dcm: 8-bit pixels in OW, Big Endian (the field report)."""
    be, le = find("OBXXXX1A_expb.dcm"), find("OBXXXX1A.dcm")
    if be is None or le is None:
        pytest.skip("pydicom-data is not installed")
    inst = scan.read_instance(str(be))
    conv = convert_verified(load_dataset(str(be), inst), ImplicitVRLittleEndian)
    out = parse_strict(conv.data, ImplicitVRLittleEndian)
    assert bytes(out.PixelData) == bytes(dcmread(le).PixelData)


# -- c28: compression keeps the photometric meaning ---------------------------------------------------------


def signed_ct(bits_stored: int = 16) -> Dataset:
    ds, _ = image(16, 1, True, frames=1)
    yy, xx = np.mgrid[0:64, 0:64]
    lo = -(1 << (bits_stored - 1))
    arr = np.clip(np.hypot(xx - 32, yy - 32) * 60 - 1024, lo, -lo - 1).astype(np.int16)
    ds.SOPClassUID = CTImageStorage
    ds.Rows, ds.Columns, ds.BitsStored, ds.HighBit = 64, 64, bits_stored, bits_stored - 1
    del ds.NumberOfFrames
    ds.PixelData = arr.tobytes()
    return ds


@pytest.mark.parametrize("target", [RLELossless, JPEG2000Lossless, JPEGLSLossless])
@pytest.mark.parametrize("bits_stored", [16, 12])
def test_c28_signed_monochrome_stays_signed_and_monochrome(target, bits_stored):
    ds = signed_ct(bits_stored)
    conv = convert_verified(ds, target)
    assert conv.kind == "lossless" and conv.pixels_compared
    out = parse_strict(conv.data, target)
    assert out.PhotometricInterpretation == "MONOCHROME2" and out.PixelRepresentation == 1 and out.BitsStored == bits_stored
    out.file_meta = FileMetaDataset()
    out.file_meta.TransferSyntaxUID = target
    got = pixel_array(out)
    assert got.min() < 0 and np.array_equal(got, pixel_array(ds))
    if target == JPEG2000Lossless:
        frame = encapsulated_items(out.PixelData)[1]
        siz = frame.index(b"\xff\x51")
        assert frame[siz + 40] & 0x80, "the J2K codestream must be marked signed"


@pytest.mark.parametrize("target", [RLELossless, JPEG2000Lossless, JPEGLSLossless])
@pytest.mark.parametrize("planar", [0, 1])
def test_c28_rgb_label_matches_the_codestream(target, planar):
    ds, arr = image(8, 3, frames=1)
    if planar:
        ds.PlanarConfiguration = 1
        ds.PixelData = arr.transpose(0, 3, 1, 2).tobytes()
    conv = convert_verified(ds, target)
    out = parse_strict(conv.data, target)
    out.file_meta = FileMetaDataset()
    out.file_meta.TransferSyntaxUID = target
    assert out.PhotometricInterpretation in ("RGB", "YBR_RCT")
    assert np.array_equal(pixel_array(out), arr[0])


def test_j2k_colour_transform_must_match_the_label():
    from openjpeg.utils import encode_array

    ds, arr = image(8, 3, frames=1)
    with_mct = encode_array(arr[0], 8, photometric_interpretation=1, use_mct=True)
    out = copy.deepcopy(ds)
    out.PixelData = encapsulate([with_mct])
    out["PixelData"].is_undefined_length = True
    with pytest.raises(ConversionError, match="colour transform but is labelled RGB"):
        _check_j2k_codestream(out, "RGB", "JPEG 2000 Lossless")
    _check_j2k_codestream(out, "YBR_RCT", "JPEG 2000 Lossless")
    no_mct = encode_array(arr[0], 8, photometric_interpretation=1, use_mct=False)
    out.PixelData = encapsulate([no_mct])
    with pytest.raises(ConversionError, match="no colour transform but is labelled YBR_RCT"):
        _check_j2k_codestream(out, "YBR_RCT", "JPEG 2000 Lossless")


# -- what a conversion loses, and what it must not change ----------------------------------------------------


def test_private_elements_to_implicit_are_a_warning():
    ds = signed_ct()
    ds.add_new(0x00090010, "LO", "TEST CREATOR")
    ds.add_new(0x00091001, "DS", "1.5")
    conv = convert_verified(ds, ImplicitVRLittleEndian)
    assert any("private" in w and "(0009,1001)" in w for w in conv.warnings), conv.warnings


def test_a_vr_contradicting_the_dictionary_needs_an_explicit_syntax():
    ds = signed_ct()
    ds.add_new(0x00280106, "SS", -5)  # Smallest Image Pixel Value: "US or SS" - fine either way
    ds.add_new(0x00181310, "SS", [-1, 2, 3, -4])  # Acquisition Matrix is US: an Implicit peer reads 65535
    _, failures = implicit_vr_losses(ds)
    assert failures and "(0018,1310)" in failures[0] and "US" in failures[0], failures
    with pytest.raises(ConversionError, match=r"\(0018,1310\).*explicit VR"):
        convert_verified(ds, ImplicitVRLittleEndian)
    assert convert_verified(ds, ExplicitVRBigEndian).kind == "lossless"


def test_a_changed_value_is_never_a_lossless_success(monkeypatch):
    import core.roundtrip as rt

    real = rt.encode_dataset

    def tamper(ds, target, allow_lossy=False):
        bad = copy.deepcopy(ds)
        bad.PatientID = "SOMEONE-ELSE"
        return real(bad, target, allow_lossy)

    monkeypatch.setattr(rt, "encode_dataset", tamper)
    with pytest.raises(ConversionError, match=r"\(0010,0020\) PatientID"):
        convert_verified(signed_ct(), ImplicitVRLittleEndian)


def test_changed_pixels_are_never_a_lossless_success(monkeypatch):
    import core.roundtrip as rt

    real = rt.encode_dataset

    def tamper(ds, target, allow_lossy=False):
        data, conv_from, notes = real(ds, target, allow_lossy)
        return data[:-2] + bytes([data[-2] ^ 1, data[-1]]), conv_from, notes

    monkeypatch.setattr(rt, "encode_dataset", tamper)
    with pytest.raises(ConversionError, match=r"pixel values|PixelData bytes"):
        convert_verified(signed_ct(), ExplicitVRBigEndian)


def test_odd_fragments_are_padded_inside_their_item(tmp_path):
    ds = signed_ct()
    ds.file_meta.TransferSyntaxUID = RLELossless
    ok = convert_verified(signed_ct(), RLELossless)
    frags = encapsulated_items(parse_strict(ok.data, RLELossless).PixelData)[1:]
    odd = frags[0] + b"\x07"  # an odd fragment, as some writers leave them
    value = struct.pack("<HHI", 0xFFFE, 0xE000, 0) + struct.pack("<HHI", 0xFFFE, 0xE000, len(odd)) + odd
    del ds.PixelData
    ds.save_as(tmp_path / "odd.dcm", enforce_file_format=True)
    with open(tmp_path / "odd.dcm", "ab") as f:  # written by hand: pydicom would pad the value after the item
        f.write(b"\xe0\x7f\x10\x00OB\0\0\xff\xff\xff\xff" + value + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    inst = scan.read_instance(str(tmp_path / "odd.dcm"))
    assert inst.needs_rewrite and any("inside its item" in n for n in inst.notes), inst.notes
    loaded = load_dataset(str(tmp_path / "odd.dcm"), inst)
    conv = convert_verified(loaded, RLELossless)
    assert not conv.walk.repairs
    items = encapsulated_items(parse_strict(conv.data, RLELossless).PixelData)
    assert all(len(i) % 2 == 0 for i in items) and items[1].endswith(b"\x07\x00")


def test_the_source_file_is_never_modified():
    path = TEST_FILES / "MR_small_bigendian.dcm"
    before = path.read_bytes()
    inst = scan.read_instance(str(path))
    for target in TARGETS:
        convert_verified(load_dataset(str(path), inst), target)
    assert path.read_bytes() == before


# -- JPEG Lossless SV1 (process 14) through GDCM, when python-gdcm is installed ----------------------------


def test_jpeg_lossless_sv1_is_bit_exact_with_libjpeg_when_gdcm_is_installed():
    from core.convert import _gdcm

    if _gdcm() is None:
        pytest.skip("python-gdcm is not installed (optional extra 'gdcm')")
    sv1 = "1.2.840.10008.1.2.4.70"
    for ds in (signed_ct(), signed_ct(12), image(8, 3, frames=2)[0], image(16, 1, frames=1)[0]):
        conv = convert_verified(ds, sv1)
        out = parse_strict(conv.data, sv1)
        out.file_meta = FileMetaDataset()
        out.file_meta.TransferSyntaxUID = sv1
        assert np.array_equal(pixel_array(out, decoding_plugin="pylibjpeg"), pixel_array(ds))
        assert out.PhotometricInterpretation == ds.PhotometricInterpretation
    palette, _ = image(8, 1, frames=1)
    palette.PhotometricInterpretation = "PALETTE COLOR"  # GDCM would abort the process without its tables
    with pytest.raises(ConversionError, match="GDCM is given only"):
        convert_verified(palette, sv1)
