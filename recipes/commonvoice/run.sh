#!/usr/bin/env bash
# Common Voice: manifests -> BPE tokenizer -> train -> average checkpoints -> evaluate.
# Nothing is downloaded: --corpus is one language's folder of a Common Voice release already on
# disk (commonvoice.mozilla.org, unpacked: cv-corpus-*/en/{train,dev,test}.tsv + clips/).
# Every stage is skipped when its done-marker exists; delete the marker to redo it.
#
#   bash recipes/commonvoice/run.sh --corpus /data/cv-corpus-17.0-2024-03-15/en [--stage N]
#       [--stop-stage N] [--conf FILE] [--data DIR] [--exp DIR] [--avg N] [--avg-by best|last]
#       [train overrides...]
#
# Stages: 0 manifests, then recipes/common_stages.sh: 1 tokenizer, 2 train, 3 average, 4 evaluate.
# Several GPUs of one node: --conf recipes/commonvoice/conf/train_8gpu.yaml (Lightning starts one
# process per GPU). Several nodes (torchrun, SLURM): see README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

corpus=""
stage=0
stop_stage=4  # 5 would transcribe one test file
test_sets="dev test"
conf=recipes/commonvoice/conf/train_1gpu.yaml
data=data/commonvoice
exp=exp/commonvoice
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
    [ -n "$corpus" ] || { echo "stage 0 needs --corpus /path/to/cv-corpus-X/LANG (nothing is downloaded)" >&2; exit 1; }
    echo "$(elapsed) stage 0: $corpus -> $data/{train,dev,test}.jsonl (skipped files: $data/<split>.rejected.tsv)"
    asr prepare commonvoice "$corpus" --out "$data" --splits train dev test
    for s in train dev; do
      [ -s "$data/$s.jsonl" ] || { echo "no usable clips in $corpus/$s.tsv" >&2; exit 1; }
    done
    touch "$data/.prepare.done"
  fi
fi

source recipes/common_stages.sh stages
