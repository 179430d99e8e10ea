"""DCMTK ``storescp`` as a peer: plain, with ``+xi`` (or any flags), with an association
configuration file (``-xf FILE PROFILE``), or with TLS (``+tls``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydicom import dcmread

from .config import make_config
from .process import free_port, require_binary, start_process, stop_process

#: CT only Implicit VR LE, MR only JPEG 2000 Lossless, Secondary Capture refused (``-xf FILE Picky``).
PICKY_CFG = r"""[[TransferSyntaxes]]
[Implicit]
TransferSyntax1 = LittleEndianImplicit
[J2KLossless]
TransferSyntax1 = JPEG2000LosslessOnly
[Uncompressed]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = LittleEndianImplicit
[[PresentationContexts]]
[Picky]
PresentationContext1 = VerificationSOPClass\Uncompressed
PresentationContext2 = CTImageStorage\Implicit
PresentationContext3 = MRImageStorage\J2KLossless
[[Profiles]]
[Picky]
PresentationContexts = Picky
"""


def tls_flags(key: Path, cert: Path, ca: Path, require_client_cert: bool = False) -> list[str]:
    """storescp options for TLS with `key`/`cert`, trusting `ca`; optionally requiring a client certificate."""
    return ["+tls", str(key), str(cert), "+cf", str(ca), "-rc" if require_client_cert else "-ic"]


class StoreSCPProcess:
    """A running DCMTK storescp on 127.0.0.1 writing into ``workdir/received``.

    Args:
        workdir: a folder of its own (received files, the log, a configuration file).
        flags: storescp options (e.g. ``"+xi"``: Implicit VR LE only; see :func:`tls_flags`).
        aet: its AE title.
        nodelay: set DCMTK's TCP_NODELAY environment variable (DCMTK leaves Nagle on otherwise).
        config: an association configuration file (a Path) or its text (a str), used with `profile`
            (``-xf FILE PROFILE``).
        profile: the profile of `config` to use.
    """

    def __init__(
        self,
        workdir: Path,
        flags: Iterable[str] = (),
        aet: str = "STORESCP",
        nodelay: bool = True,
        config: str | Path | None = None,
        profile: str | None = None,
    ) -> None:
        exe = require_binary("storescp", "dcmtk")
        self.aet = aet
        self.out_dir = workdir / "received"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        flags = list(flags)
        if isinstance(config, str):
            (workdir / "storescp.cfg").write_text(config)
            config = workdir / "storescp.cfg"
        if config is not None:
            flags += ["-xf", str(config), profile or ""]
        self.port = free_port()
        self.log_path = workdir / f"storescp-{self.port}.log"
        env = os.environ.copy()
        if nodelay:  # keep the peer from being the bottleneck
            env["TCP_NODELAY"] = "1"
        self.proc = start_process(
            [exe, "-aet", aet, "-od", str(self.out_dir), *flags, str(self.port)], [self.port], self.log_path, env
        )

    def config(self, calling_ae: str = "TEST_SCU", **extra: Any) -> dict[str, Any]:
        """The seed config dict that reaches this peer."""
        return make_config(self.port, self.aet, calling_ae, **extra)

    def received(self) -> dict[str, Path]:
        """SOP Instance UID -> the file storescp wrote."""
        found: dict[str, Path] = {}
        for p in self.out_dir.rglob("*"):
            if p.is_file():
                ds = dcmread(p, stop_before_pixels=True, force=True)
                found[str(ds.SOPInstanceUID)] = p
        return found

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc)
