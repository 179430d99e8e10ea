"""Results belong to a PACS: each instance's outcome is kept per PACS profile.

The file tree shows one PACS's results at a time (the one chosen in the selector): when
the choice changes, :meth:`PacsResults.show` puts that PACS's states back on the rows
("ready" where nothing was sent there yet). A send records each outcome as it arrives.
Plain Python over the tree's nodes; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import states as st
from .models import INSTANCE, InstanceTreeModel, Node

#: States that mean "this PACS holds the instance".
STORED_STATES = frozenset({st.STORED, st.WARNING})


class PacsResults:
    """``profile name -> file key -> (state, outcome dict)`` for every instance sent in this session."""

    def __init__(self) -> None:
        self._by_profile: dict[str, dict[str, tuple[str, dict[str, Any] | None]]] = {}

    def record(self, profile: str, node: Node, state: str, outcome: dict[str, Any] | None) -> None:
        """`node`'s outcome at `profile`'s PACS (the latest one wins)."""
        self._by_profile.setdefault(profile, {})[node.key] = (state, outcome)

    def get(self, profile: str, node: Node) -> tuple[str, dict[str, Any] | None] | None:
        """``(state, outcome)`` of `node` at `profile`'s PACS, or None when it was never sent there."""
        return self._by_profile.get(profile, {}).get(node.key)

    def stored(self, profile: str, nodes: Iterable[Node]) -> list[Node]:
        """Those of `nodes` that `profile`'s PACS already holds (stored, with or without a warning)."""
        book = self._by_profile.get(profile, {})
        return [n for n in nodes if (r := book.get(n.key)) is not None and r[0] in STORED_STATES]

    def profiles(self) -> list[str]:
        """The profiles something was sent to."""
        return list(self._by_profile)

    def clear(self) -> None:
        """Forget every result (the list was cleared)."""
        self._by_profile.clear()

    def show(self, model: InstanceTreeModel, profile: str | None) -> None:
        """Put `profile`'s states on the tree's instance rows ("ready" where nothing was sent there)."""
        book = self._by_profile.get(profile or "", {})
        for node in model.leaves():
            if node.kind != INSTANCE:
                continue
            state, outcome = book.get(node.key, (st.READY, None))
            if node.state != state or node.outcome is not outcome:
                model.set_state(node, state, outcome)
        model.flush()
