"""Broken peers: every instance ends with a recorded outcome, the process keeps running (issue 5, items 3-4, 7).

Cases c22 (peer stops reading mid C-STORE; the association is never reused) and
c23 (peer aborts after a data set, before the response) are rebuilt here with
the scripted peer of ``badpeers.py``. The engine is called directly with a
list-collecting callback.
"""

from __future__ import annotations

import sys
import threading
import time

import pytest

from core import events as ev
from core.engine import SendJob, items_from_inputs
from helpers.badpeers import Act, BadPeer, make_ct
from helpers.process import free_port

pytestmark = pytest.mark.timeout(120)


def config(port: int, **kw):
    cfg = {
        "remote_host": "127.0.0.1",
        "remote_port": port,
        "remote_ae_title": "BADPEER",
        "acse_timeout": 5,
        "dimse_timeout": 2,
        "network_timeout": 2,
        "connect_timeout": 2,
        "retry_backoff_s": 0.05,
        "retry_attempts": 3,
    }
    cfg.update(kw)
    return cfg


def send(peer: BadPeer, paths, **kw):
    events: list[ev.Event] = []
    result = SendJob(config(peer.port, **kw), on_event=events.append).run(items_from_inputs(paths))
    return result, events


def released(events) -> list[str]:
    return [e.how for e in events if isinstance(e, ev.AssociationReleased)]


# -- c23: the receiver aborts after the data set, before the response ------------------------------------


@pytest.fixture(scope="module")
def c23_files(tmp_path_factory):
    return make_ct(tmp_path_factory.mktemp("c23"), 6, 64, "c23")


def _c23_script(req):
    return Act(abort_after_data=True) if req.assoc_no == 1 and req.n_on_assoc == 3 else Act()


def test_c23_abort_after_data_set_recovers_on_new_association(c23_files):
    with BadPeer(_c23_script) as peer:
        result, events = send(peer, c23_files)
    assert [o.status for o in result.outcomes] == ["success"] * 6
    assert set(peer.seen) == {o.sop_instance_uid for o in result.outcomes}
    third = result.outcomes[2]
    first, second = third.attempts_detail
    assert first.result == "unknown" and first.status_code is None
    assert "aborted by the peer's DICOM service provider" in first.message
    assert "after the data set was sent, before a response" in first.message
    assert second.result == "success" and second.association != first.association
    # the others went on at once on a second association; the third went again alone, last, on a third
    assert peer.associations == 3
    assert peer.log[-1][0].uid == third.sop_instance_uid
    assert released(events)[0] == "aborted"


def test_c23_never_resend_leaves_it_unknown_and_sends_the_rest(c23_files):
    with BadPeer(_c23_script) as peer:
        result, _ = send(peer, c23_files, max_resends=0)
    states = [o.state for o in result.outcomes]
    assert states == ["stored", "stored", "unknown", "stored", "stored", "stored"]
    assert result.outcomes[2].message.startswith("outcome unknown - association aborted")
    assert "not sent again (max_resends is 0)" in result.outcomes[2].message
    assert result.outcomes[2].status_code is None, "an invented DIMSE status"
    assert peer.associations == 2
    assert peer.seen[result.outcomes[2].sop_instance_uid] <= 1, "max_resends 0 re-sent an instance"


# -- c22: the receiver stops reading in the middle of a C-STORE ------------------------------------------


@pytest.fixture(scope="module")
def c22_files(tmp_path_factory):
    return make_ct(tmp_path_factory.mktemp("c22"), 5, 256, "c22")  # ~128 KiB of pixel data each


def _c22_script(req):
    if req.assoc_no == 1 and req.n_on_assoc == 2:
        return Act(stall_after_kib=64, stall_s=60)
    return Act()


def test_c22_stalled_peer_association_not_reused(c22_files):
    t0 = time.monotonic()
    with BadPeer(_c22_script, rcvbuf=16384) as peer:
        result, events = send(peer, c22_files)
        took = time.monotonic() - t0
        assert [o.status for o in result.outcomes] == ["success"] * 5
        assert peer.associations == 3  # the stalled one, the others, then the second instance alone
        assert peer.interleaved == 0, "fragments of a new message before the previous one ended (PS3.8 Annex E)"
        assert peer.after_stall == 0, "a PDV was sent on the stalled association"
    assert took < 20, f"took {took:.1f} s with a 2 s network timeout"
    second = result.outcomes[1].attempts_detail
    assert len(second) == 2 and second[0].association != second[1].association
    if sys.platform.startswith("linux"):  # unacknowledged bytes are visible (SIOCOUTQ)
        assert second[0].result == "not-received"
        assert second[0].message.startswith("timeout while sending: peer stopped reading after ~")
    assert released(events)[0] == "aborted"


def test_c22_never_resend_names_the_write_timeout_and_sends_the_rest(c22_files):
    with BadPeer(_c22_script, rcvbuf=16384) as peer:
        result, _ = send(peer, c22_files, max_resends=0)
        assert peer.after_stall == 0 and peer.interleaved == 0
    assert result.outcomes[0].state == "stored"
    second = result.outcomes[1]
    assert second.status == "failure" and second.status_code is None
    if sys.platform.startswith("linux"):
        assert second.state == "failed" and "timeout while sending: peer stopped reading" in second.message
    assert all(o.state == "stored" for o in result.outcomes[2:])


def test_blocked_write_is_bounded_by_the_network_timeout(tmp_path):
    """A data set bigger than every socket buffer: the sender's write blocks, not just the response."""
    paths = make_ct(tmp_path, 2, 1600, "bigstall")  # ~5 MB each, more than loopback buffers hold
    script = lambda req: Act(stall_after_kib=64, stall_s=60) if req.assoc_no == 1 and req.n_on_assoc == 1 else Act()  # noqa: E731
    t0 = time.monotonic()
    with BadPeer(script, rcvbuf=16384) as peer:
        result, _ = send(peer, paths)
        assert peer.after_stall == 0
    assert time.monotonic() - t0 < 30
    assert [o.status for o in result.outcomes] == ["success", "success"]
    first = result.outcomes[0].attempts_detail[0]
    assert first.result == "not-received" and "timeout while sending" in first.message, first


# -- other broken peers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_ct(tmp_path_factory.mktemp("small"), 4, 64, "small")


def test_silent_peer_dimse_timeout_then_new_association(small):
    script = lambda req: Act(silent=30) if req.n == 2 else Act()  # noqa: E731
    t0 = time.monotonic()
    with BadPeer(script) as peer:
        result, _ = send(peer, small, dimse_timeout=1)
    assert time.monotonic() - t0 < 15
    assert [o.status for o in result.outcomes] == ["success"] * 4
    first = result.outcomes[1].attempts_detail[0]
    assert first.result == "unknown" and "DIMSE timeout (1 s)" in first.message


def test_peer_silent_forever_every_instance_gets_an_outcome(small):
    with BadPeer(lambda req: Act(silent=60)) as peer:
        t0 = time.monotonic()
        result, _ = send(peer, small, dimse_timeout=0.5, retry_attempts=1)
        took = time.monotonic() - t0
        assert peer.associations == 8, "each instance: once with the others, once alone"
    assert took < 15
    assert [o.state for o in result.outcomes] == ["failed"] * 4
    assert all("broke twice" in o.message and "DIMSE timeout (0.5 s)" in o.message for o in result.outcomes)


@pytest.mark.parametrize("act", [Act(abort_after_kib=32), Act(close_after_kib=32)], ids=["abort", "close"])
def test_abort_or_close_mid_transfer_recovers(tmp_path, act):
    paths = make_ct(tmp_path, 4, 256, "midtransfer")  # 128 KiB: 8 PDUs of 16 KiB
    script = lambda req: act if req.assoc_no == 1 and req.n_on_assoc == 2 else Act()  # noqa: E731
    with BadPeer(script, rcvbuf=16384) as peer:
        result, _ = send(peer, paths)
    assert [o.status for o in result.outcomes] == ["success"] * 4
    first = result.outcomes[1].attempts_detail[0]
    assert first.result in ("not-received", "unknown"), first
    if first.result == "not-received":
        assert all(c == 1 for c in peer.seen.values())


def test_malformed_pdu_once_recovers(small):
    script = lambda req: Act(malformed=True) if req.assoc_no == 1 and req.n_on_assoc == 1 else Act()  # noqa: E731
    with BadPeer(script) as peer:
        result, _ = send(peer, small)
    assert [o.status for o in result.outcomes] == ["success"] * 4
    assert result.outcomes[0].attempts_detail[0].result == "unknown"


def test_malformed_pdu_always_gives_up_with_outcomes(small):
    with BadPeer(lambda req: Act(malformed=True)) as peer:
        result, _ = send(peer, small, retry_attempts=2)
        assert peer.associations == 8  # each instance at most twice, the second time alone
    assert [o.state for o in result.outcomes] == ["failed"] * 4
    assert all(len(o.attempts_detail) == 2 for o in result.outcomes)


def test_refuses_every_instance_permanent_no_retry(small):
    with BadPeer(lambda req: Act(status=0xA900)) as peer:
        result, _ = send(peer, small)
        assert peer.associations == 1 and len(peer.log) == 4
    assert all(o.status == "failure" and o.status_code == 0xA900 and o.tries == 1 for o in result.outcomes)


def test_out_of_resources_retried_on_same_association(small):
    tries: dict[int, int] = {}

    def script(req):
        tries[req.n_on_assoc] = tries.get(req.n_on_assoc, 0) + 1
        return Act(status=0xA700) if req.n in (1, 2) else Act()

    with BadPeer(script) as peer:
        result, _ = send(peer, small)
        assert peer.associations == 1
    assert [o.status for o in result.outcomes] == ["success"] * 4
    detail = result.outcomes[0].attempts_detail
    assert [a.status_code for a in detail] == [0xA700, 0xA700, 0x0000]


def test_slow_peer_big_file_timeouts_measure_inactivity(tmp_path):
    paths = make_ct(tmp_path, 1, 1600, "slow")  # ~5 MB: ~310 PDUs of 16 KiB
    with BadPeer(lambda req: Act(slow_s=0.01), rcvbuf=16384) as peer:
        t0 = time.monotonic()
        result, _ = send(peer, paths, dimse_timeout=1, network_timeout=1)
        took = time.monotonic() - t0
    assert took > 2, "the peer was not slow: the test proves nothing"
    assert result.outcomes[0].status == "success", result.outcomes[0].attempts_detail
    assert result.outcomes[0].tries == 1


# -- association-level transient failures ------------------------------------------------------------------


def test_transient_rejection_is_retried(small):
    with BadPeer() as peer:
        peer.server.ae._maximum_associations = 0  # pynetdicom rejects: transient, local limit exceeded
        threading.Timer(0.6, lambda: setattr(peer.server.ae, "_maximum_associations", 10)).start()
        result, events = send(peer, small, retry_backoff_s=0.2, retry_total_s=10)
    fails = [e for e in events if isinstance(e, ev.AssociationFailed)]
    assert fails and "transient" in fails[0].message
    assert [o.status for o in result.outcomes] == ["success"] * 4


def test_permanent_rejection_is_not_retried(small):
    with BadPeer() as peer:
        peer.server.ae.require_calling_aet = ["SOMEONE"]
        result, events = send(peer, small)
    fails = [e for e in events if isinstance(e, ev.AssociationFailed)]
    assert len(fails) == 1 and "permanent" in fails[0].message
    assert result.no_association


def test_unreachable_from_the_start_fails_fast(small):
    port = free_port()
    t0 = time.monotonic()
    result = SendJob(config(port, retry_total_s=60)).run(items_from_inputs(small))
    assert time.monotonic() - t0 < 5
    assert result.no_association and all(o.state == "failed" and o.resumable for o in result.outcomes)
    assert all("connection refused" in o.message for o in result.outcomes)


def test_peer_down_for_a_while_mid_send(tmp_path):
    paths = make_ct(tmp_path, 30, 32, "down")
    peer = BadPeer(lambda req: Act(silent=0.02))
    port = peer.port
    state = {"peer": peer}

    def outage():
        while sum(peer.seen.values()) < 10:
            time.sleep(0.01)
        peer.close()  # connections refused from now on
        time.sleep(2.5)
        state["peer"] = _rebind(port)  # back, on the same port

    t = threading.Thread(target=outage)
    t.start()
    result = SendJob(config(port, retry_backoff_s=0.2, retry_total_s=20)).run(items_from_inputs(paths))
    t.join()
    state["peer"].close()
    assert [o.status for o in result.outcomes] == ["success"] * 30
    stored = set(peer.seen) | set(state["peer"].seen)
    assert stored == {o.sop_instance_uid for o in result.outcomes}


def _rebind(port: int) -> BadPeer:
    end = time.monotonic() + 10
    while True:
        try:
            return BadPeer(port=port)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def test_outage_longer_than_retry_total_gives_up_in_time(tmp_path):
    paths = make_ct(tmp_path, 20, 32, "gone")
    peer = BadPeer(lambda req: Act(silent=0.01))

    def vanish():
        while sum(peer.seen.values()) < 5:
            time.sleep(0.01)
        peer.close()  # and never comes back

    threading.Thread(target=vanish, daemon=True).start()
    t0 = time.monotonic()
    result = SendJob(config(peer.port, retry_backoff_s=0.2, retry_total_s=3)).run(items_from_inputs(paths))
    took = time.monotonic() - t0
    assert took < 12, f"{took:.1f} s with retry_total_s=3"
    states = [o.state for o in result.outcomes]
    assert states.count("stored") >= 5 and set(states) <= {"stored", "failed", "unknown"}
    assert all(o.resumable for o in result.outcomes if o.state == "failed")
    assert all(o.message for o in result.outcomes)
    assert not result.no_association
