"""Processes and ports for the peers of the tests: free ports, start, wait until listening, stop.

Every external process a test starts goes through :func:`start_process` and is stopped with
:func:`stop_process`, by its own PID; :func:`require_binary` skips (or fails, under
``COURIER_REQUIRE_INTEROP=1``) when DCMTK or Orthanc is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port`.

    Raises:
        RuntimeError: `proc` exited first, or nothing listened within `timeout` seconds.
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"peer exited early with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate `proc` (by its PID), then kill it if it does not exit within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_process(
    argv: Iterable[str | os.PathLike],
    ports: Iterable[int] = (),
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 20.0,
    **popen: Any,
) -> subprocess.Popen:
    """Start `argv` and wait until it listens on every port of `ports`.

    Output goes to the file `log` (stdout and stderr together) or, without one, to
    ``popen["stdout"]``/``popen["stderr"]`` (default: discarded). On a failed start the
    process is stopped and the error is raised, with the log's tail when there is one.

    Raises:
        RuntimeError: the process exited early or did not listen within `timeout` seconds.
    """
    out: IO[str] | None = None
    if log is not None:
        out = open(log, "w")  # noqa: SIM115  # the child keeps its own descriptor; ours closes below
        popen.setdefault("stdout", out)
        popen.setdefault("stderr", subprocess.STDOUT)
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    try:
        proc = subprocess.Popen([str(a) for a in argv], env=dict(env) if env is not None else None, cwd=cwd, **popen)
    finally:
        if out is not None:
            out.close()
    try:
        for port in ports:
            wait_listening(port, proc, timeout)
    except RuntimeError as exc:
        stop_process(proc)
        tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
        raise RuntimeError(f"{argv_name(argv)}: {exc}\n{tail}".rstrip()) from None
    return proc


def argv_name(argv: Iterable[str | os.PathLike]) -> str:
    """The program name of a command line, for messages."""
    return Path(str(next(iter(argv), "?"))).name


def require_binary(tool: str, package: str) -> str:
    """Return the path of `tool`, or skip (fail under COURIER_REQUIRE_INTEROP=1) naming the package."""
    path = shutil.which(tool)
    if path is None:
        msg = f"needs {package}: apt-get install {package}"
        if os.environ.get("COURIER_REQUIRE_INTEROP"):
            pytest.fail(msg + " (interop tests are required here)")
        pytest.skip(msg)
    return path


def run_cli(
    *args: str | os.PathLike | int,
    timeout: float = 180,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python main.py ARGS`` (in the project root unless `cwd`) and capture its output as text."""
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "main.py"), *map(str, args)],
        cwd=cwd or PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env) if env is not None else os.environ.copy(),
        check=False,
    )


class CourierSCPProcess:
    """Our own Storage SCP (``python main.py scp``) in its own process, so it does not share our GIL.

    Attributes:
        port: its TCP port on 127.0.0.1.
        ae_title: its AE title.
        store_dir: where it writes what it receives (None: it keeps nothing).
    """

    def __init__(
        self,
        ae_title: str = "COURIER",
        store_dir: Path | None = None,
        extra: Iterable[str] = (),
        bind: str | None = HOST,
        log: Path | None = None,
    ) -> None:
        self.ae_title = ae_title
        self.store_dir = store_dir
        self.port = free_port()
        argv = [sys.executable, str(PROJECT_ROOT / "main.py"), "scp", "--port", str(self.port), "--ae-title", ae_title]
        if store_dir is not None:
            argv += ["--store-dir", str(store_dir)]
        if bind is not None:
            argv += ["--bind", bind]
        self.proc = start_process([*argv, *extra], [self.port], log=log, cwd=PROJECT_ROOT, timeout=30)

    def stop(self) -> None:
        """Stop the process (by its PID)."""
        stop_process(self.proc)
