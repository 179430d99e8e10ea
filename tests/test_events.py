"""The engine reports through frozen event records passed to a callback (STYLE 2, 4, 6, 18): tested
with a list-collecting callback, no Qt, no thread of ours, a real in-process SCP."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from helpers import casegen

core = pytest.importorskip("core")
events = pytest.importorskip("core.events")


def run(scp, items, **kw):
    seen = []
    r = core.store_datasets_batch(scp.config(), items, on_event=seen.append, **kw)
    return r, seen


def of(seen, cls):
    return [e for e in seen if isinstance(e, cls)]


def test_events_are_frozen_and_in_a_sensible_order(scp_factory, tmp_path):
    scp = scp_factory()
    r, seen = run(scp, casegen.make_ct(tmp_path, 3))
    assert r["successful"] == 3
    assert seen and all(dataclasses.is_dataclass(e) and isinstance(e, events.Event) for e in seen)
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen[0].__setattr__(dataclasses.fields(seen[0])[0].name, None)
    assert isinstance(seen[-1], events.JobFinished)
    assert len(of(seen, events.JobStarted)) == 1
    assert len(of(seen, events.AssociationNegotiated)) == 1
    finished = of(seen, events.InstanceFinished)
    assert sorted(e.index for e in finished) == [0, 1, 2]
    first_finish = seen.index(finished[0])
    assert seen.index(of(seen, events.AssociationNegotiated)[0]) < first_finish
    assert seen[-1].error is None and not seen[-1].cancelled


def test_failures_travel_as_data(scp_factory, tmp_path):
    scp = scp_factory(policy=lambda req: ("status", 0xC000, "TEST refused") if req.index == 0 else 0)
    r, seen = run(scp, casegen.make_ct(tmp_path, 2))
    assert [d["status"] for d in r["details"]] == ["failure", "success"]
    outcomes = {e.index: e.outcome for e in of(seen, events.InstanceFinished)}
    assert outcomes[0].status == "failure" and "TEST refused" in outcomes[0].message


def test_association_failure_is_an_event(tmp_path):
    from helpers.config import make_config
    from helpers.process import free_port

    seen = []
    with pytest.raises(core.AssociationError):
        core.store_datasets_batch(make_config(free_port(), "NOBODY"), casegen.make_ct(tmp_path, 1), on_event=seen.append)
    assert of(seen, events.AssociationFailed)
    assert all(isinstance(e.message, str) and e.message for e in of(seen, events.AssociationFailed))


def test_cancel_between_c_stores(scp_factory, tmp_path):
    cancel = threading.Event()
    scp = scp_factory()
    seen = []

    def on_event(e):
        seen.append(e)
        if isinstance(e, events.InstanceFinished):
            cancel.set()  # stop after the first instance

    r = core.store_datasets_batch(scp.config(), casegen.make_ct(tmp_path, 5), on_event=on_event, cancel=cancel)
    st = [d["status"] for d in r["details"]]
    assert st[0] == "success" and len(st) == 5
    assert all(s != "success" for s in st[1:]), st
    assert all(d["message"] for d in r["details"][1:])
    assert len(scp.requests) == 1
    assert seen[-1].cancelled
    released = of(seen, events.AssociationReleased)
    assert released and released[-1].how == "released"
