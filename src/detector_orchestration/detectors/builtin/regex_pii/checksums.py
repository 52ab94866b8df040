"""Checksums that turn a pattern match into a validated identifier.

A regex alone finds *shapes*; these pure functions say whether a shape is a real card, IBAN
or wallet address. Each takes the candidate string and returns a bool: no exceptions for
bad input, so recognizers can call them on anything the regex let through.
"""

from __future__ import annotations

import hashlib

from detector_orchestration.detectors.builtin.regex_pii.keccak import keccak256

_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {char: index for index, char in enumerate(_BASE58_ALPHABET)}
_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {char: index for index, char in enumerate(_BECH32_CHARSET)}
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment cards and many national identifiers."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_mod97_valid(iban: str) -> bool:
    """ISO 13616 check: move the first four characters to the end, letters to 10..35, mod 97."""
    if len(iban) < 5 or not iban.isascii() or not iban.isalnum():
        return False
    rearranged = (iban[4:] + iban[:4]).upper()
    remainder = 0
    for char in rearranged:
        value = int(char, 36)  # '0'-'9' -> 0-9, 'A'-'Z' -> 10-35
        remainder = (remainder * (100 if value > 9 else 10) + value) % 97
    return remainder == 1


def base58_decode(text: str) -> bytes | None:
    """Bitcoin base58 to bytes (leading '1's are leading zero bytes); None if not base58."""
    number = 0
    for char in text:
        index = _BASE58_INDEX.get(char)
        if index is None:
            return None
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading_zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading_zeros + body


def base58check_valid(text: str) -> bool:
    """Base58Check: the last four bytes are the first four of SHA-256(SHA-256(payload))."""
    raw = base58_decode(text)
    if raw is None or len(raw) < 5:
        return False
    payload, checksum = raw[:-4], raw[-4:]
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == checksum


def btc_base58_address_valid(text: str) -> bool:
    """A legacy (P2PKH, version 0x00) or P2SH (version 0x05) mainnet address."""
    raw = base58_decode(text)
    return raw is not None and len(raw) == 25 and raw[0] in (0x00, 0x05) and base58check_valid(text)


def _bech32_polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_BECH32_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(char) >> 5 for char in hrp] + [0] + [ord(char) & 31 for char in hrp]


def _convert_bits(data: list[int], from_bits: int, to_bits: int) -> list[int] | None:
    """Regroup 5-bit words into bytes, refusing non-zero padding (BIP-173)."""
    accumulator = bits = 0
    result: list[int] = []
    max_value = (1 << to_bits) - 1
    for value in data:
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            result.append((accumulator >> bits) & max_value)
    if bits >= from_bits or (accumulator << (to_bits - bits)) & max_value:
        return None
    return result


def segwit_address_valid(address: str) -> bool:
    """A bech32 (BIP-173, witness v0) or bech32m (BIP-350, v1+) Bitcoin address."""
    if address.lower() != address and address.upper() != address:
        return False  # mixed case is forbidden
    address = address.lower()
    separator = address.rfind("1")
    hrp, data_part = address[:separator], address[separator + 1 :]
    if hrp not in ("bc", "tb") or len(data_part) < 7 or len(address) > 90:
        return False
    data = [_BECH32_INDEX.get(char, -1) for char in data_part]
    if -1 in data:
        return False
    constant = _bech32_polymod(_hrp_expand(hrp) + data)
    if constant not in (_BECH32_CONST, _BECH32M_CONST):
        return False
    version, program5 = data[0], data[1:-6]
    program = _convert_bits(program5, 5, 8)
    if program is None or version > 16 or not 2 <= len(program) <= 40:
        return False
    if version == 0:
        return constant == _BECH32_CONST and len(program) in (20, 32)
    return constant == _BECH32M_CONST


def eip55_checksum_valid(address: str) -> bool:
    """EIP-55: a hex letter is upper case exactly when its nibble of keccak256(lower) >= 8.

    All-lower or all-upper addresses carry no checksum; callers decide what that means.
    """
    body = address[2:] if address[:2] in ("0x", "0X") else address
    if len(body) != 40 or any(char not in "0123456789abcdefABCDEF" for char in body):
        return False
    digest = keccak256(body.lower().encode("ascii")).hex()
    for char, nibble in zip(body, digest[:40], strict=True):
        if char.isalpha() and (char.isupper() != (int(nibble, 16) >= 8)):
            return False
    return True
