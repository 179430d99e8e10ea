"""The five transfer-syntax strategies and the seed config dict (validation before any network)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from pydicom.uid import (
    JPEG2000,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)

from helpers import casegen
from helpers.config import make_config
from helpers.process import PROJECT_ROOT

core = pytest.importorskip("core")


# --------------------------------------------------------------------------- strategies


def syntaxes(name):
    return [str(u) for u in core.strategy_syntaxes(name)]


def test_five_strategies_exist():
    names = {str(getattr(s, "value", s)) for s in core.TransferSyntaxStrategy}
    assert names == {"universal", "conservative", "standard", "compression", "extended"}


def test_strategy_contents_follow_the_seed():
    assert syntaxes("universal") == [ImplicitVRLittleEndian]
    assert syntaxes("conservative") == [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
    assert syntaxes("standard") == [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian]
    comp = syntaxes("compression")
    assert comp[:3] == syntaxes("standard")
    assert {RLELossless, JPEG2000Lossless} <= set(comp)
    assert JPEGBaseline8Bit not in comp and JPEG2000 not in comp, "compression holds lossless syntaxes only"
    ext = syntaxes("extended")
    assert set(comp) <= set(ext) and {JPEGBaseline8Bit, JPEG2000} <= set(ext)


def test_strategies_are_nested_and_accept_enum_members():
    order = ["universal", "conservative", "standard", "compression", "extended"]
    for smaller, larger in itertools.pairwise(order):
        assert set(syntaxes(smaller)) < set(syntaxes(larger))
    for member in core.TransferSyntaxStrategy:
        assert core.strategy_syntaxes(member) == core.strategy_syntaxes(str(getattr(member, "value", member)))


def test_unknown_strategy_is_a_value_error(scp_factory, tmp_path):
    with pytest.raises(ValueError, match=r"(?i)strateg"):
        core.strategy_syntaxes("turbo")
    scp = scp_factory()
    with pytest.raises(ValueError):
        core.store_dataset(scp.config(), casegen.make_ct(tmp_path, 1)[0], transfer_syntax_strategy="turbo")
    assert not scp.associations


# --------------------------------------------------------------------------- config


def _send(cfg, tmp_path):
    return core.store_dataset(cfg, casegen.make_ct(tmp_path, 1)[0])


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"remote_host": None}, "remote_host"),
        ({"remote_port": None}, "remote_port"),
        ({"remote_ae_title": None}, "remote_ae_title"),
        ({"remote_port": 70000}, "remote_port"),
        ({"remote_port": "eleven"}, "remote_port"),
        ({"remote_ae_title": "SEVENTEEN_LETTERS"}, "remote_ae_title"),
        ({"remote_ae_title": "BACK\\SLASH"}, "remote_ae_title"),
        ({"local_ae_title": "   "}, "local_ae_title"),
        ({"local_ae_title": "TAB\tTITLE"}, "local_ae_title"),
        ({"dimse_timeout": -1}, "dimse_timeout"),
        ({"acse_timeout": "soon"}, "acse_timeout"),
        ({"max_pdu": -5}, "max_pdu"),
        ({"no_such_key": 1}, "no_such_key"),
    ],
)
def test_bad_config_raises_value_error_naming_the_key(scp_factory, tmp_path, change, key):
    scp = scp_factory()
    cfg = scp.config()
    for k, v in change.items():
        if v is None:
            cfg.pop(k)
        else:
            cfg[k] = v
    with pytest.raises(ValueError) as info:
        _send(cfg, tmp_path)
    assert key in str(info.value), str(info.value)
    assert not scp.associations, "validation happens before connecting"


def test_sixteen_character_ae_titles_are_fine(scp_factory, tmp_path):
    scp = scp_factory(ae_title="SIXTEEN_CHARS_AE")
    r = _send(scp.config("ANOTHER_16_CHARS"), tmp_path)
    assert r["status"] == "success"
    assert scp.associations[0].calling_ae == "ANOTHER_16_CHARS"


def test_seed_tls_keys_are_accepted_when_tls_is_off(scp_factory, tmp_path):
    scp = scp_factory()
    cfg = scp.config(
        tls_enabled=False, tls_ca_cert_secret_name=None, tls_client_cert_secret_name=None, tls_client_key_secret_name=None
    )
    assert _send(cfg, tmp_path)["status"] == "success"


def test_config_rejects_bad_port_type_before_dns(tmp_path):
    with pytest.raises(ValueError, match="remote_port"):
        _send(make_config(0, "X"), tmp_path)


def test_core_imports_no_qt():
    code = "import sys, core, core.scan; print(any(m.startswith(('PySide6', 'PyQt')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
