#!/usr/bin/env python3
"""Reliability report: scenarios x trials, instances lost and duplicated at the peer (issue 5, item 6).

Run from the project root:

    python benchmarks/reliability_report.py [--trials 20] [--instances 200] [--down-trials 3] [--json FILE]

Scenarios (each trial uses a fresh journal and a fresh scripted peer, ``tests/helpers/badpeers.py``):

* ``abort``   the peer aborts the association (A-ABORT after receiving a data set, before the
              response; half the time after storing it) at a random request of a 200-instance send;
* ``stall``   the peer stops reading mid-transfer at a random request (network timeout 1 s);
* ``silent``  the peer does not answer one random request (DIMSE timeout 1 s);
* ``kill``    ``kill -9`` of ``main.py send`` at a random point, then ``main.py resume``;
* ``down``    the peer goes away (connections refused) for 10 s at a random point of the send.

Counts, over all trials: *lost* = instances the peer does not hold at the end (must be 0);
*false stored* = instances the journal calls stored that the peer does not hold (must be 0);
*duplicated* = extra copies at the peer; *unexplained* = duplicates of instances whose outcome
was never unknown (in flight at the kill, or the link broke after the data set was sent): must be 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from core.engine import SendJob, items_from_inputs  # noqa: E402
from core.journal import Journal  # noqa: E402
from helpers.badpeers import Act, BadPeer, make_ct  # noqa: E402


@dataclass
class Tally:
    """Totals for one scenario."""

    name: str
    trials: int = 0
    instances: int = 0
    lost: int = 0
    false_stored: int = 0
    duplicated: int = 0
    dup_unknown: int = 0
    unexplained: int = 0
    failed_runs: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def add(self, uids: list[str], seen: dict[str, int], stored: set[str], unknown: set[str], ok: bool) -> None:
        self.trials += 1
        self.instances += len(uids)
        self.lost += sum(1 for u in uids if not seen.get(u))
        self.false_stored += sum(1 for u in stored if not seen.get(u))
        for u, c in seen.items():
            if c > 1:
                self.duplicated += c - 1
                if u in unknown:
                    self.dup_unknown += c - 1
                else:
                    self.unexplained += c - 1
        self.failed_runs += not ok


def journal_view(path: Path) -> tuple[set[str], set[str]]:
    """(stored UIDs, UIDs whose outcome was ever unknown) according to the journal."""
    with Journal(path) as j:
        stored, unknown = set(), set()
        for job in j.jobs():
            for row in j.instances(job.id):
                if row["state"] in ("stored", "stored-warning"):
                    stored.add(row["sop_instance_uid"])
                if row["state"] in ("in-flight", "unknown"):
                    unknown.add(row["sop_instance_uid"])
            for a in j.attempts(job.id):
                if a["result"] in (None, "unknown"):
                    unknown.add(_uid_of(j, job.id, a["idx"]))
        return stored, unknown


def _uid_of(j: Journal, job_id: str, idx: int) -> str:
    row = j._db.execute("SELECT sop_instance_uid FROM instances WHERE job = ? AND idx = ?", (job_id, idx)).fetchone()
    return row[0] if row else ""


def config(port: int, **kw):
    return {
        "remote_host": "127.0.0.1",
        "remote_port": port,
        "remote_ae_title": "BADPEER",
        "acse_timeout": 5,
        "dimse_timeout": 2,
        "network_timeout": 2,
        "retry_backoff_s": 0.1,
        **kw,
    }


def engine_trial(tally: Tally, work: Path, files: list[str], uids: list[str], script, rcvbuf=None, **cfg) -> None:
    path = work / f"{tally.name}-{tally.trials}.sqlite"
    with BadPeer(script, rcvbuf=rcvbuf) as peer, Journal(path) as journal:
        items = items_from_inputs(files)
        job_id = f"{tally.name}{tally.trials}"
        journal.create_job(job_id, tally.name, "BADPEER", {"config": config(peer.port, **cfg)}, items)
        result = SendJob(config(peer.port, **cfg), on_event=journal.recorder(job_id), job_id=job_id).run(items)
        seen = dict(peer.seen)
    stored, unknown = journal_view(path)
    tally.add(uids, seen, stored, unknown, all(o.status == "success" for o in result.outcomes))


def kill_trial(tally: Tally, work: Path, folder: Path, uids: list[str], rng: random.Random) -> None:
    path = work / f"kill-{tally.trials}.sqlite"
    target = rng.randrange(1, len(uids) - 5)
    with BadPeer(lambda req: Act(silent=0.01)) as peer:
        args = ["--host", "127.0.0.1", "--port", str(peer.port), "--called-ae", "BADPEER", "--journal", str(path)]
        proc = subprocess.Popen(
            [sys.executable, "main.py", "send", *args, "--quiet", str(folder)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.monotonic() + 120
        while sum(peer.seen.values()) < target and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _stored_before, unknown = journal_view(path)  # what was in flight at the kill
        r = subprocess.run(
            [sys.executable, "main.py", "resume", "--journal", str(path), "--quiet"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        seen = dict(peer.seen)
    stored, unknown_after = journal_view(path)
    tally.add(uids, seen, stored, unknown | unknown_after, r.returncode == 0)


def down_trial(tally: Tally, work: Path, files: list[str], uids: list[str], rng: random.Random, down_s: float) -> None:
    path = work / f"down-{tally.trials}.sqlite"
    peer = BadPeer(lambda req: Act(silent=0.005))
    port = peer.port
    peers = [peer]
    at = rng.randrange(1, len(uids) - 5)

    def outage() -> None:
        while sum(peer.seen.values()) < at:
            time.sleep(0.002)
        peer.close()
        time.sleep(down_s)
        end = time.monotonic() + 20
        while True:
            try:
                peers.append(BadPeer(port=port))
                return
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)

    t = threading.Thread(target=outage, daemon=True)
    t.start()
    with Journal(path) as journal:
        items = items_from_inputs(files)
        cfg = config(port, retry_total_s=60, retry_backoff_s=0.5)
        journal.create_job("down", "down", "BADPEER", {"config": cfg}, items)
        result = SendJob(cfg, on_event=journal.recorder("down"), job_id="down").run(items)
    t.join()
    seen: dict[str, int] = {}
    for p in peers:
        for u, c in p.seen.items():
            seen[u] = seen.get(u, 0) + c
        p.close()
    stored, unknown = journal_view(path)
    tally.add(uids, seen, stored, unknown, all(o.status == "success" for o in result.outcomes))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20, help="trials for abort and kill (default 20)")
    ap.add_argument("--instances", type=int, default=200, help="instances per send (default 200)")
    ap.add_argument("--other-trials", type=int, default=5, help="trials for stall and silent (default 5)")
    ap.add_argument("--down-trials", type=int, default=3, help="trials for the 10 s outage (default 3)")
    ap.add_argument("--down-seconds", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    tallies = []
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        work = Path(tmp)
        folder = work / "corpus"
        files = make_ct(folder, args.instances, 32, "reliability")
        big = make_ct(work / "big", 20, 256, "reliability-big")  # 128 KiB each, for the stall
        import pydicom

        uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
        big_uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in big]

        def run(name: str, trials: int, fn) -> None:
            tally = Tally(name)
            t0 = time.monotonic()
            for _ in range(trials):
                fn(tally)
            tally.seconds = time.monotonic() - t0
            tallies.append(tally)
            print(f"  {name}: {tally.trials} trials in {tally.seconds:.0f} s", file=sys.stderr, flush=True)

        def abort(t: Tally) -> None:
            n, keep = rng.randrange(1, args.instances + 1), rng.random() < 0.5
            act = Act(abort_after_data=True, store_first=keep)  # half the time the peer had stored it
            engine_trial(t, work, files, uids, lambda req: act if req.n == n else Act())

        def stall(t: Tally) -> None:
            n = rng.randrange(1, len(big) + 1)
            engine_trial(
                t,
                work,
                big,
                big_uids,
                lambda req: Act(stall_after_kib=rng.choice([16, 48, 96]), stall_s=30) if req.n == n else Act(),
                rcvbuf=16384,
                network_timeout=1,
            )

        def silent(t: Tally) -> None:
            n = rng.randrange(1, args.instances + 1)
            engine_trial(t, work, files, uids, lambda req: Act(silent=30) if req.n == n else Act(), dimse_timeout=1)

        run(f"abort at a random point ({args.instances} inst.)", args.trials, abort)
        run(
            f"kill -9 at a random point, resume ({args.instances} inst.)",
            args.trials,
            lambda t: kill_trial(t, work, folder, uids, rng),
        )
        run(
            f"peer down {args.down_seconds:g} s mid-send ({args.instances} inst.)",
            args.down_trials,
            lambda t: down_trial(t, work, files, uids, rng, args.down_seconds),
        )
        run("peer stops reading mid-transfer (20 x 128 KiB)", args.other_trials, stall)
        run(f"peer silent on one request ({args.instances} inst.)", args.other_trials, silent)

    head = (
        "scenario",
        "trials",
        "instances",
        "lost",
        "false stored",
        "duplicated",
        "dup. unknown",
        "unexplained",
        "runs not all stored",
    )
    rows = [
        (t.name, t.trials, t.instances, t.lost, t.false_stored, t.duplicated, t.dup_unknown, t.unexplained, t.failed_runs)
        for t in tallies
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    total_lost = sum(t.lost + t.false_stored for t in tallies)
    unexplained = sum(t.unexplained for t in tallies)
    print(f"\nlost: {total_lost}, unexplained duplicates: {unexplained}")
    if args.json:
        Path(args.json).write_text(json.dumps([t.__dict__ for t in tallies], indent=2))
    return 0 if total_lost == 0 and unexplained == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
