"""The window against a real peer: DCMTK ``storescp +xi`` (Implicit VR Little Endian only)."""

from __future__ import annotations

import pydicom
import pytest

from helpers.data import TEST_FILES

pytestmark = [
    pytest.mark.gui,
    pytest.mark.interop,
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("propagateSizeHints"),
    pytest.mark.timeout(180),
]


def test_send_to_storescp_implicit_only(qtbot, tmp_path, storescp, monkeypatch) -> None:
    from core.profiles import Profile
    from ui import states as st
    from ui.app import build_window
    from ui.logpane import LogBuffer
    from ui.models import Col

    monkeypatch.setenv("DICOM_COURIER_CONFIG_DIR", str(tmp_path / "config"))
    peer = storescp("+xi")  # Implicit VR Little Endian only
    port, out = peer.port, peer.out_dir
    w = build_window(LogBuffer(), str(tmp_path / "config"), str(tmp_path / "data"))
    qtbot.addWidget(w)
    w.show()
    w.profiles.insert(
        0, Profile(name="storescp", remote_host="127.0.0.1", remote_port=port, remote_ae_title="STORESCP", strategy="compression")
    )
    w._select_profile("storescp")
    names = ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm"]
    with qtbot.waitSignal(w.scan_controller.scan_finished, timeout=30000):
        w.add_paths([str(TEST_FILES / n) for n in names])
    with qtbot.waitSignal(w.echo_controller.echo_finished, timeout=30000) as b:
        w.test_button.click()
    assert b.args[1] is None and "accepted Implicit VR LE" in w.echo_label.text()
    with qtbot.waitSignal(w.send_controller.send_finished, timeout=120000):
        w.send_button.click()
    assert w.model.counts() == {st.STORED: 4}
    for n in w.model.leaves():
        i = w.model.index_of(n)
        assert w.model.index(i.row(), Col.SENT_AS, i.parent()).data().endswith("→ Implicit VR LE")
    received = list(out.iterdir())
    assert len(received) == 4
    assert {str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID) for p in received} == {
        "1.2.840.10008.1.2"
    }
    w.shutdown()
