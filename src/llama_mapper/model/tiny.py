"""A tiny Llama-architecture base model made here, so tests and CI need no download.

``mapper train --kind causal --base-model tiny`` builds one inside the model folder
(``base/``): a byte-level BPE tokenizer trained in-process on our own text (taxonomy,
pack labels and the prompt), a Llama-3-like chat template, and a randomly initialised
:class:`transformers.LlamaForCausalLM` from a small :class:`~transformers.LlamaConfig`.
A random network knows no language, so the base is then trained briefly (every weight)
on the training split's chat text before LoRA is put on top; what it demonstrates is the
code path a user's own Llama directory goes through, not what a real base model scores.

The folder is a normal Hugging Face model folder (``config.json``, ``model.safetensors``,
``tokenizer.json``, ``tokenizer_config.json`` with the chat template): everything that
loads a user's Llama-3-8B-Instruct loads it the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_mapper.model import prompt

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
END_OF_TURN = "<|eot_id|>"
SPECIAL_TOKENS = (BOS, EOS, START_HEADER, END_HEADER, END_OF_TURN)
#: Llama 3's template, less the date line: a header per message, ``<|eot_id|>`` after each.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' "
    "+ message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
#: Runs of line breaks, runs of other spaces, and space-led words: a canonical label
#: (``PII.Identifier.SSN``) stays one piece, so BPE can give it a single token.
PRE_TOKENIZER_PATTERN = r"\s*[\r\n]+|\s+(?!\S)|\s+|\s?[^\s]+"
LABEL_REPEATS = 64
TINY_NAME = "tiny-llama (created and trained here by llama-mapper)"


@dataclass(frozen=True)
class TinyConfig:
    """Size of the tiny base: small enough for CI on two CPU cores."""

    vocab_size: int = 2048
    hidden_size: int = 128
    intermediate_size: int = 384
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    max_positions: int = 512

    def to_dict(self) -> dict[str, int]:
        return {
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "layers": self.layers,
            "heads": self.heads,
            "kv_heads": self.kv_heads,
            "max_positions": self.max_positions,
        }


def corpus(
    labels: Sequence[str], vendor_texts: Iterable[str], detectors: Iterable[str]
) -> list[str]:
    """What the tokenizer learns from: the prompt with every label, vendor labels, names."""
    lines = [prompt.system_message(labels)]
    # Every label often enough that BPE gives it one token: the prompt lists all of them,
    # so their length is most of the prompt's.
    lines += [label for label in labels for _ in range(LABEL_REPEATS)]
    lines += [prompt.user_message(d, "x") for d in sorted(set(detectors))]
    lines += list(vendor_texts)
    return lines


def train_tokenizer(lines: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer with Llama 3's special tokens and chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRE_TOKENIZER_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(lines), trainer=trainer)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=END_OF_TURN, pad_token=EOS
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def create_tiny_base(
    output_dir: Path, lines: Iterable[str], config: TinyConfig, seed: int
) -> tuple[Any, Any]:
    """Tokenizer and a randomly initialised Llama model, saved to ``output_dir``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from llama_mapper.model.causal import offline_quiet

    offline_quiet()
    tokenizer = train_tokenizer(lines, config.vocab_size)
    torch.manual_seed(seed)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.kv_heads,
        max_position_embeddings=config.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(model_config)
    save_base(output_dir, tokenizer, model)
    return tokenizer, model


def save_base(output_dir: Path, tokenizer: Any, model: Any) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    # The chat template in tokenizer_config.json, where every transformers version reads it.
    tokenizer.save_pretrained(str(output_dir), save_jinja_files=False)
    model.save_pretrained(str(output_dir))
