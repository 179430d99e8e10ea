"""The dry-run plan (*Plan*): what will happen to each instance (as stored, converted, blocked and why).

The plan is :func:`core.preflight.plan_instances`, from the profile's saved acceptance map
when it fits the peer (:func:`core.probe.saved_map_for`), else from a negotiation that stores
nothing. The send controller plans the same way before a send (:mod:`.send`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from core.preflight import InstancePlan, plan_instances
from core.probe import saved_map_for
from core.profiles import Profile
from core.scan import ScannedInstance

from ..models import InstanceTreeModel, Node
from ..qtcompat import emit
from ..workers import TaskWorker, ThreadPool
from .local_pacs import LocalPacsController

LOGGER = logging.getLogger(__name__)


def plan(
    insts: list[ScannedInstance],
    cfg: dict[str, Any],
    strategy: str,
    max_retries: int,
    parallel: int,
    amap: dict[str, Any] | None = None,
    validate: bool = True,
) -> list[InstancePlan]:
    """The plan of `insts` (worker thread): from the saved map, else negotiates with the PACS; stores nothing.

    Raises:
        core.errors.CourierError: the PACS could not be reached or refused the association.
    """
    return plan_instances(insts, amap or None, cfg, strategy, max_retries, parallel, validate=validate)


def plan_args(nodes: Sequence[Node], profile: Profile, validate: bool) -> tuple[Any, ...]:
    """The arguments of :func:`plan` for `nodes` sent with `profile` (read on the GUI thread, no I/O)."""
    return (
        [n.inst for n in nodes],
        profile.to_config_dict(),
        profile.strategy,
        profile.max_retries,
        profile.parallel_associations,
        saved_map_for(profile),
        validate,
    )


def apply_plans(model: InstanceTreeModel, nodes: Sequence[Node], plans: Sequence[InstancePlan]) -> None:
    """Write each plan's message (and its number of findings) into the model's Plan column."""
    model.set_plans(
        (node, p.message + (f" ({len(p.findings)} finding(s))" if p.findings else ""))
        for node, p in zip(nodes, plans, strict=False)
    )
    model.flush()


class PlanController(QObject):
    """Plans instances against a profile's PACS on a worker, one plan at a time; fills the Plan column.

    Args:
        model: the file tree's model; the Plan column is filled when the plan comes.
        pool: where the plan runs.
        local_pacs: started first when the plan is for the local test profile.
        parent: the owning QObject.

    Signals:
        plan_started(object, int): ``(core.profiles.Profile, number of instances)``; a plan began.
        plan_finished(object, object): ``(list of core.preflight.InstancePlan or None, error or None)``.
    """

    plan_started = Signal(object, int)
    plan_finished = Signal(object, object)

    def __init__(
        self, model: InstanceTreeModel, pool: ThreadPool, local_pacs: LocalPacsController, parent: QObject | None = None
    ):
        super().__init__(parent)
        self.model = model
        self.pool = pool
        self.local_pacs = local_pacs
        self._busy = False
        self._nodes: list[Node] = []
        #: The profile and the instances of the last plan (for the window to tell when it no longer holds).
        self.profile: Profile | None = None
        self.planned: list[Node] = []

    @property
    def busy(self) -> bool:
        """True while a plan runs."""
        return self._busy

    def start(self, nodes: Sequence[Node], profile: Profile) -> bool:
        """Plan `nodes` against `profile`'s PACS; False when it cannot start (a reason comes with ``plan_finished``)."""
        if not nodes or self._busy:
            return False
        errors = profile.errors()
        if errors:
            self._finish(None, "the profile is not valid: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
            return False
        if profile.is_local_test and not self.local_pacs.running:
            self.local_pacs.start_then(lambda: self.start(nodes, profile))
            return True
        profile = self.local_pacs.resolve(profile)
        self._busy = True
        self._nodes = list(nodes)
        self.profile = profile
        emit(self.plan_started, profile, len(nodes))
        worker = TaskWorker(plan, *plan_args(nodes, profile, True))
        worker.succeeded.connect(self._on_worker_succeeded)
        worker.failed.connect(self._on_worker_failed)
        self.pool.start(worker, "plan")
        return True

    @Slot(object)
    def _on_worker_succeeded(self, plans: list[InstancePlan]) -> None:
        self._finish(plans, None)

    @Slot(object)
    def _on_worker_failed(self, exc: Exception) -> None:
        self._finish(None, str(exc))

    def _finish(self, plans: list[InstancePlan] | None, error: str | None) -> None:
        self._busy = False
        nodes, self._nodes = self._nodes, []
        self.planned = nodes if plans is not None else []
        if plans is not None:
            apply_plans(self.model, nodes, plans)
        emit(self.plan_finished, plans, error)
