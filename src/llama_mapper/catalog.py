"""The versioned reference data the mapper runs on: taxonomy, frameworks and packs.

Loaded once at start-up from the packaged ``data/`` folder, optionally overlaid by a
user's data folder (its own ``taxonomy.yaml``/``frameworks.yaml`` replace ours; its
``detectors/*.yaml`` add packs or replace ours by detector name).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from llama_mapper.packs.lint import lint_pack
from llama_mapper.packs.loader import load_pack
from llama_mapper.packs.model import DetectorPack, PackSet
from llama_mapper.taxonomy.frameworks import Frameworks
from llama_mapper.taxonomy.loader import load_frameworks, load_taxonomy
from llama_mapper.taxonomy.model import Taxonomy

PACKAGED_DATA = Path(__file__).parent / "data"


class CatalogError(ValueError):
    """The reference data is inconsistent; the message lists every problem found."""


@dataclass(frozen=True)
class Catalog:
    taxonomy: Taxonomy
    frameworks: Frameworks
    packs: PackSet
    data_dir: Path
    warnings: tuple[str, ...] = ()


def _pick(data_dir: Path | None, name: str) -> Path:
    if data_dir is not None and (data_dir / name).exists():
        return data_dir / name
    return PACKAGED_DATA / name


def load_catalog(data_dir: Path | None = None) -> Catalog:
    """Load and cross-check the reference data; raise :class:`CatalogError` on any error."""
    if data_dir is not None and not data_dir.is_dir():
        raise CatalogError(f"data directory {data_dir} does not exist")
    taxonomy = load_taxonomy(_pick(data_dir, "taxonomy.yaml"))
    frameworks = load_frameworks(_pick(data_dir, "frameworks.yaml"))
    problems = [f"taxonomy lacks required label {name}" for name in taxonomy.missing_required()]
    problems += frameworks.check_against(taxonomy)
    pack_paths = {p.stem: p for p in sorted((PACKAGED_DATA / "detectors").glob("*.yaml"))}
    if data_dir is not None and (data_dir / "detectors").is_dir():
        pack_paths.update({p.stem: p for p in sorted((data_dir / "detectors").glob("*.yaml"))})
    packs: list[DetectorPack] = []
    warnings: list[str] = []
    for path in pack_paths.values():
        pack = load_pack(path)
        for issue in lint_pack(pack, taxonomy):
            (problems if issue.severity == "error" else warnings).append(str(issue))
        packs.append(_rolled_up(pack, taxonomy))
    if problems:
        raise CatalogError("reference data is inconsistent:\n  " + "\n  ".join(problems))
    return Catalog(
        taxonomy, frameworks, PackSet.of(packs), data_dir or PACKAGED_DATA, tuple(warnings)
    )


def _rolled_up(pack: DetectorPack, taxonomy: Taxonomy) -> DetectorPack:
    """Replace targets finer than the taxonomy knows by their longest known prefix."""
    maps = {
        key: tuple(dict.fromkeys(taxonomy.resolve(t) or t for t in targets))
        for key, targets in pack.maps.items()
    }
    return pack if maps == dict(pack.maps) else replace(pack, maps=maps)
