"""Native adapters: turn each detector's own response shape into neutral signals.

Adapters are the only code that knows a vendor's JSON. They never copy fields that carry
matched raw text, so nothing downstream can leak it.
"""

from llama_mapper.adapters.base import Adapter, OutputShapeError, Signal
from llama_mapper.adapters.registry import AdapterRegistry, default_registry

__all__ = ["Adapter", "AdapterRegistry", "OutputShapeError", "Signal", "default_registry"]
