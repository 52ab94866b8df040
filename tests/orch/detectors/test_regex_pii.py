"""regex-pii: what each recognizer finds and rejects, the native output, and the mapper."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector_orchestration.detectors import Detector, DetectorError
from detector_orchestration.detectors.builtin.regex_pii import RegexPiiDetector, analyze


def found(text):
    return [(m.label, text[m.start : m.end]) for m in analyze(text)]


@pytest.mark.parametrize(
    ("text", "label", "value"),
    [
        ("write to alice.smith@example.co.uk today", "email", "alice.smith@example.co.uk"),
        ("call +44 (0)20 7946 0958 now", "phone", "+44 (0)20 7946 0958"),
        ("call +1 415 555 0132", "phone", "+1 415 555 0132"),
        ("office (415) 555-0132", "phone", "(415) 555-0132"),
        ("Tel. 030 12345678", "phone", "030 12345678"),
        ("mobile 07700 900123", "phone", "07700 900123"),
        ("appelez 01 23 45 67 89", "phone", "01 23 45 67 89"),
        ("SSN 536-22-1234", "us_ssn", "536-22-1234"),
        ("card 4111 1111 1111 1111 exp", "credit_card", "4111 1111 1111 1111"),
        ("amex 3782-822463-10005", "credit_card", "3782-822463-10005"),
        ("IBAN DE89 3704 0044 0532 0130 00 THEN", "iban", "DE89 3704 0044 0532 0130 00"),
        ("pay GB82WEST12345698765432.", "iban", "GB82WEST12345698765432"),
        ("host 192.168.1.10.", "ipv4", "192.168.1.10"),
        ("ip 2001:db8::8a2e:370:7334", "ipv6", "2001:db8::8a2e:370:7334"),
        ("nic 00:1A:2B:3C:4D:5E", "mac_address", "00:1A:2B:3C:4D:5E"),
        ("cisco 001a.2b3c.4d5e.", "mac_address", "001a.2b3c.4d5e"),
        (
            "btc 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
            "crypto_wallet",
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
        ),
        (
            "to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
            "crypto_wallet",
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        ),
        (
            "eth 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "crypto_wallet",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        ),
        ("DOB: 12/03/1985", "date_of_birth", "12/03/1985"),
        ("she was born on March 3, 1990.", "date_of_birth", "March 3, 1990"),
        ("Date of birth 1985-03-12", "date_of_birth", "1985-03-12"),
    ],
)
def test_finds_each_entity(text, label, value):
    assert (label, value) in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "SSN 666-12-3456",  # area 666
        "SSN 900-12-3456",  # area 9xx
        "SSN 000-12-3456",
        "SSN 123-00-4567",  # group 00
        "SSN 123-45-0000",  # serial 0000
        "SSN 078-05-1120",  # the Woolworth wallet card
        "card 4111 1111 1111 1112",  # Luhn fails
        "IBAN DE89 3704 0044 0532 0130 01",  # mod-97 fails
        "IBAN DE89 3704 0044 0532 0130",  # too short for DE
        "ip 999.1.1.1",
        "ip 01.02.03.04",  # leading zeros are not IPv4
        "at 12:30:45 use std::vector",
        "btc 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb",  # base58check fails
        "eth 0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",  # EIP-55 checksum fails
        "the meeting is on 12/03/1985",  # a date without birth context
        "born on 31/02/1990",  # no such day
        "call 555-123-4567",  # exchange cannot start with 1
        "+999 12",
    ],
)
def test_rejects_invalid_shapes(text):
    assert found(text) == []


def test_validation_and_context_raise_the_score():
    bare = analyze("ref 536221234")
    with_context = analyze("my ssn is 536221234")
    assert bare == []  # nine bare digits score below the reporting floor
    assert with_context[0].score >= 0.5
    card_known = analyze("4111111111111111")[0].score
    card_unknown_iin = analyze("9111111111111110")  # Luhn-valid, no network prefix
    assert card_known > 0.8
    assert all(m.score < card_known for m in card_unknown_iin)
    plain_phone = analyze("030 12345678")[0].score
    phone_context = analyze("phone: 030 12345678")[0].score
    assert phone_context > plain_phone


def test_overlaps_keep_the_surest_match_once():
    text = "card number 4111111111111111"
    assert found(text) == [("credit_card", "4111111111111111")]


async def test_detector_output_is_the_pack_shape_without_text():
    detector = RegexPiiDetector()
    assert isinstance(detector, Detector)
    text = "mail bob@example.org, card 4111 1111 1111 1111"
    result = await detector.detect(text, "text/plain")
    labels = [item["label"] for item in result.output]
    assert labels == ["email", "credit_card"]
    for item, span in zip(result.output, result.spans, strict=True):
        assert set(item) == {"label", "start", "end", "score"}
        assert (item["start"], item["end"], item["label"]) == (span.start, span.end, span.label)
    assert "bob@example.org" not in str(result.output)
    assert text[result.spans[0].start : result.spans[0].end] == "bob@example.org"


async def test_large_content_runs_in_a_thread_with_the_same_answer():
    text = ("filler words here. " * 300) + "mail bob@example.org"
    result = await RegexPiiDetector().detect(text, "text/markdown")
    assert [item["label"] for item in result.output] == ["email"]


async def test_unsupported_content_type_is_a_caller_error():
    with pytest.raises(DetectorError) as error:
        await RegexPiiDetector().detect("x", "image/png")
    assert error.value.retryable is False


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_never_raises_and_spans_are_within_bounds(text):
    previous_end = 0
    for match in analyze(text):
        assert 0 <= match.start < match.end <= len(text)
        assert match.start >= previous_end  # sorted, no overlaps
        assert 0.0 <= match.score <= 1.0
        previous_end = match.end


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                " ",
                "bob@example.org",
                "4111 1111 1111 1111",
                "+44 20 7946 0958",
                "536-22-1234",
                "DOB ",
                "12/03/1985",
                "::",
                "1.2.3.4",
                "0x",
                "a",
                "9",
                ".",
                "-",
            ]
        ),
        max_size=40,
    )
)
def test_never_raises_on_pii_like_fragments(parts):
    text = "".join(parts)
    for match in analyze(text):
        assert 0 <= match.start < match.end <= len(text)


def test_the_mapper_maps_the_output(service):
    text = "mail bob@example.org, SSN 536-22-1234, IBAN GB82WEST12345698765432, ip 10.0.0.1"
    output = [
        {"label": m.label, "start": m.start, "end": m.end, "score": m.score} for m in analyze(text)
    ]
    payload = service.parse_payload({"detector": "regex-pii", "output": output, "tenant_id": "t1"})
    body = service.map_payload(payload, route="test")
    assert set(body["taxonomy"]) == {
        "PII.Contact.Email",
        "PII.Identifier.SSN",
        "PII.Identifier.BankAccount",
        "PII.Network.IPAddress",
    }
    assert body["provenance"]["unmapped_labels"] == []
