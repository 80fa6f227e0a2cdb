# Stages 1-4 shared by the corpus recipes (recipes/librispeech, recipes/commonvoice): tokenizer,
# train, average, evaluate. Sourced by their run.sh after stage 0, which sets: stage, stop_stage,
# conf, data (holding train.jsonl, dev.jsonl and the test manifests), exp, avg, avg_by,
# test_sets, overrides (array), start_time; and defines step() and elapsed().
# shellcheck shell=bash disable=SC2154

if step 1; then
  # asr train makes the tokenizer itself when EXP/tokenizer.json is missing; making it here first
  # lets you look at it before training, and keeps parallel DDP processes from racing to write it.
  if [ -f "$exp/tokenizer.json" ]; then
    echo "$(elapsed) stage 1: tokenizer already in $exp/tokenizer.json"
  else
    echo "$(elapsed) stage 1: tokenizer from $data/train.jsonl -> $exp/tokenizer.json"
    python - "$conf" "$exp" "$data/train.jsonl" "${overrides[@]}" <<'PY'
import sys
from pathlib import Path

from asr.config import Config, load_config
from asr.data import read_manifest
from asr.train import prepare_tokenizer

conf, exp, train, overrides = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4:]
cfg = load_config(Config, conf, overrides)
tok = prepare_tokenizer(cfg, read_manifest(train), exp)
print(f"{cfg.tokenizer.kind} tokenizer, {tok.vocab_size} tokens")
PY
  fi
fi

if step 2; then
  if [ -f "$exp/.train.done" ]; then
    echo "$(elapsed) stage 2: training already done ($exp/model.pt)"
  else
    echo "$(elapsed) stage 2: train $conf -> $exp (resumes from $exp/checkpoints/last.ckpt if present)"
    asr train -c "$conf" --exp "$exp" data.train="$data/train.jsonl" data.dev="$data/dev.jsonl" "${overrides[@]}"
    touch "$exp/.train.done"
  fi
fi

if step 3; then
  echo "$(elapsed) stage 3: average the $avg_by $avg checkpoints -> $exp/model_avg.pt"
  asr average "$exp" -n "$avg" --by "$avg_by" -o "$exp/model_avg.pt"
fi

if step 4; then
  sets=()
  for s in $test_sets; do [ -s "$data/$s.jsonl" ] && sets+=("$data/$s.jsonl"); done
  [ ${#sets[@]} -gt 0 ] || { echo "no test manifests in $data" >&2; exit 1; }
  for model in model model_avg; do
    [ -f "$exp/$model.pt" ] || continue
    echo "$(elapsed) stage 4: evaluate $exp/$model.pt"
    mkdir -p "$exp/eval_$model"
    asr evaluate -m "$exp/$model.pt" "${sets[@]}" --out "$exp/eval_$model" | tee "$exp/eval_$model/wer_table.txt"
  done
  echo "$(elapsed) done. WER tables: $exp/eval_model/wer_table.txt (best checkpoint), $exp/eval_model_avg/wer_table.txt (averaged)"
fi
