"""A test-only keyring backend: passwords kept in this process's memory, never on disk.

The app refuses to save a secret in a keyring that keeps it in plain text (``keyrings.alt``) or
in no keyring at all (:func:`core.secrets.keyring_problem`); tests that save a passphrase install
this backend instead (``memory_keyring`` in the tests that need it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

__all__ = ["MemoryKeyring", "use_keyring"]


class MemoryKeyring(KeyringBackend):
    """Keeps ``(service, username) -> password`` in a dict for the life of the object."""

    priority = 1  # type: ignore[assignment]  # keyring declares it as a class property

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@contextmanager
def use_keyring(backend: KeyringBackend) -> Iterator[KeyringBackend]:
    """Make `backend` the process's keyring for the block, then put the previous one back."""
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
