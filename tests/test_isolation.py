"""No instance can sink a batch, and every loop is bounded (issue 12, items 1-2).

An instance in flight when the association breaks (A-ABORT, closed connection, DIMSE timeout) is
set aside; the others go on at once on a new association; it is then sent once more, alone, on a
fresh association, and fails with words a person can act on when it breaks that one too. A peer
that breaks the association on every instance is judged broken after a bounded number of them.
Instances no accepted context can carry fail after one association. Each test counts the
associations the peer saw and the time the send took.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from core import events as ev
from core.engine import SendJob, items_from_inputs, items_from_scan
from core.rules import BROKEN_PEER_BREAKS
from core.scan import scan_paths
from helpers import casegen
from helpers.badpeers import Act, BadPeer, make_ct

pytestmark = pytest.mark.timeout(180)

UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def fast(**kw):
    """Short timeouts; a long back-off, so that any back-off after a break would show in the time taken."""
    return {"acse_timeout": 5, "dimse_timeout": 2, "network_timeout": 2, "connect_timeout": 2, "retry_backoff_s": 5, **kw}


# -- one file aborts: the others are stored at once -------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "poison", "associations"),
    [
        (40, {5, 22}, 5),  # broken at 5 and 22: 3 for the batch, then 5 and 22 alone
        (40, {0, 39}, 4),  # the first and the last: nothing follows 39 on its association
        (12, {3, 4, 5}, 7),  # three in a row: each sets aside, the rest go on
    ],
    ids=["2-of-40", "first-and-last", "three-in-a-row"],
)
def test_peer_aborting_some_instances_gets_all_the_others_quickly(scp_factory, tmp_path, n, poison, associations):
    paths = make_ct(tmp_path, n, 16, f"poison{n}{sorted(poison)}")
    bad = {items_from_inputs([paths[i]])[0].inst.sop_instance_uid for i in poison}
    scp = scp_factory(accept={CTImageStorage: UNCOMPRESSED}, policy=lambda req: "abort" if req.sop_instance_uid in bad else 0)
    events: list[ev.Event] = []
    t0 = time.monotonic()
    result = SendJob(scp.config(**fast()), on_event=events.append).run(items_from_inputs(paths))
    took = time.monotonic() - t0
    assert set(scp.stored) == {o.sop_instance_uid for o in result.outcomes} - bad, "a good instance was lost"
    assert len(scp.stored) == n - len(poison)
    assert took < 4, f"{took:.1f} s: a peer that aborts one instance is up, no back-off (5 s) is due"
    assert len(scp.associations) == associations
    for i in poison:
        o = result.outcomes[i]
        assert o.state == "failed" and o.status == "failure", o
        assert o.message.startswith(
            "the PACS aborted the association twice while receiving this instance: it probably cannot read it"
        )
        assert "A-ABORT" in o.message, o.message
        first, second = o.attempts_detail
        assert first.result == second.result == "unknown" and first.association != second.association
    # the second attempt of a poison instance went alone, after every good instance
    last_good = max(q.index for q in scp.requests if q.sop_instance_uid not in bad)
    for uid in bad:
        first, second = [q for q in scp.requests if q.sop_instance_uid == uid]
        assert second.index > last_good, "a set-aside instance went again before the others had their turn"
        assert [q.sop_instance_uid for q in scp.requests if q.assoc_index == second.assoc_index] == [uid], "not alone"
    assert not [e for e in events if isinstance(e, ev.AssociationFailed)]


def test_abort_once_then_stored_alone(scp_factory, tmp_path):
    """A peer that aborts the first time only (a hiccup): the instance is stored on its second, lone try."""
    paths = make_ct(tmp_path, 10, 16, "hiccup")
    target = items_from_inputs([paths[3]])[0].inst.sop_instance_uid
    tries: list[str] = []

    def policy(req):
        if req.sop_instance_uid == target:
            tries.append(target)
            return "abort" if len(tries) == 1 else 0
        return 0

    scp = scp_factory(accept={CTImageStorage: UNCOMPRESSED}, policy=policy)
    result = SendJob(scp.config(**fast())).run(items_from_inputs(paths))
    assert [o.state for o in result.outcomes] == ["stored"] * 10
    assert result.outcomes[3].tries == 2 and len(scp.associations) == 3
    assert scp.stored[-1] == target, "the set-aside instance went last"


def test_a_peer_that_aborts_every_instance_is_judged_broken(scp_factory, tmp_path):
    paths = make_ct(tmp_path, 30, 16, "always")
    scp = scp_factory(accept={CTImageStorage: UNCOMPRESSED}, policy=lambda req: "abort")
    events: list[ev.Event] = []
    t0 = time.monotonic()
    result = SendJob(scp.config(**fast()), on_event=events.append).run(items_from_inputs(paths))
    took = time.monotonic() - t0
    finished = [e.index for e in events if isinstance(e, ev.InstanceFinished)]
    assert sorted(finished) == list(range(30)), "an instance finished twice or never"
    assert len(scp.associations) == BROKEN_PEER_BREAKS, "a broken peer opened more associations than the bound"
    assert len(scp.requests) == BROKEN_PEER_BREAKS
    assert took < 10
    states = [o.state for o in result.outcomes]
    # the ones it broke on: their data set reached it, nobody knows; the rest were never offered to it
    assert states[:BROKEN_PEER_BREAKS] == ["unknown"] * BROKEN_PEER_BREAKS
    assert states[BROKEN_PEER_BREAKS:] == ["failed"] * (30 - BROKEN_PEER_BREAKS)
    rest = result.outcomes[BROKEN_PEER_BREAKS:]
    assert all(o.resumable and f"broke the association on {BROKEN_PEER_BREAKS} instances in a row" in o.message for o in rest)
    assert "not-sent" not in states, "not-sent is for a send the user stopped"
    assert result.error and "check the PACS" in result.error


def test_a_run_of_bad_files_in_one_series_does_not_condemn_the_peer(scp_factory, tmp_path):
    """More bad files in a row than the broken-peer bound, then good ones of other series: all good ones stored."""
    bad_paths = casegen.make_ct(tmp_path / "a_bad", BROKEN_PEER_BREAKS + 4, key="bad-series")
    good_paths = casegen.make_ct(tmp_path / "b_good", 6, key="good-series")
    bad_series = str(casegen.ct_dataset("bad-series").SeriesInstanceUID)
    scp = scp_factory(
        accept={CTImageStorage: UNCOMPRESSED},
        policy=lambda req: "abort" if str(req.dataset.SeriesInstanceUID) == bad_series else 0,
    )
    result = SendJob(scp.config(**fast())).run(items_from_inputs([*bad_paths, *good_paths]))
    states = [o.state for o in result.outcomes]
    assert states[len(bad_paths) :] == ["stored"] * 6, [o.message[:80] for o in result.outcomes]
    assert all("aborted the association twice" in o.message for o in result.outcomes[: len(bad_paths)])
    assert not result.error


def test_peer_closing_the_connection_on_one_instance(tmp_path):
    """No A-ABORT, the TCP connection just closes in the middle of one data set, every time."""
    paths = make_ct(tmp_path, 8, 256, "closer")  # 128 KiB each: eight PDUs of 16 KiB
    target = items_from_inputs([paths[2]])[0].inst.sop_instance_uid
    with BadPeer(lambda req: Act(close_after_kib=32) if req.uid == target else Act(), rcvbuf=16384) as peer:
        t0 = time.monotonic()
        result = SendJob({"remote_host": "127.0.0.1", "remote_port": peer.port, "remote_ae_title": "BADPEER", **fast()}).run(
            items_from_inputs(paths)
        )
        took = time.monotonic() - t0
        assert peer.associations == 3  # the batch up to it, the rest, then it alone
        assert len(set(peer.seen) - {target}) == 7
    assert took < 8, f"{took:.1f} s"
    bad = result.outcomes[2]
    assert bad.state == "failed" and bad.message.startswith(
        "the association broke twice while the PACS was receiving this instance"
    )
    assert all(o.state == "stored" for i, o in enumerate(result.outcomes) if i != 2)


def test_peer_that_never_answers_one_request(tmp_path):
    """A DIMSE timeout on one instance every time: it fails after two timeouts, the others are stored."""
    paths = make_ct(tmp_path, 6, 16, "mute")
    target = items_from_inputs([paths[1]])[0].inst.sop_instance_uid
    with BadPeer(lambda req: Act(silent=30) if req.uid == target else Act()) as peer:
        t0 = time.monotonic()
        result = SendJob(
            {"remote_host": "127.0.0.1", "remote_port": peer.port, "remote_ae_title": "BADPEER", **fast(dimse_timeout=1)}
        ).run(items_from_inputs(paths))
        took = time.monotonic() - t0
        peer.release.set()
        assert peer.associations == 3
    assert took < 6, f"{took:.1f} s for two 1 s DIMSE timeouts"
    bad = result.outcomes[1]
    assert bad.state == "failed" and "no C-STORE response within the DIMSE timeout (1 s)" in bad.message
    assert "broke twice" in bad.message
    assert [o.state for i, o in enumerate(result.outcomes) if i != 1] == ["stored"] * 5


def test_parallel_associations_isolate_too(scp_factory, tmp_path):
    """With several associations at once, a poison instance still costs only itself."""
    paths = []
    for study in range(3):
        paths += casegen.make_ct(tmp_path / f"s{study}", 6, key=f"par{study}")
    bad = {items_from_inputs([paths[i]])[0].inst.sop_instance_uid for i in (2, 9)}
    scp = scp_factory(accept={CTImageStorage: UNCOMPRESSED}, policy=lambda req: "abort" if req.sop_instance_uid in bad else 0)
    result = SendJob(scp.config(**fast()), parallel=3).run(items_from_inputs(paths))
    assert len(scp.stored) == 16
    assert all(o.state == "failed" and "twice" in o.message for o in result.outcomes if o.sop_instance_uid in bad)


# -- a real Orthanc that cannot parse some files ---------------------------------------------------------


def _orthanc_unparseable(folder: Path) -> list[Path]:
    """Files our header scan accepts but a full DCMTK parse refuses: an unknown explicit VR, an item overrunning its sequence."""
    import struct

    def explicit(tag: int, vr: bytes, value: bytes) -> bytes:
        return struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr + struct.pack("<H", len(value)) + value

    out = []
    for n, blob in enumerate(
        (
            explicit(0x00090010, b"LO", b"TEST PRIV ") + explicit(0x00091001, b"ZZ", b"ABCD"),
            struct.pack("<HH", 0x0008, 0x1140)
            + b"SQ\0\0"
            + struct.pack("<I", 22)
            + struct.pack("<HHI", 0xFFFE, 0xE000, 54)
            + explicit(0x00081150, b"UI", b"1.2.3\0"),
        )
    ):
        path = casegen.make_ct(folder, 1, key=f"unparseable{n}")[0]
        data = path.read_bytes()
        k = data.rfind(b"\xe0\x7f\x10\x00")  # before Pixel Data, keeping the tags ascending
        path.write_bytes(data[:k] + blob + data[k:])
        out.append(path)
    return out


def test_orthanc_stuck_on_files_it_cannot_parse(orthanc, tmp_path):
    """Orthanc never answers these (its parser waits for bytes that do not come): each costs two timeouts, no more."""
    folder = tmp_path / "mixed"
    good = casegen.make_ct(folder, 8, key="orthanc-good")
    bad = _orthanc_unparseable(folder)
    peer = orthanc()
    insts = scan_paths([str(folder)])
    result = SendJob(peer.config(dimse_timeout=3, network_timeout=3, retry_backoff_s=5)).run(items_from_scan(insts))
    by_path = {Path(o.path).name: o for o in result.outcomes}
    assert all(by_path[p.name].state == "stored" for p in good), [by_path[p.name].message for p in good]
    for p in bad:
        o = by_path[p.name]
        assert o.state == "failed" and o.message, o
    assert len(peer.get("/instances")) == len(good)
    assert result.established <= 1 + 2 * len(bad), "more associations than one break and one lone retry per file"


# -- every loop is bounded: what no context can carry fails after one association ------------------------


def _encapsulated(folder: Path, key: str, syntax: str, sop_class: str = CTImageStorage) -> Path:
    ds = casegen.ct_dataset(key)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([b"\x00\x01" * 64])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    path = folder / f"{key}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


VIDEO_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.1.1"  # Video Endoscopic Image Storage


@pytest.mark.parametrize("strategy", ["standard", "extended"])
def test_inputs_no_context_can_carry_cost_one_association(scp_factory, tmp_path, strategy):
    folder = tmp_path / "unsendable"
    folder.mkdir()
    good = casegen.make_ct(folder, 2, key="carry-good")
    jxl = _encapsulated(folder, "jpegxl", "1.2.840.10008.1.2.4.110")  # JPEG XL Lossless: no decoder here
    video = _encapsulated(folder, "mpeg4", "1.2.840.10008.1.2.4.102", VIDEO_CLASS)  # encapsulated video
    mr = casegen.base_dataset("1.2.840.10008.5.1.4.1.1.4", "refused-mr", 0, "MR")  # a SOP class the peer rejects
    mr.save_as(folder / "mr.dcm", enforce_file_format=True)
    scp = scp_factory(accept={CTImageStorage: UNCOMPRESSED, VIDEO_CLASS: UNCOMPRESSED})
    insts = scan_paths([str(folder)])
    result = SendJob(scp.config(**fast()), strategy, max_retries=4).run(items_from_scan(insts))
    by_name = {Path(o.path).name: o for o in result.outcomes}
    assert len(scp.associations) == 1, "an instance no context can carry opened another association"
    assert all(by_name[p.name].state == "stored" for p in good)
    assert by_name[jxl.name].state == "failed" and "cannot decode JPEG XL" in by_name[jxl.name].message
    assert by_name[video.name].state == "failed" and "cannot decode MPEG-4" in by_name[video.name].message
    refused = by_name["mr.dcm"]
    assert refused.state == "failed" and refused.message.startswith("not sent: peer does not support MR Image Storage")
    assert not any(o.state == "not-sent" for o in result.outcomes)


def test_dataset_with_an_unknown_transfer_syntax_fails_without_a_crash(scp_factory):
    ds = casegen.ct_dataset("private-ts")
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6.7"
    scp = scp_factory()
    result = SendJob(scp.config(**fast())).run(items_from_inputs([ds]))
    assert result.outcomes[0].state == "failed" and "unknown transfer syntax" in result.outcomes[0].message
    assert not scp.associations


def test_peer_accepting_only_what_cannot_be_reached_fails_in_one_association(scp_factory, tmp_path):
    """A class accepted only in a syntax no strategy proposes: it fails at once instead of looping."""
    folder = tmp_path / "mr"
    casegen.make_ct(folder, 1, key="ct-ok")
    mr = casegen.base_dataset("1.2.840.10008.5.1.4.1.1.4", "mr-j2k", 0, "MR")
    mr.save_as(folder / "mr.dcm", enforce_file_format=True)
    scp = scp_factory(
        accept={CTImageStorage: UNCOMPRESSED, "1.2.840.10008.5.1.4.1.1.4": ["1.2.840.10008.1.2.4.90"]}
    )  # MR only as JPEG 2000 Lossless
    done = threading.Event()
    result_box = []

    def run():
        result_box.append(SendJob(scp.config(**fast()), "standard", 4).run(items_from_scan(scan_paths([str(folder)]))))
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(20), "the send did not end (it looped over associations)"
    result = result_box[0]
    assert len(scp.associations) == 1
    mr_out = next(o for o in result.outcomes if Path(o.path).name == "mr.dcm")
    assert mr_out.state == "failed" and "transfer syntaxes not supported" in mr_out.message
