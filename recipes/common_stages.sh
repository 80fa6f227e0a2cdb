# Shared by the recipes (synth, librispeech, commonvoice): option parsing, stage gating, and
# stages 1-5: tokenizer, train, average, evaluate, transcribe a sample.
#
# A recipe sets its defaults as shell variables, then sources this file twice. Every
# `--name value` sets the variable `name` (dashes become underscores) that the recipe declared;
# anything else (key=value) goes to `asr train` as an override. Stage 0 (data) is the recipe's
# own, between the two:
#   source recipes/common_stages.sh options "$@"   # parse, define step() and elapsed()
#   if step 0; then ...; fi                        # the recipe's data preparation
#   source recipes/common_stages.sh stages          # stages 1-5
# Variables used: stage stop_stage conf data exp avg avg_by test_sets eval_models.
# shellcheck shell=bash disable=SC2154

if [ "${1:-}" = options ]; then
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --*)
        var=${1#--}; var=${var//-/_}
        if [ $# -lt 2 ] || ! declare -p "$var" >/dev/null 2>&1; then
          echo "unknown option $1 (or no value given)" >&2; exit 2
        fi
        printf -v "$var" '%s' "$2"; shift 2 ;;
      *) break ;;
    esac
  done
  overrides=("$@")
  start_time=$SECONDS
  step() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
  elapsed() { echo "[$(( (SECONDS - start_time) / 60 ))m$(( (SECONDS - start_time) % 60 ))s]"; }
  return 0
fi
mkdir -p "$exp"

if step 1; then
  # asr train makes the tokenizer itself when EXP/tokenizer.json is missing; making it here first
  # lets you look at it before training, and keeps parallel DDP processes from racing to write it.
  echo "$(elapsed) stage 1: tokenizer from $data/train.jsonl -> $exp/tokenizer.json"
  asr tokenizer -c "$conf" --exp "$exp" data.train="$data/train.jsonl" "${overrides[@]}"
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

if step 3 && [ "$avg" -gt 0 ]; then
  echo "$(elapsed) stage 3: average the $avg_by $avg checkpoints -> $exp/model_avg.pt"
  asr average "$exp" -n "$avg" --by "$avg_by" -o "$exp/model_avg.pt"
fi

if step 4; then
  sets=()
  for s in $test_sets; do [ -s "$data/$s.jsonl" ] && sets+=("$data/$s.jsonl"); done
  [ ${#sets[@]} -gt 0 ] || { echo "no test manifests in $data" >&2; exit 1; }
  for model in $eval_models; do
    [ -f "$exp/$model.pt" ] || continue
    echo "$(elapsed) stage 4: evaluate $exp/$model.pt"
    mkdir -p "$exp/eval_$model"
    asr evaluate -m "$exp/$model.pt" "${sets[@]}" --out "$exp/eval_$model" | tee "$exp/eval_$model/wer_table.txt"
  done
fi

if step 5; then
  sample=$(python -c 'import json,sys; e=json.loads(open(sys.argv[1]).readline()); print(e["audio"]); print(e["text"], file=sys.stderr)' \
           "$data/${test_sets%% *}.jsonl" 2>"$exp/sample_ref.txt")
  echo "$(elapsed) stage 5: transcribe $sample"
  echo "  reference:  $(cat "$exp/sample_ref.txt")"
  echo -n "  transcript: "
  asr transcribe -m "$exp/model.pt" "$sample" | cut -f2-
  echo
  echo "$(elapsed) done. Model: $exp/model.pt (asr transcribe -m $exp/model.pt FILES...); WER: $exp/eval_*/wer_table.txt"
fi
