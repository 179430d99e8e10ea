"""No secret at rest in plain text (issue 12 item 7).

A keyring backend that would keep the TLS key passphrase in plain text or under a weak fixed
encryption (keyrings.alt), or no usable backend (keyring's fail / null backends, an empty
chainer), is refused when saving, with a message that says what to install or to use the
environment variable; reading still works with the environment variable. The app's own install
(run.sh, the standalone app) does not pull the test-only keyrings.alt.
"""

from __future__ import annotations

import base64
import re
import tomllib
from pathlib import Path

import keyring
import pytest
from keyring.backends import chainer, fail, null
from keyrings.alt.file import EncryptedKeyring, PlaintextKeyring

from core import secrets
from core.errors import TlsConfigError
from helpers.keyrings import MemoryKeyring, use_keyring
from helpers.process import PROJECT_ROOT

PASSPHRASE = "correct horse battery"


@pytest.fixture(autouse=True)
def _no_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(secrets.PASSWORD_ENV, raising=False)


def plaintext_keyring(folder: Path) -> PlaintextKeyring:
    backend = PlaintextKeyring()
    backend.file_path = str(folder / "keyring_pass.cfg")
    return backend


class _Chain(chainer.ChainerBackend):
    """A chainer over given backends (keyring's own discovers them from the installed packages)."""

    def __init__(self, backends: list[object]) -> None:
        super().__init__()
        self._chained = backends

    @property
    def backends(self) -> list[object]:  # type: ignore[override]
        return self._chained


def assert_refusal_says_what_to_do(message: str) -> None:
    assert "not saved" in message
    assert "gnome-keyring" in message and "KWallet" in message
    assert secrets.PASSWORD_ENV in message
    assert PASSPHRASE not in message


def test_plaintext_keyring_is_refused_and_nothing_lands_on_disk(tmp_path: Path) -> None:
    backend = plaintext_keyring(tmp_path)
    with use_keyring(backend), pytest.raises(secrets.InsecureKeyringError) as info:
        secrets.set_key_password("Secure PACS", PASSPHRASE)
    assert isinstance(info.value, TlsConfigError)  # front ends already show TlsConfigError messages
    assert_refusal_says_what_to_do(str(info.value))
    assert "plain text" in str(info.value)
    assert info.value.details["backend"] == "keyrings.alt.file.PlaintextKeyring"
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert PASSPHRASE.encode() not in written and base64.b64encode(PASSPHRASE.encode()) not in written


@pytest.mark.parametrize(
    ("make", "words"),
    [
        # without pycryptodome it cannot even be built; the refusal looks at the backend's kind only
        (lambda tmp: EncryptedKeyring.__new__(EncryptedKeyring), "weak or fixed encryption"),
        (lambda tmp: fail.Keyring(), "no usable backend"),
        (lambda tmp: null.Keyring(), "disabled"),
        (lambda tmp: _Chain([]), "no usable backend"),
        (lambda tmp: _Chain([plaintext_keyring(tmp), MemoryKeyring()]), "plain text"),
    ],
    ids=["encrypted-file", "fail", "null", "empty-chainer", "chainer-of-plaintext"],
)
def test_other_insecure_or_missing_backends_are_refused(tmp_path: Path, make, words) -> None:
    backend = make(tmp_path)
    assert words in (secrets.keyring_problem(backend) or "")
    with use_keyring(backend), pytest.raises(secrets.InsecureKeyringError) as info:
        secrets.set_key_password("pacs", PASSPHRASE)
    assert_refusal_says_what_to_do(str(info.value))


def test_a_keyring_that_keeps_it_safe_is_used(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    assert secrets.keyring_problem(backend) is None
    assert secrets.keyring_problem(_Chain([backend, plaintext_keyring(tmp_path)])) is None  # writes go to the first
    with use_keyring(backend):
        secrets.set_key_password("pacs", PASSPHRASE)
        assert secrets.key_password("pacs") == (PASSPHRASE, "keyring entry 'pacs'")
    assert backend.passwords == {(secrets.KEYRING_SERVICE, "pacs"): PASSPHRASE}


def test_reading_works_with_the_environment_variable_when_there_is_no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    with use_keyring(fail.Keyring()):
        with pytest.raises(TlsConfigError, match=secrets.PASSWORD_ENV):
            secrets.key_password("pacs")
        monkeypatch.setenv(secrets.PASSWORD_ENV, "from-env")
        assert secrets.key_password("pacs") == ("from-env", secrets.PASSWORD_ENV)
        assert secrets.key_password(None) == ("from-env", secrets.PASSWORD_ENV)


def test_reading_an_entry_saved_earlier_in_a_plaintext_keyring_still_works(tmp_path: Path) -> None:
    """Refusing to write does not strand a passphrase saved by an older version: it is still read."""
    backend = plaintext_keyring(tmp_path)
    backend.set_password(secrets.KEYRING_SERVICE, "old", PASSPHRASE)  # as an older version did
    with use_keyring(backend):
        assert secrets.key_password("old") == (PASSPHRASE, "keyring entry 'old'")


# --------------------------------------------------------------------------- the app's own install


def test_run_sh_installs_the_app_without_the_test_extra() -> None:
    script = (PROJECT_ROOT / "run.sh").read_text()
    installs = [code for line in script.splitlines() if re.search(r"pip install\b.*-e\b", code := line.split("#")[0])]
    assert installs, "run.sh no longer installs the app"
    for line in installs:
        assert "[test]" not in line and "keyrings" not in line, line


def test_the_app_dependencies_and_the_standalone_app_leave_keyrings_alt_out() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.lower().startswith("keyrings")]
    assert any(d.lower().startswith("keyrings.alt") for d in project["optional-dependencies"]["test"])
    spec = (PROJECT_ROOT / "packaging" / "dicom-courier.spec").read_text()
    excludes = spec[spec.index("EXCLUDES = [") : spec.index("]", spec.index("EXCLUDES = ["))]
    assert '"keyrings"' in excludes and '"keyrings.alt"' in excludes


# --------------------------------------------------------------------------- the profile editor


@pytest.mark.gui
def test_profile_editor_shows_the_refusal(qtbot, window, tmp_path: Path) -> None:
    from core.profiles import Profile
    from ui.profiles_ui import ProfileEditor

    with use_keyring(plaintext_keyring(tmp_path)):
        ed = ProfileEditor(
            Profile(name="Secure PACS", remote_host="pacs", remote_port=2762, remote_ae_title="PACS", tls_enabled=True),
            window.pool,
        )
        qtbot.addWidget(ed)
        with qtbot.waitSignal(ed.passphrase_stored, timeout=20000) as b:
            ed.store_passphrase(PASSPHRASE)
        assert_refusal_says_what_to_do(b.args[0])
        assert "gnome-keyring" in ed.passphrase_result.text()
        assert keyring.get_password(secrets.KEYRING_SERVICE, "Secure PACS") is None
