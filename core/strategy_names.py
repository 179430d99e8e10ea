"""The names of the five transfer-syntax strategies and their fallback order, without pydicom.

:mod:`core.strategies` says what each strategy proposes and re-exports these names; they live
here so that a front end can list them (the command line's ``--help``) without importing pydicom.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TransferSyntaxStrategy", "UNIVERSAL", "CONSERVATIVE", "STANDARD", "COMPRESSION", "EXTENDED", "STRATEGY_ORDER"]


class TransferSyntaxStrategy(StrEnum):
    """The five transfer-syntax strategies, most conservative first."""

    UNIVERSAL = "universal"
    CONSERVATIVE = "conservative"
    STANDARD = "standard"
    COMPRESSION = "compression"
    EXTENDED = "extended"


UNIVERSAL = TransferSyntaxStrategy.UNIVERSAL
CONSERVATIVE = TransferSyntaxStrategy.CONSERVATIVE
STANDARD = TransferSyntaxStrategy.STANDARD
COMPRESSION = TransferSyntaxStrategy.COMPRESSION
EXTENDED = TransferSyntaxStrategy.EXTENDED

#: Most conservative first; fallback walks this list towards index 0.
STRATEGY_ORDER: tuple[TransferSyntaxStrategy, ...] = (
    UNIVERSAL,
    CONSERVATIVE,
    STANDARD,
    COMPRESSION,
    EXTENDED,
)
