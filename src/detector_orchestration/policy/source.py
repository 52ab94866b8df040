"""Which bundle applies to a request: the tenant's active version, else a packaged one.

The active version is read from the store and reused for ``cache_seconds`` (approvals on
another replica apply within that time; through this process, at once). Without an active
version the packaged bundle of that name (``data/policies/<name>.yaml``, version
``builtin``) applies, so an embedded install works before any policy is submitted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from detector_orchestration.policy.model import PolicyBundle, load_bundle_file
from detector_orchestration.policy.store import PolicyStore

BUILTIN_VERSION = "builtin"


@dataclass(frozen=True)
class ResolvedPolicy:
    bundle: PolicyBundle
    version: str


PACKAGED = Path(str(resources.files("detector_orchestration"))) / "data" / "policies"


def packaged_bundle(name: str) -> PolicyBundle | None:
    candidate = PACKAGED / f"{name}.yaml"
    if not candidate.is_file():
        return None
    return load_bundle_file(candidate)[1]


class PolicySource:
    def __init__(self, store: PolicyStore | None, cache_seconds: float = 5.0) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str], tuple[float, ResolvedPolicy | None]] = {}
        self._packaged: dict[str, PolicyBundle | None] = {}

    def invalidate(self) -> None:
        self._cache.clear()

    async def resolve(self, tenant_id: str, name: str) -> ResolvedPolicy | None:
        key = (tenant_id, name)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.cache_seconds:
            return hit[1]
        resolved: ResolvedPolicy | None = None
        if self.store is not None:
            active = await self.store.active(tenant_id, name)
            if active is not None:
                resolved = ResolvedPolicy(active.parsed(), str(active.version))
        if resolved is None:
            if name not in self._packaged:
                self._packaged[name] = packaged_bundle(name)
            packaged = self._packaged[name]
            resolved = None if packaged is None else ResolvedPolicy(packaged, BUILTIN_VERSION)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now, resolved)
        return resolved
