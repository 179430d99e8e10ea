"""``echo``, ``probe`` and ``scp``: the commands that talk to a peer or act as one.

``echo`` exit codes: 0, 2 configuration error (a TLS file, key or secret), 3 no association.
``probe``: 0 the map was made, 2 usage or configuration error, 3 no association.
``scp`` runs the embedded Storage SCP until interrupted (0, or 2 when it cannot start).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

from core.errors import CourierError

from .common import add_log_level, add_peer, cli_words, config_from_args
from .exit_codes import ExitCode
from .output import config_problem, with_hint

__all__ = ["add_network_commands", "cmd_echo", "cmd_probe", "cmd_scp", "COMMANDS"]


def add_network_commands(sub: Any) -> None:
    """Register ``echo``, ``probe`` and ``scp`` on the subparsers `sub`."""
    echo = sub.add_parser("echo", help="C-ECHO a PACS and show the negotiation")
    add_peer(echo)
    add_log_level(echo)

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
    add_log_level(p)

    scp = sub.add_parser("scp", help="run the embedded Storage SCP (local test PACS)")
    scp.add_argument("--port", type=int, default=11112)
    scp.add_argument("--ae-title", default="COURIER")
    scp.add_argument("--store-dir", default=None, help="where to write received files (default: keep none)")
    scp.add_argument(
        "--accept", default="everything", help="everything, implicit, uncompressed, a strategy name, or comma-separated UIDs"
    )
    scp.add_argument("--bind", default="127.0.0.1", help="address to listen on (default loopback)")
    add_log_level(scp)


def cmd_echo(args: argparse.Namespace) -> int:
    """``echo``: C-ECHO with round-trip time and negotiation; 0 or 3."""
    from core.echo import echo

    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        print(f"configuration error: {cli_words(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        r = echo(cfg)
    except CourierError as exc:
        problem = config_problem(exc)
        if problem:
            print(f"configuration error: {problem}", file=sys.stderr)
            return ExitCode.USAGE
        print(f"C-ECHO to {cfg.peer} failed: {with_hint(exc.message)}", file=sys.stderr)
        return ExitCode.NO_ASSOCIATION
    neg = r["negotiation"]
    acc = neg["accepted"][0] if neg["accepted"] else {}
    print(
        f"C-ECHO to {cfg.peer}: status 0x{r['status_code']:04X} ({r['message']}), round trip {r['rtt_ms']:.1f} ms, "
        f"association {r['associate_ms']:.1f} ms"
    )
    print(
        f"  accepted context: {acc.get('abstract_syntax_name', '?')} / "
        f"{acc.get('transfer_syntax', '?')}; peer max PDU {neg.get('peer_max_pdu')} bytes; "
        f"implementation {neg.get('peer_implementation_class_uid')} {neg.get('peer_implementation_version_name')}"
    )
    t = r.get("tls")
    if t:
        warn = " (expires within 30 days!)" if t.get("expires_soon") else ""
        print(
            f"  TLS: {t.get('protocol', '?')}, cipher {t.get('cipher', '?')}; PACS certificate "
            f"{t.get('peer_subject', '?')}, issued by {t.get('peer_issuer', '?')}, "
            f"valid until {t.get('peer_not_after', '?')}{warn}"
        )
    return ExitCode.OK if r["status"] != "failure" else ExitCode.NO_ASSOCIATION


def cmd_probe(args: argparse.Namespace) -> int:
    """``probe``: build and print the acceptance map; 0, 2 or 3."""
    from core.probe import ProbeError, probe, resolve_sop_classes
    from core.scan import scan_paths

    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        print(f"configuration error: {cli_words(str(exc))}", file=sys.stderr)
        return ExitCode.USAGE
    which = args.sop_classes or ("used" if args.paths else "all")
    used: list[str] = []
    if args.paths:
        used = [i.sop_class_uid for i in scan_paths(args.paths) if i.status == "ok"]
    elif which.strip().lower() == "used":
        print("--sop-classes used needs PATHs (or give --sop-classes all or a list of UIDs)", file=sys.stderr)
        return ExitCode.USAGE
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
        return ExitCode.USAGE
    except ProbeError as exc:
        problem = config_problem(exc)
        if problem:
            print(f"configuration error: {problem}", file=sys.stderr)
            return ExitCode.USAGE
        print(f"probe of {cfg.peer} failed: {with_hint(exc.message)}", file=sys.stderr)
        return ExitCode.NO_ASSOCIATION
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
        return ExitCode.USAGE
    return ExitCode.OK


def cmd_scp(args: argparse.Namespace) -> int:
    """``scp``: run the embedded Storage SCP until interrupted."""
    from core.scp import EmbeddedSCP

    try:
        scp = EmbeddedSCP(
            args.port,
            args.ae_title,
            args.store_dir,
            args.accept,
            args.bind,
            on_store=lambda uid, path: print(f"stored {uid}" + (f" -> {path}" if path else ""), flush=True),
        )
        scp.start()
    except (ValueError, OSError) as exc:
        print(f"cannot start the Storage SCP: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    print(
        f"Storage SCP {args.ae_title} listening on {args.bind}:{scp.port}, accepting "
        f"{len(scp.syntaxes)} transfer syntax(es); Ctrl+C to stop",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        scp.stop()
    return ExitCode.OK


COMMANDS = {"echo": cmd_echo, "probe": cmd_probe, "scp": cmd_scp}
