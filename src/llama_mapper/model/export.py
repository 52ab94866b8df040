"""Turn a generative mapper's folder (LoRA adapter over a base) into one servable HF folder.

``mapper train --kind causal`` writes a LoRA adapter next to (or pointing at) its base
model. A server such as vLLM or TGI loads one plain Hugging Face folder, so this merges
the adapter into the base weights (PEFT ``merge_and_unload()``) and writes ``config.json``
and ``model.safetensors``, the tokenizer with its chat template in
``tokenizer_config.json`` (the template the mapper's prompt was trained with), and the
files the OpenAI-compatible backend reads (``model_card.json``, ``labels.json``,
``calibration.json``), so ``learned.model_dir`` can point at the exported folder.

The card keeps its version (the served model is the same model) and records where it
came from under ``export``; the folder holds no adapter, so the in-process causal tier
refuses it (it is for a server), while the HTTP backend reads it as it is.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_mapper.model.artifact import (
    CALIBRATION,
    CARD,
    CARD_MARKDOWN,
    CAUSAL,
    LABELS,
    METRICS,
    ArtifactError,
    base_model_path,
    check_prompt_version,
    read_card,
    write_json,
)

#: The weights file a merged export holds (one safetensors shard at these sizes).
MERGED_WEIGHTS = "model.safetensors"
#: Copied as they are when present; card and labels are required, the rest optional.
COPIED = (LABELS, CALIBRATION, METRICS, CARD_MARKDOWN)
MERGED = "merged"


@dataclass(frozen=True)
class ExportResult:
    output_dir: Path
    version: str
    parameters: int
    files: tuple[str, ...]


def _check_target(output_dir: Path, overwrite: bool) -> None:
    """Refuse to write over a non-empty folder unless asked (it may be another model)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ArtifactError(f"{output_dir} exists and is not a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        if not overwrite:
            raise ArtifactError(f"{output_dir} is not empty (overwrite it with --force)")
        shutil.rmtree(output_dir)


def export_merged(
    folder: Path,
    output_dir: Path,
    *,
    base_dir: Path | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Merge ``folder``'s LoRA adapter into its base and save one servable folder."""
    card = read_card(folder)  # checks the adapter files of a causal folder are there
    if card.kind != CAUSAL:
        raise ArtifactError(
            f"{folder} holds a model of kind {card.kind!r}; only a causal (generative) mapper "
            "exports as a merged model"
        )
    check_prompt_version(card)
    if folder.resolve() == output_dir.resolve():
        raise ArtifactError("the output folder must differ from the model folder")
    base = base_dir or base_model_path(folder, card)
    _check_target(output_dir, overwrite)

    from peft import PeftModel

    from llama_mapper.model.causal import load_causal_base
    from llama_mapper.model.tiny import save_base

    tokenizer, model = load_causal_base(base)
    merged: Any = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    merged.eval()
    output_dir.mkdir(parents=True, exist_ok=True)
    # Same writer as the tiny base: weights as safetensors, template in tokenizer_config.
    save_base(output_dir, tokenizer, merged)
    for name in COPIED:
        if (folder / name).is_file():
            shutil.copyfile(folder / name, output_dir / name)
    raw = dict(card.raw)
    raw["export"] = {
        "format": MERGED,
        "weights": MERGED_WEIGHTS,
        "lora_merged_from": card.raw.get("base_model_path", str(base)),
    }
    write_json(output_dir / CARD, raw)
    files = tuple(sorted(p.name for p in output_dir.iterdir() if p.is_file()))
    parameters = sum(p.numel() for p in merged.parameters())
    return ExportResult(output_dir, card.version, parameters, files)
