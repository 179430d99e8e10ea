"""DICOM Courier's engine: a robust C-STORE SCU on pynetdicom and pydicom (no Qt here).

The seed API::

    from core import store_dataset, store_datasets_batch, manage_association_with_fallback
    from core import find_compatible_transfer_syntax, DimseCommandError, AssociationError, TlsConfigError
"""

import logging

from .api import manage_association_with_fallback, store_dataset, store_datasets_batch
from .errors import AssociationError, ConversionError, CourierError, DimseCommandError, TlsConfigError
from .negotiation import find_compatible_transfer_syntax
from .strategies import (
    COMPRESSION,
    CONSERVATIVE,
    EXTENDED,
    STANDARD,
    STRATEGY_ORDER,
    UNIVERSAL,
    TransferSyntaxStrategy,
    fallback_chain,
    strategy_syntaxes,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "store_dataset",
    "store_datasets_batch",
    "manage_association_with_fallback",
    "find_compatible_transfer_syntax",
    "DimseCommandError",
    "AssociationError",
    "TlsConfigError",
    "ConversionError",
    "CourierError",
    "TransferSyntaxStrategy",
    "UNIVERSAL",
    "CONSERVATIVE",
    "STANDARD",
    "COMPRESSION",
    "EXTENDED",
    "STRATEGY_ORDER",
    "strategy_syntaxes",
    "fallback_chain",
]
