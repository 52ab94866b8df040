"""Read detector packs from a folder of YAML files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llama_mapper.packs.model import DetectorPack, PackError, PackSet
from llama_mapper.yamlio import load_yaml_file

REQUIRED_KEYS = ("detector", "version", "vendor", "maps")


def load_pack(path: Path) -> DetectorPack:
    return pack_from_dict(load_yaml_file(path), str(path))


def pack_from_dict(data: Any, source: str = "pack") -> DetectorPack:
    if not isinstance(data, Mapping):
        raise PackError(f"{source}: a pack must be a mapping")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise PackError(f"{source}: missing {', '.join(missing)}")
    maps = data["maps"]
    if not isinstance(maps, Mapping):
        raise PackError(f"{source}: 'maps' must be a mapping")
    return DetectorPack(
        detector=str(data["detector"]),
        version=str(data["version"]),
        vendor=str(data["vendor"]),
        description=str(data.get("description", "")),
        adapter=str(data.get("adapter", "generic")),
        score_scale=str(data.get("score_scale", "probability")),
        threshold=_number(data.get("threshold", 0.0), source),
        thresholds={str(k): _number(v, source) for k, v in (data.get("thresholds") or {}).items()},
        strip_prefixes=tuple(str(p) for p in data.get("strip_prefixes") or ()),
        maps={str(k): _targets(v, str(k), source) for k, v in maps.items()},
    )


def pack_to_dict(pack: DetectorPack) -> dict[str, Any]:
    """The YAML form of a pack, as ``detectors fix --apply`` and ``migrate-apply`` write it."""
    data: dict[str, Any] = {
        "detector": pack.detector,
        "version": pack.version,
        "vendor": pack.vendor,
        "description": pack.description,
        "adapter": pack.adapter,
        "score_scale": pack.score_scale,
        "threshold": pack.threshold,
    }
    if pack.thresholds:
        data["thresholds"] = dict(pack.thresholds)
    if pack.strip_prefixes:
        data["strip_prefixes"] = [p.rstrip("_") for p in pack.strip_prefixes]
    data["maps"] = {k: v[0] if len(v) == 1 else list(v) for k, v in pack.maps.items()}
    return data


def load_packs(folder: Path) -> PackSet:
    if not folder.is_dir():
        raise PackError(f"{folder}: detector pack folder not found")
    return PackSet.of(load_pack(path) for path in sorted(folder.glob("*.yaml")))


def _targets(value: Any, key: str, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PackError(f"{source}: {key!r} must map to a label or a list of labels")


def _number(value: Any, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PackError(f"{source}: thresholds must be numbers")
    return float(value)
