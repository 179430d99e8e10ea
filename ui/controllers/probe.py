"""The acceptance map of a PACS (*Probe*): which SOP classes and transfer syntaxes it accepts.

The probe itself is :func:`core.probe.probe`; this runs it on a worker and saves the map with
the profile, where the plan before a send finds it (:func:`core.probe.saved_map_for`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from PySide6.QtCore import QObject, Signal, Slot

from core.probe import AcceptanceMap, resolve_sop_classes
from core.profiles import Profile

from ..profiles_ui import ProfileListModel
from ..qtcompat import emit
from ..workers import ProbeWorker, ThreadPool
from .local_pacs import LocalPacsController

LOGGER = logging.getLogger(__name__)


class ProbeController(QObject):
    """Probes a profile's PACS on a worker, one probe at a time; the map is saved with the profile.

    Args:
        profiles: the profile list; a probe's map replaces the probed profile's saved one.
        pool: where the probe runs.
        local_pacs: started first when the local test profile is probed.
        parent: the owning QObject.

    Signals:
        probe_started(object, int): ``(core.profiles.Profile, number of SOP classes)``; a probe began.
        probe_progressed(int, int): ``(associations done, associations in all)``.
        probe_finished(object, object): ``(core.probe.AcceptanceMap or None, error or None)``;
            :attr:`profile` is the profile probed.
    """

    probe_started = Signal(object, int)
    probe_progressed = Signal(int, int)
    probe_finished = Signal(object, object)

    def __init__(
        self, profiles: ProfileListModel, pool: ThreadPool, local_pacs: LocalPacsController, parent: QObject | None = None
    ):
        super().__init__(parent)
        self.profiles = profiles
        self.pool = pool
        self.local_pacs = local_pacs
        self._worker: ProbeWorker | None = None
        #: The profile of the last probe started (None before the first).
        self.profile: Profile | None = None

    @property
    def busy(self) -> bool:
        """True while a probe runs."""
        return self._worker is not None

    def start(self, profile: Profile, which: str = "used", used: Sequence[str] = (), syntaxes: str = "all") -> bool:
        """Probe `profile`'s PACS; False when it cannot start (the reason comes with ``probe_finished``).

        Args:
            profile: the PACS to probe.
            which: the SOP classes: ``"used"``, ``"all"`` or comma-separated UIDs
                (see :func:`core.probe.resolve_sop_classes`).
            used: the SOP classes of the loaded files, for ``"used"``.
            syntaxes: the transfer syntaxes to propose (see :func:`core.probe.probe_syntaxes`).
        """
        if self._worker is not None:
            return False
        errors = profile.errors()
        if errors:
            self._finish(None, "the profile is not valid: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
            return False
        if profile.is_local_test and not self.local_pacs.running:
            # the local test profile takes the port the SCP got: read it again once it runs
            name = profile.name
            self.local_pacs.start_then(lambda: self._start_by_name(name, which, list(used), syntaxes))
            return True
        profile = self.local_pacs.resolve(profile)
        try:
            classes = resolve_sop_classes(which, used)
        except ValueError as exc:
            self._finish(None, str(exc))
            return False
        worker = ProbeWorker(profile.to_config_dict(), classes, syntaxes)
        worker.progressed.connect(self.probe_progressed)
        worker.succeeded.connect(self._on_worker_succeeded)
        worker.failed.connect(self._on_worker_failed)
        self._worker = worker
        self.profile = profile
        emit(self.probe_started, profile, len(classes))
        LOGGER.info(
            "Probing %s@%s:%s (%d SOP classes)", profile.remote_ae_title, profile.remote_host, profile.remote_port, len(classes)
        )
        self.pool.start(worker, "probe")
        return True

    def _start_by_name(self, name: str, which: str, used: list[str], syntaxes: str) -> None:
        profile = self.profiles.store.get(name)
        if profile is not None:
            self.start(profile, which, used, syntaxes)

    @Slot(object)
    def _on_worker_succeeded(self, amap: AcceptanceMap) -> None:
        self._finish(amap, None)

    @Slot(object)
    def _on_worker_failed(self, exc: Exception) -> None:
        self._finish(None, getattr(exc, "message", None) or str(exc))

    def _finish(self, amap: AcceptanceMap | None, error: str | None) -> None:
        self._worker = None
        if error is not None or amap is None:
            LOGGER.warning("Probe failed: %s", error)
        elif self.profile is not None:
            row = self.profiles.row_of(self.profile.name)
            current = self.profiles.profile(row) if row >= 0 else None
            if current is not None:
                self.profiles.replace_at(row, replace(current, acceptance_map=amap.to_dict()))
        emit(self.probe_finished, amap, error)
