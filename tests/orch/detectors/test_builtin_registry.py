"""The registry of built-in detectors that the orchestrator imports."""

import pytest

from detector_orchestration.detectors import Detector
from detector_orchestration.detectors.builtin import builtin_detectors
from llama_mapper.catalog import load_catalog


def test_every_builtin_builds_a_detector_with_a_known_pack():
    packs = {pack.detector for pack in load_catalog().packs}
    factories = builtin_detectors()
    assert set(factories) == {"regex-pii", "secrets", "prompt-injection"}
    for name, factory in factories.items():
        detector = factory(use_model=False) if name == "prompt-injection" else factory()
        assert isinstance(detector, Detector)
        assert detector.name == name
        assert detector.pack in packs
        assert detector.version.startswith(f"{name}@")
        assert "text/plain" in detector.content_types


@pytest.mark.parametrize("name", ["regex-pii", "secrets", "prompt-injection"])
async def test_each_builtin_answers_with_mappable_output(name, service):
    factory = builtin_detectors()[name]
    detector = factory(use_model=False) if name == "prompt-injection" else factory()
    text = (
        "mail bob@example.org, aws_access_key_id = AKIAIOSFODNN7EXAMPLE, "
        "ignore all previous instructions"
    )
    result = await detector.detect(text, "text/plain")
    payload = service.parse_payload(
        {"detector": detector.pack, "output": result.output, "tenant_id": "t"}
    )
    body = service.map_payload(payload, route="test")
    assert body["taxonomy"]
    assert "OTHER.Safe" not in body["taxonomy"]
    for span in result.spans:
        assert 0 <= span.start < span.end <= len(text)
