#!/usr/bin/env bash
# A fixed-time training run on a lent GPU, ready to go: train a config for a few minutes in bf16 on a
# packed corpus, then bring back throughput, MFU and dev WER.
#
#   here:        python recipes/gpu/pack.py data/synth/commands exp/gpu_pack
#   on the GPU:  bash recipes/gpu/run.sh [--minutes 5] [--conf configs/base.yaml] [--pack exp/gpu_pack] [overrides...]
#                (the device tool: carry exp/gpu_pack; results land in $OUT, else exp/gpu_run)
#
# The machine's python3 holds torch and Lightning; the pack's wheels add what its image lacks
# (soundfile, jiwer), installed into a folder of their own, and asr runs from the working tree.
# Lightning trains in bf16-mixed on CUDA (asr.train.trainer); `max_minutes` stops training when the
# minutes of training steps are spent (validation not counted) and decays the learning rate over them.
# Output: train.log, wer.txt (dev and test WER), mfu.json (recipes/gpu/mfu.py: audio seconds per second,
# counted FLOPs per audio second, achieved TFLOP/s, MFU), runs.jsonl, config.yaml, metrics.csv, gpu.txt.
# On a CPU the same script runs (at a tiny size, with --conf configs/tiny.yaml: tests/train/test_gpu_recipe.py).
set -euo pipefail
cd "$(dirname "$0")/../.."

minutes=5
conf=configs/base.yaml
pack=exp/gpu_pack
exp=exp/gpu/run
out=${OUT:-exp/gpu_run}
workers=8
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes|--conf|--pack|--exp|--out|--workers) var=${1#--}; printf -v "$var" '%s' "$2"; shift 2 ;;
    *) break ;;
  esac
done
PY=${PYTHON:-python3}
mkdir -p "$out" "$exp"
[ -s "$pack/train.jsonl" ] || { echo "no corpus pack at $pack (python recipes/gpu/pack.py CORPUS $pack)" >&2; exit 2; }

if ! $PY -c "import soundfile, jiwer" 2>/dev/null; then
  ls "$pack"/wheels/*.whl >/dev/null 2>&1 || { echo "python lacks soundfile/jiwer and $pack/wheels has none" >&2; exit 2; }
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/asr-site "$pack"/wheels/*.whl
  export PYTHONPATH=/tmp/asr-site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
(nvidia-smi 2>&1 || echo "no nvidia-smi") > "$out/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')" | tee -a "$out/gpu.txt"

sets=("$pack/dev.jsonl")
[ -s "$pack/test.jsonl" ] && sets+=("$pack/test.jsonl")
SECONDS=0
$PY -m asr train -c "$conf" --exp "$exp" data.train="$pack/train.jsonl" data.dev="$pack/dev.jsonl" \
  max_minutes="$minutes" max_steps=1000000 max_epochs=1000000 data.num_workers="$workers" \
  trainer.enable_progress_bar=false "$@" 2>&1 | tee "$out/train.log"
echo "training: ${SECONDS} s wall-clock (validation and start-up included)" | tee -a "$out/train.log"
$PY -m asr evaluate -m "$exp/model.pt" "${sets[@]}" --out "$exp/eval" 2>&1 | tee "$out/wer.txt"
$PY recipes/gpu/mfu.py "$exp" | tee "$out/mfu.json"
cp "$exp/runs.jsonl" "$exp/config.yaml" "$out/"
cp "$exp/logs/metrics.csv" "$out/" 2>/dev/null || true
