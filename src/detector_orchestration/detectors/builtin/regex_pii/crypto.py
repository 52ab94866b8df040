"""Cryptocurrency wallet addresses: Bitcoin (base58check and bech32/bech32m), Ethereum."""

from __future__ import annotations

from detector_orchestration.detectors.builtin.regex_pii.checksums import (
    btc_base58_address_valid,
    eip55_checksum_valid,
    segwit_address_valid,
)
from detector_orchestration.detectors.builtin.regex_pii.recognizer import (
    Recognizer,
    context_regex,
    pattern,
)

_WALLET_CONTEXT = context_regex(
    "wallet", "bitcoin", "btc", "ethereum", "eth", "address", "send", "crypto", "usdt"
)


class BitcoinAddressRecognizer(Recognizer):
    """Legacy/P2SH addresses with a valid base58check, SegWit/Taproot with a valid bech32(m)."""

    label = "crypto_wallet"
    patterns = (
        pattern(r"(?<!\w)[13][1-9A-HJ-NP-Za-km-z]{25,34}(?!\w)", 0.95),
        pattern(r"(?<!\w)(?:bc1|BC1|tb1|TB1)[02-9AC-HJ-NP-Zac-hj-np-z]{8,87}(?!\w)", 0.95),
    )
    context = _WALLET_CONTEXT

    def score(self, candidate: str, base: float) -> float | None:
        if candidate[:3].lower() in ("bc1", "tb1"):
            return base if segwit_address_valid(candidate) else None
        return base if btc_base58_address_valid(candidate) else None


class EthereumAddressRecognizer(Recognizer):
    """``0x`` + 40 hex digits. Mixed case must carry a valid EIP-55 checksum; a single-case
    address has none, so it may as well be a hash prefix and scores lower."""

    label = "crypto_wallet"
    patterns = (pattern(r"(?<!\w)0x[0-9a-fA-F]{40}(?!\w)", 0.6),)
    context = _WALLET_CONTEXT

    def score(self, candidate: str, base: float) -> float | None:
        body = candidate[2:]
        if body.lower() == body or body.upper() == body:
            return base
        return 0.95 if eip55_checksum_valid(candidate) else None
