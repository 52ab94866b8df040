"""Every pack entry maps to exactly what the reviewed golden file says."""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_mapper.adapters import default_registry
from llama_mapper.adapters.base import Signal
from llama_mapper.catalog import Catalog
from llama_mapper.mapping.engine import MappingEngine
from llama_mapper.mapping.thresholds import ThresholdOverrides
from llama_mapper.yamlio import load_yaml_file

GOLDEN = load_yaml_file(Path(__file__).parent / "golden" / "packs.yaml")
CASES = [(det, key, labels) for det, table in GOLDEN.items() for key, labels in table.items()]


def test_golden_covers_every_pack_entry(catalog: Catalog) -> None:
    assert set(GOLDEN) == set(catalog.packs.names())
    for pack in catalog.packs:
        assert set(GOLDEN[pack.detector]) == set(pack.maps), pack.detector


@pytest.fixture(scope="module")
def engine(catalog: Catalog) -> MappingEngine:
    return MappingEngine(catalog, default_registry())


@pytest.mark.parametrize(("detector", "vendor_label", "expected"), CASES)
def test_pack_entry(
    engine: MappingEngine, catalog: Catalog, detector: str, vendor_label: str, expected: list[str]
) -> None:
    result = engine.map_signals(detector, [Signal(vendor_label, 1.0)], ThresholdOverrides(0.0))
    assert list(result.labels) == expected
    assert all(label in catalog.taxonomy for label in result.labels)
    assert "OTHER.Unknown" not in result.labels
