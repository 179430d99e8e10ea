"""Hostile and odd peers on the wire: bounded memory, bounded time, and leniency where the standard allows it.

Issue 13 items 4-5 and issue 12 items 6 and 10 (cases c29, c33), with scripted peers
(:class:`helpers.badpeers.RawSCP` on raw sockets, :class:`NeverAcceptingPeer`, pynetdicom's SCP):

* a PDU announced above our limits (A-ASSOCIATE-AC, C-STORE-RSP, C-ECHO-RSP) ends the
  association at once, without buffering it;
* a peer maximum PDU length too small for a PDV is a named protocol error; a tiny but
  workable one is honoured, the command set fragmented like the data set;
* every wait (TCP connect, A-ASSOCIATE-AC, C-STORE-RSP, C-ECHO-RSP) ends within its timeout
  plus :data:`core.waiting.SLACK_S`, however the peer drips, and the message gives the real
  elapsed time and names the timeout;
* c29: a PDU never mixes command and data set; c33: an odd but legal A-ASSOCIATE-AC is
  accepted, a malformed one refused with a named reason.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage

from core.echo import echo
from core.engine import SendJob, items_from_inputs
from core.errors import AssociationError, DimseCommandError
from core.waiting import SLACK_S
from helpers import casegen
from helpers.badpeers import IMPLICIT_LE, NeverAcceptingPeer, RawSCP, build_associate_ac, make_ct
from helpers.process import free_port

pytestmark = pytest.mark.timeout(120)

#: Seconds a process needs on top of a wait here (association set-up on loopback, teardown).
OVERHEAD_S = 0.5


def config(port: int, **kw):
    cfg = {
        "remote_host": "127.0.0.1",
        "remote_port": port,
        "remote_ae_title": "RAW",
        "acse_timeout": 5,
        "dimse_timeout": 5,
        "network_timeout": 5,
        "connect_timeout": 5,
        "retry_backoff_s": 0.05,
        "retry_attempts": 0,
    }
    cfg.update(kw)
    return cfg


def send(port: int, paths, **kw):
    return SendJob(config(port, **kw)).run(items_from_inputs([str(p) for p in paths]))


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    try:
        return fn(*args, **kw), None, time.monotonic() - t0
    except Exception as exc:  # the tests assert on the error
        return None, exc, time.monotonic() - t0


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_ct(tmp_path_factory.mktemp("small"), 3, 16, "wire-small")


# -- memory: a PDU announced above our limits is never buffered -------------------------------------------


def test_a_4_gb_associate_ac_is_refused_unread():
    with RawSCP(on_associate="huge") as peer:
        _, exc, took = timed(echo, config(peer.port))
        streamed = peer.streamed
    assert isinstance(exc, AssociationError), exc
    assert "A-ASSOCIATE-AC of 4294967280 bytes" in exc.message and "protocol error" in exc.message
    assert exc.details["kind"] == "protocol" and not exc.details["transient"]
    assert took < 2
    assert streamed <= 64 * 1024 * 1024, f"the peer could stream {streamed >> 20} MB"


def test_a_4_gb_c_store_response_aborts_at_once(small):
    with RawSCP(respond=lambda msg: "huge") as peer:
        result, _, took = timed(send, peer.port, small)
        streamed = peer.streamed
        connections = peer.connections
    assert took < 5 and streamed <= 64 * 1024 * 1024
    first = result.outcomes[0]
    assert first.state == "unknown"
    assert "P-DATA-TF of 4294967280 bytes, above the maximum PDU length we advertised (262144 bytes)" in first.message
    # each instance breaks the association it is sent on; with re-sends off none is sent twice
    assert all(o.message for o in result.outcomes) and connections <= len(small)


def test_a_response_above_our_own_small_maximum_is_refused(small):
    """Our advertised maximum is what counts, whatever the peer's."""
    with RawSCP(respond=lambda msg: "huge", huge_length=4097) as peer:
        result = send(peer.port, small[:1], max_pdu=4096)
    assert "P-DATA-TF of 4097 bytes, above the maximum PDU length we advertised (4096 bytes)" in result.outcomes[0].message


def test_a_4_gb_c_echo_response_aborts_at_once():
    with RawSCP(respond=lambda msg: "huge") as peer:
        _, exc, took = timed(echo, config(peer.port))
    assert isinstance(exc, DimseCommandError) and "P-DATA-TF of 4294967280 bytes" in exc.message
    assert took < 3


# -- a peer maximum PDU too small for a PDV, or tiny but workable -----------------------------------------


@pytest.mark.parametrize("peer_max", [1, 2, 5, 6, 7])
def test_peer_max_pdu_below_a_pdv_is_a_named_protocol_error(small, peer_max):
    with RawSCP(max_pdu=peer_max) as peer:
        result, exc, took = timed(send, peer.port, small)
        connections, messages = peer.connections, len(peer.messages)
    assert exc is None, exc
    assert took < 5 and connections == 1 and messages == 0
    for o in result.outcomes:
        assert o.state == "failed"  # not-sent is for a send the user stopped
        assert f"maximum PDU length of {peer_max} bytes" in o.message and "protocol error" in o.message


def test_peer_max_pdu_6_from_pynetdicom_refuses_echo_and_send(scp_factory, small):
    scp = scp_factory(max_pdu=6, accept={CTImageStorage: [ExplicitVRLittleEndian]})
    cfg = config(scp.port, remote_ae_title="TESTPACS")
    with pytest.raises(AssociationError, match="maximum PDU length of 6 bytes"):
        echo(cfg)
    result = SendJob(cfg).run(items_from_inputs([str(p) for p in small]))
    assert all(o.state == "failed" and "maximum PDU length of 6 bytes" in o.message for o in result.outcomes)


@pytest.mark.parametrize("peer_max", [8, 9, 10, 12, 13, 100])
def test_tiny_workable_peer_max_pdu_fragments_command_and_data_set(small, peer_max):
    with RawSCP(max_pdu=peer_max) as peer:
        result = send(peer.port, small[:2])
        pdus, messages = list(peer.pdus), list(peer.messages)
    assert [o.status for o in result.outcomes] == ["success", "success"], [o.message for o in result.outcomes]
    assert all(length <= peer_max for _, length, _ in pdus), "a PDU longer than the peer's maximum"
    assert all(pdv_len % 2 == 0 for _, _, pdvs in pdus for _, _, pdv_len in pdvs), "an odd PDV"
    headers = [h for _, _, pdvs in pdus for _, h, _ in pdvs]
    assert headers.count(0x01) > 0, "the command set was not fragmented"
    assert headers.count(0x03) == 2 and headers.count(0x02) == 2
    for path, msg in zip(small[:2], messages, strict=True):
        assert len(msg.dataset) > 400 and Path(path).read_bytes().endswith(msg.dataset)


# -- c29: command and data set in separate PDUs ------------------------------------------------------------


def _c29_files(folder: Path, sizes=(16, 90, 256)) -> list[str]:
    paths = []
    for i, size in enumerate(sizes, 1):
        paths += make_ct(folder / str(size), 1, size, f"c29-{size}", first=i)
    return paths


@pytest.mark.parametrize("peer_max", [16384, 4096, 100])
def test_c29_every_pdu_holds_one_kind_of_pdv(tmp_path, peer_max):
    paths = _c29_files(tmp_path)
    with RawSCP(max_pdu=peer_max, close_on_mixed=True) as peer:
        result = send(peer.port, paths)
        pdus, closed, connections = list(peer.pdus), peer.closed_mixed, peer.connections
    assert [o.status for o in result.outcomes] == ["success"] * 3, [o.message for o in result.outcomes]
    assert closed == 0 and connections == 1
    kinds = []
    for _, length, pdvs in pdus:
        assert length <= peer_max
        assert len({h & 1 for _, h, _ in pdvs}) == 1, f"a PDU mixes command and data set: {pdvs}"
        assert sum(1 for _, h, _ in pdvs if h & 2) <= 1, f"a PDU ends two fragments sequences: {pdvs}"
        assert all(n % 2 == 0 for _, _, n in pdvs)
        kinds.append([h for _, h, _ in pdvs])
    flat = [h for hs in kinds for h in hs]
    # per message: command fragments (0x01...) ending 0x03, then data set fragments (0x00...) ending 0x02
    messages, current = [], []
    for h in flat:
        current.append(h)
        if h == 0x02:
            messages.append(current)
            current = []
    assert len(messages) == 3 and not current
    for headers in messages:
        split = headers.index(0x03)
        assert set(headers[:split]) <= {0x01} and set(headers[split + 1 : -1]) <= {0x00}


def test_c29_peer_drops_the_connection_mid_data_set(tmp_path):
    """The data set is bigger than every buffer: the write fails, so the peer cannot have it."""
    paths = make_ct(tmp_path, 2, 724, "c29-drop")  # ~1 MB each
    with RawSCP(close_after_bytes=32 * 1024, rcvbuf=16384) as peer:
        result, exc, took = timed(send, peer.port, paths)
    assert exc is None and took < 10
    first = result.outcomes[0].attempts_detail[0]
    assert first.result == "not-received", first
    assert "connection closed by peer while sending the data set (no A-ABORT, no response)" in first.message
    assert result.outcomes[1].message


def test_c29_peer_drops_the_connection_after_the_whole_request(small):
    """All of it reached the peer before it closed: the outcome is unknown."""
    with RawSCP(close_after_bytes=1) as peer:
        result = send(peer.port, small[:2])
    first = result.outcomes[0]
    assert first.state == "unknown", first
    assert "connection closed by peer after the data set was sent (no A-ABORT, no response)" in first.message


# -- every wait within its timeout ---------------------------------------------------------------------------


def _assert_within(took: float, timeout: float) -> None:
    assert took <= timeout + SLACK_S + OVERHEAD_S, f"{took:.1f} s for a {timeout:g} s timeout"


def test_silent_peer_echo_ends_at_the_acse_timeout():
    with RawSCP(on_associate="silent") as peer:
        _, exc, took = timed(echo, config(peer.port, acse_timeout=2))
    assert isinstance(exc, AssociationError) and exc.details["kind"] == "timeout"
    assert "within the ACSE timeout (2 s): waited 2.0 s; nothing had arrived" in exc.message
    assert took >= 1.9
    _assert_within(took, 2)


def test_silent_peer_send_ends_at_the_acse_timeout(small):
    with RawSCP(on_associate="silent") as peer:
        result, _, took = timed(send, peer.port, small, acse_timeout=2)
    _assert_within(took, 2)
    assert all("ACSE timeout (2 s)" in o.message for o in result.outcomes)


@pytest.mark.parametrize("drip_s", [0.05, 0.7])
def test_a_dripping_associate_ac_is_bounded_by_the_acse_timeout(drip_s):
    """One byte every `drip_s` seconds: each byte is in time, the whole answer is not."""
    with RawSCP(on_associate="drip", drip_s=drip_s) as peer:
        _, exc, took = timed(echo, config(peer.port, acse_timeout=2, network_timeout=1))
    assert isinstance(exc, AssociationError) and exc.details["kind"] == "timeout", exc
    assert "ACSE timeout (2 s): waited 2.0 s" in exc.message and "had arrived" in exc.message
    _assert_within(took, 2)


def test_a_peer_that_never_accepts_costs_the_connect_timeout_once():
    with NeverAcceptingPeer() as peer:
        _, exc, took = timed(echo, config(peer.port, connect_timeout=2))
    assert isinstance(exc, AssociationError) and exc.details["kind"] == "connect"
    assert "no answer within 2 s (connection timeout; waited 2.0 s)" in exc.message
    _assert_within(took, 2)


def test_a_refused_connection_is_named_without_a_second_attempt():
    _, exc, took = timed(echo, config(free_port()))
    assert isinstance(exc, AssociationError) and "connection refused" in exc.message
    assert took < 1


@pytest.mark.parametrize("act", [("late", 30, 0), ("drip", 0.3, 0)], ids=["late", "dripping"])
def test_a_late_or_dripping_c_store_response_is_bounded_by_the_dimse_timeout(small, act):
    with RawSCP(respond=lambda msg: act) as peer:
        result, _, took = timed(send, peer.port, small[:1], dimse_timeout=2)  # one wait, one instance
    first = result.outcomes[0].attempts_detail[0]
    assert first.result == "unknown" and "no C-STORE response within the DIMSE timeout (2 s): waited 2.0 s" in first.message
    assert first.elapsed_s <= 2 + SLACK_S
    _assert_within(took, 2)


@pytest.mark.parametrize("act", [("late", 30, 0), ("drip", 0.3, 0)], ids=["late", "dripping"])
def test_a_late_or_dripping_c_echo_response_is_bounded_by_the_dimse_timeout(act):
    with RawSCP(respond=lambda msg: act) as peer:
        _, exc, took = timed(echo, config(peer.port, dimse_timeout=2))
    assert isinstance(exc, DimseCommandError), exc
    assert "no C-ECHO response within the DIMSE timeout (2 s): waited 2.0 s" in exc.message
    _assert_within(took, 2)


def test_echo_over_the_direct_channel():
    with RawSCP() as peer:
        r = echo(config(peer.port))
        messages = list(peer.messages)
    assert r["status_code"] == 0 and r["message"] == "C-ECHO succeeded"
    assert int.from_bytes(messages[0].command[0x00000100], "little") == 0x0030


# -- c33: an odd but legal A-ASSOCIATE-AC is accepted; a malformed one refused with a reason -----------------


def _c33_decide(cid, abstract, syntaxes):
    if abstract == CTImageStorage and IMPLICIT_LE in syntaxes:
        return 0, IMPLICIT_LE
    return (3 if abstract == MRImageStorage else 4), None


def _c33_files(folder: Path) -> list[str]:
    ct = casegen.make_ct(folder / "ct", 2, 32, 32)
    mr = make_ct(folder / "mr", 1, 32, "c33-mr")
    import pydicom

    ds = pydicom.dcmread(mr[0])
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.Modality = "MR"
    ds.save_as(mr[0], enforce_file_format=True)
    return [str(ct[0]), mr[0], str(ct[1])]


ODD_ACS = {
    "c33": {"impl_uid": b"1.2.3.4.5\0", "version_name": b"ODD_AC".ljust(16), "ae_fields": (b" " * 16, b" " * 16)},
    "nul-ae-fields": {"impl_uid": b"1.2.3.4.5\0", "version_name": b"", "ae_fields": (b"\0" * 16, b"\0" * 16)},
    "nul-padded-name": {"impl_uid": b"1.2.3.4.5", "version_name": b"ODD\0", "ae_fields": (b"ANY".ljust(16), b"X".ljust(16))},
}


@pytest.mark.parametrize("variant", list(ODD_ACS))
def test_c33_odd_but_legal_associate_ac_is_accepted(tmp_path, variant, caplog):
    paths = _c33_files(tmp_path)
    odd = ODD_ACS[variant]

    def ac(rq):
        return build_associate_ac(rq, _c33_decide, rejected_ts_subitem=False, **odd)

    caplog.set_level(logging.WARNING)
    with RawSCP(ac=ac) as peer:
        result = send(peer.port, paths)
        connections, aborts = peer.connections, peer.aborts
    statuses = [o.status for o in result.outcomes]
    assert statuses == ["success", "failure", "success"], [o.message for o in result.outcomes]
    assert all(o.transfer_syntax == ImplicitVRLittleEndian for o in (result.outcomes[0], result.outcomes[2]))
    mr = result.outcomes[1]
    # c33's words, in c31's form: the class is named and the peer's reason given
    assert mr.state == "failed" and "peer does not support MR Image Storage" in mr.message
    assert "abstract syntax not supported" in mr.message
    assert connections == 1 and aborts == 0
    record = result.associations[0]
    assert record.peer_implementation_class_uid == "1.2.3.4.5"
    noise = [
        r.getMessage() for r in caplog.records if any(w in r.getMessage().lower() for w in ("ill-formed", "malformed", "decode"))
    ]
    assert not noise, noise


def _accept_without_syntax(cid, abstract, syntaxes):
    result, ts = _c33_decide(cid, abstract, syntaxes)
    return (0, None) if result == 0 else (result, ts)


def test_c33_an_accepted_context_without_a_transfer_syntax_is_refused_by_name(tmp_path):
    paths = _c33_files(tmp_path)

    def ac(rq):
        return build_associate_ac(rq, _accept_without_syntax, rejected_ts_subitem=False)

    with RawSCP(ac=ac) as peer:
        result, exc, took = timed(send, peer.port, paths)
        connections = peer.connections
    assert exc is None and took < 5
    assert connections == 1, "a malformed answer is not worth another association"
    for o in result.outcomes:
        assert o.state == "failed"
        assert "the peer's A-ASSOCIATE-AC is malformed: accepted context" in o.message
        assert "names no transfer syntax" in o.message


def test_an_associate_ac_whose_item_overruns_the_pdu_is_refused_by_name():
    def ac(rq):
        good = build_associate_ac(rq, _c33_decide)
        body = bytearray(good[6:])
        body[68 + 2 : 68 + 4] = (0xFFFF).to_bytes(2, "big")  # the Application Context item claims 64 KiB
        return good[:6] + bytes(body)

    with RawSCP(ac=ac) as peer:
        _, exc, _ = timed(echo, config(peer.port))
    assert isinstance(exc, AssociationError) and exc.details["kind"] == "protocol"
    assert "A-ASSOCIATE-AC is malformed: item 0x10 of 65535 bytes runs past the end of the PDU" in exc.message


def test_an_associate_ac_pynetdicom_cannot_decode_is_refused_with_its_reason():
    def ac(rq):
        return build_associate_ac(rq, _c33_decide, version_name=b"BAD\\NAME")

    with RawSCP(ac=ac) as peer:
        _, exc, _ = timed(echo, config(peer.port))
    assert isinstance(exc, AssociationError) and exc.details["kind"] == "protocol"
    assert "A-ASSOCIATE-AC is malformed: Invalid 'Implementation Version Name'" in exc.message


@pytest.mark.parametrize("on_release", ["silent", "drip"])
def test_a_release_the_peer_never_completes_is_bounded_by_the_acse_timeout(small, on_release, capfd):
    """pynetdicom aborts after the ACSE timeout; a half-read A-RELEASE-RP does not hold that A-ABORT up."""
    with RawSCP(on_release=on_release, drip_s=0.5) as peer:
        result, exc, took = timed(send, peer.port, small[:1], acse_timeout=2, network_timeout=30)
    assert exc is None and result.outcomes[0].status == "success"
    _assert_within(took, 2)
    assert "Exception in thread" not in capfd.readouterr().err, "pynetdicom's DUL thread died"
