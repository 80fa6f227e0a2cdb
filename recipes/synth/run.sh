#!/usr/bin/env bash
# Synthetic speech recipe: text -> synthesized audio -> manifests -> train -> evaluate -> transcribe.
# Every stage is skipped when its done-marker exists; delete the marker (or the folder) to redo it.
#
#   bash recipes/synth/run.sh [--corpus commands|prose] [--stage N] [--stop-stage N]
#                             [--train-config configs/X.yaml] [--exp DIR] [train overrides...]
#
# Stages: 0 text, 1 audio + manifests, 2 train, 3 evaluate, 4 transcribe a sample file.
set -euo pipefail
cd "$(dirname "$0")/../.."

corpus=commands
stage=0
stop_stage=4
train_config=""
exp=""
while [ $# -gt 0 ]; do
  case "$1" in
    --corpus) corpus=$2; shift 2 ;;
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --train-config) train_config=$2; shift 2 ;;
    --exp) exp=$2; shift 2 ;;
    *) break ;;
  esac
done
overrides=("$@")
case "$corpus" in
  commands) train_config=${train_config:-configs/small.yaml} ;;
  prose) train_config=${train_config:-configs/base.yaml} ;;
  *) train_config=${train_config:-configs/small.yaml} ;;
esac

data=data/synth/$corpus
exp=${exp:-exp/synth/$corpus}
mkdir -p "$exp"
start_time=$SECONDS
step() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
elapsed() { echo "[$(( (SECONDS - start_time) / 60 ))m$(( (SECONDS - start_time) % 60 ))s]"; }

if step 0 || step 1; then
  which_stage=all  # text, audio and manifests (each skipped when its done-marker exists)
  step 1 || which_stage=text
  echo "$(elapsed) stage 0-1: corpus $corpus -> $data"
  python -m asr.synth --config "recipes/synth/conf/$corpus.yaml" --out "$data" --stage "$which_stage"
fi

if step 2; then
  if [ -f "$exp/.train.done" ]; then
    echo "$(elapsed) stage 2: training already done ($exp/model.pt)"
  else
    echo "$(elapsed) stage 2: train $train_config -> $exp (resumes from $exp/checkpoints/last.ckpt if present)"
    asr train -c "$train_config" --exp "$exp" data.train="$data/train.jsonl" data.dev="$data/dev.jsonl" "${overrides[@]}"
    touch "$exp/.train.done"
  fi
fi

if step 3; then
  echo "$(elapsed) stage 3: evaluate"
  sets=("$data/test.jsonl")
  [ -s "$data/test-unseen-voice.jsonl" ] && sets+=("$data/test-unseen-voice.jsonl")
  mkdir -p "$exp/eval"
  asr evaluate -m "$exp/model.pt" "${sets[@]}" --out "$exp/eval" | tee "$exp/eval/wer_table.txt"
fi

if step 4; then
  sample=$(head -n 1 "$data/test.jsonl" | python -c 'import json,sys; e=json.loads(sys.stdin.read()); print(e["audio"]); print(e["text"], file=sys.stderr)' 2>"$exp/sample_ref.txt")
  echo "$(elapsed) stage 4: transcribe $sample"
  echo "  reference:  $(cat "$exp/sample_ref.txt")"
  echo -n "  transcript: "
  asr transcribe -m "$exp/model.pt" "$sample" | cut -f2-
  echo
  echo "$(elapsed) done. Exported model: $exp/model.pt  (asr transcribe -m $exp/model.pt FILES...)"
fi
