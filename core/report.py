r"""Send reports as JSON or CSV: one entry per input file, in scan order.

JSON: ``{"summary": {...}, "instances": [...], "associations": [...], "job": {...}}``.
CSV: one row per instance with the same columns as the JSON instance entries.
No secret ever goes into a report: the job section names the peer, never TLS material.

Reports are streamed: the instance entries are produced one at a time from the outcomes (or
the journal's rows) and written as they come, so writing a report of 200,000 instances takes
no more memory than one of 20 (:func:`write_report`).

File names that are not valid UTF-8 (a POSIX name is bytes; Python holds the undecodable
bytes as lone surrogates, PEP 383) cannot be written as text as they are. Every text value
of an entry is written in a readable form, the undecodable bytes as ``\xNN``
(:func:`readable`), and the path also in an exact form: ``path_b64``, the base64 of the
name's bytes (:func:`path_bytes_b64`), present only when the name is not valid UTF-8
(an empty CSV cell otherwise). ``base64.b64decode(entry["path_b64"])`` gives back the very
bytes to open the file with.
"""

from __future__ import annotations

import base64
import csv
import itertools
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .outcomes import InstanceOutcome, Negotiation

__all__ = [
    "write_report",
    "INSTANCE_COLUMNS",
    "OPTIONAL_COLUMNS",
    "build_report",
    "report_path_problem",
    "readable",
    "path_bytes_b64",
    "Entries",
]

INSTANCE_COLUMNS = (
    "path",
    "status",
    "message",
    "status_code",
    "sop_class_uid",
    "sop_instance_uid",
    "transfer_syntax",
    "converted_from",
    "strategy_used",
    "state",
    "error_comment",
    "notes",
    "tries",
    "stored_syntax",
)

#: Keys the entries of a send's report (those with a ``state``) may have beyond :data:`INSTANCE_COLUMNS`:
#: a streamed CSV report has them all in its header, as the rows are written before all are known.
OPTIONAL_COLUMNS = (
    "association",
    "attempts_detail",
    "path_b64",
    "patient_id",
    "series_instance_uid",
    "size",
    "status_meaning",
    "study_instance_uid",
    "verified",
)


def readable(text: str) -> str:
    r"""`text` as valid Unicode: bytes a file name held that are not UTF-8 become ``\xNN``.

    Args:
        text: any string, possibly holding lone surrogates (``os.fsdecode`` of a non-UTF-8 name).

    Returns:
        `text` itself when it is valid Unicode, else its readable rendering (never raises).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate that is not an escaped byte
            raw = text.encode("utf-8", "backslashreplace")
        return raw.decode("utf-8", "backslashreplace")
    return text


def path_bytes_b64(path: str | None) -> str | None:
    """The exact bytes of `path` in base64 when it is not valid UTF-8, else None (the path says it all)."""
    if not path:
        return None
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return base64.b64encode(os.fsencode(path)).decode("ascii")
    return None


def _clean(value: Any) -> Any:
    """`value` with every string readable (recursively through lists and dicts)."""
    if isinstance(value, str):
        return readable(value)
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _plain(record: Any) -> dict[str, Any]:
    """A typed record (``to_dict()``) or an entry that is a dict already."""
    return record.to_dict() if hasattr(record, "to_dict") else dict(record)


def _entry(record: Any, omit_patient: bool) -> dict[str, Any]:
    """One instance entry of the report: no index, text readable, the exact path when needed."""
    entry = {k: v for k, v in _plain(record).items() if k != "index"}
    if omit_patient:
        entry.pop("patient_id", None)
        entry.pop("patient_name", None)
    exact = path_bytes_b64(entry.get("path"))
    entry = _clean(entry)
    if exact:
        entry["path_b64"] = exact
    return entry


class Entries:
    """The report's instance entries, made one at a time from `records` each time they are iterated.

    Args:
        records: :class:`~core.outcomes.InstanceOutcome` records or entry dicts, in scan order;
            a sequence (iterated again on each pass) or a callable returning a fresh iterator.
        omit_patient: drop patient IDs and names.
    """

    def __init__(self, records: Sequence[Any] | Callable[[], Iterable[Any]], omit_patient: bool = False):
        self._records = records
        self._omit_patient = omit_patient

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Each entry in order (see :func:`_entry`)."""
        records = self._records() if callable(self._records) else self._records
        for record in records:
            yield _entry(record, self._omit_patient)


def build_report(
    outcomes: Sequence[InstanceOutcome | dict[str, Any]] | Callable[[], Iterable[Any]],
    summary: dict[str, Any],
    associations: Sequence[Negotiation | dict[str, Any]],
    job: dict[str, Any] | None = None,
    omit_patient: bool = False,
) -> dict[str, Any]:
    """Assemble the report (see module doc); the instance entries are made when written.

    Args:
        outcomes: one per instance, in scan order: :class:`~core.outcomes.InstanceOutcome`
            records, or entries that are dicts already (a dry run's plans, a journal's rows);
            or a callable returning them one at a time (a journal read in chunks).
        summary: the counts.
        associations: the negotiation records.
        job: the job section (id, peer, calling AE title, times...).
        omit_patient: drop patient IDs.

    Returns:
        ``{"summary", "instances", "associations", "job"}``; ``instances`` is an
        :class:`Entries` (iterate it for the entry dicts; :func:`write_report` streams it).
    """
    return {
        "summary": dict(summary),
        "instances": Entries(outcomes, omit_patient),
        "associations": [_clean(_plain(a)) for a in associations],
        "job": _clean(job or {}),
    }


def report_path_problem(path: str) -> str:
    """Why a report cannot be written at `path` (checked before a send starts), or ``""``."""
    if os.path.isdir(path):
        return f"report {path}: this is a folder; give a file name ending in .json or .csv"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"report {path}: the folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"report {path}: the folder {folder} is not writable"
    if not path.lower().endswith((".json", ".csv")):
        return f"report {path}: the file name must end in .json or .csv"
    return ""


def write_report(path: str | os.PathLike[str], report: dict[str, Any]) -> None:
    """Write `report` to `path` atomically (temporary file, then rename); ``.csv`` gives CSV, anything else JSON.

    The instance entries are written one at a time as `report["instances"]` yields them
    (an :class:`Entries` from :func:`build_report`, or a list of entry dicts).

    Raises:
        OSError: the file cannot be written (the temporary file is removed).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".report-", suffix=".tmp")
    instances = report.get("instances", [])
    if not isinstance(instances, Entries):
        instances = Entries(list(instances))
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            if path.lower().endswith(".csv"):
                _write_csv(f, instances)
            else:
                _write_json(f, report, instances)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _indented(value: Any, prefix: str) -> str:
    """`value` as ``json.dump(indent=2)`` writes it at the nesting that `prefix` indents."""
    return json.dumps(value, indent=2, default=str).replace("\n", "\n" + prefix)


def _write_json(f: Any, report: dict[str, Any], instances: Iterable[dict[str, Any]]) -> None:
    """The same text as ``json.dump(report, indent=2)``, the instance entries streamed."""
    f.write("{\n")
    first_key = True
    for key, value in report.items():
        f.write(("" if first_key else ",\n") + f"  {json.dumps(key)}: ")
        first_key = False
        if key != "instances":
            f.write(_indented(_clean(value), "  "))
            continue
        count = 0
        for entry in instances:
            f.write(("[\n    " if count == 0 else ",\n    ") + _indented(entry, "    "))
            count += 1
        f.write("\n  ]" if count else "[]")
    f.write("\n}\n")


def _write_csv(f: Any, instances: Iterable[dict[str, Any]]) -> None:
    """One row per entry: :data:`INSTANCE_COLUMNS`, the first entry's other keys, a send's :data:`OPTIONAL_COLUMNS`."""
    entries = iter(instances)
    first = next(entries, None)
    optional = OPTIONAL_COLUMNS if first is None or "state" in first else ()
    extra = sorted((set(first or {}) | set(optional)) - set(INSTANCE_COLUMNS))
    writer = csv.DictWriter(f, fieldnames=[*INSTANCE_COLUMNS, *extra], extrasaction="ignore")
    writer.writeheader()
    if first is None:
        return
    for inst in itertools.chain((first,), entries):
        row = dict(inst)
        if isinstance(row.get("notes"), list):
            row["notes"] = " | ".join(row["notes"])
        if isinstance(row.get("attempts_detail"), list):  # one JSON list per cell
            row["attempts_detail"] = json.dumps(row["attempts_detail"], default=str)
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
