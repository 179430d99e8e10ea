"""DICOM Courier's engine: a robust C-STORE SCU on pynetdicom and pydicom (no Qt here)."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
