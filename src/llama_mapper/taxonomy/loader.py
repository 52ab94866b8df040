"""Read taxonomy and framework files (flat 2026 format and the nested 2025.09 format)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from llama_mapper.taxonomy.frameworks import Control, ControlMapping, FrameworkError, Frameworks
from llama_mapper.taxonomy.model import Label, Taxonomy, TaxonomyError
from llama_mapper.yamlio import load_yaml_file


def load_taxonomy(path: Path) -> Taxonomy:
    return taxonomy_from_dict(load_yaml_file(path), str(path))


def taxonomy_from_dict(data: Any, source: str = "taxonomy") -> Taxonomy:
    if not isinstance(data, Mapping) or "version" not in data:
        raise TaxonomyError(f"{source}: expected a mapping with 'version'")
    if "labels" in data:
        raw_labels = data["labels"]
    elif "categories" in data:
        raw_labels = list(_nested_labels(data["categories"], source))
    else:
        raise TaxonomyError(f"{source}: expected 'labels' or 'categories'")
    if not isinstance(raw_labels, list):
        raise TaxonomyError(f"{source}: 'labels' must be a list")
    labels = [_label(item, source) for item in raw_labels]
    return Taxonomy.from_labels(str(data["version"]), labels, str(data.get("description", "")))


def _nested_labels(categories: Any, source: str) -> Iterator[Any]:
    """Walk the 2025.09 layout: categories -> (subcategories ->) labels."""
    if not isinstance(categories, Mapping):
        raise TaxonomyError(f"{source}: 'categories' must be a mapping")
    for category in categories.values():
        if not isinstance(category, Mapping):
            raise TaxonomyError(f"{source}: each category must be a mapping")
        yield from category.get("labels", []) or []
        yield from _nested_labels(category.get("subcategories", {}) or {}, source)


def _label(item: Any, source: str) -> Label:
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
        raise TaxonomyError(f"{source}: each label needs a 'name'")
    aliases = item.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise TaxonomyError(f"{source}: aliases of {item['name']} must be a list of strings")
    return Label(item["name"], str(item.get("description", "")), tuple(aliases))


def load_frameworks(path: Path) -> Frameworks:
    return frameworks_from_dict(load_yaml_file(path), str(path))


def frameworks_from_dict(data: Any, source: str = "frameworks") -> Frameworks:
    if not isinstance(data, Mapping) or not isinstance(data.get("frameworks"), Mapping):
        raise FrameworkError(f"{source}: expected a mapping with 'frameworks'")
    titles: dict[str, str] = {}
    controls: dict[str, Control] = {}
    for framework, spec in data["frameworks"].items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("controls"), Mapping):
            raise FrameworkError(f"{source}: framework {framework} needs 'controls'")
        titles[str(framework)] = str(spec.get("title", framework))
        for control_id, title in spec["controls"].items():
            control = Control(str(framework), str(control_id), str(title))
            controls[control.ref] = control
    mappings: dict[str, tuple[ControlMapping, ...]] = {}
    for label, entries in (data.get("mappings") or {}).items():
        if not isinstance(entries, list):
            raise FrameworkError(f"{source}: mappings of {label} must be a list")
        mapped = []
        for entry in entries:
            ref = entry.get("control") if isinstance(entry, Mapping) else None
            if ref not in controls:
                raise FrameworkError(f"{source}: {label} maps to undefined control {ref!r}")
            mapped.append(ControlMapping(controls[ref], str(entry.get("rationale", ""))))
        mappings[str(label)] = tuple(mapped)
    return Frameworks(str(data.get("version", "")), titles, controls, mappings)
