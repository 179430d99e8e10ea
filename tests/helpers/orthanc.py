"""Orthanc as a peer: a temporary JSON configuration and storage, DICOM and REST ports on loopback."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from .config import make_config
from .process import HOST, free_port, require_binary, start_process, stop_process


class OrthancProcess:
    """A running Orthanc with REST helpers.

    Args:
        workdir: a folder of its own (configuration, database, log).
        aet: its AE title (it checks the called AE title).
        **config: extra keys of its JSON configuration (e.g. ``DicomModalities``).
    """

    def __init__(self, workdir: Path, aet: str = "ORTHANC", **config: Any) -> None:
        exe = require_binary("Orthanc", "orthanc")
        self.aet = aet
        self.dicom_port, self.http_port = free_port(), free_port()
        cfg = {
            "Name": "CourierTests",
            "StorageDirectory": str(workdir / "db"),
            "IndexDirectory": str(workdir / "db"),
            "DicomAet": aet,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": True,
            "Plugins": [],
            **config,
        }
        cfg_path = workdir / "orthanc.json"
        cfg_path.write_text(json.dumps(cfg))
        self.log_path = workdir / "orthanc.log"
        self.proc = start_process([exe, str(cfg_path)], [self.dicom_port, self.http_port], self.log_path)

    def config(self, calling_ae: str = "TEST_SCU", **extra: Any) -> dict[str, Any]:
        """The seed config dict that reaches this peer."""
        return make_config(self.dicom_port, self.aet, calling_ae, **extra)

    def _open(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://{HOST}:{self.http_port}{path}", timeout=10) as r:
            return r.read()

    def get(self, path: str) -> Any:
        """GET a REST path; the JSON answer decoded, or the raw bytes."""
        body = self._open(path)
        try:
            return json.loads(body)
        except ValueError:
            return body

    def instances(self) -> dict[str, str]:
        """SOP Instance UID -> Orthanc instance id."""
        out = {}
        for oid in self.get("/instances"):
            tags = self.get(f"/instances/{oid}/simplified-tags")
            out[tags["SOPInstanceUID"]] = oid
        return out

    def instance_count(self) -> int:
        return len(self.get("/instances"))

    def sop_instance_uids(self) -> set[str]:
        return set(self.instances())

    def stored_transfer_syntax(self, oid: str) -> str:
        return str(self.get(f"/instances/{oid}/metadata/TransferSyntax")).strip("b'\"")

    def stored_file(self, oid: str) -> bytes:
        return self._open(f"/instances/{oid}/file")

    def stop(self) -> None:
        stop_process(self.proc)
