"""The known traps of DESIGN.md, measured against DCMTK storescp on loopback:
Nagle's algorithm (about 45 ms per instance when TCP_NODELAY is off), a C-STORE-RSP lost to
pynetdicom's reactor with a fast peer (the rest of the batch then failed), and files that need no
conversion being decoded instead of streamed."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
from pydicom import dcmread

from helpers import casegen

core = pytest.importorskip("core")
pytestmark = pytest.mark.interop


@pytest.mark.slow
def test_many_small_files_no_lost_response(storescp, tmp_path):
    """A fast peer and 2,000 tiny instances (where 4 runs in 15 used to lose a response): every
    response must be read, over one association."""
    peer = storescp()
    paths = casegen.make_ct(tmp_path / "in", 2000, 4, 4, key="many")
    r = core.store_datasets_batch(peer.config(), paths)
    bad = [d for d in r["details"] if d["status"] != "success"]
    assert not bad, bad[:3]
    assert r["associations"] == 1
    assert len(peer.received()) == 2000


def test_no_nagle_delay_per_instance(storescp, tmp_path):
    """With Nagle on, each C-STORE waits for the peer's delayed ACK (~45 ms): 200 files >= 9 s.
    (storescp runs with TCP_NODELAY=1, so only the sender can cause the delay.)"""
    peer = storescp()
    paths = casegen.make_ct(tmp_path / "in", 200, 8, 8, key="nagle")
    core.store_datasets_batch(peer.config(), paths[:5])  # warm-up (imports, codecs)
    t0 = time.perf_counter()
    r = core.store_datasets_batch(peer.config(), paths[5:])
    elapsed = time.perf_counter() - t0
    assert r["successful"] == 195
    assert elapsed / 195 < 0.025, f"{elapsed / 195 * 1000:.1f} ms per instance: TCP_NODELAY missing?"


def test_unconverted_file_is_streamed_not_loaded(storescp, tmp_path):
    """A 32 MiB file the peer takes as stored must not be read into memory whole."""
    peer = storescp()
    rng = np.random.default_rng(3)
    big = rng.integers(0, 4096, size=(4096, 4096), dtype=np.uint16)
    path = casegen._write_one(tmp_path / "in", casegen.ct_dataset("big", 0, 4096, 4096, big), "big.dcm")[0]
    size = path.stat().st_size
    core.store_dataset(peer.config(), casegen.make_ct(tmp_path / "warm", 1)[0])  # warm-up
    tracemalloc.start()
    try:
        r = core.store_dataset(peer.config(dimse_timeout=60), str(path))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r["status"] == "success" and r["converted_from"] is None, r["message"]
    assert peak < size / 2, f"peak Python allocations {peak / 2**20:.1f} MiB for a {size / 2**20:.1f} MiB file"
    got = dcmread(peer.received()[str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)])
    assert np.array_equal(got.pixel_array, big)
