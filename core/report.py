"""Send reports as JSON or CSV: one entry per input file, in scan order.

JSON: ``{"summary": {...}, "instances": [...], "associations": [...], "job": {...}}``.
CSV: one row per instance with the same columns as the JSON instance entries.
No secret ever goes into a report: the job section names the peer, never TLS material.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

from .outcomes import InstanceOutcome, Negotiation

__all__ = ["write_report", "INSTANCE_COLUMNS", "build_report", "report_path_problem"]

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


def _plain(record: Any) -> dict[str, Any]:
    """A typed record (``to_dict()``) or an entry that is a dict already."""
    return record.to_dict() if hasattr(record, "to_dict") else dict(record)


def build_report(
    outcomes: Sequence[InstanceOutcome | dict[str, Any]],
    summary: dict[str, Any],
    associations: Sequence[Negotiation | dict[str, Any]],
    job: dict[str, Any] | None = None,
    omit_patient: bool = False,
) -> dict[str, Any]:
    """Assemble the report dict (see module doc).

    Args:
        outcomes: one per instance: :class:`~core.outcomes.InstanceOutcome` records, or
            entries that are dicts already (a dry run's plans, a journal's rows).
        summary: the counts.
        associations: the negotiation records.
        job: the job section (id, peer, calling AE title, times...).
        omit_patient: drop patient IDs.

    Returns:
        ``{"summary", "instances", "associations", "job"}``.
    """
    instances = []
    for o in outcomes:
        entry = {k: v for k, v in _plain(o).items() if k != "index"}
        if omit_patient:
            entry.pop("patient_id", None)
            entry.pop("patient_name", None)
        instances.append(entry)
    return {"summary": dict(summary), "instances": instances, "associations": [_plain(a) for a in associations], "job": job or {}}


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
    """Write `report` to `path` atomically; ``.csv`` gives CSV, anything else JSON.

    Raises:
        OSError: the file cannot be written.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".report-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            if path.lower().endswith(".csv"):
                _write_csv(f, report["instances"])
            else:
                json.dump(report, f, indent=2, default=str)
                f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_csv(f: Any, instances: Sequence[dict[str, Any]]) -> None:
    extra = sorted({k for i in instances for k in i} - set(INSTANCE_COLUMNS))
    writer = csv.DictWriter(f, fieldnames=[*INSTANCE_COLUMNS, *extra], extrasaction="ignore")
    writer.writeheader()
    for inst in instances:
        row = dict(inst)
        if isinstance(row.get("notes"), list):
            row["notes"] = " | ".join(row["notes"])
        if isinstance(row.get("attempts_detail"), list):  # one JSON list per cell
            row["attempts_detail"] = json.dumps(row["attempts_detail"], default=str)
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
