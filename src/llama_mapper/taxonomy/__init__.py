"""The canonical taxonomy and the compliance frameworks it maps onto (pure data model)."""

from llama_mapper.taxonomy.frameworks import Control, ControlMapping, Frameworks
from llama_mapper.taxonomy.model import Label, Taxonomy

__all__ = ["Control", "ControlMapping", "Frameworks", "Label", "Taxonomy"]
