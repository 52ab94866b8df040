"""Environment and tenant overlays, deep-merged over the base settings.

Tenant overlays are re-read when their file changes, so an operator can tighten one
tenant's thresholds without a restart.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llama_mapper.config.settings import Settings, TenantSettings
from llama_mapper.yamlio import DataFileError, load_yaml_file

TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
RECHECK_SECONDS = 1.0
MAX_CACHED_TENANTS = 100_000


class OverlayError(ValueError):
    """An overlay file is invalid."""


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_overlay(path: Path) -> dict[str, Any]:
    try:
        data = load_yaml_file(path)
    except DataFileError as exc:
        raise OverlayError(str(exc)) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise OverlayError(f"{path}: an overlay must be a mapping")
    return dict(data)


def apply_environment(settings: Settings, root: Path | None) -> Settings:
    """Settings with ``environments/<settings.environment>.yaml`` merged in, if present."""
    if root is None:
        return settings
    path = root / "environments" / f"{settings.environment}.yaml"
    if not path.is_file():
        return settings
    merged = deep_merge(settings.model_dump(mode="python"), load_overlay(path))
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise OverlayError(f"{path}: {_summary(exc)}") from None


class TenantConfigs:
    """Per-tenant effective mapping and guard settings, cached by file modification time."""

    def __init__(
        self, base: TenantSettings, root: Path | None, recheck_seconds: float = RECHECK_SECONDS
    ) -> None:
        self._base = base
        self._root = root
        self.recheck_seconds = recheck_seconds
        # tenant -> (file mtime or -1 when absent, effective settings, when last checked)
        self._cache: dict[str, tuple[float, TenantSettings, float]] = {}
        self._lock = threading.Lock()

    def for_tenant(self, tenant_id: str) -> TenantSettings:
        """The tenant's settings; its file is stat-ed at most once per ``recheck_seconds``."""
        if self._root is None or not TENANT_ID.match(tenant_id):
            return self._base
        now = time.monotonic()
        cached = self._cache.get(tenant_id)
        if cached is not None and now - cached[2] < self.recheck_seconds:
            return cached[1]
        path = self._root / "tenants" / f"{tenant_id}.yaml"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = -1.0
        if cached is not None and cached[0] == mtime:
            effective = cached[1]
        else:
            effective = self._base if mtime < 0 else self._merge(path)
        with self._lock:
            if len(self._cache) >= MAX_CACHED_TENANTS:
                self._cache.clear()
            self._cache[tenant_id] = (mtime, effective, now)
        return effective

    def _merge(self, path: Path) -> TenantSettings:
        overlay = load_overlay(path)
        unknown = set(overlay) - set(TenantSettings.model_fields)
        if unknown:
            raise OverlayError(
                f"{path}: tenants may only set {', '.join(TenantSettings.model_fields)}"
            )
        merged = deep_merge(self._base.model_dump(mode="python"), overlay)
        try:
            return TenantSettings.model_validate(merged)
        except ValidationError as exc:
            raise OverlayError(f"{path}: {_summary(exc)}") from None


def _summary(exc: ValidationError) -> str:
    """Locations and messages only: never the offending input value."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
