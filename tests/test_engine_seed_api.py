"""The seed API (SEED_API.md) against a real in-process pynetdicom SCP: results, statuses,
exceptions, batches, negotiation and conversion. No mocked sockets."""

from __future__ import annotations

import hashlib
import re
import time

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import (
    JPEG2000,
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    MRImageStorage,
    RLELossless,
)

from helpers import casegen
from helpers.badpeers import RawTCPPeer
from helpers.config import engine_extras, make_config
from helpers.process import free_port
from helpers.scp import UNCOMPRESSED_LE

core = pytest.importorskip("core")

RESULT_KEYS = {
    "status",
    "message",
    "status_code",
    "strategy_used",
    "transfer_syntax",
    "sop_class_uid",
    "sop_instance_uid",
    "converted_from",
    "attempts",
}
BATCH_KEYS = {"total", "successful", "warnings", "failed", "skipped", "details", "associations"}


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def counts_add_up(r: dict) -> bool:
    return r["successful"] + r["warnings"] + r["failed"] + r["skipped"] == r["total"] == len(r["details"])


# --------------------------------------------------------------------------- names


def test_seed_names_importable_from_core():
    for name in (
        "store_dataset",
        "store_datasets_batch",
        "manage_association_with_fallback",
        "find_compatible_transfer_syntax",
        "DimseCommandError",
        "AssociationError",
        "TlsConfigError",
        "TransferSyntaxStrategy",
        "strategy_syntaxes",
    ):
        assert hasattr(core, name), f"core.{name} missing"
    for exc in (core.DimseCommandError, core.AssociationError, core.TlsConfigError):
        assert issubclass(exc, Exception)


# --------------------------------------------------------------------------- store_dataset


def test_store_dataset_success_result_and_peer_view(scp_factory, tmp_path):
    scp = scp_factory()
    path = casegen.make_ct(tmp_path, 1)[0]
    ds = dcmread(path)
    r = core.store_dataset(scp.config(), ds)
    assert set(r) >= RESULT_KEYS, RESULT_KEYS - set(r)
    assert r["status"] == "success", r["message"]
    assert r["status_code"] == 0x0000
    assert r["sop_instance_uid"] == ds.SOPInstanceUID and r["sop_class_uid"] == CTImageStorage
    assert r["strategy_used"] == "conservative"  # the seed's default
    assert r["transfer_syntax"] in UNCOMPRESSED_LE
    assert r["converted_from"] in (None, ExplicitVRLittleEndian) and (
        r["converted_from"] is None or r["transfer_syntax"] != ExplicitVRLittleEndian
    )
    assert isinstance(r["attempts"], list) and r["attempts"]
    assert isinstance(r["message"], str) and r["message"]
    # what the peer saw
    rec = scp.associations[0]
    assert rec.calling_ae == "TEST_SCU" and rec.called_ae == "TESTPACS"
    got = scp.received[str(ds.SOPInstanceUID)]
    assert np.array_equal(got.pixel_array, ds.pixel_array)
    assert r["transfer_syntax"] == scp.received_syntax[str(ds.SOPInstanceUID)]


def test_store_dataset_from_path_leaves_source_untouched(scp_factory, tmp_path):
    scp = scp_factory(transfer_syntaxes=[ImplicitVRLittleEndian])  # forces a conversion
    path = casegen.make_ct(tmp_path, 1)[0]
    before, mtime = sha(path), path.stat().st_mtime_ns
    r = core.store_dataset(scp.config(), str(path))
    assert r["status"] == "success", r["message"]
    assert r["transfer_syntax"] == ImplicitVRLittleEndian
    assert r["converted_from"] == ExplicitVRLittleEndian
    assert sha(path) == before and path.stat().st_mtime_ns == mtime
    uid = str(dcmread(path).SOPInstanceUID)
    assert uid in scp.received, "conversion must keep the SOP Instance UID"


def test_default_calling_ae_is_axiom_scu(scp_factory, tmp_path):
    scp = scp_factory()
    cfg = scp.config()
    del cfg["local_ae_title"]
    r = core.store_dataset(cfg, casegen.make_ct(tmp_path, 1)[0])
    assert r["status"] == "success"
    assert scp.associations[0].calling_ae == "AXIOM_SCU"


@pytest.mark.parametrize("max_pdu", [0, 32768])
def test_our_max_pdu_is_announced(scp_factory, tmp_path, max_pdu):
    scp = scp_factory()
    r = core.store_dataset(scp.config(max_pdu=max_pdu), casegen.make_ct(tmp_path, 1)[0])
    assert r["status"] == "success"
    assert scp.associations[0].max_pdu == max_pdu


STATUS_CASES = [
    (0x0000, None, "success"),
    (0xB000, None, "warning"),
    (0xB007, None, "warning"),
    (0xA700, "TEST out of space", "failure"),
    (0xA900, "TEST data set does not match SOP class", "failure"),
    (0xC000, "TEST cannot understand", "failure"),
    (0x0122, None, "failure"),
]


@pytest.mark.parametrize(("code", "comment", "outcome"), STATUS_CASES, ids=[f"0x{c[0]:04X}" for c in STATUS_CASES])
def test_peer_status_is_classified_not_raised(scp_factory, tmp_path, code, comment, outcome):
    scp = scp_factory(policy=lambda req: ("status", code, comment))
    r = core.store_dataset(scp.config(), casegen.make_ct(tmp_path, 1)[0])
    assert r["status"] == outcome, r
    assert r["status_code"] == code
    if outcome != "success":
        msg = r["message"].lower()
        assert f"{code:04x}" in msg, f"message should name the status code: {r['message']!r}"
    if comment:
        assert comment in r["message"], f"the peer's Error Comment is missing: {r['message']!r}"


def test_failure_message_explains_a700_as_receiver_side(scp_factory, tmp_path):
    scp = scp_factory(policy=lambda req: ("status", 0xA700, None))
    r = core.store_dataset(scp.config(), casegen.make_ct(tmp_path, 1)[0])
    msg = r["message"].lower()
    assert "resources" in msg, r["message"]


# --------------------------------------------------------------------------- exceptions


def test_called_ae_rejection_raises_association_error(scp_factory, tmp_path):
    scp = scp_factory(ae_title="TESTPACS")
    with pytest.raises(core.AssociationError) as info:
        core.store_dataset(make_config(scp.port, "WRONGAE"), casegen.make_ct(tmp_path, 1)[0], max_retries=1)
    e = info.value
    assert e.remote_ae == "WRONGAE"
    assert isinstance(e.details, dict)
    text = str(e).lower()
    assert "called ae" in text and "wrongae" in text, str(e)
    assert not scp.requests, "no C-STORE may be attempted"


def test_calling_ae_rejection_names_the_calling_title(scp_factory, tmp_path):
    scp = scp_factory(require_calling_aet=["SOMEONE"])
    with pytest.raises(core.AssociationError) as info:
        core.store_dataset(scp.config("TEST_SCU"), casegen.make_ct(tmp_path, 1)[0], max_retries=0)
    text = str(info.value).lower()
    assert "calling ae" in text and "test_scu" in text, str(info.value)


def test_connection_refused_raises_association_error(tmp_path):
    port = free_port()
    with pytest.raises(core.AssociationError) as info:
        core.store_dataset(make_config(port, "NOBODY"), casegen.make_ct(tmp_path, 1)[0], max_retries=1)
    text = str(info.value).lower()
    assert any(w in text for w in ("refused", "could not connect", "unreachable")), str(info.value)
    assert str(port) in text, "the message names host and port"
    assert info.value.remote_ae == "NOBODY"


def test_dimse_timeout_raises_dimse_command_error(scp_factory, tmp_path):
    scp = scp_factory(policy=lambda req: ("sleep", 3, 0x0000))
    t0 = time.monotonic()
    with pytest.raises(core.DimseCommandError) as info:
        core.store_dataset(scp.config(dimse_timeout=1, **engine_extras(retry_attempts=0)), casegen.make_ct(tmp_path, 1)[0])
    assert time.monotonic() - t0 < 15
    text = str(info.value).lower()
    assert "time" in text or "no response" in text, str(info.value)
    assert re.search(r"\b1(\.0)?\s*s\b", text), "the timeout is given in seconds"
    assert info.value.remote_ae == "TESTPACS" and isinstance(info.value.details, dict)


def test_abort_during_c_store_raises_dimse_command_error(scp_factory, tmp_path):
    scp = scp_factory(policy=lambda req: "abort")
    with pytest.raises(core.DimseCommandError) as info:
        core.store_dataset(scp.config(), casegen.make_ct(tmp_path, 1)[0])
    assert "abort" in str(info.value).lower(), str(info.value)
    # any re-send happens on a fresh association, and a bounded number of times
    assert (
        len({q.assoc_index for q in scp.requests}) == len(scp.requests) <= 6
    )  # the first try and at most retry_attempts (5) more


@pytest.mark.parametrize("behaviour", [pytest.param("silent", marks=pytest.mark.slow), "garbage"])
def test_bad_peer_during_negotiation_raises_association_error(tmp_path, behaviour):
    with RawTCPPeer(behaviour) as peer:
        cfg = make_config(peer.port, "BADPEER", acse_timeout=1, network_timeout=2, **engine_extras(retry_attempts=0))
        t0 = time.monotonic()
        with pytest.raises(core.AssociationError) as info:
            core.store_dataset(cfg, casegen.make_ct(tmp_path, 1)[0], max_retries=0)
        assert time.monotonic() - t0 < 20
        assert str(info.value)


def test_tls_requested_raises_tls_config_error(scp_factory, tmp_path):
    scp = scp_factory()
    cfg = scp.config(
        tls_enabled=True,
        tls_ca_cert_secret_name="test-ca",
        tls_client_cert_secret_name="test-cert",
        tls_client_key_secret_name="test-key",
    )
    with pytest.raises(core.TlsConfigError) as info:
        core.store_dataset(cfg, casegen.make_ct(tmp_path, 1)[0])
    assert str(info.value) and isinstance(info.value.details, dict)
    assert not scp.requests


# --------------------------------------------------------------------------- batches


def test_batch_one_association_order_and_paths(scp_factory, tmp_path):
    scp = scp_factory()
    paths = casegen.make_ct(tmp_path, 4)
    items = [str(paths[0]), dcmread(paths[1]), paths[2], str(paths[3])]
    r = core.store_datasets_batch(scp.config(), items)
    assert set(r) >= BATCH_KEYS, BATCH_KEYS - set(r)
    assert (r["total"], r["successful"], r["failed"]) == (4, 4, 0)
    assert counts_add_up(r)
    assert r["associations"] == 1 and len(scp.associations) == 1
    assert [d["dataset_index"] for d in r["details"]] == [0, 1, 2, 3]
    for d in r["details"]:
        assert {"status", "message", "status_code", "transfer_syntax", "strategy_used"} <= set(d)
    assert "path" in r["details"][0] and str(r["details"][0]["path"]).endswith(paths[0].name)
    assert str(r["details"][3]["path"]).endswith(paths[3].name)
    assert [q.sop_instance_uid for q in scp.requests] == [str(dcmread(p).SOPInstanceUID) for p in paths]


def test_batch_broken_item_does_not_stop_the_rest(scp_factory, tmp_path):
    scp = scp_factory()
    paths = casegen.make_ct(tmp_path, 3)
    broken = dcmread(paths[1])
    del broken.SOPInstanceUID
    r = core.store_datasets_batch(scp.config(), [paths[0], broken, paths[2]])
    assert (r["successful"], r["failed"]) == (2, 1), r
    d = r["details"][1]
    assert d["status"] == "failure"
    assert "sop instance uid" in d["message"].lower() or "0008,0018" in d["message"], d["message"]


def test_batch_stop_on_error_marks_the_rest_skipped(scp_factory, tmp_path):
    scp = scp_factory(policy=lambda req: ("status", 0xC000, "TEST refused") if req.index == 1 else 0)
    paths = casegen.make_ct(tmp_path, 4)
    r = core.store_datasets_batch(scp.config(), paths, continue_on_error=False)
    assert [d["status"] for d in r["details"]] == ["success", "failure", "skipped", "skipped"]
    assert r["skipped"] == 2 and counts_add_up(r)
    assert all(d["message"] for d in r["details"][2:]), "a skipped item needs a reason"
    assert len(scp.requests) == 2


def test_batch_mixed_statuses(scp_factory, tmp_path):
    answers = {0: 0x0000, 1: 0xB000, 2: ("status", 0xA900, "TEST mismatch"), 3: 0x0000}
    scp = scp_factory(policy=lambda req: answers[req.index])
    r = core.store_datasets_batch(scp.config(), casegen.make_ct(tmp_path, 4))
    assert [d["status"] for d in r["details"]] == ["success", "warning", "failure", "success"]
    assert (r["successful"], r["warnings"], r["failed"]) == (2, 1, 1)
    assert r["details"][1]["status_code"] == 0xB000
    assert r["details"][2]["status_code"] == 0xA900 and "TEST mismatch" in r["details"][2]["message"]
    assert r["associations"] == 1


def test_batch_abort_mid_batch_loses_nothing(scp_factory, tmp_path):
    aborted = []

    def policy(req):
        if req.index == 2 and not aborted:
            aborted.append(req.sop_instance_uid)
            return "abort"
        return 0x0000

    scp = scp_factory(policy=policy)
    paths = casegen.make_ct(tmp_path, 5)
    r = core.store_datasets_batch(scp.config(), paths)
    assert len(r["details"]) == 5 and counts_add_up(r)
    st = [d["status"] for d in r["details"]]
    assert st[:2] == ["success", "success"]
    third = r["details"][2]
    if st[2] == "success":  # re-sent on a fresh association: fine, and it must really be there
        assert aborted[0] in scp.received
        assert [q.assoc_index for q in scp.requests if q.sop_instance_uid == aborted[0]][-1] > 0
    else:
        assert "abort" in third["message"].lower(), third
    for d in r["details"][3:]:
        assert d["status"] in ("success", "failure", "skipped") and d["message"]
    # an aborted association is never reused: anything after the abort came on a new one
    after = [q for q in scp.requests if q.index > 2]
    assert all(q.assoc_index > 0 for q in after)


def test_batch_empty(scp_factory):
    scp = scp_factory()
    r = core.store_datasets_batch(scp.config(), [])
    assert r["total"] == 0 and r["details"] == [] and r["successful"] == 0


def test_batch_rejected_association_reports_every_item(scp_factory, tmp_path):
    scp = scp_factory()
    paths = casegen.make_ct(tmp_path, 3)
    try:
        r = core.store_datasets_batch(make_config(scp.port, "WRONGAE"), paths)
    except core.AssociationError as e:
        assert "called ae" in str(e).lower()
        return
    assert r["failed"] + r["skipped"] == 3 and r["successful"] == 0
    assert all("called ae" in d["message"].lower() for d in r["details"]), r["details"]


# --------------------------------------------------------------------------- negotiation


def _proposed(scp, sop_class=None) -> list[list[str]]:
    return [ts for a in scp.associations for _, ab, ts in a.requested if sop_class in (None, ab)]


def test_one_transfer_syntax_per_presentation_context(scp_factory, tmp_path):
    scp = scp_factory()
    paths = casegen.make_ct(tmp_path, 2) + casegen.c11_j2k_lossless_and_rle(tmp_path / "c11")
    r = core.store_datasets_batch(scp.config(), paths, transfer_syntax_strategy="compression")
    assert r["successful"] == len(paths)
    assert all(len(ts) == 1 for ts in _proposed(scp)), _proposed(scp)


def test_contexts_come_from_the_batch(scp_factory, tmp_path):
    scp = scp_factory()
    core.store_datasets_batch(scp.config(), casegen.make_ct(tmp_path, 3))
    abstract = {ab for a in scp.associations for _, ab, _ in a.requested}
    assert abstract == {CTImageStorage}, abstract


@pytest.mark.parametrize("strategy", ["universal", "conservative", "standard", "compression", "extended"])
def test_strategy_syntaxes_and_own_syntax_are_proposed(scp_factory, tmp_path, strategy):
    scp = scp_factory()
    path = casegen.c11_j2k_lossless_and_rle(tmp_path)[0]  # JPEG 2000 Lossless file
    r = core.store_dataset(scp.config(), path, transfer_syntax_strategy=strategy)
    assert r["status"] == "success", r["message"]
    proposed = {ts for group in _proposed(scp, CTImageStorage) for ts in group}
    allowed = {str(u) for u in core.strategy_syntaxes(strategy)} | {JPEG2000Lossless}
    assert proposed <= allowed, f"proposed beyond the strategy: {proposed - allowed}"
    # the file's own syntax and every uncompressed syntax of the strategy are always useful;
    # syntaxes the sender could never produce for this data set need not be proposed
    want = {JPEG2000Lossless} | {str(u) for u in core.strategy_syntaxes(strategy) if not UID(u).is_compressed}
    assert want <= proposed, f"not proposed: {want - proposed}"
    assert r["strategy_used"] == strategy


def test_fallback_to_a_more_conservative_strategy(scp_factory, tmp_path):
    """A legacy PACS that rejects any association proposing a compressed syntax."""

    def reject_compressed(n, rec):
        if any(UID(t).is_compressed for _, _, ts in rec.requested for t in ts):
            return (1, 1, 1)
        return None

    scp = scp_factory(reject=reject_compressed)
    r = core.store_dataset(scp.config(), casegen.make_ct(tmp_path, 1)[0], transfer_syntax_strategy="compression")
    assert r["status"] == "success", r["message"]
    assert r["strategy_used"] == "standard"
    assert len(r["attempts"]) >= 2 and r["attempts"][0]["strategy"] == "compression"


def test_fallback_after_abort_during_negotiation(scp_factory, tmp_path):
    scp = scp_factory(reject=lambda n, rec: "abort" if n == 0 else None)
    r = core.store_dataset(scp.config(), casegen.make_ct(tmp_path, 1)[0], transfer_syntax_strategy="standard")
    assert r["status"] == "success", r["message"]
    assert r["strategy_used"] == "conservative"
    assert len(scp.associations) == 2


def test_fallback_is_bounded_by_max_retries(scp_factory, tmp_path):
    scp = scp_factory(reject=(1, 1, 1))
    with pytest.raises(core.AssociationError) as info:
        core.store_dataset(scp.config(), casegen.make_ct(tmp_path, 1)[0], transfer_syntax_strategy="extended", max_retries=1)
    assert len(scp.associations) <= 2
    assert isinstance(info.value.details, dict)


def test_manage_association_and_find_compatible_transfer_syntax(scp_factory, tmp_path):
    scp = scp_factory(accept={CTImageStorage: [ImplicitVRLittleEndian]})
    ds = dcmread(casegen.make_ct(tmp_path, 1)[0])
    with core.manage_association_with_fallback(
        remote_host="127.0.0.1",
        remote_port=scp.port,
        remote_ae_title="TESTPACS",
        sop_class_uid=CTImageStorage,
        transfer_syntax_strategy="conservative",
    ) as (assoc, metadata):
        assert assoc.is_established
        assert isinstance(metadata, dict)
        cx, reason = core.find_compatible_transfer_syntax(ds, assoc.accepted_contexts, CTImageStorage)
        assert cx is not None and isinstance(reason, str)
        assert cx.transfer_syntax[0] == ImplicitVRLittleEndian
        none_cx, why = core.find_compatible_transfer_syntax(ds, assoc.accepted_contexts, MRImageStorage)
        assert none_cx is None and why
    assert not assoc.is_established, "the context manager releases the association"


def test_find_compatible_prefers_the_exact_syntax(scp_factory, tmp_path):
    scp = scp_factory(accept={CTImageStorage: [ExplicitVRLittleEndian, ImplicitVRLittleEndian]})
    ds = dcmread(casegen.make_ct(tmp_path, 1)[0])
    with core.manage_association_with_fallback(
        remote_host="127.0.0.1",
        remote_port=scp.port,
        remote_ae_title="TESTPACS",
        sop_class_uid=CTImageStorage,
        transfer_syntax_strategy="conservative",
    ) as (assoc, _metadata):
        accepted = {cx.transfer_syntax[0] for cx in assoc.accepted_contexts}
        assert {ImplicitVRLittleEndian, ExplicitVRLittleEndian} <= accepted
        cx, _reason = core.find_compatible_transfer_syntax(ds, assoc.accepted_contexts, CTImageStorage)
        assert cx.transfer_syntax[0] == ExplicitVRLittleEndian


# --------------------------------------------------------------------------- conversion


def test_lossless_compression_when_the_peer_takes_only_rle(scp_factory, tmp_path):
    scp = scp_factory(accept={CTImageStorage: [RLELossless]})
    path = casegen.make_ct(tmp_path, 1, 32, 32)[0]
    r = core.store_dataset(scp.config(), path, transfer_syntax_strategy="compression")
    assert r["status"] == "success", r["message"]
    assert r["transfer_syntax"] == RLELossless and r["converted_from"] == ExplicitVRLittleEndian
    got = scp.received[str(dcmread(path).SOPInstanceUID)]
    assert np.array_equal(got.pixel_array, dcmread(path).pixel_array)


def test_never_lossy_without_opt_in(scp_factory, tmp_path):
    scp = scp_factory(accept={CTImageStorage: [JPEG2000]})
    path = casegen.make_ct(tmp_path, 1, 32, 32)[0]
    try:
        r = core.store_dataset(scp.config(), path, transfer_syntax_strategy="extended", max_retries=0)
        assert r["status"] == "failure", r
        assert "lossy" in r["message"].lower(), r["message"]
    except core.AssociationError as e:  # no usable context is also an honest outcome
        assert "lossy" in str(e).lower() or "2000" in str(e), str(e)
    assert not scp.received


def test_lossy_with_opt_in(scp_factory, tmp_path):
    scp = scp_factory(accept={CTImageStorage: [JPEG2000]})
    path = casegen.make_ct(tmp_path, 1, 32, 32)[0]
    r = core.store_dataset(scp.config(allow_lossy=True), path, transfer_syntax_strategy="extended")
    assert r["status"] == "success", r["message"]
    assert r["transfer_syntax"] == JPEG2000
    assert str(dcmread(path).SOPInstanceUID) in scp.received


@pytest.mark.parametrize("target", [DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian])
def test_uncompressed_to_uncompressed(scp_factory, tmp_path, target):
    scp = scp_factory(accept={CTImageStorage: [target]})
    path = casegen.make_ct(tmp_path, 1, 32, 32)[0]
    r = core.store_dataset(scp.config(), path, transfer_syntax_strategy="extended")
    assert r["status"] == "success", r["message"]
    assert r["transfer_syntax"] == target
    got = scp.received[str(dcmread(path).SOPInstanceUID)]
    assert np.array_equal(got.pixel_array, dcmread(path).pixel_array)


def test_big_endian_source_to_implicit_only_peer(scp_factory, tmp_path):
    from pydicom.data import get_testdata_file

    src = dcmread(get_testdata_file("MR_small_bigendian.dcm"))
    scp = scp_factory(transfer_syntaxes=[ImplicitVRLittleEndian])
    r = core.store_dataset(scp.config(), src)
    assert r["status"] == "success", r["message"]
    assert r["converted_from"] == ExplicitVRBigEndian
    got = scp.received[str(src.SOPInstanceUID)]
    assert np.array_equal(got.pixel_array, src.pixel_array)


def test_compressed_source_keeps_its_uid_when_decompressed(scp_factory, tmp_path):
    scp = scp_factory(transfer_syntaxes=[ImplicitVRLittleEndian])
    path = casegen.c11_j2k_lossless_and_rle(tmp_path)[0]
    r = core.store_dataset(scp.config(), dcmread(path))
    assert r["status"] == "success", r["message"]
    assert r["sop_instance_uid"] == dcmread(path).SOPInstanceUID
    assert set(scp.received) == {str(dcmread(path).SOPInstanceUID)}


# --------------------------------------------------------------------------- odd inputs


def test_in_memory_dataset_without_file_meta(scp_factory):
    scp = scp_factory()
    ds = casegen.ct_dataset("nometa", 0)
    del ds.file_meta
    r = core.store_dataset(scp.config(), ds)
    assert r["status"] == "success", r["message"]
    got = scp.received[str(ds.SOPInstanceUID)]
    assert np.array_equal(got.pixel_array, casegen.ct_dataset("nometa", 0).pixel_array)


def test_in_memory_dataset_without_transfer_syntax(scp_factory):
    scp = scp_factory()
    ds = casegen.ct_dataset("nots", 0)
    del ds.file_meta.TransferSyntaxUID
    r = core.store_dataset(scp.config(), ds)
    assert r["status"] == "success", r["message"]
    assert str(ds.SOPInstanceUID) in scp.received


def test_sop_class_the_peer_does_not_support_is_named(scp_factory, tmp_path):
    scp = scp_factory(accept={CTImageStorage: list(UNCOMPRESSED_LE)})
    ct = casegen.make_ct(tmp_path / "ct", 1)[0]
    mr = casegen.c03_mr_swap_visible(tmp_path / "mr")[0]
    r = core.store_datasets_batch(scp.config(), [ct, mr, ct.parent / ct.name])
    st = [d["status"] for d in r["details"]]
    assert st[0] == "success" and st[1] == "failure", r["details"]
    msg = r["details"][1]["message"]
    assert "MR Image Storage" in msg or MRImageStorage in msg, msg
    assert str(dcmread(mr).SOPInstanceUID) not in {q.sop_instance_uid for q in scp.requests}


def test_private_sop_class_is_negotiated(scp_factory, tmp_path, monkeypatch):
    from pynetdicom import sop_class

    private = "1.2.826.0.1.3680043.8.498.77.1"
    # let the test SCP treat it as a storage class, for this test only (pynetdicom's registry is global)
    monkeypatch.setitem(sop_class._STORAGE_CLASSES, "CourierTestPrivateStorage", private)
    scp = scp_factory(accept={private: list(UNCOMPRESSED_LE)})

    def make_private(ds, i):
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = private

    path = casegen.make_ct(tmp_path, 1, mutate=make_private)[0]
    r = core.store_dataset(scp.config(), path)
    assert r["status"] == "success", r["message"]
    assert scp.requests[0].sop_class_uid == private


def test_mixed_syntaxes_of_one_class_share_one_association(scp_factory, tmp_path):
    scp = scp_factory(accept={CTImageStorage: [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, JPEG2000Lossless]})
    paths = (
        casegen.make_ct(tmp_path / "e", 1, 64, 64, key="e")
        + casegen.make_ct(tmp_path / "i", 1, 64, 64, key="i", transfer_syntax=ImplicitVRLittleEndian)
        + casegen.make_ct(tmp_path / "r", 1, 64, 64, key="r", transfer_syntax=RLELossless)
        + casegen.make_ct(tmp_path / "j", 1, 64, 64, key="j", transfer_syntax=JPEG2000Lossless)
    )
    r = core.store_datasets_batch(scp.config(), paths)
    assert r["successful"] == 4 and r["associations"] == 1
    assert [d["transfer_syntax"] for d in r["details"]] == [
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        RLELossless,
        JPEG2000Lossless,
    ]


def test_lossy_source_may_be_recompressed_losslessly(scp_factory):
    from pydicom.data import get_testdata_file
    from pydicom.uid import JPEGBaseline8Bit

    src = dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
    scp = scp_factory(accept={str(src.SOPClassUID): [RLELossless]})
    r = core.store_dataset(scp.config(), src, transfer_syntax_strategy="compression")
    assert r["status"] == "success", r["message"]
    assert r["transfer_syntax"] == RLELossless and r["converted_from"] == JPEGBaseline8Bit
    got = scp.received[str(src.SOPInstanceUID)]
    assert np.array_equal(got.pixel_array, src.pixel_array)


def test_jpeg_ls_lossless_when_that_is_all_the_peer_takes(scp_factory, tmp_path):
    from pydicom.uid import JPEGLSLossless

    scp = scp_factory(accept={CTImageStorage: [JPEGLSLossless]})
    path = casegen.make_ct(tmp_path, 1, 32, 32)[0]
    r = core.store_dataset(scp.config(), path, transfer_syntax_strategy="compression")
    assert r["status"] == "success", r["message"]
    assert r["transfer_syntax"] == JPEGLSLossless
    assert np.array_equal(scp.received[str(dcmread(path).SOPInstanceUID)].pixel_array, dcmread(path).pixel_array)


def test_attempts_keep_the_negotiation(scp_factory, tmp_path):
    """Issue 2 item 3: proposed / accepted / rejected contexts with the reason, the peer's max PDU,
    implementation class UID and version name."""
    import json

    scp = scp_factory(accept={CTImageStorage: [ImplicitVRLittleEndian]}, max_pdu=20480)
    r = core.store_dataset(scp.config(), casegen.make_ct(tmp_path, 1)[0], transfer_syntax_strategy="standard")
    assert r["status"] == "success"
    attempt = r["attempts"][0]
    assert {"strategy", "proposed", "accepted", "rejected"} <= set(attempt), set(attempt)
    assert attempt["proposed"] and attempt["accepted"] and attempt["rejected"]
    rejected = json.dumps(attempt["rejected"]).lower()
    assert "not supported" in rejected or "transfer syntax" in rejected, attempt["rejected"]
    text = json.dumps(r["attempts"], default=str)
    assert "20480" in text, "peer max PDU"
    assert "1.2.826.0.1.3680043.9.3811" in text and "PYNETDICOM" in text, "peer implementation UID and version"


def test_dns_failure_is_named(tmp_path):
    cfg = make_config(104, "NOWHERE", remote_host="no-such-host.invalid", **engine_extras(retry_attempts=0))
    with pytest.raises(core.AssociationError) as info:
        core.store_dataset(cfg, casegen.make_ct(tmp_path, 1)[0], max_retries=0)
    text = str(info.value).lower()
    assert "no-such-host.invalid" in text, str(info.value)
    assert any(w in text for w in ("resolve", "dns", "unknown host", "name")), str(info.value)


def test_localhost_by_name(scp_factory, tmp_path):
    scp = scp_factory()
    r = core.store_dataset(scp.config(remote_host="localhost"), casegen.make_ct(tmp_path, 1)[0])
    assert r["status"] == "success", r["message"]


def test_core_never_logs_patient_names(scp_factory, tmp_path, caplog):
    import logging

    scp = scp_factory(policy=lambda req: ("status", 0xA900, "TEST mismatch") if req.index == 1 else 0)
    paths = casegen.make_ct(tmp_path, 2) + casegen.c18_odd_length_sc(tmp_path / "odd")
    with caplog.at_level(logging.DEBUG):
        core.store_datasets_batch(scp.config(), paths)
    ours = [r for r in caplog.records if r.name.split(".")[0] == "core"]
    assert ours, "core logs what it does"
    assert not [r.getMessage() for r in ours if "TEST^PATIENT" in r.getMessage()]


def test_encapsulated_pixels_under_a_native_syntax_never_reach_the_peer_as_is(scp_factory, tmp_path):
    src = casegen.c11_j2k_lossless_and_rle(tmp_path / "src")[0]
    ds = dcmread(src)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / "lying.dcm"
    ds.save_as(path, enforce_file_format=True)
    scp = scp_factory()
    r = core.store_datasets_batch(scp.config(), [path])
    d = r["details"][0]
    uid = str(ds.SOPInstanceUID)
    if d["status"] in ("success", "warning"):
        got = scp.received[uid]
        assert np.array_equal(got.pixel_array, casegen.c11_pixels(0)), "the peer got unusable pixel data"
    else:
        assert uid not in scp.received and d["message"]


@pytest.mark.parametrize("peer_syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless])
def test_callers_dataset_is_not_modified(scp_factory, tmp_path, peer_syntax):
    """Converting for the wire must not change the caller's Dataset object (syntax, pixels, UIDs)."""
    path = casegen.c11_j2k_lossless_and_rle(tmp_path)[0]
    ds = dcmread(path)
    before = (ds.file_meta.TransferSyntaxUID, ds.PixelData, ds.SOPInstanceUID, ds.PhotometricInterpretation, len(ds))
    scp = scp_factory(accept={CTImageStorage: [peer_syntax]})
    r = core.store_dataset(scp.config(), ds, transfer_syntax_strategy="compression")
    assert r["status"] == "success", r["message"]
    after = (ds.file_meta.TransferSyntaxUID, ds.PixelData, ds.SOPInstanceUID, ds.PhotometricInterpretation, len(ds))
    assert after == before
