"""Typed outcomes keep the dict shapes of the report, the seed API and the journal."""

from __future__ import annotations

import dataclasses
import json

import pytest

from core.outcomes import Attempt, AttemptResult, ContextRecord, InstanceOutcome, InstanceState, Negotiation, Status

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"


def test_states_are_the_journal_strings():
    assert [s.value for s in InstanceState] == [
        "pending",
        "in-flight",
        "stored",
        "stored-warning",
        "failed",
        "unknown",
        "not-sent",
        "skipped",
    ]
    assert [s.value for s in Status] == ["success", "warning", "failure", "skipped"]


def test_outcome_dict_has_optional_keys_only_when_set():
    started = Attempt(1, 1.5, EXPLICIT, 0)
    done = dataclasses.replace(started, result=AttemptResult.SUCCESS, status_code=0, message="0x0000 Success", elapsed_s=0.01)
    o = InstanceOutcome(3, "/a.dcm", Status.SUCCESS, InstanceState.STORED, "stored", attempts_detail=(started, done))
    d = o.to_dict()
    assert list(d)[:4] == ["index", "path", "status", "state"]
    assert "status_meaning" not in d and "association" not in d and "verified" not in d
    assert d["attempts_detail"][0] == {"attempt": 1, "started": 1.5, "transfer_syntax": EXPLICIT, "association": 0}
    assert d["attempts_detail"][1]["result"] == "success"
    assert type(d["status"]) is str and type(d["state"]) is str
    checked = dataclasses.replace(o, arrival_checked=True, status_meaning="Success", association=0)
    assert checked.to_dict()["verified"] is None and checked.to_dict()["association"] == 0
    json.dumps(d)
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.message = "changed"  # type: ignore[misc]


def test_negotiation_round_trips_through_its_dict():
    n = Negotiation(
        "standard",
        1,
        proposed=(ContextRecord(CT, "CT Image Storage", EXPLICIT), ContextRecord(CT, "CT Image Storage", IMPLICIT)),
        accepted=(ContextRecord(CT, "CT Image Storage", IMPLICIT, 3),),
        rejected=(ContextRecord(CT, "CT Image Storage", EXPLICIT, 1, 4, "transfer syntaxes not supported"),),
        peer="PACS@host:104",
        started=12.0,
        peer_max_pdu=16384,
        peer_implementation_class_uid="1.2.3",
        peer_implementation_version_name="X",
        our_max_pdu=262144,
        index=0,
        stored=2,
    )
    d = n.to_dict()
    assert d["proposed"][0] == {"abstract_syntax": CT, "abstract_syntax_name": "CT Image Storage", "transfer_syntax": EXPLICIT}
    assert d["rejected"][0]["id"] == 1 and d["rejected"][0]["result"] == 4
    assert "outcome" not in d and "source" not in d
    assert Negotiation.from_dict(d) == n
    assert n.accepted_for(CT) == [IMPLICIT]
