"""One configuration system: defaults, YAML file, environment, then per-environment and
per-tenant overlays."""

from llama_mapper.config.overlays import OverlayError, TenantConfigs, load_overlay
from llama_mapper.config.settings import (
    GuardSettings,
    MappingSettings,
    ServingSettings,
    Settings,
    TenantSettings,
    load_settings,
)

__all__ = [
    "GuardSettings",
    "MappingSettings",
    "OverlayError",
    "ServingSettings",
    "Settings",
    "TenantConfigs",
    "TenantSettings",
    "load_overlay",
    "load_settings",
]
