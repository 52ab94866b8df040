"""The on-disk layout of a trained mapper (either kind), readable without torch.

A model folder holds the LoRA adapter (``adapter_model.safetensors`` and
``adapter_config.json``, as PEFT writes them), ``labels.json`` (the label index; for the
generative mapper, also the order of the labels in the prompt), ``calibration.json``
(the temperature) and ``model_card.json``, whose ``kind`` says which mapper it is: the
embedding mapper adds its classification head (``head.safetensors``); the generative
(``causal``) mapper records its base model (``base_model_path``, relative to the folder
or absolute) and the prompt version it was tuned on. The card alone tells serving the
model's version, so ``version_info`` and ``/ready`` can name the model before (or
without) torch being imported, and an HTTP backend reads labels and temperature here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

#: The default adapter shipped in the package.
DEFAULT_VERSION = "embedding-1.3.0"
PACKAGED_MODELS = Path(__file__).parent / "artifacts"
DEFAULT_MODEL_DIR = PACKAGED_MODELS / DEFAULT_VERSION

CARD = "model_card.json"
CARD_MARKDOWN = "MODEL_CARD.md"
LABELS = "labels.json"
CALIBRATION = "calibration.json"
HEAD = "head.safetensors"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
METRICS = "metrics.json"
REQUIRED_FILES = (CARD, LABELS, CALIBRATION, HEAD, ADAPTER_WEIGHTS, ADAPTER_CONFIG)
EMBEDDING = "embedding"
CAUSAL = "causal"
#: What each kind of model folder must hold.
KIND_FILES = {
    EMBEDDING: REQUIRED_FILES,
    CAUSAL: (CARD, LABELS, CALIBRATION, ADAPTER_WEIGHTS, ADAPTER_CONFIG),
}
#: An embedding card's ``input``: the label's words alone (cards without the field too),
#: or the label's words with the emitting detector's name (``model.text.model_text``).
INPUT_LABEL = "label"
INPUT_WITH_DETECTOR = "label+detector"


class ArtifactError(ValueError):
    """A model folder is missing files or holds inconsistent ones."""


@dataclass(frozen=True)
class ModelCard:
    """What a model is and how it was made (``model_card.json``)."""

    version: str
    kind: str
    base_model: str
    taxonomy_version: str
    data_hash: str
    seed: int
    raw: dict[str, Any]

    @property
    def uses_detector(self) -> bool:
        """Whether the model reads the detector's name along with the label."""
        return bool(self.raw.get("input", INPUT_LABEL) == INPUT_WITH_DETECTOR)

    @property
    def metrics(self) -> dict[str, Any]:
        value = self.raw.get("metrics") or {}
        return dict(value) if isinstance(value, dict) else {}


def read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ArtifactError(f"{path.name} missing in {path.parent}") from None
    except orjson.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from None


def write_json(path: Path, data: Any) -> None:
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def check_folder(folder: Path, kind: str = EMBEDDING) -> None:
    if not folder.is_dir():
        raise ArtifactError(f"model folder {folder} not found")
    if kind not in KIND_FILES:
        raise ArtifactError(f"{folder / CARD}: unknown kind {kind!r}")
    missing = [name for name in KIND_FILES[kind] if not (folder / name).is_file()]
    if missing:
        raise ArtifactError(f"model folder {folder} lacks {', '.join(missing)}")


def read_card(folder: Path, required: Sequence[str] | None = None) -> ModelCard:
    """The card of a model folder holding what its kind needs, or exactly ``required``
    (a model served over HTTP needs only its card and labels: the weights are on the
    server, as a merged checkpoint or an adapter)."""
    if not folder.is_dir():
        raise ArtifactError(f"model folder {folder} not found")
    missing = [name for name in (required or ()) if not (folder / name).is_file()]
    if missing:
        raise ArtifactError(f"model folder {folder} lacks {', '.join(missing)}")
    if not (folder / CARD).is_file():
        check_folder(folder)  # names every missing file
    data = read_json(folder / CARD)
    if not isinstance(data, dict):
        raise ArtifactError(f"{folder / CARD} must hold a JSON object")
    if required is None:
        check_folder(folder, str(data.get("kind", EMBEDDING)))
    try:
        return ModelCard(
            version=str(data["version"]),
            kind=str(data["kind"]),
            base_model=str(data["base_model"]),
            taxonomy_version=str(data["taxonomy_version"]),
            data_hash=str(data["data_hash"]),
            seed=int(data["seed"]),
            raw=data,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{folder / CARD}: missing or bad field {exc}") from None


def read_labels(folder: Path) -> tuple[str, ...]:
    data = read_json(folder / LABELS)
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data) or not data:
        raise ArtifactError(f"{folder / LABELS} must be a non-empty list of labels")
    return tuple(data)


def read_temperature(folder: Path) -> float:
    data = read_json(folder / CALIBRATION)
    value = data.get("temperature") if isinstance(data, dict) else None
    if not isinstance(value, int | float) or value <= 0:
        raise ArtifactError(f"{folder / CALIBRATION} needs a positive 'temperature'")
    return float(value)


def base_model_path(folder: Path, card: ModelCard) -> Path:
    """The generative mapper's base model folder, as its card records it."""
    value = card.raw.get("base_model_path")
    if not isinstance(value, str) or not value:
        raise ArtifactError(f"{folder / CARD} names no base_model_path; pass the base model")
    path = Path(value)
    return path if path.is_absolute() else folder / path


def check_prompt_version(card: ModelCard) -> None:
    """Refuse a generative mapper tuned on another prompt than the one serving builds."""
    from llama_mapper.model.prompt import PROMPT_VERSION

    tuned = card.raw.get("prompt_version")
    if str(tuned) != PROMPT_VERSION:
        raise ArtifactError(
            f"{card.version} was tuned on prompt version {tuned}, serving builds {PROMPT_VERSION}"
        )
