"""The send journal: which instance went out, when, how, and what the peer said.

A SQLite database (WAL mode) with one row per job and one per instance, kept up
to date by :class:`JournalRecorder`, an engine event subscriber. The engine
calls it synchronously on the sending thread, and every event is committed
before the callback returns, so an outcome is in the journal before the next
instance starts; a crash or ``kill -9`` loses at most the instance in flight,
which is then read back as in flight ("outcome unknown") and sent again by
a resume. (See :class:`Journal` for power cuts and ``synchronous``.)

Tables:

* ``jobs``: id, started, finished, state, profile, peer, options (JSON, no
  secrets), pid and host of the process that last ran it, runs, summary, error.
* ``instances``: job, idx (input position), path, SOP Class/Instance UID,
  state, status, status code, message, transfer syntax, attempts, times.
* ``attempts``: one row per C-STORE attempt (result, status code, message,
  transfer syntax, duration); a row without result was cut short by a crash.

Instance states are :class:`core.outcomes.InstanceState`: pending (not tried yet), in flight
(a C-STORE started, no outcome recorded), then the engine's final states.

The journal only stores; :func:`core.send.prepare_rerun` turns a job back into engine items
for ``resume`` (not yet sent, in flight or unknown) and ``retry`` (the same plus those that failed).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import events as ev
from .outcomes import STORED_STATES, InstanceState

LOGGER = logging.getLogger(__name__)
LOGGER.addHandler(logging.NullHandler())

__all__ = [
    "APP_NAME",
    "Journal",
    "JournalRecorder",
    "JobRecord",
    "default_journal_path",
    "new_job_id",
    "RESUME_STATES",
    "RETRY_STATES",
    "FINAL_OK_STATES",
]

APP_NAME = "dicom-courier"
SCHEMA_VERSION = 1

#: Instance states a ``resume`` sends again: never sent, sent without a recorded outcome, or outcome unknown;
#: a resume also sends ``failed`` rows marked ``resumable`` (the peer was unavailable, see
#: :attr:`core.outcomes.InstanceOutcome.resumable`; older journals wrote those ``not-sent``).
RESUME_STATES = (InstanceState.PENDING, InstanceState.IN_FLIGHT, InstanceState.UNKNOWN, InstanceState.NOT_SENT)
#: Instance states a ``retry`` sends again: the above plus failures (refused by the peer, unreadable then).
RETRY_STATES = (*RESUME_STATES, InstanceState.FAILED)
FINAL_OK_STATES = STORED_STATES

_SECRET_KEY = re.compile(r"password|passphrase|private_key|key_pem|token|api_key", re.I)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    state TEXT NOT NULL,
    profile TEXT,
    peer TEXT,
    options TEXT,
    pid INTEGER,
    host TEXT,
    runs INTEGER NOT NULL DEFAULT 0,
    summary TEXT,
    error TEXT,
    updated REAL
);
CREATE TABLE IF NOT EXISTS instances (
    job TEXT NOT NULL REFERENCES jobs(id),
    idx INTEGER NOT NULL,
    path TEXT,
    sop_class_uid TEXT,
    sop_instance_uid TEXT,
    size INTEGER,
    state TEXT NOT NULL,
    status TEXT,
    status_code INTEGER,
    message TEXT,
    transfer_syntax TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_started REAL,
    last_started REAL,
    finished REAL,
    resumable INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job, idx)  -- no index on state: each commit would rewrite one more page
);
CREATE TABLE IF NOT EXISTS attempts (
    job TEXT NOT NULL,
    idx INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    run INTEGER,
    started REAL,
    transfer_syntax TEXT,
    association INTEGER,
    result TEXT,
    status_code INTEGER,
    message TEXT,
    elapsed_s REAL,
    PRIMARY KEY (job, idx, attempt)
);
"""


def default_journal_path() -> str:
    """``$DICOM_COURIER_DATA_DIR/journal.sqlite``, else under platformdirs' user data dir."""
    folder = os.environ.get("DICOM_COURIER_DATA_DIR")
    if not folder:
        import platformdirs

        folder = platformdirs.user_data_dir(APP_NAME, appauthor=False)
    return os.path.join(folder, "journal.sqlite")


def new_job_id() -> str:
    """A fresh job ID (12 hex digits)."""
    return uuid.uuid4().hex[:12]


def interrupted_jobs_at(path: str | os.PathLike[str]) -> list[JobRecord]:
    """The jobs of the journal at `path` whose sending process died mid-send, leaving something to resume.

    Jobs that ended (finished or cancelled) are not listed even when some of their instances
    were not stored: those were reported when they ended, and *Retry failed* covers them.

    Args:
        path: the journal's SQLite file; a missing file is an empty journal (nothing is created).

    Returns:
        The interrupted jobs, newest first (see :meth:`Journal.interrupted_jobs`).

    Raises:
        sqlite3.Error: the file is not a readable journal.
    """
    if not os.path.exists(path):
        return []
    with Journal(path) as journal:
        return [j for j in journal.interrupted_jobs() if j.state == "interrupted"]


def public_options(options: dict[str, Any]) -> dict[str, Any]:
    """`options` without anything that looks like secret material (recursively)."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if _SECRET_KEY.search(str(key)) and not str(key).endswith(("_keyring", "_name", "_file")):
            continue
        out[key] = public_options(value) if isinstance(value, dict) else value
    return out


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


@dataclass
class JobRecord:
    """One job as read back from the journal.

    Attributes:
        id / started / finished / profile / peer: as recorded (times in seconds since the epoch).
        state: ``running``, ``interrupted`` (its process died before the end),
            ``finished`` or ``cancelled``.
        options: the saved send options (``config``, ``strategy``...).
        counts: instances per state plus ``total``.
    """

    id: str
    started: float
    finished: float | None
    state: str
    profile: str | None
    peer: str | None
    options: dict[str, Any]
    runs: int
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def resumable(self) -> int:
        """How many instances a resume would send."""
        return sum(self.counts.get(s, 0) for s in RESUME_STATES) + self.counts.get("failed-resumable", 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: id, started (ISO 8601 UTC), profile, peer, state, counts (also flat)."""
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started))
        finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.finished)) if self.finished else None
        counts = {"total": self.counts.get("total", 0)}
        for state in (
            InstanceState.STORED,
            InstanceState.STORED_WARNING,
            InstanceState.FAILED,
            InstanceState.UNKNOWN,
            InstanceState.NOT_SENT,
            InstanceState.IN_FLIGHT,
            InstanceState.PENDING,
            InstanceState.SKIPPED,
        ):
            counts[state.value] = self.counts.get(state, 0)
        flat = {k.replace("-", "_"): v for k, v in counts.items()}
        return {
            "id": self.id,
            "started": started,
            "finished": finished,
            "profile": self.profile,
            "peer": self.peer,
            "state": self.state,
            "runs": self.runs,
            **flat,
            "counts": counts,
            "error": self.error,
        }


class Journal:
    """A journal file. Thread-safe; one connection per instance.

    Args:
        path: the SQLite file (created with its folder if missing); None = the default path.
        synchronous: SQLite ``synchronous`` pragma. ``NORMAL`` (the default, or
            ``$DICOM_COURIER_JOURNAL_SYNC``): each commit survives a crash or ``kill -9`` of the
            process; a power cut may undo the last few commits, which can only make a resume
            send those instances again (the stored state is written only after the PACS
            confirmed), never lose one. ``FULL`` fsyncs every commit, so the journal is exact
            even after a power cut, at about 2 ms per instance on a busy disk.

    Raises:
        sqlite3.Error / OSError: the file cannot be opened or created.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, synchronous: str | None = None):
        self.path = os.fspath(path) if path is not None else default_journal_path()
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        sync = (synchronous or os.environ.get("DICOM_COURIER_JOURNAL_SYNC") or "NORMAL").upper()
        self._db.execute(f"PRAGMA synchronous={'FULL' if sync == 'FULL' else 'NORMAL'}")
        self._db.execute("PRAGMA busy_timeout=30000")
        with self._tx():
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
            if "resumable" not in {r["name"] for r in self._db.execute("PRAGMA table_info(instances)")}:
                self._db.execute("ALTER TABLE instances ADD COLUMN resumable INTEGER NOT NULL DEFAULT 0")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- plumbing -----------------------------------------------------------------------------------

    class _Tx:
        def __init__(self, journal: Journal):
            self.j = journal

        def __enter__(self) -> sqlite3.Connection:
            self.j._lock.acquire()
            self.j._db.execute("BEGIN IMMEDIATE")
            return self.j._db

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            try:
                self.j._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.j._lock.release()

    def _tx(self) -> Journal._Tx:
        return Journal._Tx(self)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------------

    def create_job(
        self, job_id: str, profile: str | None, peer: str | None, options: dict[str, Any], instances: Sequence[Any]
    ) -> None:
        """Record a new job and its instances, all pending.

        Args:
            job_id: the job's ID (:func:`new_job_id`).
            profile: the profile's name, shown by ``jobs`` and the app's resume banner.
            peer: ``AE@host:port``.
            options: what a resume needs to redo the send (``config``, ``strategy``...); anything
                that looks like secret material is dropped (:func:`public_options`).
            instances: :class:`core.engine.Item` objects (``index``, ``source``, ``inst``).

        Raises:
            sqlite3.Error: the journal cannot be written (e.g. the job ID exists).
        """
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (id, started, state, profile, peer, options, pid, host, runs, updated) "
                "VALUES (?, ?, 'created', ?, ?, ?, ?, ?, 0, ?)",
                (
                    job_id,
                    now,
                    profile,
                    peer,
                    json.dumps(public_options(options), default=str),
                    os.getpid(),
                    socket.gethostname(),
                    now,
                ),
            )
            db.executemany(
                "INSERT INTO instances (job, idx, path, sop_class_uid, sop_instance_uid, size, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        job_id,
                        it.index,
                        it.source if isinstance(it.source, str) else None,
                        it.inst.sop_class_uid or None,
                        it.inst.sop_instance_uid or None,
                        it.inst.size,
                        InstanceState.PENDING.value,
                    )
                    for it in instances
                ],
            )

    def recorder(self, job_id: str) -> JournalRecorder:
        """An engine event callback that records `job_id`'s progress."""
        return JournalRecorder(self, job_id)

    # -- reading ------------------------------------------------------------------------------------

    def _job_from_row(self, row: sqlite3.Row, counts: dict[str, int]) -> JobRecord:
        state = row["state"]
        if state in ("running", "created") and not (row["host"] == socket.gethostname() and _pid_alive(row["pid"])):
            state = "interrupted"
        try:
            options = json.loads(row["options"] or "{}")
        except ValueError:
            options = {}
        return JobRecord(
            row["id"],
            row["started"],
            row["finished"],
            state,
            row["profile"],
            row["peer"],
            options,
            row["runs"],
            counts,
            row["error"],
        )

    def _counts(self, job_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        ids = list(job_ids)
        out: dict[str, dict[str, int]] = {i: {"total": 0} for i in ids}
        if not ids:
            return out
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT job, state, COUNT(*) AS n, SUM(resumable) AS r FROM instances WHERE job IN ({marks}) "
                "GROUP BY job, state",
                ids,
            ).fetchall()
        for r in rows:
            c = out[r["job"]]
            c[r["state"]] = r["n"]
            c["total"] += r["n"]
            if r["state"] == InstanceState.FAILED and r["r"]:
                c["failed-resumable"] = r["r"]
        return out

    def jobs(self, limit: int | None = None) -> list[JobRecord]:
        """Every job, newest first, with its counts."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs ORDER BY started DESC, rowid DESC" + (f" LIMIT {int(limit)}" if limit else "")
            ).fetchall()
        counts = self._counts(r["id"] for r in rows)
        return [self._job_from_row(r, counts[r["id"]]) for r in rows]

    def job(self, job_id: str) -> JobRecord | None:
        """One job by ID (a unique prefix is enough), or None."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE id = ? OR id LIKE ? ORDER BY id = ? DESC",
                (job_id, job_id.replace("%", "") + "%", job_id),
            ).fetchall()
        if not rows or (len(rows) > 1 and rows[0]["id"] != job_id):
            return None
        return self._job_from_row(rows[0], self._counts([rows[0]["id"]])[rows[0]["id"]])

    def interrupted_jobs(self) -> list[JobRecord]:
        """Jobs not running now that still have instances to resume, newest first (the app offers *Resume*)."""
        return [j for j in self.jobs() if j.state != "running" and j.resumable > 0]

    def instances(self, job_id: str, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The job's instance rows (dicts) in input order, optionally only some states."""
        sql = "SELECT * FROM instances WHERE job = ?"
        args: list[Any] = [job_id]
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += list(states)
        with self._lock:
            return [dict(r) for r in self._db.execute(sql + " ORDER BY idx", args).fetchall()]

    def attempts(self, job_id: str, idx: int | None = None) -> list[dict[str, Any]]:
        """Attempt rows of a job (or of one instance), in order.

        Attempts are written with the instance's outcome; those of an instance whose
        outcome never came (a crash) appear with ``result`` None, the last one with
        its start time and transfer syntax.
        """
        where = "job = ?"
        args: list[Any] = [job_id]
        if idx is not None:
            where += " AND idx = ?"
            args.append(idx)
        with self._lock:
            rows = [dict(r) for r in self._db.execute(f"SELECT * FROM attempts WHERE {where}", args).fetchall()]
            counts = self._db.execute(
                f"SELECT idx, attempts, last_started, transfer_syntax FROM instances WHERE {where} AND attempts > 0", args
            ).fetchall()
        have = {(r["idx"], r["attempt"]) for r in rows}
        for c in counts:
            for n in range(1, c["attempts"] + 1):
                if (c["idx"], n) not in have:
                    last = n == c["attempts"]
                    rows.append(
                        {
                            "job": job_id,
                            "idx": c["idx"],
                            "attempt": n,
                            "run": None,
                            "started": c["last_started"] if last else None,
                            "transfer_syntax": c["transfer_syntax"] if last else None,
                            "association": None,
                            "result": None,
                            "status_code": None,
                            "message": None,
                            "elapsed_s": None,
                        }
                    )
        return sorted(rows, key=lambda r: (r["idx"], r["attempt"]))


class JournalRecorder:
    """Engine event subscriber that commits each step of `job_id` to the journal.

    Runs on the sending thread: every event is committed before the call returns.
    Journal write errors are logged once and never stop the send.
    """

    def __init__(self, journal: Journal, job_id: str):
        self.journal = journal
        self.job_id = job_id
        self.run = 0
        self._base: dict[int, int] = {}  # journal attempts before this run, per instance
        self._done: dict[int, int] | None = None  # journal attempts so far, per instance
        self._failed = False

    def __call__(self, event: ev.Event) -> None:
        """Record `event` (instance started or finished, job started or finished); ignore the others."""
        try:
            if isinstance(event, ev.InstanceStarted):
                self._started(event)
            elif isinstance(event, ev.InstanceFinished):
                self._finished(event)
            elif isinstance(event, ev.JobStarted):
                self._job_started()
            elif isinstance(event, ev.JobFinished):
                self._job_finished(event)
        except sqlite3.Error as exc:
            if not self._failed:
                LOGGER.error("Cannot write the send journal %s: %s", self.journal.path, exc)
            self._failed = True

    def _job_started(self) -> None:
        now = time.time()
        with self.journal._tx() as db:
            db.execute(
                "UPDATE jobs SET state = 'running', finished = NULL, pid = ?, host = ?, runs = runs + 1, "
                "updated = ? WHERE id = ?",
                (os.getpid(), socket.gethostname(), now, self.job_id),
            )
            row = db.execute("SELECT runs FROM jobs WHERE id = ?", (self.job_id,)).fetchone()
            self.run = row["runs"] if row else 1

    def _started(self, event: ev.InstanceStarted) -> None:
        """Mark the instance in flight: one autocommitted statement (the hot path)."""
        now = time.time()
        if self._done is None:  # one query per run instead of one per attempt
            with self.journal._lock:
                self._done = {
                    r[0]: r[1]
                    for r in self.journal._db.execute(
                        "SELECT idx, attempts FROM instances WHERE job = ? AND attempts > 0", (self.job_id,)
                    )
                }
        done = self._done.get(event.index, 0)
        self._done[event.index] = done + 1
        self._base.setdefault(event.index, done)
        with self.journal._lock:
            self.journal._db.execute(
                "UPDATE instances SET state = ?, attempts = ?, transfer_syntax = ?, "
                "first_started = COALESCE(first_started, ?), last_started = ? WHERE job = ? AND idx = ?",
                (InstanceState.IN_FLIGHT.value, done + 1, event.transfer_syntax, now, now, self.job_id, event.index),
            )

    def _finished(self, event: ev.InstanceFinished) -> None:
        """Record the outcome and this run's attempts of the instance in one transaction."""
        o = event.outcome
        now = time.time()
        base = self._base.get(event.index, 0)
        rows = [
            (
                self.job_id,
                event.index,
                base + a.attempt,
                self.run,
                a.started,
                a.transfer_syntax,
                a.association,
                a.result,
                a.status_code,
                a.message,
                a.elapsed_s,
            )
            for a in o.attempts_detail
        ]
        with self.journal._tx() as db:
            db.execute(
                "UPDATE instances SET state = ?, status = ?, status_code = ?, message = ?, "
                "transfer_syntax = COALESCE(?, transfer_syntax), finished = ?, "
                "sop_instance_uid = COALESCE(sop_instance_uid, ?), resumable = ? WHERE job = ? AND idx = ?",
                (
                    o.state,
                    o.status,
                    o.status_code,
                    o.message,
                    o.transfer_syntax,
                    now,
                    o.sop_instance_uid,
                    int(o.resumable),
                    self.job_id,
                    event.index,
                ),
            )
            if rows:
                db.executemany(
                    "INSERT OR REPLACE INTO attempts (job, idx, attempt, run, started, transfer_syntax, "
                    "association, result, status_code, message, elapsed_s) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

    def _job_finished(self, event: ev.JobFinished) -> None:
        with self.journal._tx() as db:
            db.execute(
                "UPDATE jobs SET state = ?, finished = ?, summary = ?, error = ?, updated = ? WHERE id = ?",
                (
                    "cancelled" if event.cancelled else "finished",
                    time.time(),
                    json.dumps(event.summary, default=str),
                    event.error,
                    time.time(),
                    self.job_id,
                ),
            )
