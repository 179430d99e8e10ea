"""PACS profiles (core/profiles.py): field checks, the versioned file, import/export, no secrets."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from core.config import StoreConfig
from core.profiles import (
    FILE_VERSION,
    LOCAL_TEST_PROFILE_NAME,
    STORE_CONFIG_FIELDS,
    Profile,
    ProfileFileError,
    ProfileStore,
    check_field,
    config_dir,
)


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOM_COURIER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DICOM_COURIER_DATA_DIR", str(tmp_path / "data"))


def good() -> Profile:
    return Profile(name="Main PACS", remote_host="pacs.example.org", remote_port=11112, remote_ae_title="MAINPACS")


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("remote_port", "0", "outside 1-65535"),
        ("remote_port", "65536", "outside 1-65535"),
        ("remote_port", "abc", "not a whole number"),
        ("remote_ae_title", "", "empty"),
        ("remote_ae_title", "A" * 17, "at most 16"),
        ("remote_ae_title", "BAD\\AE", "backslash"),
        ("local_ae_title", "   ", "empty"),
        ("remote_host", "", "host name"),
        ("remote_host", "two words", "not a host name"),
        ("acse_timeout_s", "0", "more than 0"),
        ("dimse_timeout_s", "soon", "not a number"),
        ("max_pdu_bytes", "100", "4096"),
        ("strategy", "fastest", "unknown strategy"),
        ("max_retries", "9", "outside 0-4"),
        ("max_resends", "-1", "outside 0-10"),
        ("max_resends", "11", "outside 0-10"),
        ("reconnect_attempts", "often", "not a whole number"),
        ("tls_ca_cert_file", "-----BEGIN CERTIFICATE-----", "never stored"),
        ("tls_client_key_secret_name", "-----BEGIN PRIVATE KEY----- abc", "not the secret itself"),
    ],
)
def test_check_field_rejects_with_a_reason(field: str, value: str, needle: str) -> None:
    ok, reason = check_field(field, value)
    assert not ok
    assert needle in reason


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("remote_port", "104"),
        ("remote_port", 65535),
        ("remote_ae_title", "ORTHANC"),
        ("local_ae_title", "AXIOM_SCU"),
        ("acse_timeout_s", "2.5"),
        ("max_pdu_bytes", "0"),
        ("max_pdu_bytes", "16384"),
        ("max_resends", "0"),
        ("reconnect_attempts", 50),
        ("strategy", "Universal"),
        ("remote_host", "10.0.0.5"),
        ("tls_ca_cert_secret_name", "projects/p/secrets/ca/versions/latest"),
    ],
)
def test_check_field_accepts(field: str, value: object) -> None:
    assert check_field(field, value) == (True, "")


def test_profile_to_store_config_uses_units_and_defaults() -> None:
    p = good()
    p.acse_timeout_s = 7.0
    p.max_pdu_bytes = 65536
    cfg = p.to_store_config()
    assert isinstance(cfg, StoreConfig)
    assert (cfg.remote_host, cfg.remote_port, cfg.remote_ae_title) == ("pacs.example.org", 11112, "MAINPACS")
    assert cfg.local_ae_title == "AXIOM_SCU"
    assert cfg.acse_timeout == 7.0 and cfg.max_pdu == 65536
    assert p.errors() == {}


def test_each_engine_setting_is_mapped_from_one_profile_field() -> None:
    """Profile and StoreConfig do not declare the same setting twice: one mapping links them."""
    from dataclasses import fields

    store_fields = {f.name for f in fields(StoreConfig)}
    profile_fields = {f.name for f in fields(Profile)}
    assert set(STORE_CONFIG_FIELDS) <= profile_fields
    # the re-send settings are per profile (the editor shows them); the outage budget is the engine's
    assert set(STORE_CONFIG_FIELDS.values()) == store_fields - {"retry_total_s", "retry_backoff_s"}
    p = good()
    p.tls_ca_cert_file = " /ca.pem "
    cfg = p.to_store_config()
    assert cfg.tls_ca_cert_file == "/ca.pem" and cfg.tls_client_cert_file is None
    assert Profile.from_json(cfg.to_dict()).to_store_config() == cfg


def test_send_settings_round_trip_through_the_file_and_reach_the_send(tmp_path: Path) -> None:
    """Implicit VR only (c35), re-sends and reconnects: saved in profiles.json, read back, given to the engine."""
    p = replace(good(), implicit_vr_only=True, max_resends=0, reconnect_attempts=12)
    store = ProfileStore()
    store.load()
    store.profiles.append(p)
    store.save()
    saved = next(x for x in json.loads(Path(store.path).read_text())["profiles"] if x["name"] == p.name)
    assert (saved["implicit_vr_only"], saved["max_resends"], saved["reconnect_attempts"]) == (True, 0, 12)
    again = ProfileStore()
    again.load()
    back = again.get(p.name)
    assert back == p
    cfg = back.to_store_config()
    assert (cfg.implicit_vr_only, cfg.max_resends, cfg.reconnect_attempts) == (True, 0, 12)
    # a profile written before these settings existed gets the engine's defaults
    old = Profile.from_json({k: v for k, v in saved.items() if k not in ("max_resends", "reconnect_attempts")})
    assert (old.max_resends, old.reconnect_attempts) == (StoreConfig.max_resends, StoreConfig.reconnect_attempts)


def test_client_key_without_certificate_is_an_error() -> None:
    p = good()
    p.tls_client_key_file = "/etc/key.pem"
    assert "tls_client_cert_file" in p.errors()


def test_store_starts_with_the_local_test_profile_and_round_trips(tmp_path: Path) -> None:
    store = ProfileStore()
    assert store.path == os.path.join(config_dir(), "profiles.json")
    assert str(tmp_path) in store.path
    store.load()
    assert store.names() == [LOCAL_TEST_PROFILE_NAME]
    assert store.local_test().remote_host == "127.0.0.1"
    store.profiles.append(good())
    store.last_used = "Main PACS"
    store.save()
    doc = json.loads(Path(store.path).read_text())
    assert doc["version"] == FILE_VERSION
    assert [p["name"] for p in doc["profiles"]] == [LOCAL_TEST_PROFILE_NAME, "Main PACS"]
    assert not list(Path(store.path).parent.glob(".profiles-*.tmp")), "temporary files left behind"
    again = ProfileStore()
    again.load()
    assert again.get("Main PACS") == good()
    assert again.last_used == "Main PACS"


def test_no_secret_is_read_or_written(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "profiles": [
                    {
                        **good().to_json(),
                        "password": "hunter2",
                        "tls_key_password": "s3cret",
                        "tls_client_key_file": "/k.pem",
                        "tls_client_cert_file": "/c.pem",
                    }
                ],
            }
        )
    )
    store = ProfileStore()
    store.load()
    added = store.import_json(str(path))
    assert added[0].tls_client_key_file == "/k.pem"
    store.save()
    text = Path(store.path).read_text()
    assert "hunter2" not in text and "s3cret" not in text and 'password"' not in text


def test_unknown_keys_survive_a_round_trip(tmp_path: Path) -> None:
    store = ProfileStore()
    Path(store.path).parent.mkdir(parents=True)
    Path(store.path).write_text(json.dumps({"version": 1, "profiles": [{**good().to_json(), "future_key": 42}]}))
    store.load()
    store.save()
    assert json.loads(Path(store.path).read_text())["profiles"][1]["future_key"] == 42


def test_old_unversioned_file_is_backed_up_then_migrated() -> None:
    store = ProfileStore()
    Path(store.path).parent.mkdir(parents=True)
    Path(store.path).write_text(json.dumps({"profiles": [good().to_json()]}))
    store.load()
    assert store.get("Main PACS") is not None
    assert Path(store.path + ".v0.bak").exists()
    store.save()
    assert json.loads(Path(store.path).read_text())["version"] == FILE_VERSION


def test_newer_file_is_never_overwritten() -> None:
    store = ProfileStore()
    Path(store.path).parent.mkdir(parents=True)
    original = json.dumps({"version": FILE_VERSION + 1, "profiles": [good().to_json()]})
    Path(store.path).write_text(original)
    store.load()
    assert store.read_only_reason
    with pytest.raises(ProfileFileError):
        store.save()
    assert Path(store.path).read_text() == original


def test_broken_file_is_kept_aside() -> None:
    store = ProfileStore()
    Path(store.path).parent.mkdir(parents=True)
    Path(store.path).write_text("{not json")
    store.load()
    assert store.names() == [LOCAL_TEST_PROFILE_NAME]
    assert Path(store.path + ".broken").read_text() == "{not json"


def test_import_seed_config_and_export(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            {"remote_host": "10.1.1.1", "remote_port": "4242", "remote_ae_title": "ORTHANC", "acse_timeout": 5, "max_pdu": 32768}
        )
    )
    store = ProfileStore()
    store.load()
    (p,) = store.import_json(str(seed))
    assert (p.name, p.remote_port, p.acse_timeout_s, p.max_pdu_bytes) == ("ORTHANC@10.1.1.1", 4242, 5.0, 32768)
    store.import_json(str(seed))
    assert "ORTHANC@10.1.1.1 (2)" in store.names()
    out = tmp_path / "out.json"
    assert store.export_json(str(out)) == 3
    back = ProfileStore(str(tmp_path / "other.json"))
    back.load()
    back.import_json(str(out))
    assert "ORTHANC@10.1.1.1 (2)" in back.names()


def test_import_errors_are_plain(tmp_path: Path) -> None:
    store = ProfileStore()
    store.load()
    with pytest.raises(ProfileFileError, match="cannot read"):
        store.import_json(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    with pytest.raises(ProfileFileError, match="not valid JSON"):
        store.import_json(str(bad))


def test_secret_ids_follow_secret_manager_syntax(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    assert check_field("tls_ca_cert_secret_name", "projects/p/secrets/ca/versions/3") == (True, "")
    assert check_field("tls_ca_cert_secret_name", "projects/p/locations/eu/secrets/ca") == (True, "")
    assert not check_field("tls_ca_cert_secret_name", "projects/p/ca")[0]
    p = good()
    p.tls_ca_cert_secret_name = "pacs-ca"
    assert "gcp_project_id" in p.errors()
    p.gcp_project_id = "my-project"
    assert p.errors() == {}
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    p.gcp_project_id = ""
    assert p.errors() == {}
