"""Make the tiny trained causal model that ``scripts/e2e_vllm.sh`` serves with vLLM.

Not the product's causal mapper (``mapper train --kind causal``): the smallest model that
answers valid labels for the shared prompt, so the e2e can show the OpenAI-compatible
backend against a real vLLM server. A byte-level BPE tokenizer with a chat template is
trained on the rendered prompts, a 2-layer Llama is created from a ``LlamaConfig`` and
trained (full parameters, loss on the answer only) on the generated training pairs of a
dozen labels. The folder holds what vLLM loads (config, weights, tokenizer) and what the
mapper reads (``model_card.json``, ``labels.json``, ``calibration.json``).

Run in the project's environment (torch, transformers, tokenizers):
``python scripts/e2e_tiny_causal.py OUT_DIR [--steps N]``.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path
from typing import Any

LABELS = (
    "PII.Identifier.SSN",
    "PII.Contact.Email",
    "PII.Contact.Phone",
    "PII.Person.Name",
    "PII.Network.IPAddress",
    "SECRET.APIKey",
    "SECRET.Password",
    "JAILBREAK.Attempt",
    "HARM.SPEECH.Toxicity",
    "HARM.SPEECH.Hate.Other",
    "HARM.VIOLENCE.SelfHarm",
    "HARM.VIOLENCE.Physical",
)
VERSION = "causal-e2e-0"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL = ["<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]


def train_tokenizer(texts: list[str]) -> Any:
    """A byte-level BPE tokenizer (what vLLM detokenizes cleanly) with the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(texts, trainer)
    bos, eos, pad = SPECIAL[:3]
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        chat_template=CHAT_TEMPLATE,
    )


def encode(tokenizer: Any, detector: str, text: str, answer: str) -> tuple[list[int], int]:
    """Token ids of the whole conversation and where the answer starts."""
    from llama_mapper.model import prompt

    asked = prompt.messages(detector, text, LABELS)
    head = tokenizer.apply_chat_template(asked, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(
        prompt.training_messages(detector, text, LABELS, answer), tokenize=False
    )
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full.rstrip("\n"), add_special_tokens=False)["input_ids"]
    return full_ids, len(head_ids)


def new_model(tokenizer: Any, longest: int) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=max(512, longest + 64),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def train(model: Any, encoded: list[tuple[list[int], int]], pad: int, steps: int) -> None:
    """Full-parameter training, loss on the answer tokens only."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    # Short warm-up, then cosine decay to a tenth: the answer's first token (which label)
    # is learnt late, after the deterministic rest of each label.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (
            min(1.0, (step + 1) / 50)
            * (0.1 + 0.45 * (1 + math.cos(math.pi * min(step, steps) / steps)))
        ),
    )
    model.train()
    started = time.perf_counter()
    batch = 16
    for step in range(1, steps + 1):
        chosen = random.sample(encoded, batch)
        width = max(len(ids) for ids, _ in chosen)
        inputs = torch.full((batch, width), pad)
        labels = torch.full((batch, width), -100)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for row, (ids, answer_at) in enumerate(chosen):
            inputs[row, : len(ids)] = torch.tensor(ids)
            labels[row, answer_at : len(ids)] = torch.tensor(ids[answer_at:])
            mask[row, : len(ids)] = 1
        loss = model(input_ids=inputs, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == 1:
            print(f"step {step} loss {loss.item():.4f} ({time.perf_counter() - started:.0f} s)")
    model.eval()


def answer(model: Any, tokenizer: Any, detector: str, text: str) -> str:
    """Greedy, unconstrained: what the model says without vLLM's guided decoding."""
    import torch

    from llama_mapper.model import prompt

    ids = tokenizer.apply_chat_template(
        prompt.messages(detector, text, LABELS), add_generation_prompt=True, return_dict=True
    )["input_ids"]
    with torch.inference_mode():
        out = model.generate(
            torch.tensor([ids]),
            max_new_tokens=16,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    return str(tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)).strip()


def save(out: Path, model: Any, tokenizer: Any, card: dict[str, Any]) -> None:
    """What vLLM loads (config, weights, tokenizer) and what the mapper reads (card, labels)."""
    import orjson

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "model_card.json").write_bytes(orjson.dumps(card, option=orjson.OPT_INDENT_2))
    (out / "labels.json").write_bytes(orjson.dumps(list(LABELS)))
    # Not fitted: the e2e shows the wire, not calibration quality.
    (out / "calibration.json").write_bytes(orjson.dumps({"temperature": 1.0}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from llama_mapper.catalog import load_catalog
    from llama_mapper.model import prompt
    from llama_mapper.model.data import build_splits

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(1)
    catalog = load_catalog()
    splits = build_splits(catalog.taxonomy, catalog.packs, seed=args.seed)
    examples = [e for e in splits.train if e.label in LABELS]
    held = [e for e in (*splits.calibration, *splits.evaluation) if e.label in LABELS]
    tokenizer = train_tokenizer(
        [
            "\n".join(
                m["content"] for m in prompt.training_messages(e.detector, e.text, LABELS, e.label)
            )
            for e in examples
        ]
    )
    encoded = [encode(tokenizer, e.detector, e.text, e.label) for e in examples]
    model = new_model(tokenizer, max(len(ids) for ids, _ in encoded))
    train(model, encoded, tokenizer.pad_token_id, args.steps)
    sample = random.sample(examples, min(40, len(examples)))
    train_hits = sum(answer(model, tokenizer, e.detector, e.text) == e.label for e in sample)
    held_hits = sum(answer(model, tokenizer, e.detector, e.text) in e.targets for e in held)
    print(f"train accuracy {train_hits}/{len(sample)}, held-out accuracy {held_hits}/{len(held)}")
    card = {
        "version": VERSION,
        "kind": "causal",
        "base_model": "tiny-llama-from-config (e2e only)",
        "taxonomy_version": catalog.taxonomy.version,
        "data_hash": splits.data_hash(),
        "seed": args.seed,
        "prompt_version": prompt.PROMPT_VERSION,
        "metrics": {
            "train_sample_accuracy": train_hits / len(sample),
            "heldout_accuracy": held_hits / len(held),
        },
    }
    save(args.out, model, tokenizer, card)
    print(f"saved {args.out} ({sum(p.numel() for p in model.parameters())} parameters)")


if __name__ == "__main__":
    main()
