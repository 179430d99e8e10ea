"""CLI parts of issue 7: ``probe``, ``send --dry-run`` and ``send --verify-arrival``.

Kept apart from :mod:`core.cli` so that the send command only gains a few hooks.

``probe`` exit codes: 0 the map was made, 2 usage error, 3 no association.
``send --dry-run``: 0 nothing blocked, 1 something blocked, 2 usage, 3 no association.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import Any

from .errors import CourierError
from .report import build_report, write_report

__all__ = ["add_probe_command", "add_send_options", "cmd_probe", "run_dry_run", "run_verify"]

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_NO_ASSOCIATION = 0, 1, 2, 3


def add_probe_command(sub: Any, add_peer: Any) -> None:
    """Register ``probe`` on the subparsers `sub`; `add_peer` adds the connection options."""
    p = sub.add_parser("probe", help="ask a PACS which SOP classes and transfer syntaxes it accepts")
    add_peer(p)
    p.add_argument(
        "--sop-classes",
        default=None,
        metavar="all|used|UID,...",
        help="which storage SOP classes to probe: all pynetdicom knows (default without PATHs), those "
        "of the PATHs (default with PATHs), or a comma-separated list",
    )
    p.add_argument(
        "--syntaxes",
        default="all",
        metavar="all|common|UID,...",
        help="transfer syntaxes to propose: every one pydicom knows (default), the 13 common ones, or UIDs",
    )
    p.add_argument("--json", metavar="FILE", help="write the acceptance map as JSON")
    p.add_argument("--csv", metavar="FILE", help="write the acceptance map as CSV")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (for --sop-classes used)")
    p.add_argument("--log-level", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_send_options(send: argparse.ArgumentParser) -> None:
    """Add ``--dry-run``, ``--acceptance-map`` and the arrival-check options to ``send``."""
    send.add_argument(
        "--dry-run", action="store_true", help="plan each instance (as stored / convert / blocked) and send nothing"
    )
    send.add_argument(
        "--acceptance-map", metavar="FILE", help="a probe's JSON map to plan from (else a quick negotiation is made)"
    )
    send.add_argument(
        "--verify-arrival",
        action="store_true",
        help="after the send, check that the PACS holds each instance (storage commitment, else C-FIND)",
    )
    send.add_argument(
        "--commit-port", type=int, metavar="PORT", help="listen on PORT for a storage commitment report sent on a new association"
    )
    send.add_argument(
        "--commit-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for the storage commitment report (default 10)",
    )


def cmd_probe(args: argparse.Namespace, config: Any) -> int:
    """``probe``: build and print the acceptance map; 0, 2 or 3."""
    from .probe import ProbeError, probe, resolve_sop_classes
    from .scan import scan_paths

    try:
        cfg = config(args)
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    which = args.sop_classes or ("used" if args.paths else "all")
    used: list[str] = []
    if args.paths:
        used = [i.sop_class_uid for i in scan_paths(args.paths) if i.status == "ok"]
    elif which.strip().lower() == "used":
        print("--sop-classes used needs PATHs (or give --sop-classes all or a list of UIDs)", file=sys.stderr)
        return EXIT_USAGE
    try:
        classes = resolve_sop_classes(which, used)
        t0 = time.monotonic()

        def progress(p: Any) -> None:
            if sys.stderr.isatty():
                sys.stderr.write(f"\rprobing: association {p.done}/{p.total}")
                sys.stderr.flush()

        amap = probe(cfg, classes, args.syntaxes, on_progress=progress)
        if sys.stderr.isatty():
            sys.stderr.write("\r\033[K")
    except ValueError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ProbeError as exc:
        print(f"probe of {cfg.peer} failed: {exc.message}", file=sys.stderr)
        return EXIT_NO_ASSOCIATION
    peer = amap.peer
    accepted = sum(1 for e in amap.sop_classes.values() if e["accepted"])
    about = [
        x
        for x in (
            peer.get("implementation_version_name") or peer.get("implementation_class_uid"),
            f"max PDU {peer['max_pdu']}" if peer.get("max_pdu") is not None else "",
        )
        if x
    ]
    print(
        f"Probe of {cfg.peer}{' (' + ', '.join(about) + ')' if about else ''}: {len(amap.sop_classes)} SOP "
        f"classes x {len(peer['syntaxes'])} transfer syntaxes over {peer['associations']} association(s) in "
        f"{time.monotonic() - t0:.1f} s; {accepted} SOP classes accepted"
    )
    print(amap.table())
    for err in amap.errors:
        print(f"  warning: {err}", file=sys.stderr)
    try:
        if args.json:
            amap.write_json(args.json)
        if args.csv:
            amap.write_csv(args.csv)
    except OSError as exc:
        print(f"cannot write the map: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def run_dry_run(args: argparse.Namespace, cfg: Any, instances: list[Any]) -> int:
    """``send --dry-run``: plan, print, write the report with ``status: planned``; 0, 1, 2 or 3."""
    from .preflight import PlanError, plan_instances, summarize, summary_text
    from .probe import AcceptanceMap

    amap = None
    if getattr(args, "acceptance_map", None):
        try:
            with open(args.acceptance_map, encoding="utf-8") as f:
                amap = AcceptanceMap.from_dict(json.load(f))
        except (OSError, ValueError) as exc:
            print(f"cannot read the acceptance map {args.acceptance_map}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    t0 = time.monotonic()
    try:
        plans = plan_instances(
            instances, amap, cfg, args.strategy, args.max_retries, parallel=max(1, getattr(args, "parallel", 1))
        )
    except PlanError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_NO_ASSOCIATION
    except CourierError as exc:
        print(f"cannot plan: {exc.message}", file=sys.stderr)
        return EXIT_NO_ASSOCIATION
    for p in plans:
        name = p.path or p.sop_instance_uid
        print(f"{p.plan:<9} {name}: {p.message}")
        for finding in p.findings:
            print(f"          {finding.severity}: {finding}")
    counts = summarize(plans)
    print(f"Plan: {summary_text(plans)} (dry run: nothing was sent)", file=sys.stderr)
    if args.report:
        outcomes = [p.to_outcome() for p in plans]
        summary = {
            "total": counts["total"],
            "planned": counts["total"] - counts["skipped"],
            "as_stored": counts["as-stored"],
            "convert": counts["convert"],
            "blocked": counts["blocked"],
            "lossy": counts["lossy"],
            "skipped": counts["skipped"],
            "with_findings": counts["findings"],
            "dry_run": True,
        }
        job = {
            "id": uuid.uuid4().hex[:12],
            "peer": cfg.peer,
            "calling_ae": cfg.local_ae_title,
            "strategy": args.strategy,
            "dry_run": True,
            "started": t0,
            "elapsed_s": round(time.monotonic() - t0, 3),
            "plan_source": "acceptance map" if amap is not None else "negotiation",
        }
        try:
            write_report(args.report, build_report(outcomes, summary, [], job))
        except OSError as exc:
            print(f"cannot write the report {args.report}: {exc}", file=sys.stderr)
    return EXIT_SOME_FAILED if counts["blocked"] else EXIT_OK


def run_verify(args: argparse.Namespace, cfg: Any, outcomes: list[Any]) -> tuple[dict[str, Any], list[Any]]:
    """``send --verify-arrival``: check the stored outcomes; returns a summary and the outcomes with ``verified`` set."""
    from .verify import apply_to_outcomes, verify_arrival

    stored = [o for o in outcomes if o.stored]
    result = verify_arrival(cfg, stored, listen_port=args.commit_port, timeout_s=args.commit_timeout)
    outcomes = apply_to_outcomes(outcomes, result)
    counts = result.counts()
    print(
        "Arrival check: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        if counts
        else "Arrival check: nothing was stored",
        file=sys.stderr,
    )
    for m in result.messages:
        print(f"  {m}", file=sys.stderr)
    return {
        "methods": result.methods,
        "counts": counts,
        "messages": result.messages,
        "commitment": result.commitment,
        "series": result.series,
    }, outcomes
