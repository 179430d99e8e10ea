"""DICOM Courier's engine: a robust C-STORE SCU on pynetdicom and pydicom (no Qt here).

The seed API::

    from core import store_dataset, store_datasets_batch, manage_association_with_fallback
    from core import find_compatible_transfer_syntax, DimseCommandError, AssociationError, TlsConfigError

The seed API's names are imported on first use (PEP 562), so that ``import core.config`` or
``core.events`` (the command line's ``--help``) does not load pydicom and pynetdicom.
"""

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .errors import AssociationError, ConversionError, CourierError, DimseCommandError, TlsConfigError

if TYPE_CHECKING:
    from .api import manage_association_with_fallback, store_dataset, store_datasets_batch
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

#: Where each lazily imported name of the seed API lives.
_LAZY = {
    "store_dataset": ".api",
    "store_datasets_batch": ".api",
    "manage_association_with_fallback": ".api",
    "find_compatible_transfer_syntax": ".negotiation",
    **dict.fromkeys(
        (
            "TransferSyntaxStrategy",
            "UNIVERSAL",
            "CONSERVATIVE",
            "STANDARD",
            "COMPRESSION",
            "EXTENDED",
            "STRATEGY_ORDER",
            "strategy_syntaxes",
            "fallback_chain",
        ),
        ".strategies",
    ),
}


def __getattr__(name: str) -> Any:
    """Import a seed API name on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


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
