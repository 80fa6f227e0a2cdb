#!/usr/bin/env bash
# LibriSpeech: manifests -> BPE tokenizer -> train -> average checkpoints -> evaluate.
# Nothing is downloaded: --corpus is a LibriSpeech folder already on disk (openslr.org/12,
# unpacked: LibriSpeech/{train-clean-100,...,dev-clean,dev-other,test-clean,test-other}).
# Every stage is skipped when its done-marker exists; delete the marker to redo it.
#
#   bash recipes/librispeech/run.sh --corpus /data/LibriSpeech [--stage N] [--stop-stage N]
#       [--train-sets "train-clean-100 train-clean-360 train-other-500"] [--conf FILE]
#       [--data DIR] [--exp DIR] [--avg N] [--avg-by best|last] [train overrides...]
#
# Stages: 0 manifests, then recipes/common_stages.sh: 1 tokenizer, 2 train, 3 average, 4 evaluate.
# Several GPUs of one node: --conf recipes/librispeech/conf/train_8gpu.yaml (Lightning starts one
# process per GPU). Several nodes (torchrun, SLURM): see README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

corpus=""
stage=0
stop_stage=4  # 5 would transcribe one test file
train_sets="train-clean-100 train-clean-360 train-other-500"
dev_sets="dev-clean dev-other"
test_sets="dev-clean dev-other test-clean test-other"
conf=recipes/librispeech/conf/train_1gpu.yaml
data=data/librispeech
exp=exp/librispeech
avg=5
avg_by=best
eval_models="model model_avg"
# shellcheck source=recipes/common_stages.sh
source recipes/common_stages.sh options "$@"
mkdir -p "$data" "$exp"

if step 0; then
  if [ -f "$data/.prepare.done" ]; then
    echo "$(elapsed) stage 0: manifests already in $data"
  else
    [ -n "$corpus" ] || { echo "stage 0 needs --corpus /path/to/LibriSpeech (nothing is downloaded)" >&2; exit 1; }
    echo "$(elapsed) stage 0: $corpus -> $data/<subset>.jsonl (skipped files: $data/<subset>.rejected.tsv)"
    asr prepare librispeech "$corpus" --out "$data"
    for name in train dev; do  # the training sets, and the dev sets validated on, each as one manifest
      if [ "$name" = train ]; then sets=$train_sets; else sets=$dev_sets; fi
      : > "$data/$name.jsonl"
      for s in $sets; do
        [ -s "$data/$s.jsonl" ] || { echo "no $s in $corpus (or all of it was skipped)" >&2; exit 1; }
        cat "$data/$s.jsonl" >> "$data/$name.jsonl"
      done
    done
    touch "$data/.prepare.done"
  fi
fi

source recipes/common_stages.sh stages
