"""One registry of native adapters, keyed by the adapter name a detector pack names."""

from __future__ import annotations

from collections.abc import Iterable

from llama_mapper.adapters.base import Adapter, Signal
from llama_mapper.adapters.generic import parse_generic


class AdapterRegistry:
    """Looks up adapters by name and applies the generic forms as the fallback."""

    def __init__(self, adapters: Iterable[Adapter] = ()) -> None:
        self._adapters: dict[str, Adapter] = {}
        for adapter in adapters:
            self.register(adapter)

    def register(self, adapter: Adapter) -> None:
        if adapter.name in self._adapters:
            raise ValueError(f"adapter {adapter.name!r} is registered twice")
        self._adapters[adapter.name] = adapter

    def names(self) -> list[str]:
        return sorted(self._adapters)

    def get(self, name: str) -> Adapter | None:
        return self._adapters.get(name)

    def raw_text_keys(self, name: str) -> frozenset[str]:
        adapter = self._adapters.get(name)
        return adapter.raw_text_keys if adapter else frozenset()

    def parse(self, adapter_name: str, output: object, scale: str) -> list[Signal]:
        """Parse with the named native adapter, falling back to the generic forms."""
        adapter = self._adapters.get(adapter_name)
        if adapter is not None:
            signals = adapter.parse(output)
            if signals is not None:
                return signals
        return parse_generic(output, scale)


def default_registry() -> AdapterRegistry:
    """Every built-in vendor adapter."""
    from llama_mapper.adapters import vendors

    return AdapterRegistry(vendors.ALL)
