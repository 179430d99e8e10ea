"""Transfer-syntax strategies: which syntaxes to propose, and the fallback order.

A strategy is the list of transfer syntaxes proposed for every SOP class, in
preference order (PS3.5 Section 10 defines the syntaxes; PS3.8 9.3.2.2 the
presentation context items that carry them). The five strategies come from the
product seed, most conservative first::

    universal    Implicit VR Little Endian
    conservative + Explicit VR Little Endian
    standard     + Explicit VR Big Endian
    compression  + RLE Lossless, JPEG 2000 Lossless, JPEG-LS Lossless
    extended     + every other syntax pydicom knows, lossy included
"""

from __future__ import annotations

from pydicom.uid import (
    UID,
    AllTransferSyntaxes,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from .strategy_names import (  # the names live apart so that listing them needs no pydicom
    COMPRESSION,
    CONSERVATIVE,
    EXTENDED,
    STANDARD,
    STRATEGY_ORDER,
    UNIVERSAL,
    TransferSyntaxStrategy,
)

__all__ = [
    "TransferSyntaxStrategy",
    "UNIVERSAL",
    "CONSERVATIVE",
    "STANDARD",
    "COMPRESSION",
    "EXTENDED",
    "STRATEGY_ORDER",
    "strategy_syntaxes",
    "fallback_chain",
    "parse_strategy",
    "LOSSLESS_SYNTAXES",
    "is_lossy_syntax",
    "UNCOMPRESSED_SYNTAXES",
]


UNCOMPRESSED_SYNTAXES: frozenset[str] = frozenset(
    {ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian}
)

#: Syntaxes that never lose information (PS3.5 Section 8.2 and Annex A).
LOSSLESS_SYNTAXES: frozenset[str] = UNCOMPRESSED_SYNTAXES | frozenset(
    {
        RLELossless,
        JPEG2000Lossless,
        JPEGLSLossless,
        "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Process 14
        "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
        "1.2.840.10008.1.2.4.92",  # JPEG 2000 Part 2 Lossless
        "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
        "1.2.840.10008.1.2.4.202",  # HTJ2K RPCL Lossless
    }
)

_STRATEGY_SYNTAXES: dict[TransferSyntaxStrategy, tuple[str, ...]] = {
    UNIVERSAL: (ImplicitVRLittleEndian,),
    CONSERVATIVE: (ImplicitVRLittleEndian, ExplicitVRLittleEndian),
    STANDARD: (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian),
    COMPRESSION: (
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        RLELossless,
        JPEG2000Lossless,
        JPEGLSLossless,
    ),
}
_STRATEGY_SYNTAXES[EXTENDED] = _STRATEGY_SYNTAXES[COMPRESSION] + tuple(
    str(uid) for uid in AllTransferSyntaxes if str(uid) not in _STRATEGY_SYNTAXES[COMPRESSION]
)


def parse_strategy(name: str | TransferSyntaxStrategy) -> TransferSyntaxStrategy:
    """Return the strategy called `name` (case-insensitive).

    Raises:
        ValueError: `name` is not one of the five strategies.
    """
    try:
        return TransferSyntaxStrategy(str(name).strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in STRATEGY_ORDER)
        raise ValueError(f"unknown transfer syntax strategy {name!r}: use one of {names}") from None


def strategy_syntaxes(strategy: str | TransferSyntaxStrategy) -> tuple[UID, ...]:
    """Return the transfer syntax UIDs a strategy proposes, in preference order.

    Args:
        strategy: a strategy name or member.

    Returns:
        tuple of `pydicom.uid.UID`.

    Raises:
        ValueError: unknown strategy.
    """
    return tuple(UID(u) for u in _STRATEGY_SYNTAXES[parse_strategy(strategy)])


def fallback_chain(strategy: str | TransferSyntaxStrategy, max_retries: int) -> list[TransferSyntaxStrategy]:
    """Return the strategies to try: `strategy`, then each more conservative one.

    Args:
        strategy: the first strategy.
        max_retries: how many further (more conservative) strategies may be tried.

    Returns:
        list of strategies, length 1 to ``max_retries + 1``.
    """
    first = parse_strategy(strategy)
    idx = STRATEGY_ORDER.index(first)
    chain = [STRATEGY_ORDER[i] for i in range(idx, -1, -1)]
    return chain[: max(0, int(max_retries)) + 1]


def is_lossy_syntax(uid: str) -> bool:
    """Return True when encoding to `uid` may lose information (PS3.5 8.2)."""
    return str(uid) not in LOSSLESS_SYNTAXES
