#!/usr/bin/env python3
"""The journal's cost per instance: the recorder fed a job's events, no peer, no files (issue 15, item 2).

Run from the project root (or with ``PYTHONPATH`` set to another checkout to compare):

    python benchmarks/journal_cost.py [--instances 20000] [--dir DIR]

Creates a job of N instances, then feeds the recorder what the engine sends for each instance
(``InstanceStarted``, ``InstanceFinished`` with one attempt) between ``JobStarted`` and
``JobFinished``, on one thread, and prints the wall time per instance of the whole run
(create_job, events, final commit) in microseconds, and the peak of Python allocations
(tracemalloc) during the events.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.getcwd())

from core import events as ev
from core.engine import Item
from core.journal import Journal
from core.outcomes import Attempt, AttemptResult, InstanceOutcome, InstanceState, Status
from core.scan import ScannedInstance

TS = "1.2.840.10008.1.2.1"
CT = "1.2.840.10008.5.1.4.1.1.2"


def items(n: int) -> list[Item]:
    """N engine items for files that need not exist (create_job reads only the records)."""
    return [
        Item(
            i,
            f"/data/study/IM{i:06d}.dcm",
            ScannedInstance(
                f"/data/study/IM{i:06d}.dcm", "ok", "", sop_class_uid=CT, sop_instance_uid=f"1.2.3.{i}", size=5000, index=i
            ),
        )
        for i in range(n)
    ]


def outcome(i: int) -> InstanceOutcome:
    """A stored outcome with one attempt, as the engine reports it."""
    attempt = Attempt(1, time.time(), TS, 0, AttemptResult.SUCCESS, 0, "Success", 0.001)
    return InstanceOutcome(
        i,
        f"/data/study/IM{i:06d}.dcm",
        Status.SUCCESS,
        InstanceState.STORED,
        "stored (sent as stored)",
        status_code=0,
        sop_class_uid=CT,
        sop_instance_uid=f"1.2.3.{i}",
        transfer_syntax=TS,
        tries=1,
        attempts_detail=(attempt,),
        size=5000,
    )


def run(n: int, folder: str, trace: bool) -> tuple[float, float, int]:
    """Seconds for the whole job of `n` instances and for its events alone; peak bytes allocated during the events."""
    path = os.path.join(folder, f"j{time.monotonic_ns()}.sqlite")
    its = items(n)
    t0 = time.perf_counter()
    with Journal(path) as journal:
        journal.create_job("bench", "bench", "PEER@127.0.0.1:104", {"config": {}}, its)
        rec = journal.recorder("bench")
        t1 = time.perf_counter()
        if trace:
            tracemalloc.start()
        rec(ev.JobStarted("bench", n, n * 5000))
        for i in range(n):
            rec(ev.InstanceStarted(i, TS))
            rec(ev.InstanceFinished(i, outcome(i), 5000))
        rec(ev.JobFinished({"total": n}))
        peak = 0
        if trace:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        close = getattr(rec, "close", None)
        if close:
            close()
        events = time.perf_counter() - t1
        stored = journal.job("bench").counts.get("stored", 0)
    elapsed = time.perf_counter() - t0
    assert stored == n, f"{stored} of {n} recorded as stored"
    return elapsed, events, peak


def main() -> int:
    """Print the cost per instance (best of 3) and the allocation peak."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=20000)
    ap.add_argument("--dir", default=None, help="where the journals go (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        runs = [run(args.instances, folder, False) for _ in range(3)]
        best, events = min(r[0] for r in runs), min(r[1] for r in runs)
        peak = run(args.instances, folder, True)[2]
    import core.journal

    print(f"journal {os.path.dirname(core.journal.__file__)}: {args.instances} instances")
    print(f"  {best / args.instances * 1e6:.1f} us per instance (whole job, best of 3), {best:.2f} s")
    print(f"  {events / args.instances * 1e6:.1f} us per instance for the events alone (create_job excluded)")
    print(f"  peak Python allocations during the events: {peak / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
