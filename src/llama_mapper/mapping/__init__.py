"""The tiered mapping engine: deterministic rules first, then an optional learned tier."""

from llama_mapper.mapping.engine import MappingEngine, MappingResult
from llama_mapper.mapping.learned import LearnedTier, Prediction
from llama_mapper.mapping.thresholds import ThresholdOverrides
from llama_mapper.mapping.unmapped import UnmappedLabels

__all__ = [
    "LearnedTier",
    "MappingEngine",
    "MappingResult",
    "Prediction",
    "ThresholdOverrides",
    "UnmappedLabels",
]
