"""Test data: pydicom's test files, pydicom-data, and UID shorthands used across the tests."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pydicom.data
from pydicom.uid import generate_uid

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"

CT, MR, SC = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.7"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
IMPLICIT, EXPLICIT, J2K_LOSSLESS = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.90"


def data_dirs() -> list[Path]:
    """pydicom's test files folder, and pydicom-data's when it is installed."""
    dirs = [TEST_FILES]
    try:
        import data_store  # pydicom-data
    except ImportError:
        return dirs
    return [*dirs, Path(data_store.__file__).parent / "data"]


def copy_unique(name: str, dst: Path, tag: str = "courier-test") -> Path:
    """Copy a pydicom test file with a fresh SOP Instance UID (so batches hold no duplicates)."""
    ds = pydicom.dcmread(TEST_FILES / name)
    uid = generate_uid(entropy_srcs=[tag, name, str(dst)])
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.save_as(dst)
    return dst
