"""The failure report: every failed or warned instance of a send, as CSV, JSON or one HTML page.

Pure Python (no Qt), so it can run on a worker thread and be tested directly.
Per instance: file, patient ID (and name unless omitted), study / series / SOP
Instance UIDs, SOP class, state, status code and meaning, the PACS's Error
Comment, the message and hint, the transfer syntax tried (and converted from),
the strategy, the fallback steps and whether a resume sends it again (a failure that
never reached the PACS). Plus the profile used (no secrets: a
profile holds none), the negotiation summary, the counts and the time.
Every value in the HTML page is escaped.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from core.convert import syntax_label
from core.diagnostics import explain_status

from .wording import person_name_text

__all__ = ["build_failure_report", "write_failure_report", "REPORT_COLUMNS", "fallback_steps", "FORMATS"]

FORMATS = ("html", "csv", "json")

REPORT_COLUMNS = (
    "file",
    "patient_name",
    "patient_id",
    "study_instance_uid",
    "series_instance_uid",
    "sop_instance_uid",
    "sop_class",
    "sop_class_uid",
    "state",
    "status",
    "status_code",
    "status_meaning",
    "error_comment",
    "message",
    "hint",
    "transfer_syntax_tried",
    "converted_from",
    "stored_transfer_syntax",
    "strategy_used",
    "fallback_steps",
    "notes",
    "resumable",
)

_PROBLEM_STATUS = ("failure", "warning", "skipped")

#: Human labels of the profile's settings (the HTML page shows these, not the field names).
SETTING_LABELS = {
    "name": "Name",
    "remote_host": "Host",
    "remote_port": "Port",
    "remote_ae_title": "Called AE title (the PACS's)",
    "local_ae_title": "Calling AE title (ours)",
    "strategy": "Transfer-syntax strategy",
    "max_retries": "Fallback steps",
    "parallel_associations": "Parallel associations",
    "allow_lossy": "Lossy conversion allowed",
    "implicit_vr_only": "Implicit VR Little Endian only",
    "max_resends": "Re-sends per instance",
    "reconnect_attempts": "Reconnect attempts",
    "verify_arrival": "Arrival check after sending",
    "acse_timeout_s": "Association (ACSE) timeout, s",
    "dimse_timeout_s": "Response (DIMSE) timeout, s",
    "network_timeout_s": "Network timeout, s",
    "connect_timeout_s": "Connect timeout, s",
    "max_pdu_bytes": "Max PDU (what we accept), bytes",
    "tls_enabled": "DICOM TLS",
    "tls_verify_hostname": "TLS: verify the host name",
    "tls_ca_cert_file": "TLS: CA certificate file",
    "tls_client_cert_file": "TLS: client certificate file",
    "tls_client_key_file": "TLS: client key file",
    "tls_ca_cert_secret_name": "TLS: CA certificate secret ID",
    "tls_client_cert_secret_name": "TLS: client certificate secret ID",
    "tls_client_key_secret_name": "TLS: client key secret ID",
    "gcp_project_id": "Google Cloud project",
    "tls_key_password_keyring": "TLS: key passphrase keyring entry",
    "is_local_test": "Built-in local test PACS",
}
#: Profile entries the HTML page leaves out (bulky or internal).
_HIDDEN_SETTINGS = frozenset({"acceptance_map", "extra", "version"})


_JOB_COUNTS = (("total", "in all"), ("success", "stored"), ("warning", "warned"), ("failure", "failed or not sent"))


def setting_label(key: str) -> str:
    """The human label of a profile setting (``acse_timeout_s`` -> ``Association (ACSE) timeout, s``)."""
    return SETTING_LABELS.get(key) or key.replace("_", " ").capitalize()


def anonymous_path(path: str, patient_name: str = "") -> str:
    """`path` without the folders (which often name the patient): the file name, or a hash when it names them too.

    Args:
        path: the file's path.
        patient_name: the DICOM PN of the file's patient; a file name containing any of its
            components (2 characters or more, any case) becomes ``file-<12 hex digits><ext>``.
    """
    name = os.path.basename(path or "")
    parts = [x.strip().lower() for x in str(patient_name).replace("=", "^").split("^") if len(x.strip()) >= 2]
    if name and any(part in name.lower() for part in parts):
        ext = os.path.splitext(name)[1]
        return f"file-{hashlib.sha256(path.encode('utf-8', 'surrogateescape')).hexdigest()[:12]}{ext}"
    return name


def fallback_steps(sop_class_uid: str | None, associations: Sequence[dict[str, Any]]) -> list[str]:
    """What each association attempt did for one SOP class, in order.

    Returns:
        e.g. ``["#1 compression: accepted Implicit VR LE; rejected JPEG 2000 Lossless (transfer syntaxes not
        supported)"]``; associations that did not propose the class are left out, failed attempts are
        listed with their reason.
    """
    steps = []
    for n, rec in enumerate(associations, start=1):
        strategy = rec.get("strategy") or "-"
        proposed = [p for p in rec.get("proposed", []) if p.get("abstract_syntax") == sop_class_uid]
        if not proposed and rec.get("accepted"):
            continue
        acc = [
            syntax_label(a.get("transfer_syntax")) for a in rec.get("accepted", []) if a.get("abstract_syntax") == sop_class_uid
        ]
        rej = [
            f"{syntax_label(r.get('transfer_syntax'))} ({r.get('reason', 'rejected')})"
            for r in rec.get("rejected", [])
            if r.get("abstract_syntax") == sop_class_uid
        ]
        if not rec.get("accepted") and rec.get("outcome"):
            steps.append(f"#{n} {strategy}: association failed - {rec['outcome']}")
            continue
        parts = []
        if acc:
            parts.append("accepted " + ", ".join(acc))
        if rej:
            parts.append("rejected " + ", ".join(rej))
        steps.append(f"#{n} {strategy}: " + ("; ".join(parts) if parts else "no context for this SOP class"))
    return steps


def _report_entry(o: dict[str, Any], inst: Any, associations: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One failed or warned instance's entry (keys :data:`REPORT_COLUMNS`)."""
    code = o.get("status_code")
    expl = explain_status(int(code), o.get("error_comment")) if code is not None else None
    return {
        "file": o.get("path") or getattr(inst, "path", ""),
        "patient_name": person_name_text(getattr(inst, "patient_name", "") or ""),
        "patient_id": getattr(inst, "patient_id", "") or "",
        "study_instance_uid": getattr(inst, "study_instance_uid", "") or "",
        "series_instance_uid": getattr(inst, "series_instance_uid", "") or "",
        "sop_instance_uid": o.get("sop_instance_uid") or getattr(inst, "sop_instance_uid", "") or "",
        "sop_class": getattr(inst, "sop_class_name", "") or "",
        "sop_class_uid": o.get("sop_class_uid") or getattr(inst, "sop_class_uid", "") or "",
        "state": o.get("state") or "",
        "status": o.get("status") or "",
        "status_code": f"0x{int(code):04X}" if code is not None else "",
        "status_meaning": o.get("status_meaning") or (expl.meaning if expl else ""),
        "error_comment": o.get("error_comment") or "",
        "message": o.get("message") or "",
        "hint": expl.hint if expl else "",
        "transfer_syntax_tried": syntax_label(o["transfer_syntax"]) if o.get("transfer_syntax") else "",
        "converted_from": syntax_label(o["converted_from"]) if o.get("converted_from") else "",
        "stored_transfer_syntax": syntax_label(o.get("stored_syntax") or getattr(inst, "transfer_syntax", "")),
        "strategy_used": o.get("strategy_used") or "",
        "fallback_steps": fallback_steps(o.get("sop_class_uid") or getattr(inst, "sop_class_uid", ""), associations),
        "notes": list(o.get("notes") or []),
        "resumable": bool(o.get("resumable")),
    }


def _negotiation_entry(n: int, rec: dict[str, Any]) -> dict[str, Any]:
    """Association attempt `n` (from 1) as the report shows it: outcome, peer, accepted and rejected contexts."""
    return {
        "association": n,
        "strategy": rec.get("strategy"),
        "outcome": "established" if rec.get("accepted") and not rec.get("outcome") else (rec.get("outcome") or "failed"),
        "proposed": len(rec.get("proposed", [])),
        "accepted": [
            f"{a.get('abstract_syntax_name')}: {syntax_label(a.get('transfer_syntax'))}" for a in rec.get("accepted", [])
        ],
        "rejected": [
            f"{r.get('abstract_syntax_name')}: {syntax_label(r.get('transfer_syntax'))} - {r.get('reason', '')}"
            for r in rec.get("rejected", [])
        ],
        "peer_max_pdu": rec.get("peer_max_pdu"),
        "peer_implementation_class_uid": rec.get("peer_implementation_class_uid"),
        "peer_implementation_version_name": rec.get("peer_implementation_version_name"),
        "stored": rec.get("stored"),
    }


def _unreadable_entry(inst: Any) -> dict[str, Any]:
    """A file that could not be read or is not DICOM (keys :data:`REPORT_COLUMNS`)."""
    failed = getattr(inst, "status", "") == "failure"
    entry = dict.fromkeys(REPORT_COLUMNS, "")
    entry.update(
        file=getattr(inst, "path", "") or "",
        patient_name=person_name_text(getattr(inst, "patient_name", "") or ""),
        patient_id=getattr(inst, "patient_id", "") or "",
        state="unreadable" if failed else "not DICOM",
        status="failure" if failed else "skipped",
        message=getattr(inst, "reason", "") or ("cannot be read" if failed else "not a DICOM file"),
        fallback_steps=[],
        notes=list(getattr(inst, "notes", ()) or ()),
        resumable=False,
    )
    return entry


def build_failure_report(
    outcomes: Sequence[dict[str, Any]],
    instances: Sequence[Any],
    associations: Sequence[dict[str, Any]],
    profile: dict[str, Any],
    summary: dict[str, Any],
    started: float,
    finished: float,
    omit_patient: bool = False,
    job_id: str = "",
    jobs: Sequence[dict[str, Any]] = (),
    unreadable: Sequence[Any] = (),
) -> dict[str, Any]:
    """Assemble the report.

    Args:
        outcomes: the engine's outcome dicts, one per instance (for several sends: each
            instance's latest outcome), in order.
        instances: the matching :class:`core.scan.ScannedInstance` records (same order).
        associations: the sends' negotiation records.
        profile: the profile used, as a dict (a profile holds no secrets).
        summary: the counts.
        started / finished: epoch seconds (of the first send's start and the last one's end).
        omit_patient: leave patient names and IDs out, and the folders of file paths.
        job_id: the (last) job's identifier.
        jobs: the sends covered, each ``{"id", "started", "finished", "summary"}`` (epoch seconds).
        unreadable: scanner records of the files that could not be read or are not DICOM.

    Returns:
        ``{"generated", "job", "jobs", "profile", "summary", "negotiation", "instances"}``;
        ``instances`` holds the failed, warned, not sent and skipped entries, then the unreadable
        files (keys :data:`REPORT_COLUMNS`).
    """
    pairs = [
        (_report_entry(o, inst, associations), inst)
        for o, inst in zip(outcomes, instances, strict=True)
        if o.get("status") in _PROBLEM_STATUS
    ]
    pairs += [(_unreadable_entry(inst), inst) for inst in unreadable]
    if omit_patient:
        for entry, inst in pairs:
            entry["file"] = anonymous_path(entry["file"], getattr(inst, "patient_name", "") or "")
            entry["patient_name"] = ""
            entry["patient_id"] = ""
    entries = [entry for entry, _inst in pairs]
    negotiation = [_negotiation_entry(n, rec) for n, rec in enumerate(associations, start=1)]
    stamp = "%Y-%m-%dT%H:%M:%S%z"
    return {
        "generated": time.strftime(stamp),
        "job": {
            "id": job_id,
            "started": time.strftime(stamp, time.localtime(started)),
            "finished": time.strftime(stamp, time.localtime(finished)),
            "elapsed_s": round(finished - started, 3),
            "patient_data_omitted": omit_patient,
            "sends": len(jobs) or 1,
        },
        "jobs": [
            {
                "id": j.get("id", ""),
                "started": time.strftime(stamp, time.localtime(j.get("started", 0))),
                "finished": time.strftime(stamp, time.localtime(j.get("finished", 0))),
                "summary": dict(j.get("summary") or {}),
            }
            for j in jobs
        ],
        "profile": dict(profile),
        "summary": {**dict(summary), "unreadable": len(unreadable)},
        "negotiation": negotiation,
        "instances": entries,
    }


def _csv_text(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(REPORT_COLUMNS), extrasaction="ignore")
    w.writeheader()
    for e in report["instances"]:
        row = dict(e)
        row["fallback_steps"] = " | ".join(e.get("fallback_steps", []))
        row["notes"] = " | ".join(e.get("notes", []))
        w.writerow(row)
    return buf.getvalue()


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#1f2937;background:#fff}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #e5e7eb}
table{border-collapse:collapse;width:100%;font-size:.9em;margin-top:.5em}
th,td{border:1px solid #e5e7eb;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f3f4f6} tr:nth-child(even) td{background:#fafafa}
.failure{color:#b91c1c;font-weight:600} .warning{color:#b45309;font-weight:600}
.muted{color:#6b7280} code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em}
.kv td:first-child{width:16em;color:#4b5563} ul{margin:.2em 0;padding-left:1.2em}
.counts span{display:inline-block;margin-right:1.5em}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _html_header(report: dict[str, Any]) -> list[str]:
    """The page's head, the job's times and the counts."""
    s = report["summary"]
    job = report["job"]
    out = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>DICOM Courier failure report {_e(job.get('started'))}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        "<h1>DICOM Courier - failure report</h1>",
        f"<p class='muted'>Generated {_e(report['generated'])}. "
        + (f"{_e(job.get('sends'))} sends to this PACS, the first" if (job.get("sends") or 1) > 1 else "Send")
        + f" started {_e(job.get('started'))}, the last finished {_e(job.get('finished'))}"
        + (". Patient names, IDs and folder names are left out." if job.get("patient_data_omitted") else ".")
        + "</p>",
        "<p class='counts'>",
    ]
    apart = int(s.get("not_sent", 0) or 0) + int(s.get("not_reached", 0) or 0)  # failures said on their own
    counts = {**s, "failed_only": int(s.get("failure", 0) or 0) - apart}
    for label, key in (
        ("Total", "total"),
        ("Stored", "success"),
        ("With warnings", "warning"),
        ("Failed", "failed_only"),
        ("Not sent: the PACS could not be reached", "not_reached"),
        ("Not sent: the send was stopped", "not_sent"),
        ("Skipped", "skipped"),
        ("Unreadable or not DICOM", "unreadable"),
        ("Converted", "converted"),
        ("Associations", "associations"),
    ):
        if key in ("not_reached", "not_sent") and not counts.get(key):
            continue
        out.append(f"<span><b>{_e(counts.get(key, 0))}</b> {_e(label)}</span>")
    out.append("</p>")
    if len(report.get("jobs", [])) > 1:
        out.append("<h2>Sends covered</h2><table><tr><th>Job</th><th>Started</th><th>Finished</th><th>Counts</th></tr>")
        for j in report["jobs"]:
            js = j["summary"]
            counts = ", ".join(f"{js.get(k, 0)} {label}" for k, label in _JOB_COUNTS)
            out.append(
                f"<tr><td><code>{_e(j['id'])}</code></td><td>{_e(j['started'])}</td><td>{_e(j['finished'])}</td><td>{_e(counts)}</td></tr>"
            )
        out.append("</table>")
    out.append("<h2>PACS profile</h2><table class='kv'>")
    for key, value in report["profile"].items():
        if value in ("", None) or key in _HIDDEN_SETTINGS:
            continue
        shown = "yes" if value is True else "no" if value is False else value
        out.append(f"<tr><td>{_e(setting_label(key))}</td><td>{_e(shown)}</td></tr>")
    out.append("</table>")
    return out


def _html_instance_row(e: dict[str, Any], omit_patient: bool) -> str:
    """One failed or warned instance as a table row."""
    cls = "failure" if e["status"] == "failure" else "warning"
    patient = "" if omit_patient else (f"{_e(e['patient_name'])}<br><span class='muted'>ID {_e(e['patient_id'])}</span>")
    uids = (
        f"<span class='muted'>Study</span> <code>{_e(e['study_instance_uid'])}</code><br>"
        f"<span class='muted'>Series</span> <code>{_e(e['series_instance_uid'])}</code><br>"
        f"<span class='muted'>SOP</span> <code>{_e(e['sop_instance_uid'])}</code>"
    )
    status = f"<span class='{cls}'>{_e(e['state'])}</span>"
    if e.get("resumable"):
        status += "<br><span class='muted'>never reached the PACS; a resume sends it again</span>"
    if e["status_code"]:
        status += f"<br><code>{_e(e['status_code'])}</code> {_e(e['status_meaning'])}"
    what = _e(e["message"])
    if e["error_comment"]:
        what += f"<br><span class='muted'>PACS comment:</span> {_e(e['error_comment'])}"
    if e["hint"] and e["hint"] not in e["message"]:
        what += f"<br><span class='muted'>Hint:</span> {_e(e['hint'])}"
    for n in e.get("notes", []):
        what += f"<br><span class='muted'>Note:</span> {_e(n)}"
    ts = _e(e["transfer_syntax_tried"]) or "<span class='muted'>none</span>"
    if e["converted_from"]:
        ts = f"{_e(e['converted_from'])} → {ts}"
    ts += f"<br><span class='muted'>stored as {_e(e['stored_transfer_syntax'])}"
    ts += f"; strategy {_e(e['strategy_used'])}</span>" if e["strategy_used"] else "</span>"
    steps = "<ul>" + "".join(f"<li>{_e(x)}</li>" for x in e["fallback_steps"]) + "</ul>"
    return (
        f"<tr><td><code>{_e(e['file'])}</code></td><td>{patient}</td><td>{uids}</td>"
        f"<td>{_e(e['sop_class'])}<br><code class='muted'>{_e(e['sop_class_uid'])}</code></td>"
        f"<td>{status}</td><td>{what}</td><td>{ts}</td><td>{steps}</td></tr>"
    )


def _html_negotiation(n: dict[str, Any]) -> list[str]:
    """One association attempt: its outcome, the peer and the accepted and rejected contexts."""
    out = [
        f"<h3>Association {_e(n['association'])} - strategy {_e(n['strategy'])}: {_e(n['outcome'])}</h3>",
        "<table class='kv'>",
        f"<tr><td>Proposed contexts</td><td>{_e(n['proposed'])}</td></tr>",
        f"<tr><td>Peer max PDU</td><td>{_e(n['peer_max_pdu'])}</td></tr>",
        (
            f"<tr><td>Peer implementation</td><td>{_e(n['peer_implementation_version_name'])} "
            f"<code>{_e(n['peer_implementation_class_uid'])}</code></td></tr>"
        ),
        f"<tr><td>Stored over it</td><td>{_e(n['stored'])}</td></tr>",
    ]
    for key in ("accepted", "rejected"):
        items = "".join(f"<li>{_e(x)}</li>" for x in n[key]) or "<li class='muted'>none</li>"
        out.append(f"<tr><td>{key.capitalize()} ({len(n[key])})</td><td><ul>{items}</ul></td></tr>")
    out.append("</table>")
    return out


def _html_text(report: dict[str, Any]) -> str:
    out = _html_header(report)
    out.append(f"<h2>Instances and files not stored cleanly ({len(report['instances'])})</h2>")
    if not report["instances"]:
        out.append("<p>None: every instance was stored without warnings and every file could be read.</p>")
    else:
        out.append(
            "<table><tr><th>File</th><th>Patient</th><th>UIDs</th><th>SOP class</th><th>Status</th>"
            "<th>What happened</th><th>Transfer syntax</th><th>Fallback steps</th></tr>"
        )
        omit = bool(report["job"].get("patient_data_omitted"))
        out += [_html_instance_row(e, omit) for e in report["instances"]]
        out.append("</table>")
    out.append(f"<h2>Negotiation ({len(report['negotiation'])} association attempt(s))</h2>")
    for n in report["negotiation"]:
        out += _html_negotiation(n)
    out.append(
        "<p class='muted'>Status meanings: DICOM PS3.4 Annex B.2.3 and PS3.7 Annex C. "
        "Context results: PS3.8 9.3.3.2.</p></body></html>"
    )
    return "\n".join(out) + "\n"


def report_format(path: str) -> str:
    """``html``, ``csv`` or ``json`` from the file name (default ``json``)."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    return {"htm": "html", "html": "html", "csv": "csv"}.get(ext, "json")


def write_failure_report(path: str, report: dict[str, Any], fmt: str | None = None) -> str:
    """Write `report` to `path` atomically in `fmt` (default: from the extension); returns `path`.

    Raises:
        OSError: the file cannot be written.
    """
    fmt = fmt or report_format(path)
    if fmt == "csv":
        text = _csv_text(report)
    elif fmt == "html":
        text = _html_text(report)
    else:
        text = json.dumps(report, indent=2, default=str) + "\n"
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".report-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
