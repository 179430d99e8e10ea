"""The send journal: which instance went out, when, how, and what the peer said.

A SQLite database (WAL mode) with one row per job and one per instance, kept up to date by
:class:`JournalRecorder`, an engine event subscriber.

Durability contract (grouped commits):

* The recorder commits in groups: the in-flight markers and outcomes of the last 50 ms, or of
  256 outcomes, whichever comes first, in one transaction; sooner when the send pauses for
  5 ms (a slow peer: the commit then costs the send nothing and the group stays small); and
  always at the end of the job, on cancel, when an association opens or ends, and when the
  send flow ends in any way (an exception, Ctrl+C: :meth:`JournalRecorder.close` in a ``finally``).
* "stored" is written only after the PACS confirmed the C-STORE (Success or Warning status).
* After a crash or ``kill -9``, the journal holds every group committed before it; the
  instances of the last uncommitted group read back as pending or in flight and a resume sends
  them again: at most one group (256 instances, 50 ms of sending) is sent twice, which a PACS
  takes as the same SOP Instance UID stored again. A resume never loses an instance.
* The front end sees an instance's events only after the journal recorded them (the recorder
  passes them on after each commit), so nothing is shown stored that the journal did not record.
* A commit that fails (disk full, read-only file system, I/O error, the job taken over) stops
  the send before the next C-STORE (:attr:`JournalRecorder.stop`); the outcomes the journal
  could not record are reported as such (:meth:`JournalRecorder.honest`): a stored one becomes
  "outcome unknown: not recorded in the journal", and a resume sends it again.
* A power cut may also undo the last commits unless ``synchronous=FULL`` (see :class:`Journal`);
  that too can only make a resume send instances again.
* The WAL is checkpointed (and cut back) every 1 MB, so that on a nearly full disk the journal
  takes little more room than its data.

One runner per job: a job is run by one process at a time. :meth:`Journal.create_job` and
:meth:`Journal.claim` mark it running with this process's pid, host and a fresh token in the
same ``BEGIN IMMEDIATE`` transaction that checks that no live process holds it; a second claim
raises :class:`~core.errors.JobBusyError` naming the holder. The holder is alive when it is
this process still holding the token, or a live process of the same host (pid) that started
before it took the job (so a reused pid does not hold a job forever). A journal is per host:
a job marked running on another host reads as interrupted.

A damaged journal (``PRAGMA quick_check`` on open) is moved aside to
``journal.sqlite.corrupt-<UTC time>`` and a fresh one started (:attr:`Journal.set_aside`).

File names: a path that is valid UTF-8 is stored as text; one that is not (POSIX names are
bytes) is stored as a BLOB of its bytes (``os.fsencode``) and read back as the same ``str``
(``os.fsdecode``), so every file can be resumed.

Tables:

* ``jobs``: id, started, finished, state, profile, peer, options (JSON, no secrets), pid and
  host of the process that last ran it, runs, summary, error, lock_token and locked_since
  (the claim of the process running it).
* ``instances``: job, idx (input position), path, SOP Class/Instance UID, state, status,
  status code, message, transfer syntax, attempts, times.
* ``attempts``: one row per C-STORE attempt (result, status code, message, transfer syntax,
  duration); a row without result was cut short by a crash.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import events as ev
from .errors import JobBusyError, JournalWriteError
from .outcomes import STORED_STATES, InstanceOutcome, InstanceState, Status
from .report import readable

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
    "GROUP_S",
    "GROUP_MAX",
    "GROUP_IDLE_S",
]

APP_NAME = "dicom-courier"
SCHEMA_VERSION = 2

#: A group of journal writes is committed when its oldest write is this old (seconds)...
GROUP_S = 0.05
#: ... or when it holds this many outcomes, whichever comes first...
GROUP_MAX = 256
#: ... or when no event came for this long (seconds): the send waits for the peer.
GROUP_IDLE_S = 0.005

#: Instance states a ``resume`` sends again: never sent, sent without a recorded outcome, or outcome unknown;
#: a resume also sends ``failed`` rows marked ``resumable`` (the peer was unavailable, see
#: :attr:`core.outcomes.InstanceOutcome.resumable`; older journals wrote those ``not-sent``).
RESUME_STATES = (InstanceState.PENDING, InstanceState.IN_FLIGHT, InstanceState.UNKNOWN, InstanceState.NOT_SENT)
#: Instance states a ``retry`` sends again: the above plus failures (refused by the peer, unreadable then).
RETRY_STATES = (*RESUME_STATES, InstanceState.FAILED)
FINAL_OK_STATES = STORED_STATES

_SECRET_KEY = re.compile(r"password|passphrase|private_key|key_pem|token|api_key", re.I)
_SQLITE_MAGIC = b"SQLite format 3\x00"
_CORRUPT_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB (primary result codes)
_CHUNK = 1000  # rows read at a time when streaming a job
_WAL_PAGES = 256  # checkpoint the WAL when it holds this many pages (1 MB of 4 KiB pages)

#: Claim tokens this process holds (a job is ours while its row carries one of them).
_HELD: set[str] = set()
_HELD_LOCK = threading.Lock()

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
    updated REAL,
    lock_token TEXT,
    locked_since REAL
);
CREATE TABLE IF NOT EXISTS instances (
    job TEXT NOT NULL REFERENCES jobs(id),
    idx INTEGER NOT NULL,
    path TEXT,  -- text, or a BLOB of the name's bytes when they are not UTF-8
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

#: Columns added after version 1 (``ALTER TABLE`` on an older journal).
_ADDED_COLUMNS = {
    "jobs": (("lock_token", "TEXT"), ("locked_since", "REAL")),
    "instances": (("resumable", "INTEGER NOT NULL DEFAULT 0"),),
}


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


def _db_path(path: Any) -> str | bytes | None:
    """A file name as stored: text when it is valid UTF-8, else its bytes (a BLOB)."""
    if not isinstance(path, str) or not path:
        return None
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def _path_from_db(value: Any) -> str | None:
    """A stored file name back as the ``str`` the scanner gave (undecodable bytes as surrogates)."""
    if isinstance(value, bytes):
        return os.fsdecode(value)
    return value


def _text(value: str | None) -> str | None:
    """Text SQLite can store (it must be valid UTF-8): a message naming a non-UTF-8 file made readable."""
    return None if value is None else readable(value)


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


def _process_started(pid: int) -> float | None:
    """When process `pid` started, seconds since the epoch (Linux ``/proc``), or None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _holder_alive(row: sqlite3.Row) -> bool:
    """Whether the process that marked the job running (`row` of ``jobs``) still runs it."""
    if row["state"] not in ("running", "created"):
        return False
    if row["host"] != socket.gethostname():
        return False  # a journal is per host: another host's claim cannot be checked
    pid, token = row["pid"], row["lock_token"]
    if pid == os.getpid():
        if token is None:  # a version 1 row: ours while we live
            return True
        with _HELD_LOCK:
            return token in _HELD
    if not _pid_alive(pid):
        return False
    since = row["locked_since"]
    started = _process_started(pid)
    # the pid was reused when its process started after the claim (2 s: /proc's boot time is whole seconds)
    return not (since is not None and started is not None and started > since + 2.0)


def _is_corrupt(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _CORRUPT_CODES
    text = str(exc)
    return "malformed" in text or "not a database" in text


def _utc(t: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else "an unknown time"


@dataclass
class JobRecord:
    """One job as read back from the journal.

    Attributes:
        id / started / finished / profile / peer: as recorded (times in seconds since the epoch).
        state: ``running``, ``interrupted`` (its process died before the end),
            ``finished`` or ``cancelled``.
        options: the saved send options (``config``, ``strategy``...).
        counts: instances per state plus ``total``.
        pid / host / since: the process that runs (or last ran) it and when it took the job.
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
    pid: int | None = None
    host: str | None = None
    since: float | None = None

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


def _busy_error(row: sqlite3.Row) -> JobBusyError:
    since = row["locked_since"] or row["updated"]
    ago = f" ({time.time() - since:.0f} s ago)" if since else ""
    return JobBusyError(
        f"job {row['id']} is already being sent by process {row['pid']} on {row['host']} since {_utc(since)}{ago}; "
        "a job is sent by one process at a time: wait for it to end, or stop that process and resume",
        row["id"],
        row["pid"],
        row["host"],
        since,
    )


class Journal:
    """A journal file. Thread-safe; one connection per instance.

    Args:
        path: the SQLite file (created with its folder if missing); None = the default path.
        synchronous: SQLite ``synchronous`` pragma. ``NORMAL`` (the default, or
            ``$DICOM_COURIER_JOURNAL_SYNC``): each commit survives a crash or ``kill -9`` of the
            process; a power cut may undo the last few commits, which can only make a resume
            send those instances again (the stored state is written only after the PACS
            confirmed), never lose one. ``FULL`` fsyncs every commit, so the journal is exact
            even after a power cut.

    Attributes:
        path: the file.
        set_aside: where a damaged journal found at `path` was moved (a fresh one was started),
            else None; `damage` says what was wrong.

    Raises:
        sqlite3.Error / OSError: the file cannot be opened or created (locked, read-only, not
            a journal: a damaged file is set aside only when it has an SQLite header or is the
            default journal, never another file named by mistake).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, synchronous: str | None = None):
        self.path = os.fspath(path) if path is not None else default_journal_path()
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        self._lock = threading.RLock()
        self._sync = (synchronous or os.environ.get("DICOM_COURIER_JOURNAL_SYNC") or "NORMAL").upper()
        self._claims: dict[str, tuple[str, int]] = {}  # job -> (token, run) claimed through this object
        self._recorders: list[JournalRecorder] = []
        self.set_aside: str | None = None
        self.damage: str | None = None
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            if not _is_corrupt(exc) or not self._ours_to_set_aside():
                raise
            self._set_aside(str(exc))
            self._db = self._connect()

    # -- opening ------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """Open, check (``PRAGMA quick_check``) and bring the schema up to date."""
        db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout=30000")
            try:
                problems = [r[0] for r in db.execute("PRAGMA quick_check(5)")]
            except UnicodeDecodeError as exc:  # damage in the text quick_check quotes
                raise sqlite3.DatabaseError(f"database disk image is malformed (unreadable text: {exc.reason})") from exc
            if problems != ["ok"]:
                raise sqlite3.DatabaseError("database disk image is malformed: " + "; ".join(problems))
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if self._sync == 'FULL' else 'NORMAL'}")
            # a small WAL: on a nearly full disk the default (4 MB before a checkpoint) is what fills it
            db.execute(f"PRAGMA wal_autocheckpoint={_WAL_PAGES}")
            db.execute(f"PRAGMA journal_size_limit={_WAL_PAGES * 4096}")
            db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                for table, columns in _ADDED_COLUMNS.items():
                    have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                    for name, kind in columns:
                        if name not in have:
                            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except BaseException:
            db.close()
            raise
        return db

    def _ours_to_set_aside(self) -> bool:
        """A damaged file may be moved aside: it has an SQLite header (damage inside), or it is the default journal."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(_SQLITE_MAGIC))
        except OSError:
            return False
        return head == _SQLITE_MAGIC or os.path.abspath(self.path) == os.path.abspath(default_journal_path())

    def _set_aside(self, reason: str) -> None:
        """Move the damaged file (and its WAL) to ``<path>.corrupt-<UTC time>``; the caller starts a fresh one."""
        aside = f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        n = 1
        while os.path.exists(aside):
            n += 1
            aside = f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{n}"
        os.rename(self.path, aside)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                if suffix == "-wal":
                    os.rename(self.path + suffix, aside + suffix)
                else:
                    os.unlink(self.path + suffix)
        self.set_aside, self.damage = aside, reason
        LOGGER.warning("The send journal %s is damaged (%s): moved to %s, a fresh journal is started", self.path, reason, aside)

    # -- plumbing -----------------------------------------------------------------------------------

    class _Tx:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` under the journal's lock; a failed commit rolls back."""

        def __init__(self, journal: Journal):
            self.j = journal

        def __enter__(self) -> sqlite3.Connection:
            self.j._lock.acquire()
            try:
                self.j._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.j._lock.release()
                raise
            return self.j._db

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            try:
                if exc_type is None:
                    try:
                        self.j._db.execute("COMMIT")
                    except BaseException:
                        self._rollback()
                        raise
                else:
                    self._rollback()
            finally:
                self.j._lock.release()

        def _rollback(self) -> None:
            try:
                if self.j._db.in_transaction:
                    self.j._db.execute("ROLLBACK")
            except sqlite3.Error as exc:  # the original error says more
                LOGGER.debug("Rollback failed: %s", exc)

    def _tx(self) -> Journal._Tx:
        return Journal._Tx(self)

    def close(self) -> None:
        """Commit what the recorders hold, give back the jobs this object claimed, close the connection."""
        for rec in list(self._recorders):
            rec.close()
        for job_id in list(self._claims):
            self.release(job_id)
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- one runner per job ------------------------------------------------------------------------

    def claim(self, job_id: str) -> int:
        """Mark `job_id` running by this process, atomically; returns the run number (1 for the first run).

        The check that no live process holds the job and the mark are one ``BEGIN IMMEDIATE``
        transaction, so of several processes claiming at once exactly one wins.

        Raises:
            KeyError: no such job.
            JobBusyError: a live process holds the job (its pid, host and since when are named).
            sqlite3.Error: the journal cannot be written.
        """
        token = uuid.uuid4().hex
        now = time.time()
        with self._tx() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            if _holder_alive(row):
                raise _busy_error(row)
            db.execute(
                "UPDATE jobs SET state = 'running', finished = NULL, pid = ?, host = ?, lock_token = ?, locked_since = ?, "
                "runs = runs + 1, updated = ? WHERE id = ?",
                (os.getpid(), socket.gethostname(), token, now, now, job_id),
            )
            run = int(row["runs"] or 0) + 1
        self._hold(job_id, token, run)
        return run

    def _hold(self, job_id: str, token: str, run: int) -> None:
        with _HELD_LOCK:
            _HELD.add(token)
        self._claims[job_id] = (token, run)

    def release(self, job_id: str, state: str | None = None) -> None:
        """Give back a job this object claimed: still marked running, it becomes ``interrupted``.

        Args:
            job_id: the job.
            state: the state to restore when nothing was sent after the claim (the run is not
                counted); None marks a job still running ``interrupted``.

        Never raises: a journal that cannot be written any more is logged, and the job reads as
        interrupted anyway once this process no longer holds it.
        """
        claim = self._claims.pop(job_id, None)
        if claim is None:
            return
        with _HELD_LOCK:
            _HELD.discard(claim[0])
        try:
            with self._tx() as db:
                if state is not None:
                    db.execute(
                        "UPDATE jobs SET state = ?, runs = runs - 1, lock_token = NULL WHERE id = ? AND lock_token = ?",
                        (state, job_id, claim[0]),
                    )
                db.execute(
                    "UPDATE jobs SET state = CASE state WHEN 'running' THEN 'interrupted' ELSE state END, "
                    "lock_token = NULL, updated = ? WHERE id = ? AND lock_token = ?",
                    (time.time(), job_id, claim[0]),
                )
        except sqlite3.Error as exc:
            LOGGER.info("Cannot mark job %s as no longer running in %s: %s", job_id, self.path, exc)

    def claimed(self, job_id: str) -> tuple[str, int] | None:
        """``(token, run)`` when this object holds `job_id`, else None."""
        return self._claims.get(job_id)

    # -- writing ------------------------------------------------------------------------------------

    def create_job(
        self, job_id: str, profile: str | None, peer: str | None, options: dict[str, Any], instances: Iterable[Any]
    ) -> None:
        """Record a new job and its instances, all pending, claimed by this process (see :meth:`claim`).

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
        token = uuid.uuid4().hex
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (id, started, state, profile, peer, options, pid, host, runs, updated, lock_token, "
                "locked_since) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (
                    job_id,
                    now,
                    _text(profile),
                    _text(peer),
                    json.dumps(public_options(options), default=str),
                    os.getpid(),
                    socket.gethostname(),
                    now,
                    token,
                    now,
                ),
            )
            db.executemany(
                "INSERT INTO instances (job, idx, path, sop_class_uid, sop_instance_uid, size, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        job_id,
                        it.index,
                        _db_path(it.source),
                        it.inst.sop_class_uid or None,
                        it.inst.sop_instance_uid or None,
                        it.inst.size,
                        InstanceState.PENDING.value,
                    )
                    for it in instances
                ),
            )
        self._hold(job_id, token, 1)

    def recorder(
        self, job_id: str, forward: ev.EventCallback | None = None, cancel: threading.Event | None = None
    ) -> JournalRecorder:
        """An engine event callback that records `job_id`'s progress in groups (see :class:`JournalRecorder`)."""
        rec = JournalRecorder(self, job_id, forward, cancel)
        self._recorders.append(rec)
        return rec

    # -- reading ------------------------------------------------------------------------------------

    def _job_from_row(self, row: sqlite3.Row, counts: dict[str, int]) -> JobRecord:
        state = row["state"]
        if state in ("running", "created") and not _holder_alive(row):
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
            row["pid"],
            row["host"],
            row["locked_since"],
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

    def counts(self, job_id: str) -> dict[str, int]:
        """Instances of `job_id` per state, plus ``total``."""
        return self._counts([job_id])[job_id]

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
        return [row for chunk in self._chunks(job_id, states) for row in chunk]

    def iter_instances(self, job_id: str, states: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """As :meth:`instances`, read :data:`_CHUNK` rows at a time (memory flat in the job's size)."""
        for chunk in self._chunks(job_id, states):
            yield from chunk

    def _chunks(self, job_id: str, states: Sequence[str] | None) -> Iterator[list[dict[str, Any]]]:
        sql = "SELECT * FROM instances WHERE job = ? AND idx > ?"
        extra: list[Any] = []
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            extra = list(states)
        last = -1
        while True:
            with self._lock:
                rows = self._db.execute(sql + f" ORDER BY idx LIMIT {_CHUNK}", [job_id, last, *extra]).fetchall()
            if not rows:
                return
            chunk = [dict(r) for r in rows]
            for r in chunk:
                r["path"] = _path_from_db(r["path"])
            last = chunk[-1]["idx"]
            yield chunk

    def attempts(self, job_id: str, idx: int | None = None) -> list[dict[str, Any]]:
        """Attempt rows of a job (or of one instance), in order.

        Attempts are written with the instance's outcome; those of an instance whose
        outcome never came (a crash) appear with ``result`` None, the last one with
        its start time and transfer syntax.
        """
        if idx is None:
            return [a for chunk in self._attempt_chunks(job_id) for _, rows in chunk for a in rows]
        return self._attempts_between(job_id, idx - 1, idx)

    def iter_attempts(self, job_id: str) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """``(idx, attempt rows)`` of every instance of `job_id` with attempts, in order, read in chunks."""
        for chunk in self._attempt_chunks(job_id):
            yield from chunk

    def _attempt_chunks(self, job_id: str) -> Iterator[list[tuple[int, list[dict[str, Any]]]]]:
        last = -1
        while True:
            with self._lock:
                row = self._db.execute(
                    f"SELECT MAX(idx) FROM (SELECT idx FROM instances WHERE job = ? AND idx > ? ORDER BY idx LIMIT {_CHUNK})",
                    (job_id, last),
                ).fetchone()
            if row[0] is None:
                return
            rows = self._attempts_between(job_id, last, row[0])
            grouped: dict[int, list[dict[str, Any]]] = {}
            for a in rows:
                grouped.setdefault(a["idx"], []).append(a)
            yield sorted(grouped.items())
            last = row[0]

    def _attempts_between(self, job_id: str, after: int, upto: int) -> list[dict[str, Any]]:
        """Attempt rows of the instances with ``after < idx <= upto``, cut-short ones included, in order."""
        where = "job = ? AND idx > ? AND idx <= ?"
        args = (job_id, after, upto)
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


class _StopSignal(threading.Event):
    """The engine's cancel: set by the user's `cancel`, or by the recorder when the journal fails."""

    def __init__(self, cancel: threading.Event | None):
        super().__init__()
        self.user = cancel or threading.Event()

    def is_set(self) -> bool:
        """True once either is set."""
        return super().is_set() or self.user.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until either is set (polls the user's event every 0.1 s)."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = 0.1 if end is None else min(0.1, end - time.monotonic())
            if left <= 0:
                break
            super().wait(left)
        return self.is_set()


_STARTED_SQL = (
    "UPDATE instances SET state = ?, attempts = attempts + 1, transfer_syntax = ?, "
    "first_started = COALESCE(first_started, ?), last_started = ? WHERE job = ? AND idx = ?"
)
_FINISHED_SQL = (
    "UPDATE instances SET state = ?, status = ?, status_code = ?, message = ?, "
    "transfer_syntax = COALESCE(?, transfer_syntax), finished = ?, "
    "sop_instance_uid = COALESCE(sop_instance_uid, ?), resumable = ? WHERE job = ? AND idx = ?"
)
# an attempt's number in the job: the instance's attempts so far (all its starts are recorded
# first) minus this run's tries plus the attempt's number in this run
_ATTEMPT_SQL = (
    "INSERT OR REPLACE INTO attempts (job, idx, attempt, run, started, transfer_syntax, "
    "association, result, status_code, message, elapsed_s) "
    "VALUES (?, ?, (SELECT attempts FROM instances WHERE job = ? AND idx = ?) - ? + ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class JournalRecorder:
    """Engine event subscriber that records `job_id` in the journal in groups, then passes the events on.

    Events are queued; the queue is committed in one transaction when its oldest event is
    :data:`GROUP_S` old or no event came for :data:`GROUP_IDLE_S` (a background thread sees to
    it), when it holds :data:`GROUP_MAX` outcomes, or at once for an event other than an
    instance's start or end (job start and end, associations). After each commit the group's events go to `forward`, in order: the
    front end never sees an outcome the journal has not recorded. The recorder keeps nothing
    per instance beyond the current group.

    Args:
        journal: the journal (the job must exist; it is claimed at ``JobStarted`` unless this
            journal object claimed it already).
        job_id: the job.
        forward: receives every event after the journal recorded it (any thread).
        cancel: the user's cancel; :attr:`stop` is set by it or by a journal failure.

    Attributes:
        stop: pass it to the engine as its cancel.
        error: the :class:`~core.errors.JournalWriteError` that stopped the send, or None.
        lost: indexes of instances the PACS confirmed but the journal could not record.
    """

    def __init__(
        self,
        journal: Journal,
        job_id: str,
        forward: ev.EventCallback | None = None,
        cancel: threading.Event | None = None,
    ):
        self.journal = journal
        self.job_id = job_id
        self.forward = forward
        self.stop = _StopSignal(cancel)
        self.error: JournalWriteError | None = None
        self.lost: set[int] = set()
        self.groups = 0
        self._queue: list[ev.Event] = []
        self._outcomes = 0
        self._oldest = 0.0
        self._newest = 0.0
        self._cond = threading.Condition()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._held_back: ev.JobFinished | None = None

    @property
    def run(self) -> int:
        """This run's number in the job (1 for the first send; 0 before the job is claimed)."""
        claim = self.journal.claimed(self.job_id)
        return claim[1] if claim else 0

    # -- events in ------------------------------------------------------------------------------

    def __call__(self, event: ev.Event) -> None:
        """Queue `event`; commit the group now when it is due (see the class doc)."""
        grouped = isinstance(event, ev.InstanceStarted | ev.InstanceFinished)
        with self._cond:
            self._newest = time.monotonic()
            if not self._queue:
                self._oldest = self._newest
            self._queue.append(event)
            if isinstance(event, ev.InstanceFinished):
                self._outcomes += 1
            if grouped and self._outcomes < GROUP_MAX and not self._closed:
                if len(self._queue) == 1:
                    self._start_thread()
                    self._cond.notify()
                return
        self.flush()

    def _start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"journal-{self.job_id}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        """The background commit of a group that reached :data:`GROUP_S`."""
        while True:
            with self._cond:
                while not self._closed:
                    if self._queue:
                        left = min(self._oldest + GROUP_S, self._newest + GROUP_IDLE_S) - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                    else:
                        self._cond.wait()
                if self._closed:
                    return
            try:
                self.flush()
            except Exception:  # a front end's bug must not end the journal's commits
                LOGGER.exception("Passing on journal events failed")

    def flush(self) -> None:
        """Commit the queued group in one transaction, then pass its events on (a failure stops the send)."""
        with self._flush_lock:
            with self._cond:
                batch, self._queue = self._queue, []
                self._outcomes = 0
            if not batch:
                return
            if self.error is None:
                try:
                    self._commit(batch)
                except (sqlite3.Error, OSError, JournalWriteError) as exc:
                    self._fail(exc)
            if self.error is not None:
                self._mark_lost(batch)
            if self.forward is not None:
                failed: Exception | None = None
                for event in batch:
                    try:
                        self._pass_on(event)
                    except Exception as exc:  # a front end's bug: the other events still go out
                        failed = failed or exc
                if failed is not None:
                    raise failed

    def close(self) -> None:
        """Commit what is queued and end the background thread (idempotent; called by :meth:`Journal.close`)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self.flush()
        if self in self.journal._recorders:
            self.journal._recorders.remove(self)

    # -- the journal ----------------------------------------------------------------------------

    def _commit(self, batch: list[ev.Event]) -> None:
        """Write `batch` in one transaction: in-flight markers, then outcomes and attempts, then the job's end."""
        if any(isinstance(e, ev.JobStarted) for e in batch) and self.journal.claimed(self.job_id) is None:
            try:
                self.journal.claim(self.job_id)  # a job made by another Journal object
            except (KeyError, JobBusyError) as exc:
                raise JournalWriteError(f"cannot run job {self.job_id}: {exc}") from exc
        now = time.time()
        started, finished, attempts = [], [], []
        ended: ev.JobFinished | None = None
        for e in batch:
            if isinstance(e, ev.InstanceStarted):
                started.append((InstanceState.IN_FLIGHT.value, e.transfer_syntax, now, now, self.job_id, e.index))
            elif isinstance(e, ev.InstanceFinished):
                o = e.outcome
                finished.append(
                    (
                        _value(o.state),
                        _value(o.status),
                        o.status_code,
                        _text(o.message),
                        o.transfer_syntax,
                        now,
                        o.sop_instance_uid,
                        int(o.resumable),
                        self.job_id,
                        e.index,
                    )
                )
                attempts += [
                    (
                        self.job_id,
                        e.index,
                        self.job_id,
                        e.index,
                        o.tries,
                        a.attempt,
                        self.run,
                        a.started,
                        a.transfer_syntax,
                        a.association,
                        _value(a.result),
                        a.status_code,
                        _text(a.message),
                        a.elapsed_s,
                    )
                    for a in o.attempts_detail
                ]
            elif isinstance(e, ev.JobFinished):
                ended = e
        claim = self.journal.claimed(self.job_id)
        with self.journal._tx() as db:
            if claim is not None:  # still ours? (the heartbeat of `updated` too)
                cur = db.execute("UPDATE jobs SET updated = ? WHERE id = ? AND lock_token = ?", (now, self.job_id, claim[0]))
                if cur.rowcount != 1:
                    raise JournalWriteError(f"job {self.job_id} was taken over by another process")
            if started:
                db.executemany(_STARTED_SQL, started)
            if finished:
                db.executemany(_FINISHED_SQL, finished)
            if attempts:
                db.executemany(_ATTEMPT_SQL, attempts)
            if ended is not None:
                db.execute(
                    "UPDATE jobs SET state = ?, finished = ?, summary = ?, error = ?, updated = ?, lock_token = NULL "
                    "WHERE id = ?",
                    (
                        "cancelled" if ended.cancelled else "finished",
                        now,
                        json.dumps(ended.summary, default=str),
                        _text(ended.error),
                        now,
                        self.job_id,
                    ),
                )
        self.groups += 1

    def _fail(self, exc: BaseException) -> None:
        """Remember the first failure and stop the send."""
        why = exc.message if isinstance(exc, JournalWriteError) else str(exc)
        self.error = JournalWriteError(
            f"cannot write the send journal {self.journal.path} ({why}): the send stops; "
            f"job {self.job_id} can be resumed once the journal can be written"
        )
        LOGGER.error("%s", self.error.message)
        self.stop.set()
        if self.forward is not None:
            self.forward(ev.JournalFailed(self.journal.path, self.error.message))

    def _mark_lost(self, batch: list[ev.Event]) -> None:
        for e in batch:
            if isinstance(e, ev.InstanceFinished) and e.outcome.state in STORED_STATES:
                self.lost.add(e.index)

    # -- events out -----------------------------------------------------------------------------

    def _pass_on(self, event: ev.Event) -> None:
        """Forward `event`; after a failure, outcomes as :meth:`honest` says and the job's end held back."""
        assert self.forward is not None
        if self.error is not None:
            if isinstance(event, ev.InstanceFinished):
                event = replace(event, outcome=self.honest(event.outcome))
            elif isinstance(event, ev.JobFinished):
                self._held_back = event  # the send flow passes on the honest one (see settle)
                return
        self.forward(event)

    def honest(self, outcome: InstanceOutcome) -> InstanceOutcome:
        """`outcome` as the journal knows it: stored but not recorded becomes "outcome unknown"; cancelled says why.

        Unchanged while the journal works.
        """
        if self.error is None:
            return outcome
        if outcome.index in self.lost and outcome.state in STORED_STATES:
            return replace(
                outcome,
                status=Status.FAILURE,
                state=InstanceState.UNKNOWN,
                message=f"outcome not recorded: the PACS answered {_status(outcome.status_code)} but the journal could not "
                "be written; a resume sends it again",
            )
        if outcome.state == InstanceState.NOT_SENT and not self.stop.user.is_set() and outcome.message.endswith("cancelled"):
            return replace(outcome, message="not sent: the journal could not be written, so the send was cancelled")
        return outcome

    def settle(self, result: Any) -> None:
        """After the engine ran: make `result` (a :class:`core.engine.JobResult`) say what the journal knows.

        With a journal failure, each outcome becomes :meth:`honest`, ``error`` names the failure,
        ``cancelled`` is only the user's, and the job's end is passed on with those counts.
        """
        if self.error is None:
            return
        result.outcomes = [self.honest(o) for o in result.outcomes]
        result.error = result.error or self.error.message
        result.cancelled = self.stop.user.is_set()
        if self.forward is not None and self._held_back is not None:
            self._held_back = None
            self.forward(ev.JobFinished(result.summary(), result.error, result.cancelled))


def _status(code: int | None) -> str:
    return "with no status" if code is None else f"0x{code:04X}"


def _value(v: Any) -> Any:
    """A StrEnum member as its plain string."""
    return getattr(v, "value", v)


def add_set_aside_event(journal: Journal, on_event: Callable[[ev.Event], None]) -> None:
    """Tell `on_event` when `journal` replaced a damaged file (:class:`~core.events.JournalSetAside`)."""
    if journal.set_aside and journal.damage:
        on_event(ev.JournalSetAside(journal.path, journal.set_aside, journal.damage))
