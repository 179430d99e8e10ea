"""Interop with DCMTK storescp: every compressed file of pydicom's test data and pydicom-data that the
codecs can decode reaches an Implicit-VR-only storescp with its pixels intact; plus a big-endian-only
and an accept-anything configuration, and a strict peer for odd-length values."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.pixels import pixel_array as decode_pixels
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)

from helpers import casegen
from helpers.data import TEST_FILES, data_dirs

core = pytest.importorskip("core")
pytestmark = pytest.mark.interop


def compressed_test_files() -> list[Path]:
    """Files whose transfer syntax is compressed or deflated, that carry Pixel Data and SOP UIDs,
    and whose first frame pydicom's installed decoders can decode."""
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for d in data_dirs():
            for f in sorted(d.rglob("*")):
                if not f.is_file() or f.suffix.lower() not in (".dcm", ""):
                    continue
                try:
                    ds = dcmread(f, stop_before_pixels=True)
                    ts = UID(ds.file_meta.TransferSyntaxUID)
                    if not (ts.is_compressed or ts.is_deflated):
                        continue
                    if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
                        continue
                    full = dcmread(f)
                    if "PixelData" not in full:
                        continue
                    decode_pixels(full, index=0)
                except Exception:
                    continue
                found.append(f)
    return found


CANDIDATES = compressed_test_files()
BIG = 1_000_000


def _same_length_uid(old: str, seed: str) -> str | None:
    """A new valid UID exactly as long as `old` (pydicom's root + digits), or None if too short."""
    root = "1.2.826.0.1.3680043.8.498."
    room = len(old) - len(root)
    if room < 8:
        return None
    digits = str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))
    return root + "9" + digits[: room - 1]


def fresh_copy(src: Path, folder: Path) -> Path:
    """Copy `src` with a new SOP Instance UID (several test files share one), keeping its transfer
    syntax, encoding and pixel data untouched: the UID is replaced byte-for-byte by one of the
    same length when possible (some files are deliberately inconsistent and pydicom would not
    write them back), otherwise the data set is re-saved."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / src.name
    old = str(dcmread(src, stop_before_pixels=True).SOPInstanceUID)
    new = _same_length_uid(old, f"courier-interop/{src.name}")
    raw = src.read_bytes()
    if new and raw.count(old.encode()) >= 1:
        dst.write_bytes(raw.replace(old.encode(), new.encode()))
        if str(dcmread(dst, stop_before_pixels=True).SOPInstanceUID) == new:
            return dst
    ds = dcmread(src)
    uid = generate_uid(entropy_srcs=["courier-interop", src.name])
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.save_as(dst)
    return dst


def test_there_are_enough_candidates():
    names = {p.name for p in CANDIDATES}
    assert len(CANDIDATES) >= 40, len(CANDIDATES)
    assert {"MR_small_jp2klossless.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm"} <= names


@pytest.mark.parametrize(
    "src",
    [pytest.param(p, marks=pytest.mark.slow if p.stat().st_size > BIG else ()) for p in CANDIDATES],
    ids=[p.name for p in CANDIDATES],
)
def test_compressed_file_reaches_implicit_only_storescp(storescp_implicit, tmp_path, src):
    path = fresh_copy(src, tmp_path)
    r = core.store_dataset(storescp_implicit.config(dimse_timeout=30), str(path))
    assert r["status"] == "success", r["message"]
    assert r["transfer_syntax"] == ImplicitVRLittleEndian
    assert r["converted_from"] == dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    source = dcmread(path)
    got_path = storescp_implicit.received().get(str(source.SOPInstanceUID))
    assert got_path, "the SOP Instance UID must not change on conversion"
    got = dcmread(got_path)
    assert got.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    a, b = source.pixel_array, got.pixel_array
    assert a.shape == b.shape and np.array_equal(a, b), "received pixels differ from the decoded source"


@pytest.mark.slow
def test_cli_sends_all_test_files_to_implicit_only_storescp(storescp, run_cli, tmp_path):

    peer = storescp("+xi")
    folder = tmp_path / "all"
    sources = [p for p in CANDIDATES if p.stat().st_size <= BIG]
    sources.extend(TEST_FILES / name for name in ("CT_small.dcm", "MR_small.dcm", "MR_small_bigendian.dcm"))
    copies = [fresh_copy(p, folder / f"{i:03d}") for i, p in enumerate(sources)]
    report = tmp_path / "r.json"
    p = run_cli(
        "send", "--host", "127.0.0.1", "--port", peer.port, "--called-ae", peer.aet, "--report", report, folder, timeout=280
    )
    assert p.returncode == 0, p.stderr[-3000:]
    want = {str(dcmread(c, stop_before_pixels=True).SOPInstanceUID) for c in copies}
    assert set(peer.received()) == want


def test_big_endian_only_storescp(storescp, tmp_path):
    peer = storescp(
        config="[[TransferSyntaxes]]\n[BigOnly]\nTransferSyntax1 = BigEndianExplicit\n"
        "[[PresentationContexts]]\n[MRBig]\nPresentationContext1 = MRImageStorage\\BigOnly\n"
        "[[Profiles]]\n[BE]\nPresentationContexts = MRBig\n",
        profile="BE",
    )
    path = casegen.c03_mr_swap_visible(tmp_path / "in")[0]
    r = core.store_dataset(peer.config(), path, transfer_syntax_strategy="standard")
    assert r["status"] == "success", r["message"]
    assert r["transfer_syntax"] == ExplicitVRBigEndian
    got = dcmread(peer.received()[str(dcmread(path).SOPInstanceUID)])
    assert got.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    assert np.array_equal(got.pixel_array, casegen.c03_mr_pixels())
    assert got.DiffusionBValue == 1000.0


def test_accept_anything_storescp_gets_files_as_stored(storescp, tmp_path):
    peer = storescp(config=Path("/etc/dcmtk/storescp.cfg"), profile="Default")
    paths = casegen.c11_j2k_lossless_and_rle(tmp_path / "in")
    r = core.store_datasets_batch(peer.config(), paths)
    assert r["successful"] == 3, r["details"]
    got = peer.received()
    for path, syntax in zip(paths, [JPEG2000Lossless, JPEG2000Lossless, RLELossless], strict=True):
        src = dcmread(path)
        dst = dcmread(got[str(src.SOPInstanceUID)])
        assert dst.file_meta.TransferSyntaxUID == syntax
        assert dst.PixelData == src.PixelData, f"{path.name} was re-encoded"


def test_odd_length_pixel_data_to_storescp(storescp, tmp_path):
    peer = storescp()
    odd, normal = casegen.c18_odd_length_sc(tmp_path / "in")
    r = core.store_datasets_batch(peer.config(), [odd, normal])
    assert [d["status"] for d in r["details"]] == ["success", "success"], r["details"]
    got = dcmread(peer.received()[str(dcmread(odd).SOPInstanceUID)])
    assert len(got.PixelData) == 1024
    assert np.array_equal(got.pixel_array, casegen.c18_pixels(31, 33))


def test_large_ct_to_storescp_with_small_pdu(storescp, tmp_path):
    peer = storescp("-pdu", "4096")
    path = casegen.c17_large_ct(tmp_path / "in")[0]
    r = core.store_dataset(peer.config(), path)
    assert r["status"] == "success", r["message"]
    got = dcmread(peer.received()[str(dcmread(path).SOPInstanceUID)])
    assert np.array_equal(got.pixel_array, dcmread(path).pixel_array)


def test_batch_of_twenty_goes_over_one_association(storescp, tmp_path):
    peer = storescp()
    paths = casegen.make_ct(tmp_path / "in", 20)
    r = core.store_datasets_batch(peer.config(), paths)
    assert r["successful"] == 20 and r["associations"] == 1
    assert len(peer.received()) == 20


def test_storescp_preferring_deflate_does_not_force_zlib(storescp, tmp_path):
    """DESIGN trap: storescp +xa prefers Deflated when a context offers it beside uncompressed ones.
    With one syntax per context, the file goes as stored."""
    peer = storescp("+xa")
    path = casegen.make_ct(tmp_path / "in", 1)[0]
    r = core.store_dataset(peer.config(), path, transfer_syntax_strategy="extended")
    assert r["status"] == "success", r["message"]
    assert r["transfer_syntax"] == ExplicitVRLittleEndian and r["converted_from"] is None
    got = dcmread(peer.received()[str(dcmread(path).SOPInstanceUID)])
    assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
