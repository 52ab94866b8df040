"""Property tests of the validators behind regex-pii: Luhn, IBAN mod-97, base58check, bech32."""

import hashlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detector_orchestration.detectors.builtin.regex_pii.checksums import (
    base58check_valid,
    btc_base58_address_valid,
    eip55_checksum_valid,
    iban_mod97_valid,
    luhn_valid,
    segwit_address_valid,
)
from detector_orchestration.detectors.builtin.regex_pii.keccak import keccak256

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def luhn_check_digit(body: str) -> str:
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return digit
    raise AssertionError("no check digit")


def base58check_encode(payload: bytes) -> str:
    raw = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number = int.from_bytes(raw, "big")
    encoded = ""
    while number:
        number, remainder = divmod(number, 58)
        encoded = ALPHABET[remainder] + encoded
    return "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + encoded


def iban_with_check_digits(country: str, bban: str) -> str:
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


@given(st.text(alphabet=string.digits, min_size=1, max_size=30))
def test_luhn_accepts_exactly_one_check_digit(body):
    valid = [d for d in "0123456789" if luhn_valid(body + d)]
    assert len(valid) == 1


@given(st.text(alphabet=string.digits, min_size=12, max_size=18), st.data())
def test_luhn_catches_every_single_digit_error(body, data):
    number = body + luhn_check_digit(body)
    position = data.draw(st.integers(0, len(number) - 1))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
    assert not luhn_valid(number[:position] + replacement + number[position + 1 :])


@given(st.text(min_size=0, max_size=40))
def test_luhn_never_raises(text):
    assert isinstance(luhn_valid(text), bool)


@pytest.mark.parametrize(
    "number", ["4111111111111111", "5500005555555559", "378282246310005", "6011111111111117"]
)
def test_luhn_known_cards(number):
    assert luhn_valid(number)


@given(
    st.sampled_from(["DE", "GB", "FR", "NL", "XX"]),
    st.text(alphabet=string.digits + string.ascii_uppercase, min_size=10, max_size=30),
)
def test_mod97_accepts_computed_check_digits(country, bban):
    assert iban_mod97_valid(iban_with_check_digits(country, bban))


@given(st.text(alphabet=string.digits, min_size=12, max_size=30), st.data())
def test_mod97_catches_single_digit_errors(bban, data):
    iban = iban_with_check_digits("DE", bban)
    position = data.draw(st.integers(4, len(iban) - 1))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != iban[position]]))
    assert not iban_mod97_valid(iban[:position] + replacement + iban[position + 1 :])


@given(st.text(max_size=40))
def test_mod97_never_raises(text):
    assert isinstance(iban_mod97_valid(text), bool)


def test_mod97_known_ibans():
    assert iban_mod97_valid("DE89370400440532013000")
    assert iban_mod97_valid("GB82WEST12345698765432")
    assert not iban_mod97_valid("GB82WEST12345698765433")


@given(st.binary(min_size=1, max_size=40))
def test_base58check_round_trip(payload):
    assert base58check_valid(base58check_encode(payload))


@given(st.binary(min_size=21, max_size=21), st.data())
def test_base58check_rejects_a_changed_character(payload, data):
    encoded = base58check_encode(payload)
    position = data.draw(st.integers(0, len(encoded) - 1))
    replacement = data.draw(st.sampled_from([c for c in ALPHABET if c != encoded[position]]))
    changed = encoded[:position] + replacement + encoded[position + 1 :]
    # A 4-byte checksum lets one change in 2**32 through; hypothesis will not find one.
    assert not base58check_valid(changed)


@given(st.text(max_size=60))
def test_base58check_never_raises(text):
    assert isinstance(base58check_valid(text), bool)
    assert isinstance(btc_base58_address_valid(text), bool)
    assert isinstance(segwit_address_valid(text), bool)
    assert isinstance(eip55_checksum_valid(text), bool)


def test_bitcoin_addresses():
    assert btc_base58_address_valid("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
    assert btc_base58_address_valid("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy")
    assert not btc_base58_address_valid("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb")
    # BIP-173 / BIP-350 test vectors
    assert segwit_address_valid("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4")
    assert segwit_address_valid("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")
    assert segwit_address_valid("bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297")
    assert not segwit_address_valid("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr")
    assert not segwit_address_valid("bc1QW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")  # mixed case


def test_keccak256_known_digests():
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    assert keccak256(b"a" * 200).hex() != keccak256(b"a" * 199).hex()  # multi-block input


@pytest.mark.parametrize(
    "address",
    [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ],
)
def test_eip55_vectors(address):
    assert eip55_checksum_valid(address)
    flipped = address[:2] + address[2:].swapcase()
    assert not eip55_checksum_valid(flipped)
